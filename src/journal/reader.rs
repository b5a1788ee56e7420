//! Reading a failed run's lines where the manager is: `journalctl --output=export` run as a
//! subprocess on this machine (under another root directory for a manager in a container),
//! or on the remote host through the same ssh settings as the bus connection.
//!
//! Why a subprocess: `journalctl` is on every machine with journald, reads every journal file
//! format its systemd writes (this machine's 252 reads 257's and 262's files), runs the same
//! way over ssh, and needs nothing at build time; `sd-journal` loaded at run time would save
//! the process but reads only this machine's files, and would bring a large C API into the
//! crate's one unsafe file. It runs only after a failure.
//!
//! The command is a short POSIX shell script, the same locally and remotely: it exits 127
//! when there is no `journalctl`, 3 when there is no journal file at all (no journald ever
//! ran there, which `journalctl` itself does not report), and otherwise runs `journalctl`
//! newest line first, so that stopping after the wanted count keeps the last lines. Its two
//! pipes are read with `poll` until the deadline, without a thread; the decoder keeps at
//! most [`MAX_MESSAGE_BYTES`](super::MAX_MESSAGE_BYTES) of each message.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::export::{Decoder, Entry, OUTPUT_FIELDS, Whose};
use super::{InvocationId, JournalUnavailable, RunJournal};
use crate::deadline::Deadline;
use crate::ffi;
use crate::transport::Bus;
use crate::transport::remote::{Remote, shell_quote, ssh_program};

/// The manager's message that a unit's run ended in failure (`SD_MESSAGE_UNIT_FAILURE_RESULT`,
/// "Failed with result ..."), or ended well (`SD_MESSAGE_UNIT_SUCCESS`, "Deactivated
/// successfully"): once one of them is in, the run's lines are.
const END_OF_RUN: [&[u8]; 2] = [
    b"d9b373ed55a64feb8242e02dbe79a49c",
    b"7ad2d189f7e94e70a38c781354912448",
];

/// How long to wait for journald to store the whole run: it receives the service's output
/// and the manager's messages on sockets of their own and may store them a moment after the
/// job's result reached us, the service's last output sometimes after the manager's end of
/// run message.
const SETTLE: Duration = Duration::from_secs(2);

/// How often to read again while waiting for the end of the run.
const RETRY: Duration = Duration::from_millis(50);

/// Once the end of the run is stored: how long the newest line must stay the newest before
/// the run's lines count as complete.
const QUIET: Duration = Duration::from_millis(500);

/// How long before the run's recorded start its processes' lines are looked for: a service's
/// first output can reach journald before the manager records `InactiveExitTimestamp`.
const EARLY_OUTPUT_USEC: u64 = 1_000_000;

/// The most of `journalctl`'s standard error kept (its last bytes).
const MAX_STDERR: usize = 4096;

/// Where a manager's journal is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    /// On this machine, under `root` (`journalctl --root`) if given: a manager in a
    /// container is reached through `/proc/PID/root/...`, and its journal lies there too.
    Local { root: Option<PathBuf> },
    /// On a remote host, over ssh.
    Remote(Remote),
}

impl Source {
    /// Where the journal of the manager on `bus` is (`None`: a connection the caller made,
    /// read as this machine's), unless `root` says where it is on this machine.
    pub(crate) fn choose(root: Option<&Path>, bus: Option<&Bus>) -> Source {
        match (root, bus) {
            (Some(root), _) => Source::Local {
                root: Some(root.to_path_buf()),
            },
            (None, Some(Bus::Remote(remote))) => Source::Remote(remote.clone()),
            (None, Some(bus)) => Source::for_address(&bus.address().unwrap_or_default()),
            (None, None) => Source::Local { root: None },
        }
    }

    /// The journal of the manager at `address` (a D-Bus address): under `/proc/PID/root`
    /// when its socket is reached through there, else this machine's.
    fn for_address(address: &str) -> Source {
        let root = ffi::address_values(address, "unix", "path")
            .iter()
            .find_map(|path| proc_root(path));
        Source::Local { root }
    }
}

/// `/proc/PID/root` if `path` lies under one.
fn proc_root(path: &str) -> Option<PathBuf> {
    let rest = path.strip_prefix("/proc/")?;
    let (pid, rest) = rest.split_once('/')?;
    (pid.bytes().all(|b| b.is_ascii_digit()) && !pid.is_empty() && rest.starts_with("root/"))
        .then(|| PathBuf::from(format!("/proc/{pid}/root")))
}

/// Which run's lines to read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Run<'a> {
    /// The run's id.
    pub(crate) invocation: InvocationId,
    /// The unit's own name (its `Id`).
    pub(crate) unit: &'a str,
    /// When the run started (`InactiveExitTimestamp`, µs since the epoch; 0 if unknown).
    pub(crate) started_usec: u64,
}

/// The last `count` lines of `run`, read from `source` before `deadline`.
pub(crate) fn read(source: &Source, run: Run<'_>, count: usize, deadline: &Deadline) -> RunJournal {
    let invocation = run.invocation;
    let id = invocation.to_string();
    let settle = Deadline::after(SETTLE.min(deadline.remaining()));
    // The newest entry of the last read that had the end of the run.
    let mut newest_at_end: Option<Entry> = None;
    loop {
        let read = run_once(source, run, count, deadline);
        let entries = match read {
            Ok(entries) => entries,
            Err(why) => return RunJournal::Unavailable(why),
        };
        let mut entries = of_run(entries, id.as_bytes(), run.unit.as_bytes());
        // Looked for among all that were read: the last `count` lines may all come after it.
        let ended = entries
            .iter()
            .any(|e| e.message_id().is_some_and(|id| END_OF_RUN.contains(&id)));
        entries.truncate(count);
        let quiet = ended && newest_at_end.is_some() && newest_at_end.as_ref() == entries.first();
        if quiet || settle.expired() {
            if entries.is_empty() {
                return RunJournal::Unavailable(JournalUnavailable::NoLines);
            }
            // Read newest first; shown oldest first.
            let lines = entries.into_iter().rev().map(Entry::into_line).collect();
            return RunJournal::Lines { invocation, lines };
        }
        let pause = if ended {
            log::debug!("journal: run {invocation} ended; reading again until nothing new comes");
            newest_at_end = entries.first().cloned();
            QUIET
        } else {
            log::debug!("journal: the end of run {invocation} is not stored yet; reading again");
            RETRY
        };
        std::thread::sleep(pause.min(settle.remaining()));
    }
}

/// The shell script that reads the journal (see the module docs).
/// `sync` first asks journald to store what it has received (`journalctl --sync`, for root
/// only), as a remote host's script does: see `ops::run_journal` for why.
///
/// It asks for the lines that carry the run's invocation id, and for the unit's lines since
/// the run started: its processes' (some without an id: see [`Whose::UnitWithoutRun`]) and
/// the manager's about it (other runs' among them, which tell where this run begins and
/// ends); [`of_run`] then keeps the run's. [`entries_read`] are read.
fn script(root: Option<&Path>, sync: bool, run: Run<'_>, count: usize) -> String {
    let invocation = run.invocation;
    let unit = shell_quote(run.unit);
    // A process may write before the manager records that its unit left `inactive`.
    let since = since_arg(run.started_usec.saturating_sub(EARLY_OUTPUT_USEC));
    let lines = entries_read(count);
    journalctl_script(
        root,
        sync,
        &format!(
            "--reverse --lines={lines} {since}_SYSTEMD_INVOCATION_ID={invocation} + \
             INVOCATION_ID={invocation} + USER_INVOCATION_ID={invocation} + _SYSTEMD_UNIT={unit} \
             + _SYSTEMD_USER_UNIT={unit} + UNIT={unit} + USER_UNIT={unit}"
        ),
    )
}

/// `--since=@SECONDS.MICROS ` for a time in µs since the epoch; nothing for 0.
fn since_arg(usec: u64) -> String {
    match usec {
        0 => String::new(),
        usec => format!("--since=@{}.{:06} ", usec / 1_000_000, usec % 1_000_000),
    }
}

/// The shell script that runs `journalctl` with `query` (its selection arguments) in the
/// export format, under `root`; `sync` first asks journald to store what it has (root
/// only). It exits 127 without `journalctl` and 3 without a journal file.
fn journalctl_script(root: Option<&Path>, sync: bool, query: &str) -> String {
    let sync = if sync {
        "[ \"$(id -u)\" = 0 ] && timeout 1 journalctl --sync >/dev/null 2>&1; "
    } else {
        ""
    };
    let root_arg = root.map(|r| format!("--root={}", shell_quote(&r.display().to_string())));
    let prefix = root
        .map(|r| shell_quote(&r.display().to_string()))
        .unwrap_or_default();
    format!(
        "command -v journalctl >/dev/null 2>&1 || exit 127; {sync}\
         for f in {prefix}/var/log/journal/*/*.journal* {prefix}/run/log/journal/*/*.journal*; do \
         [ -e \"$f\" ] && exec journalctl {} --no-pager --output=export --output-fields={OUTPUT_FIELDS} \
         {query}; done; exit 3",
        root_arg.unwrap_or_default()
    )
}

/// The most of the manager's own lines read for one question.
const MANAGER_LINES: usize = 400;

/// The messages the managers (processes named `systemd`: PID 1, user managers) logged since
/// `since_usec` (µs since the epoch), oldest first, at most [`MANAGER_LINES`] of the newest:
/// what one said about a transaction it refused, for instance.
pub(crate) fn manager_messages(
    source: &Source,
    since_usec: u64,
    deadline: &Deadline,
) -> Result<Vec<String>, JournalUnavailable> {
    let since = since_arg(since_usec);
    let make = |root: Option<&Path>, sync: bool| {
        journalctl_script(
            root,
            sync,
            &format!("--reverse --lines={MANAGER_LINES} {since}_COMM=systemd"),
        )
    };
    let entries = run_query(source, &make, MANAGER_LINES, deadline)?;
    Ok(entries
        .into_iter()
        .rev()
        .map(|e| e.into_line().message)
        .collect())
}

/// The entries (newest first) of the run `invocation` of `unit`: those that carry its id, and
/// those of the unit's processes that carry no id and lie between the other runs' entries
/// nearest to it, newer and older: a line of the run before, stored without an id, comes
/// before that run's end, which the manager logs with that run's id. Without an entry that
/// carries the run's id, nothing tells where the run lies, and none is kept.
pub(crate) fn of_run(entries: Vec<Entry>, invocation: &[u8], unit: &[u8]) -> Vec<Entry> {
    let whose: Vec<Whose> = entries.iter().map(|e| e.whose(invocation, unit)).collect();
    let (Some(newest), Some(oldest)) = (
        whose.iter().position(|&w| w == Whose::ThisRun),
        whose.iter().rposition(|&w| w == Whose::ThisRun),
    ) else {
        return Vec::new();
    };
    let other = |w: &Whose| *w == Whose::OtherRun;
    let from = whose[..newest].iter().rposition(other).map_or(0, |i| i + 1);
    let to = whose[oldest..]
        .iter()
        .position(other)
        .map_or(whose.len(), |i| oldest + i);
    entries
        .into_iter()
        .zip(whose)
        .enumerate()
        .filter(|(i, (_, w))| {
            *w == Whose::ThisRun || (*w == Whose::UnitWithoutRun && (from..to).contains(i))
        })
        .map(|(_, (e, _))| e)
        .collect()
}

/// How many entries are read for `count` lines: room for lines of a later run, which the
/// filter drops, and for the end-of-run line behind a service's late output.
fn entries_read(count: usize) -> usize {
    count.saturating_mul(2).saturating_add(10)
}

/// Runs the script once; the entries it printed, newest first.
fn run_once(
    source: &Source,
    run: Run<'_>,
    count: usize,
    deadline: &Deadline,
) -> Result<Vec<Entry>, JournalUnavailable> {
    let make = |root: Option<&Path>, sync: bool| script(root, sync, run, count);
    run_query(source, &make, entries_read(count), deadline)
}

/// Runs the script `make(root, sync)` gives where the manager is, once, reading at most
/// `count` entries; the entries it printed.
fn run_query(
    source: &Source,
    make: &dyn Fn(Option<&Path>, bool) -> String,
    count: usize,
    deadline: &Deadline,
) -> Result<Vec<Entry>, JournalUnavailable> {
    let mut command = match source {
        Source::Local { root } => {
            let mut c = Command::new("/bin/sh");
            c.arg("-c").arg(make(root.as_deref(), false));
            c
        }
        Source::Remote(remote) => {
            let mut c = Command::new(ssh_program());
            c.args(remote.ssh_argv(make(None, true)));
            c
        }
    };
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| JournalUnavailable::Failed(format!("cannot run {command:?}: {e}")))?;
    let ran = Bounded::read(child, count, deadline);
    let said = String::from_utf8_lossy(&ran.stderr);
    let last_line =
        super::export::make_safe(said.trim().lines().last().unwrap_or("").as_bytes(), false);
    log::debug!(
        "journal: {} entries, exit {:?}, said {last_line:?}",
        ran.entries.len(),
        ran.exit
    );
    if !ran.entries.is_empty() {
        return Ok(ran.entries);
    }
    if ran.timed_out {
        return Err(JournalUnavailable::TimedOut);
    }
    if said.contains("insufficient permissions")
        || said.contains("not seeing messages from other users")
    {
        return Err(JournalUnavailable::PermissionDenied(last_line));
    }
    match (source, ran.exit) {
        (_, Some(0)) => Ok(Vec::new()),
        (_, Some(127)) => Err(JournalUnavailable::NoJournalctl),
        (_, Some(3)) => Err(JournalUnavailable::NoJournal),
        (Source::Remote(_), Some(255)) => {
            Err(JournalUnavailable::Failed(format!("ssh: {last_line}")))
        }
        _ => Err(JournalUnavailable::Failed(last_line)),
    }
}

/// What a bounded run of the script gave.
struct Bounded {
    entries: Vec<Entry>,
    stderr: Vec<u8>,
    /// Its exit status; `None` if it was killed (deadline, or enough entries read).
    exit: Option<i32>,
    timed_out: bool,
}

impl Bounded {
    /// Reads `child`'s output until it exits, `count` entries are in, or the deadline
    /// passes (then it is killed).
    fn read(mut child: Child, count: usize, deadline: &Deadline) -> Bounded {
        let mut decoder = Decoder::new(count);
        let mut stderr = Vec::new();
        let mut out = child.stdout.take();
        let mut err = child.stderr.take();
        let mut buf = vec![0u8; 64 * 1024];
        let mut timed_out = false;
        while out.is_some() || err.is_some() {
            if decoder.is_done() {
                break;
            }
            if deadline.expired() {
                timed_out = true;
                break;
            }
            let fds: Vec<_> = [
                out.as_ref().map(AsRawFd::as_raw_fd),
                err.as_ref().map(AsRawFd::as_raw_fd),
            ]
            .into_iter()
            .flatten()
            .collect();
            let ready =
                ffi::poll_readable(&fds, deadline.remaining().min(Duration::from_millis(100)));
            let mut next = ready.into_iter();
            if let Some(pipe) = out.as_mut()
                && next.next() == Some(true)
            {
                match pipe.read(&mut buf) {
                    Ok(0) | Err(_) => out = None,
                    Ok(n) => decoder.feed(&buf[..n]),
                }
            }
            if let Some(pipe) = err.as_mut()
                && next.next() == Some(true)
            {
                match pipe.read(&mut buf) {
                    Ok(0) | Err(_) => err = None,
                    Ok(n) => {
                        stderr.extend_from_slice(&buf[..n]);
                        let over = stderr.len().saturating_sub(MAX_STDERR);
                        stderr.drain(..over);
                    }
                }
            }
        }
        let exit = if out.is_none() && err.is_none() && !decoder.is_done() {
            child.wait().ok().and_then(|s| s.code())
        } else {
            let _ = child.kill();
            let _ = child.wait();
            None
        };
        if decoder.is_broken() {
            log::debug!(
                "journal: journalctl's output broke the export format; kept what came before"
            );
        }
        Bounded {
            entries: decoder.finish(),
            stderr,
            exit,
            timed_out,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUN: &str = "0123456789abcdef0123456789abcdef";
    const BEFORE: &str = "ffffffffffffffffffffffffffffffff";

    /// Entries, newest first, from `FIELD=value` lines; the message is the entry's index.
    fn entries(fields: &[&str]) -> Vec<Entry> {
        let mut export = String::new();
        for (i, f) in fields.iter().enumerate() {
            export.push_str(&format!("MESSAGE={i}\n{f}\n\n"));
        }
        let mut d = Decoder::new(100);
        d.feed(export.as_bytes());
        d.finish()
    }

    fn kept(fields: &[&str]) -> Vec<String> {
        of_run(entries(fields), RUN.as_bytes(), b"app.service")
            .into_iter()
            .map(|e| e.into_line().message)
            .collect()
    }

    #[test]
    fn lines_without_an_id_are_the_run_s_only_between_other_runs() {
        let unit = "_SYSTEMD_UNIT=app.service";
        let this_manager = format!("UNIT=app.service\nINVOCATION_ID={RUN}");
        let this_process = format!("{unit}\n_SYSTEMD_INVOCATION_ID={RUN}");
        let before_end = format!("UNIT=app.service\nINVOCATION_ID={BEFORE}");
        let later_start =
            "USER_UNIT=app.service\nUSER_INVOCATION_ID=eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee";
        let fields = [
            unit,                          // 0: a later run's, after its start
            later_start,                   // 1: a later run's start
            unit,                          // 2: this run's, after its end
            this_manager.as_str(),         // 3: this run's end
            unit,                          // 4
            this_process.as_str(),         // 5
            unit,                          // 6: this run's, before its id'd lines
            before_end.as_str(),           // 7: the run before ends
            unit,                          // 8: the run before's line without an id
            "_SYSTEMD_UNIT=other.service", // 9
        ];
        assert_eq!(kept(&fields), ["2", "3", "4", "5", "6"]);
        // A line about the unit from a program of another unit marks no run's end.
        let someone = "UNIT=app.service\n_SYSTEMD_UNIT=cron.service\n_SYSTEMD_INVOCATION_ID=dddddddddddddddddddddddddddddddd";
        assert_eq!(kept(&[this_manager.as_str(), someone, unit]), ["0", "2"]);
        // Without a line of the run's own, nothing places the lines without an id.
        assert!(kept(&[unit, before_end.as_str(), unit]).is_empty());
    }

    #[test]
    fn escaped_socket_paths_are_read_as_libdbus_reads_them() {
        let odd = [" ", "%", ",", ";", "=", "é", "\\", "*", "x"];
        let mut state = 0x5eed_u64;
        for case in 0..500 {
            let mut name = String::new();
            for _ in 0..(case % 7) {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1);
                name.push_str(odd[(state >> 33) as usize % odd.len()]);
            }
            let path = format!("/proc/{case}/root/run/{name}/bus_socket");
            let escaped = ffi::escape_address_value(&path);
            let address = format!("tcp:host=h,port=1;unix:guid=00,path={escaped}");
            let root = Some(PathBuf::from(format!("/proc/{case}/root")));
            assert_eq!(
                Source::for_address(&address),
                Source::Local { root },
                "{address}"
            );
        }
    }

    #[test]
    fn a_socket_under_proc_pid_root_means_that_root_s_journal() {
        assert_eq!(
            Source::for_address("unix:path=/proc/123/root/run/dbus/system_bus_socket"),
            Source::Local {
                root: Some(PathBuf::from("/proc/123/root"))
            }
        );
        for local in [
            "unix:path=/run/dbus/system_bus_socket",
            "unix:path=/proc/self/root/run/x",
            "unix:path=/proc/12/cwd/x",
            "unix:abstract=/proc/1/root/x",
            "tcp:host=localhost,port=1",
        ] {
            assert_eq!(
                Source::for_address(local),
                Source::Local { root: None },
                "{local}"
            );
        }
    }

    #[test]
    fn the_script_quotes_the_root_and_matches_the_three_invocation_fields() {
        let id = InvocationId([0xab; 16]);
        let run = Run {
            invocation: id,
            unit: "a b.service",
            started_usec: 1_796_211_143_000_042,
        };
        let s = script(Some(Path::new("/proc/1/root")), false, run, 10);
        assert!(!s.contains("--sync"), "{s}");
        assert!(script(None, true, run, 10).contains("journalctl --sync"));
        assert!(s.contains("--since=@1796211142.000042 "), "{s}");
        assert!(
            s.contains("+ _SYSTEMD_UNIT='a b.service' + _SYSTEMD_USER_UNIT='a b.service'"),
            "{s}"
        );
        assert!(s.contains("--root='/proc/1/root'"), "{s}");
        assert!(
            s.contains("for f in '/proc/1/root'/var/log/journal/*/*.journal*"),
            "{s}"
        );
        for field in [
            "_SYSTEMD_INVOCATION_ID",
            "+ INVOCATION_ID",
            "+ USER_INVOCATION_ID",
        ] {
            assert!(s.contains(&format!("{field}={id}")), "{s}");
        }
        assert!(s.contains("--reverse --lines=30"), "{s}");
    }

    #[test]
    fn a_missing_journal_and_a_hung_reader_are_told_apart() {
        // A root with no journal files at all.
        let dir = std::env::temp_dir().join(format!("sj-journal-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("var/log/journal")).unwrap();
        let source = Source::Local {
            root: Some(dir.clone()),
        };
        let run = Run {
            invocation: InvocationId([1; 16]),
            unit: "a.service",
            started_usec: 0,
        };
        let got = read(&source, run, 10, &Deadline::after(Duration::from_secs(10)));
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(got, RunJournal::Unavailable(JournalUnavailable::NoJournal));
        // A reader that never answers is cut at the deadline.
        let child = Command::new("sleep")
            .arg("10")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let started = std::time::Instant::now();
        let ran = Bounded::read(child, 10, &Deadline::after(Duration::from_millis(200)));
        assert!(ran.timed_out && ran.exit.is_none());
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }
}

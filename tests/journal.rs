//! A failed run's own journal lines in the error, read where the manager is: the system
//! manager in a container (journald runs there; read from the host through
//! `/proc/PID/root`, and from inside by the example as root and as a user without journal
//! access), on every root (systemd 252, 257 and the newest), and the user-manager harness,
//! where no journald runs.

mod common;

use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use common::container::{Container, Root};
use systemd_jobs::{
    Bus, Error, JobMode, JobResult, JournalUnavailable, MAX_MESSAGE_BYTES, Manager, Remote,
    RunJournal,
};

on_every_root!(
    a_failed_restart_carries_its_own_lines_and_never_an_earlier_run_s,
    an_earlier_run_s_line_stored_without_its_id_stays_out,
    runs_to_completion_dependencies_and_active_checks_carry_their_lines,
    huge_lines_and_escape_sequences_are_cut_and_made_safe,
    a_caller_without_journal_access_is_told_so,
    a_successful_restart_runs_and_opens_nothing,
);

const T: Duration = Duration::from_secs(20);
const NOBODY: u32 = 65534;

/// A oneshot that prints the content of /run/app.conf on stderr, then fails as a service
/// with a bad configuration does.
const APP: &str = "[Unit]\nStartLimitIntervalSec=0\n[Service]\nType=oneshot\n\
    ExecStart=/bin/sh -c 'echo \"app: unknown directive lissten in $(cat /run/app.conf)\" >&2; exit 1'\n";

fn manager_of(c: &Container) -> Manager {
    Manager::builder()
        .bus(Bus::Address(c.bus_address()))
        .connect()
        .expect("connect to the container")
}

/// The messages of a journal, with what a test must see of every line.
fn messages(journal: &RunJournal) -> Vec<String> {
    let RunJournal::Lines { lines, .. } = journal else {
        panic!("no lines: {journal:?}");
    };
    assert!(!lines.is_empty());
    for line in lines.iter() {
        assert!(line.identifier.is_some() && line.pid.is_some(), "{line:?}");
        let age = SystemTime::now()
            .duration_since(line.time)
            .unwrap_or_default();
        assert!(age < Duration::from_secs(120), "{line:?}");
    }
    lines.iter().map(|l| l.message.clone()).collect()
}

fn failed_journal(e: &Error) -> &RunJournal {
    match e {
        Error::JobFailed {
            result: JobResult::Failed,
            reason: Some(reason),
            ..
        } => &reason.journal,
        other => panic!("not a failed job: {other}"),
    }
}

fn a_failed_restart_carries_its_own_lines_and_never_an_earlier_run_s(root: Root) {
    let c = container!(root);
    c.install(&[("app.service", APP)]);
    let conf = format!("/proc/{}/root/run/app.conf", c.pid1());
    let m = manager_of(&c);

    std::fs::write(&conf, "run-one:7").unwrap();
    let e = m.restart("app.service", JobMode::Replace, T).unwrap_err();
    let first = messages(failed_journal(&e));
    assert!(
        first
            .iter()
            .any(|l| l == "app: unknown directive lissten in run-one:7"),
        "systemd {}: {first:?}",
        c.version
    );
    // The manager's own lines about this run are there too, its end among them.
    assert!(
        first
            .iter()
            .any(|l| l.contains("Failed with result 'exit-code'")),
        "{first:?}"
    );
    let RunJournal::Lines {
        invocation: one, ..
    } = failed_journal(&e)
    else {
        unreachable!()
    };
    assert_eq!(
        one.to_string(),
        c.unit_property("app.service", "InvocationID")
    );

    // A second failing run: its lines only.
    std::fs::write(&conf, "run-two:8").unwrap();
    let e = m.restart("app.service", JobMode::Replace, T).unwrap_err();
    let second = messages(failed_journal(&e));
    assert!(second.iter().any(|l| l.contains("run-two:8")), "{second:?}");
    assert!(!second.iter().any(|l| l.contains("run-one")), "{second:?}");
    assert_eq!(e.run_journals().len(), 1);

    // The example, from the host: the lines indented under the error, as systemctl status
    // shows them, no control characters off a terminal.
    let address = c.bus_address();
    let (code, _, err) = common::run_example_with(&["--address", &address, "app"]);
    assert_eq!(code, 1, "{err}");
    let mut lines = err.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("restart_blocking: app.service: restart job")
    );
    let shown: Vec<&str> = lines.collect();
    assert!(
        shown.iter().any(|l| l.starts_with("    ")
            && l.contains("]: app: unknown directive lissten in run-two:8")),
        "{err}"
    );
    assert!(!err.contains('\x1b'), "{err:?}");
    // --lines sets the count, 0 turns them off.
    let (_, _, err) = common::run_example_with(&["--address", &address, "--lines", "2", "app"]);
    assert_eq!(err.lines().count(), 3, "{err}");
    let (_, _, err) = common::run_example_with(&["--address", &address, "--lines", "0", "app"]);
    assert_eq!(err.lines().count(), 1, "{err}");
    // The library's count.
    let few = Manager::builder()
        .bus(Bus::Address(address))
        .journal_lines(1)
        .connect()
        .unwrap();
    let e = few.restart("app.service", JobMode::Replace, T).unwrap_err();
    assert_eq!(failed_journal(&e).lines().len(), 1);
}

/// journald stopped (SIGSTOP) until a run's only process has exited: journald then reads its
/// line with no process left to learn the run from and stores it with the unit but without
/// an invocation id, as it does under load. The next run's lines never include it.
fn an_earlier_run_s_line_stored_without_its_id_stays_out(root: Root) {
    let c = container!(root);
    c.install(&[("app.service", APP)]);
    let conf = format!("/proc/{}/root/run/app.conf", c.pid1());
    let journald = c.unit_property("systemd-journald.service", "MainPID");
    let signal = |s: &str| {
        let (code, _, err) = c.run(None, &["kill", s, &journald]);
        assert_eq!(code, 0, "kill {s} {journald}: {err}");
    };
    let quiet = Manager::builder()
        .bus(Bus::Address(c.bus_address()))
        .journal_lines(0)
        .connect()
        .unwrap();
    std::fs::write(&conf, "run-one:7").unwrap();
    signal("-STOP");
    let first = quiet.restart("app.service", JobMode::Replace, T);
    signal("-CONT");
    assert!(matches!(first, Err(Error::JobFailed { .. })), "{first:?}");
    // The condition itself: run one's line is stored, and without an id.
    assert_stored_without_an_id(&c, "app: unknown directive lissten in run-one:7");

    std::fs::write(&conf, "run-two:8").unwrap();
    let e = manager_of(&c)
        .restart("app.service", JobMode::Replace, T)
        .unwrap_err();
    let second = messages(failed_journal(&e));
    assert!(second.iter().any(|l| l.contains("run-two:8")), "{second:?}");
    assert!(!second.iter().any(|l| l.contains("run-one")), "{second:?}");

    // A run's own line stored without an id is its: journald resumes while it is read.
    std::fs::write(&conf, "run-three:9").unwrap();
    signal("-STOP");
    let resume = {
        let journald = journald.clone();
        let pid1 = c.pid1();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(700));
            let status = Command::new("nsenter")
                .args([
                    "-t",
                    &pid1.to_string(),
                    "-p",
                    "-m",
                    "kill",
                    "-CONT",
                    &journald,
                ])
                .status();
            assert!(status.is_ok_and(|s| s.success()), "resume journald");
        })
    };
    let e = manager_of(&c)
        .restart("app.service", JobMode::Replace, T)
        .unwrap_err();
    resume.join().unwrap();
    let third = messages(failed_journal(&e));
    assert!(
        third
            .iter()
            .any(|l| l == "app: unknown directive lissten in run-three:9"),
        "{third:?}"
    );
    assert!(!third.iter().any(|l| l.contains("run-two")), "{third:?}");
    assert_stored_without_an_id(&c, "app: unknown directive lissten in run-three:9");
}

/// Waits until app.service's line `message` is in the container's journal and checks it was
/// stored without an invocation id.
fn assert_stored_without_an_id(c: &Container, message: &str) {
    let field = format!("MESSAGE={message}");
    let since = Instant::now();
    let entry = loop {
        let (_, out, _) = c.run(
            None,
            &["journalctl", "-o", "export", "_SYSTEMD_UNIT=app.service"],
        );
        if let Some(e) = out.split("\n\n").find(|e| e.lines().any(|l| l == field)) {
            break e.to_owned();
        }
        assert!(since.elapsed() < T, "{message:?} never stored: {out}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(!entry.contains("INVOCATION_ID="), "{entry}");
}

fn runs_to_completion_dependencies_and_active_checks_carry_their_lines(root: Root) {
    let c = container!(root);
    c.install(&[
        (
            "job.service",
            "[Service]\nExecStart=/bin/sh -c 'echo working; sleep 0.3; echo \"job: lost the database\" >&2; exit 4'\n",
        ),
        (
            "base.service",
            "[Service]\nType=oneshot\nExecStart=/bin/sh -c 'echo \"base: broke\" >&2; exit 2'\n",
        ),
        (
            "top.service",
            "[Unit]\nRequires=base.service\nAfter=base.service\n[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n",
        ),
        (
            "quits.service",
            "[Service]\nExecStart=/bin/sh -c 'echo \"quits: no config\" >&2; exit 1'\n",
        ),
    ]);
    let m = manager_of(&c);

    // A run to completion that fails after printing (the example's --wait).
    match m
        .run_to_completion("job.service", JobMode::Replace, T)
        .unwrap_err()
    {
        Error::RunFailed { reason, .. } => {
            let lines = messages(&reason.journal);
            assert!(lines.iter().any(|l| l == "working"), "{lines:?}");
            assert!(
                lines.iter().any(|l| l == "job: lost the database"),
                "{lines:?}"
            );
        }
        other => panic!("{other}"),
    }
    let (code, _, err) =
        common::run_example_with(&["--address", &c.bus_address(), "--wait", "job"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("    ") && err.contains("job: lost the database"),
        "{err}"
    );

    // A dependency failure carries the root cause's lines, under its name.
    let e = m.start("top.service", JobMode::Replace, T).unwrap_err();
    let journals = e.run_journals();
    assert_eq!(journals.len(), 1, "{e}");
    assert_eq!(journals[0].0, "base.service");
    assert!(messages(journals[0].1).iter().any(|l| l == "base: broke"));
    let (code, _, err) =
        common::run_example_with(&["--address", &c.bus_address(), "--verb", "start", "top"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("\n    base.service:\n        ") && err.contains("base: broke"),
        "{err}"
    );

    // A start that is done, but the service quits at once: the active check's error.
    let checking = Manager::builder()
        .bus(Bus::Address(c.bus_address()))
        .check_active(Some(Duration::from_millis(500)))
        .connect()
        .unwrap();
    match checking
        .restart("quits.service", JobMode::Replace, T)
        .unwrap_err()
    {
        Error::NotActive { journal, .. } => {
            assert!(messages(&journal).iter().any(|l| l == "quits: no config"));
        }
        other => panic!("{other}"),
    }
}

fn huge_lines_and_escape_sequences_are_cut_and_made_safe(root: Root) {
    let c = container!(root);
    c.install(&[(
        "loud.service",
        "[Service]\nType=oneshot\nExecStart=/bin/sh -c 'head -c 1000000 /dev/zero | tr \"\\\\0\" x; echo; \
         printf \"evil \\\\033[2J\\\\033]0;pwned\\\\007 \\\\233 end\\\\n\" >&2; exit 1'\n",
    )]);
    // journald splits the 1 MB line into 21 entries (LineMax=, 48 KiB by default): room for
    // all of them, the escapes and the manager's lines.
    let m = Manager::builder()
        .bus(Bus::Address(c.bus_address()))
        .journal_lines(60)
        .connect()
        .unwrap();
    let started = Instant::now();
    let e = m.restart("loud.service", JobMode::Replace, T).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10));
    let lines = failed_journal(&e).lines();
    // Each piece is cut.
    let cut: Vec<_> = lines.iter().filter(|l| l.cut_from.is_some()).collect();
    assert!(!cut.is_empty(), "{lines:?}");
    for l in &cut {
        assert!(l.message.len() <= MAX_MESSAGE_BYTES && l.message.bytes().all(|b| b == b'x'));
        assert!(l.cut_from.unwrap() > MAX_MESSAGE_BYTES);
    }
    let evil = lines
        .iter()
        .find(|l| l.message.starts_with("evil"))
        .unwrap_or_else(|| panic!("{lines:?}"));
    assert_eq!(
        evil.message, "evil \\x1b[2J\\x1b]0;pwned\\x07 \u{fffd} end",
        "{evil:?}"
    );
    for l in lines {
        assert!(!l.message.chars().any(char::is_control), "{l:?}");
    }
    let (code, _, err) =
        common::run_example_with(&["--address", &c.bus_address(), "--lines", "60", "loud"]);
    assert_eq!(code, 1);
    assert!(!err.contains('\x1b') && !err.contains('\x07'), "{err:?}");
    assert!(err.contains("[cut from "), "{err}");
}

fn a_caller_without_journal_access_is_told_so(root: Root) {
    let c = container!(root);
    c.install(&[("app.service", APP)]);
    std::fs::write(format!("/proc/{}/root/run/app.conf", c.pid1()), "x").unwrap();
    c.let_manage_units("nobody");
    let (code, _, err) = common::eventually(Duration::from_secs(10), || {
        let run = c.run_example(Some(NOBODY), &["app"]);
        // polkit reads the new rule a moment after it is written.
        if run.0 == 4 { Err(run.2) } else { Ok(run) }
    });
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("(no journal lines: not allowed to read the system journal"),
        "systemd {}: {err}",
        c.version
    );
    // Root, inside, reads them.
    let (code, _, err) = c.run_example(None, &["app"]);
    assert_eq!(code, 1);
    assert!(err.contains("app: unknown directive"), "{err}");
}

fn a_successful_restart_runs_and_opens_nothing(root: Root) {
    let c = container!(root);
    c.install(&[("ok.service", common::ONESHOT_OK), ("app.service", APP)]);
    std::fs::write(format!("/proc/{}/root/run/app.conf", c.pid1()), "x").unwrap();
    let traced = |unit: &str| {
        let log = std::env::temp_dir().join(format!("sj-strace-{}-{unit}", std::process::id()));
        let out = Command::new("strace")
            .args(["-f", "-qq", "-e", "trace=execve,openat,open", "-o"])
            .arg(&log)
            .arg(common::example_binary())
            .args(["--address", &c.bus_address(), unit])
            .output()
            .expect("strace (install strace)");
        let trace = std::fs::read_to_string(&log).unwrap_or_default();
        let _ = std::fs::remove_file(&log);
        (out.status.code(), trace)
    };
    let journal_work = |trace: &str| {
        trace
            .lines()
            .filter(|l| {
                (l.contains("execve(") && !l.contains("restart_blocking"))
                    || l.contains("/log/journal")
            })
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let (code, trace) = traced("ok");
    assert_eq!(code, Some(0), "{trace}");
    assert_eq!(journal_work(&trace), Vec::<String>::new());
    // The same trace sees the reading when a run fails.
    let (code, trace) = traced("app");
    assert_eq!(code, Some(1));
    assert!(!journal_work(&trace).is_empty(), "{trace}");
}

/// Over ssh into the container (this machine's root, whose `/usr` has `sshd`): the remote
/// host's journal, read there with the same ssh settings as the bus.
#[test]
fn over_ssh_the_lines_come_from_the_remote_journal() {
    let c = container!(Root::Host);
    c.install(&[("app.service", APP)]);
    let inside = |p: &str| format!("/proc/{}/root{p}", c.pid1());
    std::fs::write(inside("/run/app.conf"), "over-ssh:9").unwrap();
    // sshd runs inside the container's namespaces, on 127.0.0.1 of the network they share.
    let dir = "/run/sj-sshd";
    std::fs::create_dir_all(inside(dir)).unwrap();
    std::fs::create_dir_all(inside("/run/sshd")).unwrap();
    for key in ["host_key", "client_key"] {
        let st = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(inside(&format!("{dir}/{key}")))
            .status()
            .expect("ssh-keygen (install openssh-client)");
        assert!(st.success());
    }
    std::fs::copy(
        inside(&format!("{dir}/client_key.pub")),
        inside(&format!("{dir}/authorized_keys")),
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    std::fs::write(
        inside(&format!("{dir}/sshd_config")),
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {dir}/host_key\n\
             AuthorizedKeysFile {dir}/authorized_keys\nPermitRootLogin prohibit-password\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
             StrictModes no\nPidFile {dir}/sshd.pid\n"
        ),
    )
    .unwrap();
    let host_key = std::fs::read_to_string(inside(&format!("{dir}/host_key.pub"))).unwrap();
    std::fs::write(
        inside(&format!("{dir}/known_hosts")),
        format!("[127.0.0.1]:{port} {host_key}"),
    )
    .unwrap();
    let client = inside(dir);
    std::fs::write(
        inside(&format!("{dir}/ssh_config")),
        format!(
            "Host *\n  IdentityFile {client}/client_key\n  IdentitiesOnly yes\n  \
             UserKnownHostsFile {client}/known_hosts\n  StrictHostKeyChecking yes\n  \
             LogLevel ERROR\n"
        ),
    )
    .unwrap();
    // sshd's privilege separation user, and root's account not locked (sshd refuses a key for
    // a locked account; the container's /etc starts from systemd's factory).
    let (code, _, err) = c.run(
        None,
        &[
            "sh",
            "-c",
            "grep -q ^sshd: /etc/passwd || echo 'sshd:x:990:65534::/run/sshd:/usr/sbin/nologin' >> /etc/passwd; \
             sed -i 's/^root:[^:]*:/root:*:/' /etc/shadow",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = c.run(
        None,
        &["/usr/sbin/sshd", "-f", &format!("{dir}/sshd_config")],
    );
    assert_eq!(code, 0, "sshd in the container: {err}");
    common::eventually(Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())
    });
    let mut remote: Remote = format!("root@127.0.0.1:{port}").parse().unwrap();
    remote = remote.ssh_arg("-F").ssh_arg(format!("{client}/ssh_config"));
    let m = Manager::builder()
        .bus(Bus::Remote(remote))
        .connect_timeout(T)
        .connect()
        .unwrap_or_else(|e| panic!("{e}"));
    let e = m.restart("app.service", JobMode::Replace, T).unwrap_err();
    let lines = messages(failed_journal(&e));
    assert!(
        lines
            .iter()
            .any(|l| l == "app: unknown directive lissten in over-ssh:9"),
        "{lines:?}"
    );
    // This machine has no journal of its own: the lines can only have come from the other side.
    assert!(!this_machine_has_a_journal());
}

/// A journal that stores nothing of the run (`Storage=none`): `NoLines`, not an empty list.
#[test]
fn a_journal_that_kept_nothing_of_the_run_says_so() {
    let c = container!(Root::Host);
    c.install(&[("app.service", APP)]);
    std::fs::write(format!("/proc/{}/root/run/app.conf", c.pid1()), "x").unwrap();
    let conf = format!("/proc/{}/root/etc/systemd/journald.conf.d", c.pid1());
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::write(format!("{conf}/none.conf"), "[Journal]\nStorage=none\n").unwrap();
    let (code, _, err) = c.run(None, &["systemctl", "restart", "systemd-journald"]);
    assert_eq!(code, 0, "{err}");
    let e = manager_of(&c)
        .restart("app.service", JobMode::Replace, T)
        .unwrap_err();
    assert_eq!(
        *failed_journal(&e),
        RunJournal::Unavailable(JournalUnavailable::NoLines)
    );
}

/// The user-manager harness has no journald: the typed reason, at once.
#[test]
fn without_journald_the_reason_says_so_at_once() {
    let sd = sandbox!();
    sd.install(&[("fails.service", common::ONESHOT_FAILS)]);
    let m = sd.manager();
    let started = Instant::now();
    let e = m.start("fails.service", JobMode::Replace, T).unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let expected = if this_machine_has_a_journal() {
        JournalUnavailable::NoLines
    } else {
        JournalUnavailable::NoJournal
    };
    assert_eq!(*failed_journal(&e), RunJournal::Unavailable(expected));
}

/// Whether this machine holds any journal file (`/var/log/journal/*/*`, `/run/log/journal/*/*`).
fn this_machine_has_a_journal() -> bool {
    ["/var/log/journal", "/run/log/journal"].iter().any(|d| {
        std::fs::read_dir(d)
            .into_iter()
            .flatten()
            .flatten()
            .any(|m| {
                std::fs::read_dir(m.path())
                    .into_iter()
                    .flatten()
                    .flatten()
                    .next()
                    .is_some()
            })
    })
}

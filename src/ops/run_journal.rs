//! The journal lines of a unit's failed run, for the error that reports it: its invocation
//! id read from systemd, then the lines read where the manager is ([`crate::journal`]).
//! Runs only after a failure.

use std::path::Path;
use std::time::{Duration, SystemTime};

use dbus::blocking::BlockingSender;

use crate::deadline::Deadline;
use crate::journal::reader::{self, Run, Source};
use crate::journal::{JournalUnavailable, RunJournal};
use crate::proto::calls::kill_main_process;
use crate::proto::unit_reader::UnitReader;
use crate::unit::FailureReason;

/// Where and how many lines to read; `lines` 0 reads nothing.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Wanted<'a> {
    pub(crate) source: &'a Source,
    pub(crate) lines: usize,
}

impl Wanted<'_> {
    /// Why `unit` failed (its `Result`, a service's main process) with its failed run's
    /// lines, read through `conn` within `deadline`; `None` if it cannot be read or the unit
    /// type has no `Result`.
    pub(crate) fn failure_reason(
        self,
        conn: &impl BlockingSender,
        unit: &str,
        deadline: &Deadline,
    ) -> Option<FailureReason> {
        let reader = UnitReader::open(conn, unit, deadline.call_timeout())
            .inspect_err(|e| log::debug!("{unit}: could not read why it failed: {e}"))
            .ok()?;
        let mut reason = reader
            .failure_reason()
            .inspect_err(|e| log::debug!("{unit}: could not read why it failed: {e}"))
            .ok()
            .flatten()?;
        reason.journal = self.read(&reader, deadline);
        Some(reason)
    }

    /// The last lines of the run the unit behind `unit` last had, within `deadline`.
    pub(crate) fn read<C: BlockingSender>(
        self,
        unit: &UnitReader<'_, C>,
        deadline: &Deadline,
    ) -> RunJournal {
        if self.lines == 0 {
            return RunJournal::NotRead;
        }
        let run = unit
            .invocation_id()
            .and_then(|id| Ok((id, unit.id_and_start()?)));
        match run {
            Ok((Some(invocation), (name, started_usec))) => {
                if let Source::Local { root } = self.source {
                    let root = root.as_deref().unwrap_or(Path::new("/"));
                    sync_journal(unit.sender(), root, deadline);
                }
                let run = Run {
                    invocation,
                    unit: &name,
                    started_usec,
                };
                reader::read(self.source, run, self.lines, deadline)
            }
            Ok((None, _)) => RunJournal::Unavailable(JournalUnavailable::NoInvocationId),
            Err(_) if deadline.expired() => RunJournal::Unavailable(JournalUnavailable::TimedOut),
            Err(e) => RunJournal::Unavailable(JournalUnavailable::Failed(format!(
                "cannot read the unit's InvocationID, Id or InactiveExitTimestamp: {e}"
            ))),
        }
    }
}

impl Wanted<'_> {
    /// The units of the ordering cycle the manager logged for a transaction it refused as
    /// cyclic, after `since` (when the call was made), in the order it gave them; empty when
    /// the journal cannot be read or holds no such line. Costs one journal read, on this
    /// failure only.
    pub(crate) fn ordering_cycle(
        self,
        conn: &impl BlockingSender,
        since: SystemTime,
        deadline: &Deadline,
    ) -> Vec<String> {
        if self.lines == 0 {
            return Vec::new();
        }
        if let Source::Local { root } = self.source {
            sync_journal(conn, root.as_deref().unwrap_or(Path::new("/")), deadline);
        }
        let since_usec = since
            .checked_sub(Duration::from_millis(100))
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        match reader::manager_messages(self.source, since_usec, deadline) {
            Ok(messages) => crate::journal::cycle::last_cycle(&messages),
            Err(why) => {
                log::debug!("journal: no ordering cycle read: {why}");
                Vec::new()
            }
        }
    }
}

/// The longest wait for journald to have stored what it had received.
const SYNC_LIMIT: Duration = Duration::from_secs(1);

/// Asks journald to store everything it has received before we read, as `journalctl --sync`
/// does (SIGRTMIN+1 to its main process, through the manager, then the mtime of
/// `run/systemd/journal/synced` under `root`): journald takes in the input already waiting on
/// its sockets before it handles the signal, so a service's last output, which reaches
/// journald on a stream of its own, is stored by then even when journald is slow to accept
/// that stream. Only the system manager's root callers may; for the others (and for a user
/// manager, which has no journald unit) nothing happens here and the reader's own wait for
/// the end of the run is all there is. (A remote host's script runs `journalctl --sync`
/// itself.)
fn sync_journal(conn: &impl BlockingSender, root: &Path, deadline: &Deadline) {
    let synced = root.join("run/systemd/journal/synced");
    let modified = || std::fs::metadata(&synced).and_then(|m| m.modified()).ok();
    let before = modified();
    let asked = SystemTime::now();
    let limit = Deadline::after(SYNC_LIMIT.min(deadline.remaining()));
    let signal = libc::SIGRTMIN() + 1;
    if let Err(e) = kill_main_process(
        conn,
        "systemd-journald.service",
        signal,
        limit.call_timeout(),
    ) {
        log::debug!("journal: cannot ask journald to sync: {e}");
        return;
    }
    while !limit.expired() {
        match modified() {
            Some(at) if Some(at) != before && at >= asked - Duration::from_millis(10) => {
                log::debug!("journal: journald synced");
                return;
            }
            _ => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    log::debug!("journal: journald did not sync within {SYNC_LIMIT:?}");
}

//! The journal lines of a unit's failed run, for the error that reports it: its invocation
//! id read from systemd, then the lines read where the manager is ([`crate::journal`]).
//! Runs only after a failure.

use dbus::blocking::BlockingSender;

use crate::deadline::Deadline;
use crate::journal::reader::{self, Source};
use crate::journal::{JournalUnavailable, RunJournal};
use crate::proto::unit_reader::UnitReader;

/// Where and how many lines to read; `lines` 0 reads nothing.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Wanted<'a> {
    pub(crate) source: &'a Source,
    pub(crate) lines: usize,
}

impl Wanted<'_> {
    /// The last lines of the run the unit behind `unit` last had, within `deadline`.
    pub(crate) fn read<C: BlockingSender>(
        self,
        unit: &UnitReader<'_, C>,
        deadline: &Deadline,
    ) -> RunJournal {
        if self.lines == 0 {
            return RunJournal::NotRead;
        }
        match unit.invocation_id() {
            Ok(Some(id)) => reader::read(self.source, id, self.lines, deadline),
            Ok(None) => RunJournal::Unavailable(JournalUnavailable::NoInvocationId),
            Err(_) if deadline.expired() => RunJournal::Unavailable(JournalUnavailable::TimedOut),
            Err(e) => RunJournal::Unavailable(JournalUnavailable::Failed(format!(
                "cannot read the unit's InvocationID: {e}"
            ))),
        }
    }
}

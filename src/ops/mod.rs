//! Operations on top of the session: queuing a job and the handle on it, batches, following a
//! unit, progress, running to completion, explaining dependency failures. Each takes the
//! [`Context`] of its handle: the session and the options, nothing of the façade.

pub(crate) mod batch;
pub(crate) mod completion;
pub(crate) mod converge;
pub(crate) mod daemon;
pub(crate) mod dependency;
pub(crate) mod enqueue;
pub(crate) mod follow;
pub(crate) mod progress;
pub(crate) mod queued;
pub(crate) mod reset_failed;
pub(crate) mod run_journal;
pub(crate) mod unit_files;

use std::cell::Cell;
use std::path::PathBuf;
use std::time::Duration;

use crate::deadline::Deadline;
use crate::journal::DEFAULT_JOURNAL_LINES;
use crate::journal::reader::Source;
use crate::proto::unit_files::Missing;
use crate::session::Session;
use crate::session::caller::Caller;

/// Default of [`ManagerBuilder::reexec_grace`](crate::ManagerBuilder::reexec_grace).
pub const DEFAULT_REEXEC_GRACE: Duration = Duration::from_millis(500);

/// Default of [`ManagerBuilder::connect_timeout`](crate::ManagerBuilder::connect_timeout):
/// libdbus's own default for a call.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(25);

/// Default of [`ManagerBuilder::job_check_interval`](crate::ManagerBuilder::job_check_interval).
pub const DEFAULT_JOB_CHECK_INTERVAL: Duration = Duration::from_secs(5);

/// Options of a handle, set with [`ManagerBuilder`](crate::ManagerBuilder).
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) cancel_on_timeout: bool,
    pub(crate) explain_failures: bool,
    pub(crate) check_active: Option<Duration>,
    pub(crate) allow_interactive_authorization: bool,
    pub(crate) reexec_grace: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) job_check_interval: Duration,
    pub(crate) per_verb_methods: bool,
    pub(crate) journal_lines: usize,
    pub(crate) journal_root: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            cancel_on_timeout: false,
            explain_failures: true,
            check_active: None,
            allow_interactive_authorization: false,
            reexec_grace: DEFAULT_REEXEC_GRACE,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            job_check_interval: DEFAULT_JOB_CHECK_INTERVAL,
            per_verb_methods: false,
            journal_lines: DEFAULT_JOURNAL_LINES,
            journal_root: None,
        }
    }
}

/// What every operation of one handle shares: its session, its options, and what it learned
/// about the manager.
pub(crate) struct Context {
    pub(crate) session: Session,
    pub(crate) options: Options,
    /// Cleared once the manager answered `EnqueueUnitJob` with `UnknownMethod` (or its bus
    /// policy refused it): the per-verb methods are used from then on.
    pub(crate) enqueue_unit_job: Cell<bool>,
    /// Cleared once the manager answered `EnqueueUnitJobMany` with `UnknownMethod` (systemd
    /// before 262) or its bus policy refused it: batches then queue one job per call.
    pub(crate) enqueue_unit_job_many: Cell<bool>,
    /// The unit-file methods the manager turned out not to have (or not to let us call).
    pub(crate) unit_file_methods: Missing,
    /// Where the manager's journal is read after a failure.
    pub(crate) journal: Source,
}

impl Context {
    pub(crate) fn new(session: Session, options: Options, journal: Source) -> Self {
        Context {
            journal,
            enqueue_unit_job: Cell::new(!options.per_verb_methods),
            enqueue_unit_job_many: Cell::new(!options.per_verb_methods),
            unit_file_methods: Missing::default(),
            session,
            options,
        }
    }

    /// Sends the calls that ask systemd to act (queue or cancel a job, change unit files,
    /// reload, re-execute, reset-failed), with the options'
    /// authorization flag.
    pub(crate) fn action_caller(&self) -> Caller<'_> {
        self.session
            .caller(self.options.allow_interactive_authorization)
    }

    /// Sends everything else (reads, references).
    pub(crate) fn caller(&self) -> Caller<'_> {
        self.session.caller(false)
    }

    /// Before an operation's first call: fails at once, naming `subject`, if `deadline` has
    /// passed, and connects a reset private socket again (an idle handle learns of a
    /// re-execution only here).
    ///
    /// # Errors
    /// [`Error::Timeout`](crate::Error::Timeout) without a job, or the error of reconnecting.
    pub(crate) fn ready(&self, subject: &str, deadline: &Deadline) -> crate::error::Result<()> {
        if deadline.expired() {
            return Err(crate::error::Error::timeout(subject, None, deadline));
        }
        self.session
            .refresh(deadline)
            .map_err(|i| i.into_error(subject, None, deadline, self.is_direct()))
    }

    /// The journal lines a failure reads: none unless failures are explained.
    pub(crate) fn journal_wanted(&self) -> run_journal::Wanted<'_> {
        run_journal::Wanted {
            source: &self.journal,
            lines: if self.options.explain_failures {
                self.options.journal_lines
            } else {
                0
            },
        }
    }

    pub(crate) fn is_direct(&self) -> bool {
        self.session.is_direct()
    }

    /// Asks systemd to cancel `job` without waiting for an answer (used when a deadline has
    /// passed and nothing may block any more).
    pub(crate) fn cancel_without_reply(&self, job: &crate::job::Job) {
        let sent = crate::proto::calls::cancel(job)
            .is_ok_and(|msg| self.action_caller().send_no_reply(msg));
        if sent {
            log::debug!("deadline passed: asked systemd to cancel {job}");
        } else {
            log::debug!("deadline passed: could not send Cancel for {job}");
        }
    }
}

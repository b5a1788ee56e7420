//! The crate's one error type, [`Error`], and [`BusError`], the D-Bus error it keeps as its source.

use std::fmt;
use std::time::Duration;

use crate::deadline::Deadline;
use crate::desired::Convergence;
use crate::job::{FailedDependency, Job, JobResult, ResultSource, Verb};
use crate::journal::RunJournal;
use crate::unit::{FailureReason, UnitState};
use crate::unit_file::{UnitFileProblem, UnitFileState, UnitFileVerb};
use crate::unit_name::NameProblem;

/// Which part of reaching a remote manager failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RemoteProblem {
    /// ssh itself failed: the host is unreachable, its key unknown, or the login refused.
    /// Holds the last line ssh printed.
    Ssh(String),
    /// ssh worked, but the remote machine has no `systemd-stdio-bridge`: no systemd there.
    NoBridge,
    /// ssh and the bridge worked, but the bridge could not reach the bus there (no system
    /// bus, or no user manager for that user). Holds the last line it printed.
    NoBus(String),
}

impl fmt::Display for RemoteProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RemoteProblem::Ssh(said) => write!(f, "ssh failed: {said}"),
            RemoteProblem::NoBridge => {
                write!(f, "no systemd-stdio-bridge there (is systemd installed?)")
            }
            RemoteProblem::NoBus(said) => {
                write!(f, "systemd-stdio-bridge cannot reach the bus there: {said}")
            }
        }
    }
}

/// The step of connecting that did not finish in time ([`Error::ConnectTimeout`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConnectStep {
    /// Authentication (`AUTH`...`BEGIN`): the peer accepted the socket but did not answer.
    Authentication,
    /// Registration with the bus daemon (our `Hello`).
    Registration,
    /// The first call to the manager on its private socket.
    FirstCall,
}

impl fmt::Display for ConnectStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConnectStep::Authentication => "authentication",
            ConnectStep::Registration => "registration (Hello)",
            ConnectStep::FirstCall => "first call",
        })
    }
}

/// A D-Bus error exactly as the bus or systemd sent it: the error name and its message.
///
/// `dbus::Error` shows only the message in its `Display`; this type keeps the name
/// (`org.freedesktop.systemd1.NoSuchUnit`, ...) so callers and logs can see what was said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusError {
    name: String,
    message: String,
}

impl BusError {
    /// Builds an error from a D-Bus error name and message.
    pub fn new(name: impl Into<String>, message: impl Into<String>) -> Self {
        BusError {
            name: name.into(),
            message: message.into(),
        }
    }

    /// The D-Bus error name, e.g. `org.freedesktop.systemd1.NoSuchUnit`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The human-readable message that came with the error.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for BusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message.is_empty() {
            f.write_str(&self.name)
        } else {
            write!(f, "{} [{}]", self.message, self.name)
        }
    }
}

impl std::error::Error for BusError {}

impl From<dbus::Error> for BusError {
    fn from(e: dbus::Error) -> Self {
        BusError::new(
            e.name().unwrap_or("org.freedesktop.DBus.Error.Failed"),
            e.message().unwrap_or(""),
        )
    }
}

/// Everything that can go wrong while asking systemd for a job and waiting for it.
///
/// Each variant names the unit (and the job, once systemd has returned one) it concerns; for
/// the manager's own operations ([`Manager::daemon_reload`](crate::Manager::daemon_reload),
/// [`Manager::daemon_reexec`](crate::Manager::daemon_reexec),
/// [`Manager::reset_all_failed`](crate::Manager::reset_all_failed)) its `unit` is the
/// operation's name instead (`daemon-reload`, `daemon-reexec`, `reset-failed`), and for a
/// unit-file operation on several units, their names joined by `, `.
/// Variants that stem from a D-Bus error keep it as [`source()`](std::error::Error::source),
/// a [`BusError`] with the error name and message systemd sent.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The unit name was refused before any bus traffic.
    #[error("invalid unit name {name:?}: {problem}")]
    InvalidUnitName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        problem: NameProblem,
    },

    /// A string given as a job mode is not one of systemd's modes.
    #[error(
        "unknown job mode {0:?} (expected one of: replace, fail, isolate, flush, ignore-dependencies, ignore-requirements, replace-irreversibly, triggering, restart-dependencies)"
    )]
    UnknownJobMode(String),

    /// A string given as a verb is not one this crate knows.
    #[error(
        "unknown verb {0:?} (expected one of: start, stop, restart, reload, try-restart, reload-or-restart, reload-or-try-restart)"
    )]
    UnknownVerb(String),

    /// A request that cannot be made as given, refused before any bus traffic (e.g. `--now`
    /// with `link` or `preset`, which queue no job).
    #[error("invalid request: {0}")]
    InvalidRequest(String),

    /// Connecting did not finish in time: the peer accepted the connection but did not
    /// answer (a stopped or hung manager or bus daemon).
    #[error("cannot connect to {target}: no answer during {step} after {waited:?}")]
    ConnectTimeout {
        /// What we tried to reach.
        target: String,
        /// The step that did not finish.
        step: ConnectStep,
        /// How long we waited.
        waited: Duration,
    },

    /// A remote host given as `[USER@]HOST[:PORT]` could not be read.
    #[error("invalid remote host {spec:?}: {why}")]
    BadRemote {
        /// What was given.
        spec: String,
        /// What is wrong with it.
        why: String,
    },

    /// A manager on another machine could not be reached over ssh: ssh failed, or there is no
    /// systemd (bridge or bus) on the other side.
    #[error("cannot reach {target}: {problem}")]
    RemoteUnreachable {
        /// What we tried to reach.
        target: String,
        /// Which part failed.
        problem: RemoteProblem,
    },

    /// Connecting to the bus (or the manager's private socket) failed.
    #[error("cannot connect to {target}: {source}")]
    Connect {
        /// What we tried to reach: `system bus`, `user bus`, or the address.
        target: String,
        /// What libdbus said.
        source: BusError,
    },

    /// There is no systemd manager on this bus (`org.freedesktop.systemd1` has no owner).
    #[error("{unit}: no systemd manager answers on this bus: {source}")]
    ManagerUnavailable {
        /// The unit of the request.
        unit: String,
        /// What the bus said.
        source: BusError,
    },

    /// systemd has no unit of that name (`org.freedesktop.systemd1.NoSuchUnit`).
    #[error("{unit}: no such unit: {source}")]
    NoSuchUnit {
        /// The unit of the request.
        unit: String,
        /// What systemd said.
        source: BusError,
    },

    /// The unit is masked (`org.freedesktop.systemd1.UnitMasked`).
    #[error("{unit}: unit is masked: {source}")]
    UnitMasked {
        /// The unit of the request.
        unit: String,
        /// What systemd said.
        source: BusError,
    },

    /// The unit failed to load (`org.freedesktop.systemd1.LoadFailed`), e.g. a bad unit file.
    #[error("{unit}: unit failed to load: {source}")]
    LoadFailed {
        /// The unit of the request.
        unit: String,
        /// What systemd said.
        source: BusError,
    },

    /// The caller may not do this (`AccessDenied`, `InteractiveAuthorizationRequired`).
    ///
    /// The message says what the crate sent as well as what systemd answered: systemd 262
    /// answers a refused job call "interactive authentication has not been enabled by the
    /// calling program" even when the call did allow it and polkit merely had no agent to ask.
    #[error(
        "{unit}: access denied; the call {} interactive authorization, and systemd answered: {source}",
        if *interactive { "allowed" } else { "did not allow" }
    )]
    AccessDenied {
        /// The unit of the request.
        unit: String,
        /// Whether the refused call carried the `ALLOW_INTERACTIVE_AUTHORIZATION` flag
        /// ([`ManagerBuilder::allow_interactive_authorization`](crate::ManagerBuilder::allow_interactive_authorization)
        /// on a call that queues or cancels a job).
        interactive: bool,
        /// What the bus or systemd said.
        source: BusError,
    },

    /// The verb does not apply to this unit (`JobTypeNotApplicable`), e.g. reload of a unit
    /// without `ExecReload=`.
    #[error("{unit}: job type {verb} not applicable: {source}")]
    JobTypeNotApplicable {
        /// The unit of the request.
        unit: String,
        /// The verb asked for.
        verb: Verb,
        /// What systemd said.
        source: BusError,
    },

    /// systemd refused the transaction: it would undo queued jobs the mode forbids replacing
    /// (`TransactionIsDestructive`), or it conflicts, is cyclic, or the unit cannot be
    /// isolated to or only started as a dependency.
    #[error("{unit}: transaction refused: {source}{}", cycle_detail(cycle))]
    TransactionRefused {
        /// The unit of the request.
        unit: String,
        /// What systemd said.
        source: BusError,
        /// For an ordering cycle systemd could not break (`TransactionOrderIsCyclic`): the
        /// units of the cycle, in the order the manager's log gives them (its D-Bus error
        /// only says "See system logs for details"). Empty for other refusals, or when the
        /// manager's log could not be read (no journal there, no permission, journal lines
        /// turned off).
        cycle: Vec<String>,
    },

    /// The job finished with a result other than `done` or `skipped`.
    #[error("{unit}: {verb} job {} finished with result '{result}'{}", job.id(), failure_detail(reason.as_deref(), dependencies))]
    JobFailed {
        /// The unit of the job.
        unit: String,
        /// The verb asked for.
        verb: Verb,
        /// The job.
        job: Job,
        /// systemd's result for it.
        result: JobResult,
        /// Why the unit failed, read from the unit after a `failed` result, when available,
        /// with the failed run's journal lines.
        reason: Option<Box<FailureReason>>,
        /// After a `dependency` result: the dependencies that failed on their own account,
        /// however deep below the unit (see [`FailedDependency`]). Empty for other results,
        /// or when none could be found before the deadline.
        dependencies: Box<[FailedDependency]>,
        /// How the result became known (nearly always `JobRemoved`).
        result_source: ResultSource,
    },

    /// The job finished while the manager was re-executing, its `JobRemoved` was lost, and
    /// the unit's state does not tell how it ended. Nothing is guessed.
    #[error("{unit}: {verb} job {} ended while the manager re-executed and its result is unknown: {why}", job.id())]
    OutcomeUnknown {
        /// The unit of the job.
        unit: String,
        /// The verb asked for.
        verb: Verb,
        /// The job.
        job: Job,
        /// What was seen of the unit instead.
        why: String,
    },

    /// The job finished `done`, but the unit is not active afterwards (opt-in check, see
    /// [`ManagerBuilder::check_active`](crate::ManagerBuilder::check_active)).
    #[error("{unit}: {verb} job {} finished 'done' but the unit is {state}", job.id())]
    NotActive {
        /// The unit of the job.
        unit: String,
        /// The verb asked for.
        verb: Verb,
        /// The job.
        job: Job,
        /// The unit's state as read afterwards.
        state: UnitState,
        /// The last lines its run wrote to the journal, or why they could not be read.
        journal: Box<RunJournal>,
    },

    /// A unit run to completion ([`Manager::run_to_completion`](crate::Manager::run_to_completion))
    /// started, ran and stopped, but did not end well.
    #[error("{unit}: ran and {}{}", reason, ran_for.map(|d| format!(" after {} ms", d.as_millis())).unwrap_or_default())]
    RunFailed {
        /// The unit.
        unit: String,
        /// Its start job.
        job: Job,
        /// How it ended: its `Result`, for services how the main process ended, and the
        /// run's journal lines.
        reason: Box<FailureReason>,
        /// How long it ran, when systemd recorded it.
        ran_for: Option<Duration>,
    },

    /// A unit run to completion was still running when the deadline passed. It keeps
    /// running in systemd.
    #[error("{unit}: still {state} after {waited:?}")]
    StillActive {
        /// The unit.
        unit: String,
        /// Its state when the deadline passed.
        state: UnitState,
        /// How long we waited.
        waited: Duration,
    },

    /// The deadline passed before the job's result arrived. Unless cancel-on-timeout was chosen,
    /// the job keeps running in systemd.
    #[error("{unit}: no result after {waited:?}{}", job.as_ref().map(|j| format!(" for job {} ({})", j.id(), j.path())).unwrap_or_else(|| " (no job was queued)".to_owned()))]
    Timeout {
        /// The unit of the request.
        unit: String,
        /// The job, if systemd had returned one.
        job: Option<Job>,
        /// How long we waited, from the start of the operation.
        waited: Duration,
    },

    /// The systemd manager went away (exited, crashed, or is re-executing) while we waited;
    /// the job's outcome is unknown.
    #[error("{unit}: the systemd manager went away while waiting{}", job.as_ref().map(|j| format!(" for job {} ({})", j.id(), j.path())).unwrap_or_default())]
    ManagerGone {
        /// The unit of the request.
        unit: String,
        /// The job, if systemd had returned one.
        job: Option<Job>,
    },

    /// The connection to the bus was lost.
    #[error("{unit}: disconnected from the bus: {source}")]
    Disconnected {
        /// The unit of the request.
        unit: String,
        /// What libdbus said.
        source: BusError,
    },

    /// systemd refused or failed a change of unit files (`enable`, `disable`, `mask`...):
    /// no such unit file, a masked unit, a file in the way, a read-only configuration
    /// directory, a generated unit, an invalid `[Install]` section. Nothing was changed, or what was is not reported by systemd:
    /// its D-Bus error replaces the list of changes.
    #[error("{unit}: {verb} failed, {problem}: {source}")]
    UnitFileFailed {
        /// The unit (or units) of the request.
        unit: String,
        /// The operation asked for.
        verb: UnitFileVerb,
        /// What kind of failure systemd's error names.
        problem: UnitFileProblem,
        /// What systemd said.
        source: BusError,
    },

    /// A unit was to be enabled ([`StartupGoal::Enabled`](crate::StartupGoal::Enabled)) but
    /// its unit file has no installation information: no `WantedBy=`, `RequiredBy=`,
    /// `UpheldBy=`, `Also=` or `Alias=` in an `[Install]` section (nor `DefaultInstance=`
    /// for a template), so systemd had nothing to enable and changed nothing.
    #[error(
        "{unit}: cannot be enabled: its unit file has no installation information (no [Install] section with WantedBy=, RequiredBy=, Also= or Alias=); it is {state}"
    )]
    NoInstallInfo {
        /// The unit.
        unit: String,
        /// Its unit-file state afterwards.
        state: UnitFileState,
    },

    /// Bringing a unit to its desired state ([`Manager::desired`](crate::Manager::desired))
    /// failed after some of it was done: `applied` says what was (unit-file changes, a
    /// reload, jobs), `error` what then failed. Its exit status is `error`'s.
    #[error("{unit}: {error} (after: {})", applied.done_summary())]
    PartlyApplied {
        /// The unit.
        unit: String,
        /// What was done before the failure.
        applied: Box<Convergence>,
        /// The failure.
        #[source]
        error: Box<Error>,
    },

    /// Any other D-Bus error, with the call that failed.
    #[error("{unit}: {call} failed: {source}")]
    Bus {
        /// The unit the call concerned (or the job path, for job calls).
        unit: String,
        /// The D-Bus method that failed, e.g. `RestartUnit`.
        call: &'static str,
        /// What the bus or systemd said.
        source: BusError,
    },
}

impl Error {
    /// The unit the error concerns, if any.
    pub fn unit(&self) -> Option<&str> {
        use Error::*;
        match self {
            InvalidUnitName { name, .. } => Some(name),
            UnknownJobMode(_)
            | UnknownVerb(_)
            | InvalidRequest(_)
            | BadRemote { .. }
            | RemoteUnreachable { .. }
            | Connect { .. }
            | ConnectTimeout { .. } => None,
            ManagerUnavailable { unit, .. }
            | NoSuchUnit { unit, .. }
            | UnitMasked { unit, .. }
            | LoadFailed { unit, .. }
            | AccessDenied { unit, .. }
            | JobTypeNotApplicable { unit, .. }
            | TransactionRefused { unit, .. }
            | JobFailed { unit, .. }
            | OutcomeUnknown { unit, .. }
            | NotActive { unit, .. }
            | RunFailed { unit, .. }
            | StillActive { unit, .. }
            | Timeout { unit, .. }
            | ManagerGone { unit, .. }
            | Disconnected { unit, .. }
            | UnitFileFailed { unit, .. }
            | NoInstallInfo { unit, .. }
            | PartlyApplied { unit, .. }
            | Bus { unit, .. } => Some(unit),
        }
    }

    /// The job the error concerns, if systemd had returned one.
    pub fn job(&self) -> Option<&Job> {
        match self {
            Error::JobFailed { job, .. }
            | Error::NotActive { job, .. }
            | Error::RunFailed { job, .. }
            | Error::OutcomeUnknown { job, .. } => Some(job),
            Error::Timeout { job, .. } | Error::ManagerGone { job, .. } => job.as_ref(),
            Error::PartlyApplied { error, .. } => error.job(),
            _ => None,
        }
    }

    /// The journal lines of every failed run this error reports, with its unit: the unit's
    /// own run for [`Error::JobFailed`] (result `failed`), [`Error::RunFailed`] and
    /// [`Error::NotActive`], and each root cause of a `dependency` result. Empty for other
    /// errors; an entry whose lines could not be read says why
    /// ([`RunJournal::Unavailable`]).
    pub fn run_journals(&self) -> Vec<(&str, &RunJournal)> {
        match self {
            Error::JobFailed {
                unit,
                reason,
                dependencies,
                ..
            } => reason
                .iter()
                .map(|r| (unit.as_str(), &r.journal))
                .chain(
                    dependencies
                        .iter()
                        .filter_map(|d| Some((d.unit.as_str(), &d.reason.as_ref()?.journal))),
                )
                .filter(|(_, j)| **j != RunJournal::NotRead)
                .collect(),
            Error::RunFailed { unit, reason, .. } if reason.journal != RunJournal::NotRead => {
                vec![(unit.as_str(), &reason.journal)]
            }
            Error::NotActive { unit, journal, .. } if **journal != RunJournal::NotRead => {
                vec![(unit.as_str(), &**journal)]
            }
            Error::PartlyApplied { error, .. } => error.run_journals(),
            _ => Vec::new(),
        }
    }

    /// The D-Bus error behind this error, if there is one.
    pub fn bus_error(&self) -> Option<&BusError> {
        use Error::*;
        match self {
            Connect { source, .. }
            | ManagerUnavailable { source, .. }
            | NoSuchUnit { source, .. }
            | UnitMasked { source, .. }
            | LoadFailed { source, .. }
            | AccessDenied { source, .. }
            | JobTypeNotApplicable { source, .. }
            | TransactionRefused { source, .. }
            | Disconnected { source, .. }
            | UnitFileFailed { source, .. }
            | Bus { source, .. } => Some(source),
            PartlyApplied { error, .. } => error.bus_error(),
            _ => None,
        }
    }

    /// The exit status `systemctl` uses for this kind of failure, with this crate's additions:
    ///
    /// | status | meaning |
    /// |---|---|
    /// | 1 | the job ended with a result other than done/skipped, the unit is not active, a unit run to completion ended badly, or a unit-file change failed (as `systemctl enable` and friends exit) |
    /// | 2 | usage: invalid unit name, unknown mode or verb, invalid request, invalid remote host |
    /// | 3 | job type not applicable |
    /// | 1 | also: a transaction refused for an ordering cycle, conflicting jobs or a shutdown under way |
    /// | 4 | access denied (also to the socket, when connecting), a transaction refused as destructive, for a unit only started as a dependency, or one not to be isolated to |
    /// | 5 | no such unit |
    /// | 6 | unit masked or failed to load |
    /// | 124 | deadline passed (also while connecting, or with a unit run to completion still active) |
    /// | 125 | bus or manager error, a remote host unreachable over ssh, or a result lost in a re-execution |
    pub fn exit_status(&self) -> i32 {
        use Error::*;
        match self {
            JobFailed { .. }
            | NotActive { .. }
            | RunFailed { .. }
            | UnitFileFailed { .. }
            | NoInstallInfo { .. } => 1,
            PartlyApplied { error, .. } => error.exit_status(),
            InvalidUnitName { .. }
            | UnknownJobMode(_)
            | UnknownVerb(_)
            | InvalidRequest(_)
            | BadRemote { .. } => 2,
            JobTypeNotApplicable { .. } => 3,
            AccessDenied { .. } => 4,
            // As systemctl maps systemd's error: a transaction refused as destructive, or
            // for a unit only started as a dependency or not to be isolated to, is 4; one
            // refused for another unit of it, that unit's status; a cycle, conflicting jobs
            // and a shutdown under way are 1.
            TransactionRefused { source, .. } => match source.name() {
                "org.freedesktop.systemd1.TransactionIsDestructive"
                | "org.freedesktop.systemd1.OnlyByDependency"
                | "org.freedesktop.systemd1.NoIsolation" => 4,
                "org.freedesktop.systemd1.NoSuchUnit" => 5,
                "org.freedesktop.systemd1.LoadFailed" | "org.freedesktop.systemd1.UnitMasked" => 6,
                "org.freedesktop.systemd1.JobTypeNotApplicable" => 3,
                _ => 1,
            },
            Connect { source, .. }
                if source.name() == "org.freedesktop.DBus.Error.AccessDenied" =>
            {
                4
            }
            NoSuchUnit { .. } => 5,
            UnitMasked { .. } | LoadFailed { .. } => 6,
            Timeout { .. } | ConnectTimeout { .. } | StillActive { .. } => 124,
            Connect { .. }
            | RemoteUnreachable { .. }
            | OutcomeUnknown { .. }
            | ManagerUnavailable { .. }
            | ManagerGone { .. }
            | Disconnected { .. }
            | Bus { .. } => 125,
        }
    }

    /// [`Error::Timeout`] for `unit` (and `job`, once queued), waited since `deadline` began.
    pub(crate) fn timeout(unit: &str, job: Option<Job>, deadline: &Deadline) -> Self {
        Error::Timeout {
            unit: unit.to_owned(),
            job,
            waited: deadline.elapsed(),
        }
    }

    /// The error of a call made for `unit` that failed: [`Error::Timeout`] if the deadline
    /// has passed meanwhile (the call failed because its time ran out), else `error()`.
    pub(crate) fn unless_timed_out(
        unit: &str,
        deadline: &Deadline,
        error: impl FnOnce() -> Self,
    ) -> Self {
        if deadline.expired() {
            Error::timeout(unit, None, deadline)
        } else {
            error()
        }
    }

    /// Maps a D-Bus error reply to a job request (`RestartUnit`, ...) to the matching variant.
    pub(crate) fn from_job_call(unit: &str, verb: Verb, call: &'static str, e: BusError) -> Self {
        let unit = unit.to_owned();
        let source = e;
        match source.name() {
            "org.freedesktop.systemd1.JobTypeNotApplicable" => {
                Error::JobTypeNotApplicable { unit, verb, source }
            }
            "org.freedesktop.systemd1.TransactionIsDestructive"
            | "org.freedesktop.systemd1.TransactionJobsConflicting"
            | "org.freedesktop.systemd1.TransactionOrderIsCyclic"
            | "org.freedesktop.systemd1.OnlyByDependency"
            | "org.freedesktop.systemd1.NoIsolation"
            | "org.freedesktop.systemd1.ShuttingDown" => Error::TransactionRefused {
                unit,
                source,
                cycle: Vec::new(),
            },
            _ => Error::from_unit_call(&unit, call, source),
        }
    }

    /// Maps a D-Bus error reply to a call about one unit: systemd's errors about the unit
    /// itself (no such unit, masked, failed to load) to their variants, the rest as
    /// [`Error::from_call`].
    pub(crate) fn from_unit_call(unit: &str, call: &'static str, source: BusError) -> Self {
        let unit = unit.to_owned();
        match source.name() {
            "org.freedesktop.systemd1.NoSuchUnit" => Error::NoSuchUnit { unit, source },
            "org.freedesktop.systemd1.UnitMasked" => Error::UnitMasked { unit, source },
            "org.freedesktop.systemd1.LoadFailed" => Error::LoadFailed { unit, source },
            _ => Error::from_call(&unit, call, source),
        }
    }

    /// Maps a D-Bus error reply to a unit-file operation (`EnableUnitFiles`, ...) on `unit`
    /// (one or several units, joined) to the matching variant.
    pub(crate) fn from_unit_file_call(
        unit: &str,
        verb: UnitFileVerb,
        call: &'static str,
        source: BusError,
    ) -> Self {
        let name = source.name();
        // systemd's own errors, and an errno from the file system (`System.Error.EROFS`,
        // `FileNotFound`, `InvalidArgs` for a path that is not absolute...).
        let about_files = name.starts_with("org.freedesktop.systemd1.")
            || name.starts_with("System.Error.")
            || name == "org.freedesktop.DBus.Error.FileNotFound"
            || name == "org.freedesktop.DBus.Error.InvalidArgs";
        if !about_files {
            return Error::from_unit_call(unit, call, source);
        }
        Error::UnitFileFailed {
            unit: unit.to_owned(),
            verb,
            problem: UnitFileProblem::from_error_name(name),
            source,
        }
    }

    /// Records that the call this error is about carried the interactive-authorization flag.
    pub(crate) fn sent_interactive(mut self, allowed: bool) -> Self {
        if let Error::AccessDenied { interactive, .. } = &mut self {
            *interactive = allowed;
        }
        self
    }

    /// Maps a D-Bus error of any call to the generic variants.
    pub(crate) fn from_call(unit: &str, call: &'static str, source: BusError) -> Self {
        let unit = unit.to_owned();
        match source.name() {
            "org.freedesktop.DBus.Error.AccessDenied"
            | "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired" => {
                Error::AccessDenied {
                    unit,
                    interactive: false,
                    source,
                }
            }
            "org.freedesktop.DBus.Error.ServiceUnknown"
            | "org.freedesktop.DBus.Error.NameHasNoOwner" => {
                Error::ManagerUnavailable { unit, source }
            }
            "org.freedesktop.DBus.Error.Disconnected" => Error::Disconnected { unit, source },
            _ => Error::Bus { unit, call, source },
        }
    }
}

/// The part of [`Error::JobFailed`]'s message after the result.
/// `; ordering cycle: a.service → b.service → a.service`, or nothing.
fn cycle_detail(cycle: &[String]) -> String {
    match cycle.first() {
        None => String::new(),
        Some(first) => format!(
            "; ordering cycle: {} \u{2192} {first}",
            cycle.join(" \u{2192} ")
        ),
    }
}

fn failure_detail(reason: Option<&FailureReason>, dependencies: &[FailedDependency]) -> String {
    let mut detail = reason.map(|r| format!(": {r}")).unwrap_or_default();
    if !dependencies.is_empty() {
        let list: Vec<String> = dependencies.iter().map(ToString::to_string).collect();
        detail.push_str(&format!(": dependency failed: {}", list.join("; ")));
    }
    detail
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_send_sync_and_small() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<Error>();
        assert!(
            std::mem::size_of::<Error>() <= 128,
            "Error is {} bytes",
            std::mem::size_of::<Error>()
        );
    }

    #[test]
    fn bus_errors_keep_name_and_message() {
        let e = Error::from_job_call(
            "a.service",
            Verb::Start,
            "StartUnit",
            BusError::new(
                "org.freedesktop.systemd1.NoSuchUnit",
                "Unit a.service not found.",
            ),
        );
        assert!(matches!(e, Error::NoSuchUnit { .. }));
        let text = e.to_string();
        assert!(
            text.contains("a.service") && text.contains("NoSuchUnit"),
            "{text}"
        );
        let source = std::error::Error::source(&e).unwrap().to_string();
        assert!(source.contains("Unit a.service not found."), "{source}");
    }
}

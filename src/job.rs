//! Jobs and their results: the verbs that queue a job, systemd's job modes and results, the
//! job identity systemd returns, and the outcome of a finished job.

use std::convert::Infallible;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::error::Error;
use crate::unit::{FailureReason, UnitState};

/// What to ask systemd to do with a unit; each verb is one `org.freedesktop.systemd1.Manager`
/// method that returns a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Verb {
    /// `StartUnit`
    Start,
    /// `StopUnit`
    Stop,
    /// `RestartUnit`: stop if running, then start.
    Restart,
    /// `ReloadUnit`: needs `ExecReload=` and an active unit.
    Reload,
    /// `TryRestartUnit`: restart if running, otherwise do nothing (result `done`).
    TryRestart,
    /// `ReloadOrRestartUnit`: reload if the unit supports it, otherwise restart.
    ReloadOrRestart,
    /// `ReloadOrTryRestartUnit`: reload if supported, otherwise try-restart.
    ReloadOrTryRestart,
}

impl Verb {
    /// Every verb, in `systemctl`'s order.
    pub const ALL: [Verb; 7] = [
        Verb::Start,
        Verb::Stop,
        Verb::Restart,
        Verb::Reload,
        Verb::TryRestart,
        Verb::ReloadOrRestart,
        Verb::ReloadOrTryRestart,
    ];

    /// The Manager method that queues this job, e.g. `RestartUnit`.
    pub fn method(self) -> &'static str {
        match self {
            Verb::Start => "StartUnit",
            Verb::Stop => "StopUnit",
            Verb::Restart => "RestartUnit",
            Verb::Reload => "ReloadUnit",
            Verb::TryRestart => "TryRestartUnit",
            Verb::ReloadOrRestart => "ReloadOrRestartUnit",
            Verb::ReloadOrTryRestart => "ReloadOrTryRestartUnit",
        }
    }

    /// The `systemctl` command for this verb, e.g. `try-restart`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Start => "start",
            Verb::Stop => "stop",
            Verb::Restart => "restart",
            Verb::Reload => "reload",
            Verb::TryRestart => "try-restart",
            Verb::ReloadOrRestart => "reload-or-restart",
            Verb::ReloadOrTryRestart => "reload-or-try-restart",
        }
    }
}

impl fmt::Display for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Verb {
    type Err = Error;

    /// Parses `systemctl`'s command names (`start`, `try-restart`, ...).
    fn from_str(s: &str) -> Result<Self, Error> {
        Verb::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| Error::UnknownVerb(s.to_owned()))
    }
}

/// How systemd treats jobs already queued that conflict with the new one (the `mode` argument
/// of `StartUnit` and friends; `systemctl --job-mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum JobMode {
    /// `replace`: replace conflicting queued jobs (the default).
    #[default]
    Replace,
    /// `fail`: refuse if it conflicts with a queued job.
    Fail,
    /// `isolate`: start this unit and stop all others (start only).
    Isolate,
    /// `flush`: cancel all queued jobs first.
    Flush,
    /// `ignore-dependencies`: ignore all dependencies.
    IgnoreDependencies,
    /// `ignore-requirements`: ignore requirement dependencies, keep ordering.
    IgnoreRequirements,
    /// `replace-irreversibly`: replace, and protect the new job from later replacement.
    ReplaceIrreversibly,
    /// `triggering`: also stop units that trigger this one (stop only).
    Triggering,
    /// `restart-dependencies`: propagate restart/stop to dependents (start only).
    RestartDependencies,
}

impl JobMode {
    /// Every mode.
    pub const ALL: [JobMode; 9] = [
        JobMode::Replace,
        JobMode::Fail,
        JobMode::Isolate,
        JobMode::Flush,
        JobMode::IgnoreDependencies,
        JobMode::IgnoreRequirements,
        JobMode::ReplaceIrreversibly,
        JobMode::Triggering,
        JobMode::RestartDependencies,
    ];

    /// systemd's string for this mode.
    pub fn as_str(self) -> &'static str {
        match self {
            JobMode::Replace => "replace",
            JobMode::Fail => "fail",
            JobMode::Isolate => "isolate",
            JobMode::Flush => "flush",
            JobMode::IgnoreDependencies => "ignore-dependencies",
            JobMode::IgnoreRequirements => "ignore-requirements",
            JobMode::ReplaceIrreversibly => "replace-irreversibly",
            JobMode::Triggering => "triggering",
            JobMode::RestartDependencies => "restart-dependencies",
        }
    }
}

impl fmt::Display for JobMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobMode {
    type Err = Error;

    /// Parses systemd's mode strings (`replace`, `ignore-dependencies`, ...).
    fn from_str(s: &str) -> Result<Self, Error> {
        JobMode::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| Error::UnknownJobMode(s.to_owned()))
    }
}

/// The result systemd reports for a finished job (last argument of `JobRemoved`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum JobResult {
    /// `done`: the job succeeded. For a start this does not mean the unit is running (see
    /// [`ManagerBuilder::check_active`](crate::ManagerBuilder::check_active)).
    Done,
    /// `canceled`: the job was canceled or replaced before it finished.
    Canceled,
    /// `timeout`: the unit's `JobTimeoutSec=`/`JobRunningTimeoutSec=` passed.
    Timeout,
    /// `failed`: the unit failed (e.g. `ExecStart=` exited non-zero).
    Failed,
    /// `dependency`: a unit this one requires failed.
    Dependency,
    /// `skipped`: the job did not apply (e.g. the unit was already in the state asked for);
    /// counted as success, as `systemctl` does.
    Skipped,
    /// `invalid`: the job could not be run, e.g. reload of an inactive unit.
    Invalid,
    /// `assert`: an `Assert…=` of the unit failed.
    Assert,
    /// `unsupported`: the unit type is not supported here.
    Unsupported,
    /// `collected`: the job was garbage-collected before it ran.
    Collected,
    /// `once`: the unit has `RefuseManualStart`-like once semantics and already ran.
    Once,
    /// A result newer than this crate; `systemctl` treats unknown results as failure.
    Other(String),
}

impl JobResult {
    /// `done` and `skipped` are success, everything else (including unknown results) is not.
    pub fn is_success(&self) -> bool {
        matches!(self, JobResult::Done | JobResult::Skipped)
    }

    /// systemd's string for this result.
    pub fn as_str(&self) -> &str {
        match self {
            JobResult::Done => "done",
            JobResult::Canceled => "canceled",
            JobResult::Timeout => "timeout",
            JobResult::Failed => "failed",
            JobResult::Dependency => "dependency",
            JobResult::Skipped => "skipped",
            JobResult::Invalid => "invalid",
            JobResult::Assert => "assert",
            JobResult::Unsupported => "unsupported",
            JobResult::Collected => "collected",
            JobResult::Once => "once",
            JobResult::Other(s) => s,
        }
    }
}

impl fmt::Display for JobResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobResult {
    type Err = Infallible;

    /// Parses systemd's result strings; an unknown one becomes [`JobResult::Other`].
    fn from_str(s: &str) -> Result<Self, Infallible> {
        Ok(match s {
            "done" => JobResult::Done,
            "canceled" => JobResult::Canceled,
            "timeout" => JobResult::Timeout,
            "failed" => JobResult::Failed,
            "dependency" => JobResult::Dependency,
            "skipped" => JobResult::Skipped,
            "invalid" => JobResult::Invalid,
            "assert" => JobResult::Assert,
            "unsupported" => JobResult::Unsupported,
            "collected" => JobResult::Collected,
            "once" => JobResult::Once,
            other => JobResult::Other(other.to_owned()),
        })
    }
}

/// A job as systemd identifies it: its numeric id and its object path
/// (`/org/freedesktop/systemd1/job/ID`; the id is read from the path).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Job {
    path: Box<str>,
}

impl Job {
    /// Builds a job from its object path; the id is the path's last element
    /// (`/org/freedesktop/systemd1/job/42` → 42, 0 if the path has no number).
    pub fn from_path(path: impl Into<String>) -> Self {
        Job {
            path: path.into().into_boxed_str(),
        }
    }

    /// A job systemd named by id and path; systemd's job paths end in the id. The path is
    /// what identifies the job; a peer whose id disagrees with it is only logged.
    pub(crate) fn new(id: u32, path: &str) -> Self {
        let job = Job::from_path(path);
        if job.id() != id {
            log::debug!("job {id} has the path {path}, which names job {}", job.id());
        }
        job
    }

    /// The job id, as `systemctl list-jobs` shows it.
    pub fn id(&self) -> u32 {
        self.path
            .rsplit('/')
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }

    /// The job's D-Bus object path, e.g. `/org/freedesktop/systemd1/job/42`.
    pub fn path(&self) -> &str {
        &self.path
    }
}

impl fmt::Display for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "job {} ({})", self.id(), self.path)
    }
}

/// Another job systemd queued in the same transaction as the one asked for, e.g. a start of a
/// unit the asked-for unit `Requires=` (the jobs `systemctl --show-transaction` lists).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TransactionJob {
    /// The job.
    pub job: Job,
    /// Its unit.
    pub unit: String,
    /// systemd's job type: `start`, `stop`, `restart`, `verify-active`, ...
    pub job_type: String,
}

impl fmt::Display for TransactionJob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} (job {})", self.job_type, self.unit, self.job.id())
    }
}

/// How a job's result became known.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResultSource {
    /// systemd's `JobRemoved` signal for the job: the normal case.
    JobRemoved,
    /// The job finished while the manager was re-executing, so its `JobRemoved` was never
    /// seen; the result was settled from the unit's state, which changed after the job was
    /// queued (see [`ManagerBuilder::reexec_grace`](crate::ManagerBuilder::reexec_grace) for
    /// the rules). Holds that state.
    Recovered(Box<UnitState>),
}

impl fmt::Display for ResultSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResultSource::JobRemoved => f.write_str("JobRemoved"),
            ResultSource::Recovered(state) => {
                write!(
                    f,
                    "recovered after a re-execution from the unit's state, {state}"
                )
            }
        }
    }
}

/// A finished job whose result counts as success (`done` or `skipped`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
#[non_exhaustive]
pub struct JobOutcome {
    /// The unit, as systemd named it in `JobRemoved`.
    pub unit: String,
    /// The verb that queued the job.
    pub verb: Verb,
    /// The job.
    pub job: Job,
    /// Its result: [`JobResult::Done`] or [`JobResult::Skipped`].
    pub result: JobResult,
    /// Time from the start of the operation (the call that queued the job, or the wait on a
    /// queued job) to its result, as `JobRemoved` brought it: the job's time as the caller
    /// saw it, without the grace of an active check after it.
    pub elapsed: Duration,
    /// How the result became known: nearly always [`ResultSource::JobRemoved`].
    pub result_source: ResultSource,
    /// The other jobs systemd queued in the same transaction (empty where the manager cannot
    /// list them, see [`ManagerBuilder::per_verb_methods`](crate::ManagerBuilder::per_verb_methods)).
    pub transaction: Vec<TransactionJob>,
}

impl fmt::Display for JobOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} (job {}, {} ms",
            self.unit,
            self.result,
            self.job.id(),
            self.elapsed.as_millis()
        )?;
        if let ResultSource::Recovered(_) = self.result_source {
            f.write_str(", recovered after a manager re-execution")?;
        }
        f.write_str(")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_round_trip() {
        for m in JobMode::ALL {
            assert_eq!(m.to_string().parse::<JobMode>().unwrap(), m);
        }
        for v in Verb::ALL {
            assert_eq!(v.to_string().parse::<Verb>().unwrap(), v);
        }
        for r in [
            "done",
            "canceled",
            "timeout",
            "failed",
            "dependency",
            "skipped",
            "invalid",
            "assert",
            "unsupported",
            "collected",
            "once",
            "brand-new",
        ] {
            assert_eq!(r.parse::<JobResult>().unwrap().to_string(), r);
        }
        assert_eq!(
            "brand-new".parse::<JobResult>().unwrap(),
            JobResult::Other("brand-new".into())
        );
        assert!("nope".parse::<JobMode>().is_err());
    }

    #[test]
    fn success_is_done_or_skipped() {
        assert!(JobResult::Done.is_success());
        assert!(JobResult::Skipped.is_success());
        assert!(!JobResult::Failed.is_success());
        assert!(!JobResult::Other("x".into()).is_success());
    }

    #[test]
    fn job_id_comes_from_the_path() {
        let j = Job::from_path("/org/freedesktop/systemd1/job/42");
        assert_eq!(j.id(), 42);
        assert_eq!(Job::from_path("/x/y").id(), 0);
    }
}

/// Where a queued job stands.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum JobState {
    /// Queued and not started yet: waiting for other jobs, for its dependencies, or for the
    /// manager to dispatch it. Every job is `Waiting` for a moment right after it is queued,
    /// until systemd's next turn through its run queue starts it.
    Waiting,
    /// Being carried out.
    Running,
    /// Finished with this result (not yet collected with [`QueuedJob::wait`](crate::QueuedJob::wait)).
    Finished(JobResult),
    /// Finished while the manager re-executed, and its result cannot be told;
    /// [`QueuedJob::wait`](crate::QueuedJob::wait) returns [`Error::OutcomeUnknown`](crate::Error::OutcomeUnknown) with what was seen.
    Lost,
}

/// A dependency that failed on its own account and made the asked-for job end `dependency`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FailedDependency {
    /// The dependency's unit.
    pub unit: String,
    /// Its job in our transaction, when the transaction was listed.
    pub job: Option<Job>,
    /// Its job's result (`failed`, `timeout`, `canceled`...), when its `JobRemoved` reached
    /// us; `None` when the unit's `failed` state told instead.
    pub result: Option<JobResult>,
    /// Why the unit failed (its `Result`, and how a service's main process ended), when it
    /// failed rather than, say, its job timing out.
    pub reason: Option<FailureReason>,
}

impl fmt::Display for FailedDependency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.unit)?;
        match (&self.result, &self.reason) {
            (Some(result), Some(reason)) => write!(f, "job {result}, {reason}"),
            (Some(result), None) => write!(f, "job {result}"),
            (None, Some(reason)) => write!(f, "{reason}"),
            (None, None) => f.write_str("failed"),
        }
    }
}

//! A handle on one job systemd accepted: wait on it, query it, cancel it.

use std::time::Duration;

use crate::deadline::Deadline;
use crate::error::{Error, Result};
use crate::job::{FailedDependency, Job, JobOutcome, JobResult, JobState, TransactionJob, Verb};
use crate::ops::Context;
use crate::ops::dependency;
use crate::proto::calls;
use crate::proto::unit_reader::UnitReader;
use crate::session::inbox::{Request, Settled};
use crate::session::{Interrupted, JobSignals};
use crate::unit::FailureReason;

/// A job systemd has queued for us, from [`Manager::enqueue`](crate::Manager::enqueue).
///
/// Its result is recorded as soon as the connection is pumped (by any wait on the same
/// manager) and kept until [`wait`](QueuedJob::wait) collects it. While the handle lives, its
/// manager keeps the match rules that route job results to it (on a bus). Dropping the
/// handle forgets the job; the job itself keeps running in systemd.
#[must_use = "a queued job runs on in systemd; wait() on it to learn its result"]
pub struct QueuedJob<'m> {
    cx: &'m Context,
    /// Kept while the handle lives: the rules that route its result to us.
    _signals: JobSignals<'m>,
    unit: String,
    verb: Verb,
    job: Job,
    transaction: Vec<TransactionJob>,
    queued_at_usec: u64,
    /// The grace of the active check after a start-like job ends `done`, if any.
    check_active: Option<Duration>,
}

impl std::fmt::Debug for QueuedJob<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueuedJob")
            .field("unit", &self.unit)
            .field("verb", &self.verb)
            .field("job", &self.job)
            .field("transaction", &self.transaction)
            .finish_non_exhaustive()
    }
}

impl<'m> QueuedJob<'m> {
    pub(crate) fn new(
        cx: &'m Context,
        signals: JobSignals<'m>,
        request: Request,
        job: Job,
        transaction: Vec<TransactionJob>,
    ) -> Self {
        let (unit, verb, queued_at_usec) =
            (request.unit.clone(), request.verb, request.queued_at_usec);
        {
            let inbox = &mut cx.session.router().inbox;
            inbox.watch(job.path(), request);
            for other in &transaction {
                inbox.watch_companion(other.job.path());
            }
        }
        QueuedJob {
            cx,
            _signals: signals,
            unit,
            verb,
            job,
            transaction,
            queued_at_usec,
            check_active: cx.options.check_active,
        }
    }

    /// Checks that the unit is active `grace` after a start-like job ends `done` (`None`:
    /// no check), instead of what the handle's options say.
    pub(crate) fn with_active_check(mut self, grace: Option<Duration>) -> Self {
        self.check_active = grace;
        self
    }

    /// The job's id and path.
    pub fn job(&self) -> &Job {
        &self.job
    }

    /// The unit the job was queued for, as given.
    pub fn unit(&self) -> &str {
        &self.unit
    }

    /// The verb that queued it.
    pub fn verb(&self) -> Verb {
        self.verb
    }

    /// The other jobs systemd queued in the same transaction, e.g. starts of the units this
    /// one requires (empty where the manager cannot list them, see
    /// [`ManagerBuilder::per_verb_methods`](crate::ManagerBuilder::per_verb_methods)).
    pub fn transaction(&self) -> &[TransactionJob] {
        &self.transaction
    }

    /// Waits up to `timeout` for the job's result. The outcome's `elapsed` counts from this
    /// call.
    ///
    /// # Errors
    /// As [`Manager::run`](crate::Manager::run) for the job's result, the deadline and the
    /// manager or bus failing.
    pub fn wait(self, timeout: Duration) -> Result<JobOutcome> {
        self.wait_until(&Deadline::after(timeout))
    }

    /// Where the job stands now: handles any message already received, then asks the job
    /// object for its `State`.
    ///
    /// # Errors
    /// [`Error::Disconnected`] or [`Error::ManagerGone`] if the connection broke,
    /// [`Error::Bus`] if the job object cannot be read.
    pub fn state(&self, timeout: Duration) -> Result<JobState> {
        let deadline = Deadline::after(timeout);
        let session = &self.cx.session;
        if let Err(i) = session.drain() {
            return Err(self.interrupted(i, &deadline));
        }
        if let Some(r) = self.finished() {
            return Ok(r);
        }
        match calls::job_state(&self.cx.caller(), &self.job, deadline.call_timeout()) {
            Ok(state) => Ok(state),
            Err(e) => {
                // The job may have finished between the drain and the call; its JobRemoved
                // came before the error and has been dispatched.
                let _ = session.drain();
                match self.finished() {
                    Some(r) => Ok(r),
                    None => Err(Error::from_call(&self.unit, "Get(Job.State)", e.into())),
                }
            }
        }
    }

    /// Cancels the job (`Cancel` on the job object). Its result, `canceled`, is then
    /// collected by [`wait`](QueuedJob::wait).
    ///
    /// # Errors
    /// As [`Manager::cancel`](crate::Manager::cancel).
    pub fn cancel(&self, timeout: Duration) -> Result<()> {
        cancel(self.cx, &self.job, timeout)
    }

    fn settled(&self) -> Option<Settled> {
        self.cx
            .session
            .router()
            .inbox
            .settled(self.job.path())
            .cloned()
    }

    /// The job's state if it has finished.
    fn finished(&self) -> Option<JobState> {
        match self.settled()? {
            Settled::Removed(r) => Some(JobState::Finished(r.result)),
            Settled::Unknown(_) => Some(JobState::Lost),
        }
    }

    pub(crate) fn wait_until(self, deadline: &Deadline) -> Result<JobOutcome> {
        let path = self.job.path();
        let waited = self
            .cx
            .session
            .pump_until(deadline, |router| router.inbox.settled(path).is_some());
        self.finish(waited, deadline)
    }

    /// [`finish`](QueuedJob::finish) after a wait for several jobs: what stopped that wait
    /// concerns this job only if its result had not arrived.
    pub(crate) fn finish_after(
        self,
        waited: &std::result::Result<(), Interrupted>,
        deadline: &Deadline,
    ) -> Result<JobOutcome> {
        let mine = match self.settled() {
            Some(_) => Ok(()),
            None => waited.clone(),
        };
        self.finish(mine, deadline)
    }

    /// Turns what waiting found into the operation's result.
    fn finish(
        self,
        waited: std::result::Result<(), Interrupted>,
        deadline: &Deadline,
    ) -> Result<JobOutcome> {
        if let Err(i) = waited {
            return Err(self.interrupted(i, deadline));
        }
        let removed = match self.settled() {
            Some(Settled::Removed(removed)) => removed,
            Some(Settled::Unknown(why)) => {
                return Err(Error::OutcomeUnknown {
                    unit: self.unit.clone(),
                    verb: self.verb,
                    job: self.job.clone(),
                    why,
                });
            }
            None => return Err(self.interrupted(Interrupted::DeadlinePassed, deadline)),
        };
        log::info!(
            "{}: {} job {} finished: {}",
            removed.unit,
            self.verb,
            removed.id,
            removed.result
        );
        let job = Job::new(removed.id, self.job.path());
        let options = &self.cx.options;
        if !removed.result.is_success() {
            let reason = match removed.result {
                JobResult::Failed if options.explain_failures => {
                    self.failure_reason(deadline).map(Box::new)
                }
                _ => None,
            };
            let dependencies = match removed.result {
                JobResult::Dependency => self.failed_dependencies(deadline).into(),
                _ => Box::default(),
            };
            return Err(Error::JobFailed {
                unit: removed.unit,
                verb: self.verb,
                job,
                result: removed.result,
                reason,
                dependencies,
                result_source: removed.source,
            });
        }
        // The job's time as the result arrived, without the active check's grace after it.
        let elapsed = deadline.elapsed();
        let starts = matches!(
            self.verb,
            Verb::Start | Verb::Restart | Verb::ReloadOrRestart
        );
        if let (Some(grace), true, JobResult::Done) = (self.check_active, starts, &removed.result) {
            self.check_active(grace, deadline, &job)?;
        }
        Ok(JobOutcome {
            unit: removed.unit,
            verb: self.verb,
            job,
            result: removed.result,
            elapsed,
            result_source: removed.source,
            transaction: self.transaction.clone(),
        })
    }

    fn interrupted(&self, why: Interrupted, deadline: &Deadline) -> Error {
        if let Interrupted::DeadlinePassed = why
            && self.cx.options.cancel_on_timeout
        {
            self.cx.cancel_without_reply(&self.job);
        }
        why.into_error(
            &self.unit,
            Some(self.job.clone()),
            deadline,
            self.cx.is_direct(),
        )
    }

    fn failure_reason(&self, deadline: &Deadline) -> Option<FailureReason> {
        self.cx
            .journal_wanted()
            .failure_reason(&self.cx.caller(), &self.unit, deadline)
    }

    fn failed_dependencies(&self, deadline: &Deadline) -> Vec<FailedDependency> {
        let session = &self.cx.session;
        let cx = dependency::Context {
            unit: &self.unit,
            transaction: &self.transaction,
            read_reasons: self.cx.options.explain_failures,
            journal: self.cx.journal_wanted(),
            queued_at_usec: self.queued_at_usec,
            deadline,
        };
        let found = dependency::explain(&self.cx.caller(), &cx, |path| {
            session.router().inbox.result_of(path)
        });
        if found.is_empty() {
            log::debug!("{}: no failed dependency found", self.unit);
        }
        found
    }

    fn check_active(&self, grace: Duration, deadline: &Deadline, job: &Job) -> Result<()> {
        let settle = Deadline::after(grace.min(deadline.remaining()));
        // Keep handling messages while the unit settles; the condition never holds, so this
        // returns when the grace period ends (or the manager goes away).
        match self.cx.session.pump_until(&settle, |_| false) {
            Err(Interrupted::DeadlinePassed) | Ok(()) => {}
            Err(other) => return Err(self.interrupted(other, deadline)),
        }
        let caller = self.cx.caller();
        let unit = UnitReader::open(&caller, &self.unit, deadline.call_timeout())
            .map_err(|e| Error::from_call(&self.unit, "LoadUnit", e))?;
        let state = unit
            .state()
            .map_err(|e| Error::from_call(&self.unit, "Get(ActiveState)", e))?;
        // A oneshot service's start job ends when its run has: inactive with a success is
        // what that start leaves (without RemainAfterExit=), not a service that died.
        let finished_oneshot = || {
            state.active_state == "inactive"
                && !state.condition_failed
                && unit.is_finished_oneshot().unwrap_or(false)
        };
        if state.is_active() || finished_oneshot() {
            Ok(())
        } else {
            Err(Error::NotActive {
                unit: self.unit.clone(),
                verb: self.verb,
                job: job.clone(),
                state,
                journal: Box::new(self.cx.journal_wanted().read(&unit, deadline)),
            })
        }
    }
}

impl Drop for QueuedJob<'_> {
    fn drop(&mut self) {
        let inbox = &mut self.cx.session.router().inbox;
        inbox.unwatch(self.job.path());
        for other in &self.transaction {
            inbox.unwatch(other.job.path());
        }
    }
}

/// Cancels `job` (`Cancel` on the job object), waiting up to `timeout` for the answer.
///
/// # Errors
/// As [`Manager::cancel`](crate::Manager::cancel).
pub(crate) fn cancel(cx: &Context, job: &Job, timeout: Duration) -> Result<()> {
    use dbus::blocking::BlockingSender;
    let msg = calls::cancel(job).map_err(|e| Error::from_call(job.path(), "Cancel", e.into()))?;
    cx.action_caller()
        .send_with_reply_and_block(msg, timeout)
        .map_err(|e| {
            Error::from_call(job.path(), "Cancel", e.into())
                .sent_interactive(cx.options.allow_interactive_authorization)
        })?;
    log::debug!("canceled {job}");
    Ok(())
}

//! Queued jobs: a handle on one job systemd accepted, and batches of them waited for together.

use std::time::Duration;

use dbus::blocking::Proxy;
use dbus::blocking::stdintf::org_freedesktop_dbus::Properties;

use crate::completion::{Completion, QueuedRun};
use crate::deadline::Deadline;
use crate::dependency::{self, FailedDependency};
use crate::error::{Error, Result};
use crate::follow::Follow;
use crate::job::{Job, JobMode, JobOutcome, JobResult, TransactionJob, Verb};
use crate::link::Interrupted;
use crate::manager::Manager;
use crate::progress::{self, Progress, Reporter, Watched};
use crate::unit_name;
use crate::unit_state::UnitReader;
use crate::watch::{self, JOB_IFACE, Request, SYSTEMD_NAME, Settled};

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
    /// Finished with this result (not yet collected with [`QueuedJob::wait`]).
    Finished(JobResult),
    /// Finished while the manager re-executed, and its result cannot be told;
    /// [`QueuedJob::wait`] returns [`Error::OutcomeUnknown`] with what was seen.
    Lost,
}

/// A queued job's `State` as its job object tells it: [`JobState::Running`] or
/// [`JobState::Waiting`].
pub(crate) fn read_job_state(
    conn: &dbus::blocking::Connection,
    job: &Job,
    timeout: Duration,
) -> std::result::Result<JobState, dbus::Error> {
    let state: String =
        Proxy::new(SYSTEMD_NAME, job.path(), timeout, conn).get(JOB_IFACE, "State")?;
    Ok(if state == "running" {
        JobState::Running
    } else {
        JobState::Waiting
    })
}

/// A job systemd has queued for us, from [`Manager::enqueue`].
///
/// Its result is recorded as soon as the connection is pumped (by any wait on the same
/// manager) and kept until [`wait`](QueuedJob::wait) collects it. Dropping the handle forgets
/// the job; the job itself keeps running in systemd.
#[derive(Debug)]
#[must_use = "a queued job runs on in systemd; wait() on it to learn its result"]
pub struct QueuedJob<'m> {
    manager: &'m Manager,
    unit: String,
    verb: Verb,
    job: Job,
    transaction: Vec<TransactionJob>,
    queued_at_usec: u64,
}

impl<'m> QueuedJob<'m> {
    pub(crate) fn new(
        manager: &'m Manager,
        request: Request,
        job: Job,
        transaction: Vec<TransactionJob>,
    ) -> Self {
        let (unit, verb, queued_at_usec) =
            (request.unit.clone(), request.verb, request.queued_at_usec);
        {
            let mut inbox = watch::lock(manager.link().inbox());
            inbox.watch(job.path(), request);
            for other in &transaction {
                inbox.watch_companion(other.job.path());
            }
        }
        QueuedJob {
            manager,
            unit,
            verb,
            job,
            transaction,
            queued_at_usec,
        }
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
    /// As [`Manager::run`] for the job's result, the deadline and the manager or bus failing.
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
        let link = self.manager.link();
        if let Err(i) = link.drain() {
            return Err(self.interrupted(i, &deadline));
        }
        if let Some(r) = self.finished() {
            return Ok(r);
        }
        match read_job_state(&link.conn(), &self.job, deadline.call_timeout()) {
            Ok(state) => Ok(state),
            Err(e) => {
                // The job may have finished between the drain and the call.
                let _ = link.drain();
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
    /// As [`Manager::cancel`].
    pub fn cancel(&self, timeout: Duration) -> Result<()> {
        self.manager.cancel(&self.job, timeout)
    }

    fn settled(&self) -> Option<Settled> {
        watch::lock(self.manager.link().inbox())
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
            .manager
            .link()
            .pump_until(deadline, |inbox| inbox.settled(path).is_some());
        self.finish(waited, deadline)
    }

    /// [`finish`](QueuedJob::finish) after a wait for several jobs: what stopped that wait
    /// concerns this job only if its result had not arrived.
    fn finish_after(
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
        let options = self.manager.options();
        if !removed.result.is_success() {
            let reason = match removed.result {
                JobResult::Failed if options.explain_failures => self.failure_reason(deadline),
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
        let starts = matches!(
            self.verb,
            Verb::Start | Verb::Restart | Verb::ReloadOrRestart
        );
        if let (Some(grace), true, JobResult::Done) =
            (options.check_active, starts, &removed.result)
        {
            self.check_active(grace, deadline, &job)?;
        }
        Ok(JobOutcome {
            unit: removed.unit,
            verb: self.verb,
            job,
            result: removed.result,
            elapsed: deadline.elapsed(),
            result_source: removed.source,
            transaction: self.transaction.clone(),
        })
    }

    fn interrupted(&self, why: Interrupted, deadline: &Deadline) -> Error {
        if let Interrupted::DeadlinePassed = why
            && self.manager.options().cancel_on_timeout
        {
            self.manager.cancel_without_reply(&self.job);
        }
        why.into_error(
            &self.unit,
            Some(self.job.clone()),
            deadline,
            self.manager.is_direct(),
        )
    }

    fn failure_reason(&self, deadline: &Deadline) -> Option<crate::unit_state::FailureReason> {
        let conn = self.manager.connection();
        UnitReader::open(&conn, &self.unit, deadline.call_timeout())
            .and_then(|r| r.failure_reason())
            .inspect_err(|e| log::debug!("{}: could not read why it failed: {e}", self.unit))
            .ok()
            .flatten()
    }

    fn failed_dependencies(&self, deadline: &Deadline) -> Vec<FailedDependency> {
        let inbox = self.manager.link().inbox();
        let cx = dependency::Context {
            unit: &self.unit,
            transaction: &self.transaction,
            read_reasons: self.manager.options().explain_failures,
            queued_at_usec: self.queued_at_usec,
            deadline,
        };
        let found = dependency::explain(&self.manager.connection(), &cx, |path| {
            watch::lock(inbox).result_of(path)
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
        match self.manager.link().pump_until(&settle, |_| false) {
            Err(Interrupted::DeadlinePassed) | Ok(()) => {}
            Err(other) => return Err(self.interrupted(other, deadline)),
        }
        let state = UnitReader::open(
            &self.manager.connection(),
            &self.unit,
            deadline.call_timeout(),
        )
        .and_then(|r| r.state())
        .map_err(|e| Error::from_call(&self.unit, "Get(ActiveState)", e))?;
        if state.is_active() {
            Ok(())
        } else {
            Err(Error::NotActive {
                unit: self.unit.clone(),
                verb: self.verb,
                job: job.clone(),
                state,
            })
        }
    }
}

impl Drop for QueuedJob<'_> {
    fn drop(&mut self) {
        let mut inbox = watch::lock(self.manager.link().inbox());
        inbox.unwatch(self.job.path());
        for other in &self.transaction {
            inbox.unwatch(other.job.path());
        }
    }
}

/// Several jobs queued together and waited for under one deadline, like
/// `systemctl restart a b c`. Build it with [`Manager::batch`].
///
/// ```no_run
/// use std::time::Duration;
/// use systemd_jobs::{Manager, Verb};
///
/// let manager = Manager::system()?;
/// let results = manager
///     .batch()
///     .add(Verb::Restart, "nginx.service")
///     .add(Verb::Start, "backup.timer")
///     .run(Duration::from_secs(90));
/// for result in &results {
///     match result {
///         Ok(outcome) => println!("{outcome}"),
///         Err(e) => eprintln!("{e}"),
///     }
/// }
/// # Ok::<(), systemd_jobs::Error>(())
/// ```
#[derive(Debug)]
#[must_use = "a batch does nothing until run()"]
pub struct Batch<'m> {
    manager: &'m Manager,
    mode: JobMode,
    items: Vec<(Verb, String, Option<JobMode>)>,
    progress: Option<Reporter<'m>>,
}

impl<'m> Batch<'m> {
    pub(crate) fn new(manager: &'m Manager) -> Self {
        Batch {
            manager,
            mode: JobMode::default(),
            items: Vec::new(),
            progress: None,
        }
    }

    /// The job mode for items added without one. Default: [`JobMode::Replace`].
    pub fn mode(mut self, mode: JobMode) -> Self {
        self.mode = mode;
        self
    }

    /// Adds a `verb` job for `unit`.
    pub fn add(mut self, verb: Verb, unit: impl Into<String>) -> Self {
        self.items.push((verb, unit.into(), None));
        self
    }

    /// Adds a `verb` job for `unit` with its own job mode.
    pub fn add_with_mode(mut self, verb: Verb, unit: impl Into<String>, mode: JobMode) -> Self {
        self.items.push((verb, unit.into(), Some(mode)));
        self
    }

    /// Reports progress while [`run`](Batch::run) waits: `callback` gets a [`Progress`] for
    /// a unit whenever its unit changes state or status text, and every `every` while
    /// nothing changes (for elapsed time), from the thread that waits. Each unit is then
    /// followed from before its job is queued: on a bus, three calls more per unit
    /// (`LoadUnit`, `AddMatch`, `Unit.Ref`), undone afterwards without waiting. Without this,
    /// nothing of it runs.
    pub fn on_progress(mut self, every: Duration, callback: impl FnMut(&Progress) + 'm) -> Self {
        self.progress = Some(Reporter {
            every,
            callback: Box::new(callback),
        });
        self
    }

    /// Like [`run`](Batch::run), then follows each unit until it has run to completion, as
    /// [`Manager::run_to_completion`] does for one unit (meant for `start`, or `restart`, of
    /// units that stop by themselves). One deadline for the whole batch; one result per item,
    /// in input order.
    pub fn run_to_completion(self, timeout: Duration) -> Vec<Result<Completion>> {
        let deadline = Deadline::after(timeout);
        // The start jobs first, all together; then each unit in turn.
        let runs =
            self.queue_each(|m, verb, unit, mode| m.enqueue_run_until(verb, unit, mode, &deadline));
        let paths: Vec<&str> = runs
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .map(QueuedRun::job_path)
            .collect();
        let _ = self.wait_all(&paths, &deadline);
        runs.into_iter()
            .map(|run| run?.wait_until(&deadline))
            .collect()
    }

    /// Queues every item with `queue`, in order.
    fn queue_each<T>(
        &self,
        queue: impl Fn(&'m Manager, Verb, &str, JobMode) -> Result<T>,
    ) -> Vec<Result<T>> {
        self.items
            .iter()
            .map(|(verb, unit, mode)| queue(self.manager, *verb, unit, mode.unwrap_or(self.mode)))
            .collect()
    }

    /// Pumps the connection until each job in `paths` has its result or `deadline` passes.
    fn wait_all(
        &self,
        paths: &[&str],
        deadline: &Deadline,
    ) -> std::result::Result<(), Interrupted> {
        self.manager.link().pump_until(deadline, |inbox| {
            paths.iter().all(|p| inbox.settled(p).is_some())
        })
    }

    /// Queues every job, in order, then waits for all of them until `timeout` passes (one
    /// deadline for the whole batch). Returns one result per item, in input order: one
    /// failure does not hide the others, and a job that did not finish in time gets
    /// [`Error::Timeout`].
    pub fn run(mut self, timeout: Duration) -> Vec<Result<JobOutcome>> {
        let deadline = Deadline::after(timeout);
        if let Some(mut reporter) = self.progress.take() {
            return self.run_reporting(&mut reporter, &deadline);
        }
        let queued =
            self.queue_each(|m, verb, unit, mode| m.enqueue_until(verb, unit, mode, &deadline));
        let paths: Vec<&str> = queued
            .iter()
            .filter_map(|q| q.as_ref().ok())
            .map(|q| q.job.path())
            .collect();
        let waited = self.wait_all(&paths, &deadline);
        queued
            .into_iter()
            .map(|q| q?.finish_after(&waited, &deadline))
            .collect()
    }

    /// [`run`](Batch::run) with each unit followed and its progress reported.
    fn run_reporting(
        &self,
        reporter: &mut Reporter<'_>,
        deadline: &Deadline,
    ) -> Vec<Result<JobOutcome>> {
        let queued = self.queue_each(|m, verb, unit, mode| {
            unit_name::validate(unit)?;
            let follow = Follow::start(m, unit, deadline)?;
            follow.read_into_seen(deadline, false);
            Ok((m.enqueue_until(verb, unit, mode, deadline)?, follow))
        });
        let watched: Vec<Watched<'_>> = queued
            .iter()
            .filter_map(|q| q.as_ref().ok())
            .map(|(job, follow)| Watched {
                unit: job.unit(),
                job: job.job(),
                follow,
            })
            .collect();
        let waited = progress::wait_reporting(self.manager, &watched, reporter, deadline);
        drop(watched);
        queued
            .into_iter()
            .map(|q| q?.0.finish_after(&waited, deadline))
            .collect()
    }
}

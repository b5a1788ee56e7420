//! Batches: several jobs queued together and waited for under one deadline.

use std::time::Duration;

use crate::deadline::Deadline;
use crate::error::Result;
use crate::job::{JobMode, JobOutcome, Verb};
use crate::ops::Context;
use crate::ops::completion::{Completion, QueuedRun};
use crate::ops::daemon::daemon_reload;
use crate::ops::enqueue::{enqueue, enqueue_many, enqueue_run};
use crate::ops::follow::Follow;
use crate::ops::progress::{self, Progress, Reporter, Watched};
use crate::ops::queued::QueuedJob;
use crate::session::Interrupted;
use crate::unit_name;

/// Several jobs queued together and waited for under one deadline, like
/// `systemctl restart a b c`. Build it with [`Manager::batch`](crate::Manager::batch).
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
#[must_use = "a batch does nothing until run()"]
pub struct Batch<'m> {
    cx: &'m Context,
    mode: JobMode,
    items: Vec<(Verb, String, Option<JobMode>)>,
    progress: Option<Reporter<'m>>,
    daemon_reload_first: bool,
}

impl<'m> Batch<'m> {
    pub(crate) fn new(cx: &'m Context) -> Self {
        Batch {
            cx,
            mode: JobMode::default(),
            items: Vec::new(),
            progress: None,
            daemon_reload_first: false,
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

    /// Reload the manager (`daemon-reload`) before the jobs are queued, within the batch's
    /// one deadline, so that jobs of units whose files (or generators' input, such as
    /// `/etc/fstab`) just changed act on what is on disk now. If the reload fails, every
    /// item fails with its error and no job is queued. Default: `false`.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use systemd_jobs::{JobMode, Manager, Verb};
    ///
    /// let manager = Manager::system()?;
    /// // A line was appended to /etc/fstab: let the generator make its .mount unit, then
    /// // restart the targets that pull the mounts in.
    /// let results = manager
    ///     .batch()
    ///     .daemon_reload_first(true)
    ///     .mode(JobMode::Fail)
    ///     .add(Verb::Restart, "local-fs.target")
    ///     .add(Verb::Restart, "remote-fs.target")
    ///     .run(Duration::from_secs(90));
    /// # Ok::<(), systemd_jobs::Error>(())
    /// ```
    pub fn daemon_reload_first(mut self, reload: bool) -> Self {
        self.daemon_reload_first = reload;
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
    /// [`Manager::run_to_completion`](crate::Manager::run_to_completion) does for one unit (meant for `start`, or `restart`, of
    /// units that stop by themselves). One deadline for the whole batch; one result per item,
    /// in input order.
    pub fn run_to_completion(self, timeout: Duration) -> Vec<Result<Completion>> {
        let deadline = Deadline::after(timeout);
        if let Some(failed) = self.reload_first(&deadline) {
            return failed;
        }
        // The start jobs first, all together; then each unit in turn.
        let runs =
            self.queue_each(|cx, verb, unit, mode| enqueue_run(cx, verb, unit, mode, &deadline));
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

    /// The reload asked for with [`daemon_reload_first`](Batch::daemon_reload_first); if it
    /// fails, its error for every item.
    fn reload_first<T>(&self, deadline: &Deadline) -> Option<Vec<Result<T>>> {
        if !self.daemon_reload_first {
            return None;
        }
        let e = daemon_reload(self.cx, deadline).err()?;
        Some(self.items.iter().map(|_| Err(e.clone())).collect())
    }

    /// Queues every item in one transaction where it can: items that all share one verb and
    /// one job mode, on a manager with `EnqueueUnitJobMany` (systemd 262 and later). `None`
    /// otherwise (mixed verbs or modes, a single item, an older manager).
    fn queue_as_one_transaction(&self, deadline: &Deadline) -> Option<Vec<Result<QueuedJob<'m>>>> {
        let (first_verb, _, first_mode) = self.items.first()?;
        let mode_of = |m: &Option<JobMode>| m.unwrap_or(self.mode);
        let first_mode = mode_of(first_mode);
        if self.items.len() < 2
            || !self
                .items
                .iter()
                .all(|(v, _, m)| v == first_verb && mode_of(m) == first_mode)
        {
            return None;
        }
        let units: Vec<&str> = self.items.iter().map(|(_, u, _)| u.as_str()).collect();
        enqueue_many(self.cx, *first_verb, &units, first_mode, deadline)
    }

    /// Queues every item with `queue`, in order.
    fn queue_each<T>(
        &self,
        queue: impl Fn(&'m Context, Verb, &str, JobMode) -> Result<T>,
    ) -> Vec<Result<T>> {
        self.items
            .iter()
            .map(|(verb, unit, mode)| queue(self.cx, *verb, unit, mode.unwrap_or(self.mode)))
            .collect()
    }

    /// Pumps the connection until each job in `paths` has its result or `deadline` passes.
    fn wait_all(
        &self,
        paths: &[&str],
        deadline: &Deadline,
    ) -> std::result::Result<(), Interrupted> {
        self.cx.session.pump_until(deadline, |router| {
            paths.iter().all(|p| router.inbox.settled(p).is_some())
        })
    }

    /// Queues every job, then waits for all of them until `timeout` passes (one deadline for
    /// the whole batch). Returns one result per item, in input order: one failure does not
    /// hide the others, and a job that did not finish in time gets
    /// [`Error::Timeout`](crate::Error::Timeout).
    ///
    /// When every item has the same verb and job mode and the manager has
    /// `EnqueueUnitJobMany` (systemd 262 and later), the jobs are queued in one call, as one
    /// transaction: ordering dependencies between the named units (`After=`) hold whatever
    /// the order they were added in, and if systemd refuses the transaction every item fails
    /// (with systemd's own error for the unit it names, [`Error::TransactionRefused`](crate::Error::TransactionRefused)
    /// for the others). Such outcomes list no other jobs of the transaction (the method's
    /// reply names only the jobs of the named units). Otherwise (mixed verbs or modes, older
    /// managers, progress reporting, run to completion, or
    /// [`per_verb_methods`](crate::ManagerBuilder::per_verb_methods)) each job is queued by a
    /// call of its own, in input order, and ordering between the named units depends on
    /// timing: a unit whose job starts before another's is queued is not held back by an
    /// `After=` on it.
    pub fn run(self, timeout: Duration) -> Vec<Result<JobOutcome>> {
        self.run_until(&Deadline::after(timeout))
    }

    /// [`run`](Batch::run) within `deadline`.
    pub(crate) fn run_until(mut self, deadline: &Deadline) -> Vec<Result<JobOutcome>> {
        if let Some(failed) = self.reload_first(deadline) {
            return failed;
        }
        if let Some(mut reporter) = self.progress.take() {
            return self.run_reporting(&mut reporter, deadline);
        }
        let deadline = *deadline;
        let queued = self.queue_as_one_transaction(&deadline).unwrap_or_else(|| {
            self.queue_each(|cx, verb, unit, mode| enqueue(cx, verb, unit, mode, &deadline))
        });
        let paths: Vec<&str> = queued
            .iter()
            .filter_map(|q| q.as_ref().ok())
            .map(|q| q.job().path())
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
        let queued = self.queue_each(|cx, verb, unit, mode| {
            unit_name::validate(unit)?;
            let follow = Follow::start(cx, unit, deadline)?;
            follow.read_into_seen(deadline, false);
            Ok((enqueue(cx, verb, unit, mode, deadline)?, follow))
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
        let waited = progress::wait_reporting(self.cx, &watched, reporter, deadline);
        drop(watched);
        queued
            .into_iter()
            .map(|q| q?.0.finish_after(&waited, deadline))
            .collect()
    }
}

impl std::fmt::Debug for Batch<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch")
            .field("mode", &self.mode)
            .field("items", &self.items)
            .field("progress", &self.progress)
            .field("daemon_reload_first", &self.daemon_reload_first)
            .finish_non_exhaustive()
    }
}

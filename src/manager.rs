//! The façade: [`Manager`], a thin handle over one session and its options, and
//! [`ManagerBuilder`], which sets them.

use std::path::PathBuf;
use std::time::Duration;

use dbus::blocking::Connection;

use crate::daemon::{Reexecuted, Reloaded};
use crate::deadline::Deadline;
use crate::error::{Error, Result};
use crate::job::{Job, JobMode, JobOutcome, Verb};
use crate::journal::reader::Source;
use crate::ops::batch::Batch;
use crate::ops::completion::{Completion, QueuedRun};
use crate::ops::converge::Desired;
use crate::ops::daemon::{daemon_reexec, daemon_reload};
use crate::ops::enqueue::{enqueue, enqueue_run};
use crate::ops::progress::Progress;
use crate::ops::queued::{self, QueuedJob};
use crate::ops::reset_failed::reset_failed;
use crate::ops::unit_files::UnitFiles;
use crate::ops::{Context, Options};
use crate::proto::unit_files::unit_file_state;
use crate::session::caller::Caller;
use crate::session::{Session, Timing};
use crate::transport::Bus;
use crate::unit_file::{UnitFileState, UnitFileVerb};
use crate::unit_name;

/// Builds a [`Manager`] with non-default options.
///
/// ```no_run
/// use std::time::Duration;
/// use systemd_jobs::{Bus, Manager};
///
/// let manager = Manager::builder()
///     .bus(Bus::User)
///     .cancel_on_timeout(true)
///     .check_active(Some(Duration::from_millis(500)))
///     .connect()?;
/// # Ok::<(), systemd_jobs::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct ManagerBuilder {
    bus: Bus,
    options: Options,
}

impl ManagerBuilder {
    /// Where to reach the manager. Default: [`Bus::System`].
    pub fn bus(mut self, bus: Bus) -> Self {
        self.bus = bus;
        self
    }

    /// When an operation's deadline passes, ask systemd to cancel the job (a `Cancel` call
    /// on the job object, sent without waiting for its reply so the deadline still holds).
    /// Default: `false`, the job keeps running in systemd and only the caller stops waiting.
    /// Canceling removes the job; a start already in progress (e.g. a running `ExecStart=` of a
    /// oneshot) is not stopped by that, as with `systemctl cancel`.
    pub fn cancel_on_timeout(mut self, cancel: bool) -> Self {
        self.options.cancel_on_timeout = cancel;
        self
    }

    /// After a job ends `failed`, read the unit's `Result` (and, for services, how the main
    /// process ended) into [`Error::JobFailed`]'s `reason`, within what is left of the
    /// deadline. Default: `true`. Costs a few property reads on the failure path only.
    pub fn explain_failures(mut self, explain: bool) -> Self {
        self.options.explain_failures = explain;
        self
    }

    /// After a start, restart or reload-or-restart job ends `done`, wait `Some(grace)` (zero
    /// for no wait, cut to what is left of the deadline) and then check that the unit is
    /// active; if it is not (it exited at once, or a `Condition…=` failed), the operation
    /// fails with [`Error::NotActive`]. A `Type=oneshot` service left inactive with
    /// `Result=success` passes: its start job ended with its run. Default: `None`, no check:
    /// `done` is reported as systemd reports it.
    pub fn check_active(mut self, grace: Option<Duration>) -> Self {
        self.options.check_active = grace;
        self
    }

    /// Lets polkit ask the user to authenticate when the caller is not allowed to act on a
    /// unit outright: the calls that ask systemd to act (queue or cancel jobs; change unit
    /// files; reload or re-execute; reset-failed) carry D-Bus's
    /// `ALLOW_INTERACTIVE_AUTHORIZATION` header flag, as with `systemctl` on a terminal (its
    /// `--no-ask-password` turns it off). Default: `false`: the flag is not set, and where the
    /// manager honours it a call that would need a prompt fails at once with
    /// [`Error::AccessDenied`] (systemd's `InteractiveAuthorizationRequired`).
    ///
    /// What the flag changes depends on the manager (each proven against a real system
    /// manager in a container): systemd 257 and 262 honour it for a unit's job methods
    /// (start, stop, restart...), so without it a call that polkit would have to ask about
    /// is refused at once even when an agent is registered; systemd 252 lets polkit ask for
    /// those methods with or without the flag, whenever an agent is registered for the
    /// caller. Without an agent the refusal is immediate on every version, and the error
    /// says whether the call allowed interactive authorization (systemd 262's own text
    /// claims it did not, either way).
    ///
    /// On the system bus, the bus daemon cuts a call off after its reply timeout (25 s by
    /// default): a prompt must be answered within that, or the call fails with
    /// [`Error::Bus`] (`NoReply`), whatever the operation's timeout.
    ///
    /// It matters for the system manager and callers that are not root. polkit asks through
    /// the authentication agent registered for the caller's session (a desktop's own agent,
    /// or `pkttyagent` on a terminal); this crate starts none. Waiting for the user is part of
    /// the method call, so it counts against the operation's timeout: give one long enough to
    /// type a password. If the deadline passes while polkit is still asking, the operation
    /// fails with [`Error::Timeout`] without a job (there is none yet), but a password typed
    /// afterwards still makes systemd queue the job, which cancel-on-timeout cannot reach.
    /// Root callers, user managers and the private socket never ask.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use systemd_jobs::{JobMode, Manager};
    ///
    /// let manager = Manager::builder().allow_interactive_authorization(true).connect()?;
    /// // Up to two minutes, the password prompt included.
    /// manager.restart("nginx.service", JobMode::Replace, Duration::from_secs(120))?;
    /// # Ok::<(), systemd_jobs::Error>(())
    /// ```
    pub fn allow_interactive_authorization(mut self, allow: bool) -> Self {
        self.options.allow_interactive_authorization = allow;
        self
    }

    /// How long the manager may be away while it re-executes (`daemon-reexec`, as systemd
    /// package upgrades do) before a wait gives up with [`Error::ManagerGone`].
    /// Default: [`DEFAULT_REEXEC_GRACE`](crate::DEFAULT_REEXEC_GRACE) (500 ms), always cut to what is left of the deadline.
    ///
    /// On a bus it is how long `org.freedesktop.systemd1` may have no owner; systemd 252
    /// passes the name on within a few milliseconds. On a private socket it is how long a
    /// reset socket may refuse new connections; while the manager re-executes, the socket
    /// keeps accepting (the new manager inherits it), so a refused socket means the manager
    /// is gone. A manager that really died is reported this long after it died.
    ///
    /// Jobs survive a re-execution: the wait follows the manager to its new bus name or
    /// connects to its socket again, checks that each awaited job still exists, and carries
    /// on. A job that finished while no manager could tell us has its result settled from the
    /// unit's state if that state changed after the job was queued: a start-like job (start,
    /// restart, try-restart, reload-or-restart, reload-or-try-restart) is `done` if the unit
    /// became active and `failed` if it failed; a stop is `done` if the unit became inactive
    /// or failed. The outcome's [`ResultSource`](crate::ResultSource) says so. Anything else
    /// is [`Error::OutcomeUnknown`]: no result is guessed.
    pub fn reexec_grace(mut self, grace: Duration) -> Self {
        self.options.reexec_grace = grace;
        self
    }

    /// How long [`connect`](ManagerBuilder::connect) may take, after which it fails with
    /// [`Error::ConnectTimeout`] naming the step that did not finish. Default:
    /// [`DEFAULT_CONNECT_TIMEOUT`](crate::DEFAULT_CONNECT_TIMEOUT) (25 s). Reconnecting after a re-execution uses what is
    /// left of the operation's deadline instead.
    ///
    /// It covers every step: authentication, on a bus the registration (`Hello`), on a
    /// private socket the first message. A
    /// stopped bus daemon or manager, or a socket nobody serves, fails here at the limit.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.options.connect_timeout = timeout;
        self
    }

    /// How often a long wait checks that the jobs it waits on still exist (`GetJob`, one
    /// small call per job), in case a `JobRemoved` was lost: dropped by a bus daemon whose
    /// queue for us was full, missed across a re-execution, or never sent. A job found gone
    /// is settled from its unit's state as after a re-execution (see
    /// [`reexec_grace`](ManagerBuilder::reexec_grace)), so a lost result costs at most this
    /// long, not the whole timeout. Default: [`DEFAULT_JOB_CHECK_INTERVAL`](crate::DEFAULT_JOB_CHECK_INTERVAL)
    /// (5 s). Waits shorter than this make no such call.
    pub fn job_check_interval(mut self, every: Duration) -> Self {
        self.options.job_check_interval = every;
        self
    }

    /// How many journal lines of a failed run an error carries ([`RunJournal`](crate::RunJournal),
    /// see [`Error::run_journals`]): the last lines that run of the unit wrote, matched by
    /// its invocation id, so an earlier run's lines never show. Default:
    /// [`DEFAULT_JOURNAL_LINES`](crate::DEFAULT_JOURNAL_LINES) (10, as `systemctl status`);
    /// `0` turns reading off.
    ///
    /// They are read for a job that ended `failed` ([`Error::JobFailed`]), each failed root
    /// cause of a `dependency` result, a run to completion that ended badly
    /// ([`Error::RunFailed`]) and a failed active check ([`Error::NotActive`]), when
    /// [`explain_failures`](ManagerBuilder::explain_failures) is on. Nothing is read on
    /// success: no call, no process, no file.
    ///
    /// How: `journalctl --output=export` runs where the manager is: on this machine (under
    /// `/proc/PID/root` when the manager's socket was given through there, as for a manager
    /// in a container, or under [`journal_root`](ManagerBuilder::journal_root)), or on the
    /// remote host through the same ssh settings as the bus ([`Bus::Remote`]). It runs within
    /// what is left of the operation's deadline: after asking journald to store what it has
    /// received (root callers only), it reads until the run's end is stored and nothing new
    /// has come for 0.5 s, at most 2 s, so a failure's error comes about 0.5 s later than
    /// with `0`. Each message is cut after [`MAX_MESSAGE_BYTES`](crate::MAX_MESSAGE_BYTES)
    /// and its control characters are shown as escapes. When the lines cannot be read (no
    /// journald there, no permission, no `journalctl`, rotated away, the deadline), the
    /// error says why ([`JournalUnavailable`](crate::JournalUnavailable)).
    pub fn journal_lines(mut self, lines: usize) -> Self {
        self.options.journal_lines = lines;
        self
    }

    /// Read a failed run's journal lines under this directory on this machine
    /// (`journalctl --root=DIR`: `DIR/var/log/journal` and `DIR/run/log/journal`) instead
    /// of where the manager is found to be. `None` (the default) chooses by the bus: see
    /// [`journal_lines`](ManagerBuilder::journal_lines).
    pub fn journal_root(mut self, root: Option<PathBuf>) -> Self {
        self.options.journal_root = root;
        self
    }

    /// Queue jobs with the verbs' own methods (`RestartUnit`, ...) instead of
    /// `EnqueueUnitJob`. Default: `false`.
    ///
    /// `EnqueueUnitJob` (systemd 243 and later) queues the same job with the same one call and
    /// also lists the other jobs of the transaction: [`JobOutcome::transaction`](crate::JobOutcome::transaction),
    /// and the results that explain a `dependency` failure exactly
    /// ([`Error::JobFailed`]'s `dependencies`). A manager without it answers `UnknownMethod`
    /// once; the handle then uses the per-verb methods for good. With them, transactions are
    /// not listed, and a `dependency` failure is explained from the states of the units the
    /// unit requires (`Requires=`, `Requisite=`, `BindsTo=`, followed down): a dependency
    /// that failed is found, one whose job timed out is not.
    pub fn per_verb_methods(mut self, per_verb: bool) -> Self {
        self.options.per_verb_methods = per_verb;
        self
    }

    /// Connects to the chosen bus within [`connect_timeout`](ManagerBuilder::connect_timeout):
    /// authentication and, on a bus, our own `Hello`; nothing else. The deadline of each
    /// operation starts when the operation does.
    ///
    /// The handle adds no match rule here: each operation adds what it needs in the same
    /// write as its job call and removes it when it is done. If nobody owns
    /// `org.freedesktop.systemd1` yet, connecting still succeeds and the first job call
    /// reports [`Error::ManagerUnavailable`].
    ///
    /// # Errors
    /// [`Error::Connect`] if the bus or socket cannot be reached, [`Error::ConnectTimeout`]
    /// if the peer does not answer in time.
    pub fn connect(self) -> Result<Manager> {
        let deadline = Deadline::after(self.options.connect_timeout);
        let journal = Source::choose(self.options.journal_root.as_deref(), Some(&self.bus));
        let session = Session::connect(self.bus, &deadline, timing(&self.options))?;
        Ok(Manager {
            cx: Context::new(session, self.options, journal),
        })
    }

    /// Uses a connection the caller already has, to a bus daemon, or with `direct` set, to a
    /// manager's private socket (opened with `Channel::open_private` and not registered).
    /// Such a handle works as one that connected itself, but cannot connect again if a
    /// private socket is reset. Get the connection back with [`Manager::into_connection`].
    pub fn wrap(self, conn: Connection, direct: bool) -> Manager {
        let session = Session::wrap(conn, direct, timing(&self.options));
        let journal = Source::choose(self.options.journal_root.as_deref(), None);
        Manager {
            cx: Context::new(session, self.options, journal),
        }
    }
}

fn timing(options: &Options) -> Timing {
    Timing {
        grace: options.reexec_grace,
        job_check_interval: options.job_check_interval,
    }
}

/// A handle on one systemd manager: queue jobs and wait for their results.
///
/// A handle keeps one connection. It holds match rules on the bus only while an operation
/// waits (two for job results; the `AddMatch` goes out in the same write as the job call, so
/// an operation still costs one round trip), so an idle handle receives nothing however many
/// jobs other clients run. Dropping the handle closes the connection. It is `Send` but not
/// `Sync`: use it from one thread at a time, and give each thread its own handle to run jobs
/// in parallel.
///
/// ```no_run
/// use std::time::Duration;
/// use systemd_jobs::{JobMode, Manager};
///
/// let manager = Manager::system()?;
/// let outcome = manager.restart("nginx.service", JobMode::Replace, Duration::from_secs(90))?;
/// println!("{outcome}"); // nginx.service: done (job 1234, 812 ms)
/// # Ok::<(), systemd_jobs::Error>(())
/// ```
pub struct Manager {
    cx: Context,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field("direct", &self.is_direct())
            .field("rules_held", &self.cx.session.rules_held())
            .field("options", &self.cx.options)
            .finish_non_exhaustive()
    }
}

/// Defines the per-verb shorthands, which all go through [`Manager::run`].
macro_rules! verb_methods {
    ($($(#[$doc:meta])* $name:ident => $verb:ident;)*) => {$(
        $(#[$doc])*
        ///
        /// # Errors
        /// As [`Manager::run`].
        pub fn $name(&self, unit: &str, mode: JobMode, timeout: Duration) -> Result<JobOutcome> {
            self.run(Verb::$verb, unit, mode, timeout)
        }
    )*};
}

impl Manager {
    /// A builder for a handle with non-default options.
    pub fn builder() -> ManagerBuilder {
        ManagerBuilder::default()
    }

    /// Connects to the manager on `bus` with default options.
    ///
    /// # Errors
    /// [`Error::Connect`] if the bus or socket cannot be reached.
    pub fn connect(bus: Bus) -> Result<Self> {
        Self::builder().bus(bus).connect()
    }

    /// Connects to the system manager on the system bus.
    ///
    /// # Errors
    /// [`Error::Connect`] if the system bus cannot be reached.
    pub fn system() -> Result<Self> {
        Self::connect(Bus::System)
    }

    /// Connects to the caller's user manager on the user bus.
    ///
    /// # Errors
    /// [`Error::Connect`] if the user bus cannot be found or reached.
    pub fn user() -> Result<Self> {
        Self::connect(Bus::User)
    }

    /// Uses a connection to a bus daemon the caller already has, with default options.
    pub fn from_connection(conn: Connection) -> Self {
        Self::builder().wrap(conn, false)
    }

    /// Makes method calls on the handle's connection, for calls this crate does not make
    /// (see [`Caller`]). After a private socket was reset and connected again, its calls go
    /// to the new connection.
    pub fn caller(&self) -> Caller<'_> {
        self.cx.caller()
    }

    /// The unique name the bus daemon gave this handle's connection (`None` on a private
    /// socket).
    pub fn unique_name(&self) -> Option<&str> {
        self.cx.session.unique_name()
    }

    /// How many match rules the handle holds on the bus daemon right now: 0 while no
    /// operation waits, 2 while jobs are waited on, one more per unit followed.
    pub fn match_rules(&self) -> usize {
        self.cx.session.rules_held()
    }

    /// Ends the handle and hands its connection back, for a caller that keeps using it (a
    /// connection given to [`ManagerBuilder::wrap`], say), without the handle's message
    /// filter. It holds no match rule then: every operation has removed its own. Jobs still
    /// queued keep running in systemd; nothing waits for them.
    pub fn into_connection(self) -> Connection {
        self.cx.session.into_connection()
    }

    /// Whether this handle talks to the manager directly (private socket), not via a bus.
    pub fn is_direct(&self) -> bool {
        self.cx.is_direct()
    }

    /// How many job paths this handle is waiting on right now (queued jobs not yet waited on
    /// or dropped). Zero between operations: nothing is kept for finished or abandoned jobs.
    pub fn pending_jobs(&self) -> usize {
        self.cx.session.router().inbox.watched_len()
    }

    verb_methods! {
        /// Starts `unit` (`StartUnit`) and waits for the job's result.
        start => Start;
        /// Stops `unit` (`StopUnit`) and waits for the job's result.
        stop => Stop;
        /// Restarts `unit` (`RestartUnit`) and waits for the job's result.
        restart => Restart;
        /// Reloads `unit` (`ReloadUnit`) and waits for the job's result.
        reload => Reload;
        /// Restarts `unit` if it is running (`TryRestartUnit`) and waits for the job's result.
        try_restart => TryRestart;
        /// Reloads `unit` if it supports reloading, else restarts it (`ReloadOrRestartUnit`),
        /// and waits for the job's result.
        reload_or_restart => ReloadOrRestart;
        /// Reloads `unit` if it supports reloading, else try-restarts it
        /// (`ReloadOrTryRestartUnit`), and waits for the job's result.
        reload_or_try_restart => ReloadOrTryRestart;
    }

    /// Queues a `verb` job for `unit` and waits until systemd reports that job's result, or
    /// `timeout` passes. The timeout covers everything: the method call (with the match
    /// rules sent ahead of it in the same write), the wait, and the reads that explain a
    /// failure.
    ///
    /// # Errors
    /// - [`Error::InvalidUnitName`] before any bus traffic;
    /// - [`Error::NoSuchUnit`], [`Error::UnitMasked`], [`Error::LoadFailed`],
    ///   [`Error::AccessDenied`], [`Error::JobTypeNotApplicable`],
    ///   [`Error::TransactionRefused`] when systemd refuses the job;
    /// - [`Error::JobFailed`] when the job ends with a result other than `done`/`skipped`;
    /// - [`Error::NotActive`] when the opt-in active check fails;
    /// - [`Error::Timeout`] when `timeout` passes (a zero timeout fails before any bus traffic);
    /// - [`Error::ManagerGone`], [`Error::ManagerUnavailable`], [`Error::Disconnected`],
    ///   [`Error::Bus`] for the manager or bus failing (`Bus` with the call `AddMatch` when the
    ///   bus daemon refused the rule that routes the result to us: the job is queued then,
    ///   and runs on unseen);
    /// - [`Error::OutcomeUnknown`] when the job vanished without its `JobRemoved` and the
    ///   unit's state does not tell its result.
    pub fn run(
        &self,
        verb: Verb,
        unit: &str,
        mode: JobMode,
        timeout: Duration,
    ) -> Result<JobOutcome> {
        let deadline = Deadline::after(timeout);
        enqueue(&self.cx, verb, unit, mode, &deadline)?.wait_until(&deadline)
    }

    /// As [`run`](Manager::run), reporting progress to `callback` while it waits: on every
    /// change of the unit's state or status text, and every `every` while nothing changes.
    /// See [`Batch::on_progress`] for what it costs.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use systemd_jobs::{JobMode, Manager, Verb};
    ///
    /// let manager = Manager::system()?;
    /// let outcome = manager.run_with_progress(
    ///     Verb::Restart,
    ///     "postgresql.service",
    ///     JobMode::Replace,
    ///     Duration::from_secs(300),
    ///     Duration::from_millis(250),
    ///     |p| eprint!("\r{p} [{:?}]", p.elapsed),
    /// )?;
    /// # Ok::<(), systemd_jobs::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Manager::run`].
    pub fn run_with_progress(
        &self,
        verb: Verb,
        unit: &str,
        mode: JobMode,
        timeout: Duration,
        every: Duration,
        callback: impl FnMut(&Progress),
    ) -> Result<JobOutcome> {
        let mut results = self
            .batch()
            .mode(mode)
            .add(verb, unit)
            .on_progress(every, callback)
            .run(timeout);
        results.remove(0)
    }

    /// Starts `unit` and waits until it has run to completion, as `systemctl start --wait`
    /// does: the start job must end `done`, then the unit must become `inactive` or `failed`
    /// again. Meant for units that stop by themselves: oneshots (without
    /// `RemainAfterExit=`), migrations, first-boot work. One deadline covers it all.
    ///
    /// Before the job is queued, the unit is loaded and referenced (`Unit.Ref`, so systemd
    /// sends its property changes to us and keeps it loaded until its `Result` is read), and
    /// on a bus a match for its `PropertiesChanged` is added: three calls more than a plain
    /// start. They are undone afterwards without waiting for replies.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use systemd_jobs::{JobMode, Manager};
    ///
    /// let manager = Manager::system()?;
    /// let done = manager.run_to_completion("db-migrate.service", JobMode::Replace, Duration::from_secs(600))?;
    /// println!("{done}"); // db-migrate.service: ran to completion, success (main process exited with status 0, ran 8123 ms)
    /// # Ok::<(), systemd_jobs::Error>(())
    /// ```
    ///
    /// # Errors
    /// - as [`Manager::run`] for the start job (a failed dependency is explained the same way);
    /// - [`Error::RunFailed`] when the unit stopped with a `Result` other than `success`
    ///   (exit code, signal, timeout...), with the main process's status;
    /// - [`Error::StillActive`] when the unit is still running at the deadline.
    pub fn run_to_completion(
        &self,
        unit: &str,
        mode: JobMode,
        timeout: Duration,
    ) -> Result<Completion> {
        let deadline = Deadline::after(timeout);
        enqueue_run(&self.cx, Verb::Start, unit, mode, &deadline)?.wait_until(&deadline)
    }

    /// Starts `unit` as [`run_to_completion`](Manager::run_to_completion) does, but returns
    /// at once with a handle to wait on later. `timeout` bounds the setup and the call.
    ///
    /// # Errors
    /// As [`Manager::enqueue`].
    pub fn enqueue_run(
        &self,
        unit: &str,
        mode: JobMode,
        timeout: Duration,
    ) -> Result<QueuedRun<'_>> {
        enqueue_run(&self.cx, Verb::Start, unit, mode, &Deadline::after(timeout))
    }

    /// Queues a `verb` job for `unit` and returns at once with a handle on it, to wait on,
    /// query or cancel later. The job's result is kept for the handle until it is waited on or
    /// dropped. `timeout` bounds the method call.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use systemd_jobs::{JobMode, Manager, Verb};
    ///
    /// let manager = Manager::user()?;
    /// let job = manager.enqueue(Verb::Start, "backup.service", JobMode::Replace, Duration::from_secs(5))?;
    /// println!("queued {}", job.job());
    /// let outcome = job.wait(Duration::from_secs(600))?;
    /// # Ok::<(), systemd_jobs::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Manager::run`], except those about the job's result.
    pub fn enqueue(
        &self,
        verb: Verb,
        unit: &str,
        mode: JobMode,
        timeout: Duration,
    ) -> Result<QueuedJob<'_>> {
        enqueue(&self.cx, verb, unit, mode, &Deadline::after(timeout))
    }

    /// Starts a batch: several jobs queued together and waited for under one deadline.
    pub fn batch(&self) -> Batch<'_> {
        Batch::new(&self.cx)
    }

    /// Reloads the manager (`daemon-reload`: `Reload()`) and returns once it has finished
    /// reloading, within `timeout`. The manager answers only then; the wait is this
    /// operation's deadline, not a method-call default (a reload of a large system, or one
    /// whose generators are slow, can take longer than the 25 s libdbus would wait).
    /// Jobs already queued keep running and keep their results, for this handle's waits
    /// (whose `JobRemoved` is dispatched meanwhile) and for everybody else's. If the manager
    /// re-executes before it answers (someone's `daemon-reexec`), the reload is done once the
    /// new manager is there ([`Reloaded::by_reexecution`](crate::Reloaded::by_reexecution)).
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use systemd_jobs::Manager;
    ///
    /// let manager = Manager::system()?;
    /// std::fs::write("/etc/systemd/system/app.service", "[Service]\nExecStart=/usr/bin/app\n").unwrap();
    /// manager.daemon_reload(Duration::from_secs(120))?;
    /// # Ok::<(), systemd_jobs::Error>(())
    /// ```
    ///
    /// # Errors
    /// Named `daemon-reload` (in the `unit` field): [`Error::Timeout`] when the manager has
    /// not finished by the deadline (a hung or stopped manager), [`Error::AccessDenied`]
    /// when polkit refuses (`org.freedesktop.systemd1.reload-daemon`),
    /// [`Error::ManagerGone`], [`Error::ManagerUnavailable`], [`Error::Disconnected`] and
    /// [`Error::Bus`] for the manager or bus failing.
    pub fn daemon_reload(&self, timeout: Duration) -> Result<Reloaded> {
        daemon_reload(&self.cx, &Deadline::after(timeout))
    }

    /// Re-executes the manager (`daemon-reexec`: `Reexecute()`, what package upgrades of
    /// systemd run) and returns once the new manager answers (its `Version`), within
    /// `timeout`. Queued jobs survive a re-execution; this handle's waits follow the
    /// manager as after any re-execution.
    ///
    /// # Errors
    /// As [`daemon_reload`](Manager::daemon_reload), named `daemon-reexec`;
    /// [`Error::ManagerGone`] when no new manager takes over within the
    /// [re-exec grace](ManagerBuilder::reexec_grace).
    pub fn daemon_reexec(&self, timeout: Duration) -> Result<Reexecuted> {
        daemon_reexec(&self.cx, &Deadline::after(timeout))
    }

    /// A unit-file operation (`enable`, `disable`, `reenable`, `link`, `preset`, `mask`,
    /// `unmask`) on `units`: names, templates (`app@.service`), or absolute paths to unit
    /// files; see [`UnitFiles`] for its options (`--runtime`, `--force`, `--now`,
    /// `--no-reload`) and what it reports.
    pub fn unit_files<I, S>(&self, verb: UnitFileVerb, units: I) -> UnitFiles<'_>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        UnitFiles::new(&self.cx, verb, units.into_iter().map(Into::into).collect())
    }

    /// The unit file's state (`systemctl is-enabled`): `enabled`, `disabled`, `static`,
    /// `masked`, ... and [`UnitFileState::NotFound`] where there is no unit file of that
    /// name.
    ///
    /// # Errors
    /// [`Error::InvalidUnitName`] before any bus traffic; [`Error::Timeout`], and the manager
    /// and bus errors of any call.
    pub fn unit_file_state(&self, unit: &str, timeout: Duration) -> Result<UnitFileState> {
        unit_name::validate_file(unit)?;
        let deadline = Deadline::after(timeout);
        self.cx.ready(unit, &deadline)?;
        unit_file_state(&self.cx.caller(), unit, deadline.call_timeout()).map_err(|e| {
            Error::unless_timed_out(unit, &deadline, || {
                Error::from_unit_call(unit, "GetUnitFileState", e.into())
            })
        })
    }

    /// Clears `unit`'s `failed` state and its start-rate counter (`systemctl reset-failed
    /// UNIT`: `ResetFailedUnit`), so that a unit that hit its start limit
    /// (`start-limit-hit`) can be started again.
    ///
    /// # Errors
    /// [`Error::InvalidUnitName`] before any bus traffic; [`Error::NoSuchUnit`] for a unit
    /// that is not loaded (so not failed either); [`Error::AccessDenied`] when polkit
    /// refuses (`manage-units`); [`Error::Timeout`], and the manager and bus errors of any
    /// call.
    pub fn reset_failed(&self, unit: &str, timeout: Duration) -> Result<()> {
        reset_failed(&self.cx, Some(unit), &Deadline::after(timeout))
    }

    /// Clears the `failed` state of every unit (`systemctl reset-failed`: `ResetFailed`).
    ///
    /// # Errors
    /// As [`reset_failed`](Manager::reset_failed), named `reset-failed`.
    pub fn reset_all_failed(&self, timeout: Duration) -> Result<()> {
        reset_failed(&self.cx, None, &Deadline::after(timeout))
    }

    /// The desired state of `unit`, to check or apply idempotently: whether it runs and
    /// whether it starts at boot (see [`Desired`]).
    pub fn desired(&self, unit: impl Into<String>) -> Desired<'_> {
        Desired::new(&self.cx, unit.into())
    }

    /// Cancels a queued job (`Cancel` on the job object).
    ///
    /// # Errors
    /// [`Error::Bus`] with `org.freedesktop.systemd1.NoSuchJob` (or `UnknownObject`) if the
    /// job has already finished, [`Error::AccessDenied`] if the caller may not cancel it.
    pub fn cancel(&self, job: &Job, timeout: Duration) -> Result<()> {
        queued::cancel(&self.cx, job, timeout)
    }
}

/// Compile-time check that a handle can be moved to another thread.
const _: fn() = || {
    fn assert_send<T: Send>() {}
    assert_send::<Manager>();
    assert_send::<Error>();
};

//! Running a unit to completion: start it, then follow it until it is no longer active, as
//! `systemctl start --wait` does, and report how it ended.
//!
//! On a bus, systemd sends a unit's `PropertiesChanged` only to clients that subscribed to
//! all of its signals or hold a reference on the unit, and it may unload a unit that went
//! inactive. So before the job is queued, the unit is loaded (`LoadUnit`), referenced
//! (`Unit.Ref`, which both makes its signals reach us and keeps it loaded so its `Result` can
//! still be read), and a match for its `PropertiesChanged` is added. On a private socket every
//! signal reaches us anyway, and systemd refuses references from clients without a bus name
//! (`InvalidArgs`); a unit unloaded there before it was read is reported from the values its
//! last signals carried.
//!
//! A signal only wakes the wait: the end is decided by reading `ActiveState` from systemd, so
//! a forged or lost signal cannot end it early; the state is also read once a second while
//! nothing arrives (a manager that re-executed has dropped our reference and filter). The
//! reference and the match are dropped afterwards without waiting for replies.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dbus::Message;
use dbus::blocking::Proxy;
use dbus::channel::{MatchingReceiver, Sender, Token};
use dbus::message::MatchRule;

use crate::deadline::Deadline;
use crate::error::{BusError, Error, Result};
use crate::job::{Job, JobOutcome};
use crate::manager::Manager;
use crate::queued::QueuedJob;
use crate::unit_state::{ExitStatus, UnitReader, UnitResult, UnitState};
use crate::watch::{MANAGER_IFACE, MANAGER_PATH, SYSTEMD_NAME};

/// The longest wait without reading the unit's state.
const STATE_CHECK_INTERVAL: Duration = Duration::from_secs(1);
const UNIT_IFACE: &str = "org.freedesktop.systemd1.Unit";
const BUS_NAME: &str = "org.freedesktop.DBus";

/// How a unit that ran to completion ended, from [`Manager::run_to_completion`]: it
/// started, ran, and is inactive again with `Result=success`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Completion {
    /// The unit.
    pub unit: String,
    /// The start job's outcome.
    pub start: JobOutcome,
    /// The unit's `Result`: [`UnitResult::Success`].
    pub result: UnitResult,
    /// For services: how the main process ended, if one ran.
    pub main_process: Option<ExitStatus>,
    /// How long the unit ran, from leaving `inactive` to reaching `inactive` or `failed`
    /// again (systemd's own timestamps), when systemd recorded both.
    pub ran_for: Option<Duration>,
    /// Time from the start of the operation to the end of the run.
    pub elapsed: Duration,
}

impl fmt::Display for Completion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ran to completion, success (", self.unit)?;
        if let Some(p) = &self.main_process {
            write!(f, "{p}, ")?;
        }
        match self.ran_for {
            Some(d) => write!(f, "ran {} ms", d.as_millis()),
            None => write!(f, "{} ms in all", self.elapsed.as_millis()),
        }?;
        f.write_str(")")
    }
}

/// A start queued by [`Manager::enqueue_run`]: its job, and the unit followed until it
/// stops. Dropping it forgets both; the unit runs on in systemd.
#[derive(Debug)]
#[must_use = "the unit runs on in systemd; wait() on it to learn how it ended"]
pub struct QueuedRun<'m> {
    job: QueuedJob<'m>,
    follow: Follow<'m>,
}

impl<'m> QueuedRun<'m> {
    pub(crate) fn new(job: QueuedJob<'m>, follow: Follow<'m>) -> Self {
        QueuedRun { job, follow }
    }

    /// The start job.
    pub fn job(&self) -> &Job {
        self.job.job()
    }

    /// The unit, as given.
    pub fn unit(&self) -> &str {
        self.job.unit()
    }

    /// Waits up to `timeout` for the start job and then for the unit to stop.
    ///
    /// # Errors
    /// As [`Manager::run_to_completion`].
    pub fn wait(self, timeout: Duration) -> Result<Completion> {
        self.wait_until(&Deadline::after(timeout))
    }

    pub(crate) fn wait_until(self, deadline: &Deadline) -> Result<Completion> {
        let start = self.job.wait_until(deadline)?;
        self.follow.until_inactive(start, deadline)
    }

    /// The start job's path, for waiting on several runs at once.
    pub(crate) fn job_path(&self) -> &str {
        self.job.job().path()
    }
}

/// The unit of a run: referenced and watched from before its job is queued until dropped.
pub(crate) struct Follow<'m> {
    manager: &'m Manager,
    unit: String,
    path: dbus::Path<'static>,
    /// What the unit's `PropertiesChanged` signals carried.
    seen: Arc<Mutex<Seen>>,
    token: Option<Token>,
    bus_rule: Option<String>,
    referenced: bool,
}

impl fmt::Debug for Follow<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Follow")
            .field("unit", &self.unit)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl<'m> Follow<'m> {
    /// Loads, references and watches `unit`, within `deadline`.
    ///
    /// # Errors
    /// [`Error::NoSuchUnit`] and the other errors of loading a unit, or the bus daemon's
    /// refusal of the match.
    pub(crate) fn start(manager: &'m Manager, unit: &str, deadline: &Deadline) -> Result<Self> {
        let fail = |call: &'static str, e: BusError| {
            Error::unless_timed_out(unit, deadline, || {
                Error::from_job_call(unit, crate::Verb::Start, call, e)
            })
        };
        let conn = manager.connection();
        let systemd = Proxy::new(SYSTEMD_NAME, MANAGER_PATH, deadline.call_timeout(), &*conn);
        let (path,): (dbus::Path<'static>,) = systemd
            .method_call(MANAGER_IFACE, "LoadUnit", (unit,))
            .map_err(|e| fail("LoadUnit", e.into()))?;
        let mut follow = Follow {
            manager,
            unit: unit.to_owned(),
            path: path.clone(),
            seen: Arc::default(),
            token: None,
            bus_rule: None,
            referenced: false,
        };
        let mut rule =
            MatchRule::new_signal("org.freedesktop.DBus.Properties", "PropertiesChanged");
        rule.path = Some(path.clone());
        if !manager.is_direct() {
            let mut bus_rule = rule.clone();
            bus_rule.sender = Some(SYSTEMD_NAME.into());
            let bus_rule = bus_rule.match_str();
            Proxy::new(
                BUS_NAME,
                "/org/freedesktop/DBus",
                deadline.call_timeout(),
                &*conn,
            )
            .method_call::<(), _, _, _>(BUS_NAME, "AddMatch", (&bus_rule,))
            .map_err(|e| fail("AddMatch", e.into()))?;
            follow.bus_rule = Some(bus_rule);
        }
        let seen = Arc::clone(&follow.seen);
        follow.token = Some(conn.start_receive(
            rule,
            Box::new(move |msg: Message, _| {
                if let Ok((_, changed)) = msg.read2::<&str, dbus::arg::PropMap>() {
                    seen.lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .update(&changed);
                }
                true
            }),
        ));
        if !manager.is_direct() {
            Proxy::new(SYSTEMD_NAME, path, deadline.call_timeout(), &*conn)
                .method_call::<(), _, _, _>(UNIT_IFACE, "Ref", ())
                .map_err(|e| fail("Ref", e.into()))?;
            follow.referenced = true;
        }
        drop(conn);
        Ok(follow)
    }

    /// After the start job: waits until the unit is `inactive` or `failed`, then reads how
    /// it ended.
    fn until_inactive(self, start: JobOutcome, deadline: &Deadline) -> Result<Completion> {
        loop {
            let state = self.read_state(deadline)?;
            if matches!(state.active_state.as_str(), "inactive" | "failed") {
                return self.ended(start, deadline);
            }
            if deadline.expired() {
                return Err(Error::StillActive {
                    unit: self.unit.clone(),
                    state,
                    waited: deadline.elapsed(),
                });
            }
            log::debug!("{}: {state}, waiting for it to stop", self.unit);
            self.lock_seen().active_state = None;
            let slice = Deadline::after(STATE_CHECK_INTERVAL.min(deadline.remaining()));
            let seen = Arc::clone(&self.seen);
            let waited = self.manager.link().pump_until(&slice, move |_| {
                matches!(
                    seen.lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .active_state
                        .as_deref(),
                    Some("inactive" | "failed")
                )
            });
            match waited {
                Ok(()) | Err(crate::link::Interrupted::DeadlinePassed) => {}
                Err(other) => {
                    return Err(other.into_error(
                        &self.unit,
                        Some(start.job.clone()),
                        deadline,
                        self.manager.is_direct(),
                    ));
                }
            }
        }
    }

    fn lock_seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn read_state(&self, deadline: &Deadline) -> Result<UnitState> {
        let conn = self.manager.connection();
        UnitReader::open(&conn, &self.unit, deadline.call_timeout())
            .and_then(|r| r.state())
            .map_err(|e| self.read_error(e, deadline))
    }

    fn read_error(&self, e: BusError, deadline: &Deadline) -> Error {
        Error::unless_timed_out(&self.unit, deadline, || {
            Error::from_call(&self.unit, "Get", e)
        })
    }

    /// Reads how the run ended: success, or [`Error::RunFailed`].
    fn ended(&self, start: JobOutcome, deadline: &Deadline) -> Result<Completion> {
        let conn = self.manager.connection();
        let reader = UnitReader::open(&conn, &self.unit, deadline.call_timeout())
            .map_err(|e| self.read_error(e, deadline))?;
        let span = reader
            .run_span()
            .map_err(|e| self.read_error(e, deadline))?;
        let (result, main_process, span) = match self.lock_seen().unloaded_since(span) {
            // systemd unloaded the unit after it stopped and loaded it afresh for us: what
            // its last signals said is all there is.
            Some(seen) => seen,
            None => {
                let reason = reader
                    .failure_reason()
                    .map_err(|e| self.read_error(e, deadline))?;
                match reason {
                    Some(r) => (r.result, r.main_process, span),
                    None => (UnitResult::Success, None, span),
                }
            }
        };
        let (left, reached) = span;
        let ran_for = reached
            .checked_sub(left)
            .filter(|_| left > 0)
            .map(Duration::from_micros);
        if result != UnitResult::Success {
            return Err(Error::RunFailed {
                unit: self.unit.clone(),
                job: start.job,
                reason: crate::unit_state::FailureReason {
                    result,
                    main_process,
                },
                ran_for,
            });
        }
        Ok(Completion {
            unit: self.unit.clone(),
            start,
            result,
            main_process,
            ran_for,
            elapsed: deadline.elapsed(),
        })
    }
}

/// What a unit's `PropertiesChanged` signals carried, for a unit unloaded before it is read.
#[derive(Debug, Default)]
struct Seen {
    active_state: Option<String>,
    result: Option<String>,
    exec_main_code: Option<i32>,
    exec_main_status: Option<i32>,
    inactive_exit: Option<u64>,
    inactive_enter: Option<u64>,
}

impl Seen {
    fn update(&mut self, changed: &dbus::arg::PropMap) {
        use dbus::arg::prop_cast;
        if let Some(v) = prop_cast::<String>(changed, "ActiveState") {
            self.active_state = Some(v.clone());
        }
        if let Some(v) = prop_cast::<String>(changed, "Result") {
            self.result = Some(v.clone());
        }
        if let Some(v) = prop_cast::<i32>(changed, "ExecMainCode") {
            self.exec_main_code = Some(*v);
        }
        if let Some(v) = prop_cast::<i32>(changed, "ExecMainStatus") {
            self.exec_main_status = Some(*v);
        }
        if let Some(v) = prop_cast::<u64>(changed, "InactiveExitTimestampMonotonic") {
            self.inactive_exit = Some(*v);
        }
        if let Some(v) = prop_cast::<u64>(changed, "InactiveEnterTimestampMonotonic") {
            self.inactive_enter = Some(*v);
        }
    }

    /// If the unit as read now (`span`: when it last left and reached inactive) never ran,
    /// though its signals said it did, it was unloaded and loaded afresh: the result, main
    /// process status and span from the signals.
    #[allow(clippy::type_complexity)]
    fn unloaded_since(
        &self,
        span: (u64, u64),
    ) -> Option<(UnitResult, Option<ExitStatus>, (u64, u64))> {
        let exit = self.inactive_exit.filter(|&t| t > 0)?;
        if span.0 != 0 {
            return None;
        }
        let Ok(result) = self
            .result
            .as_deref()
            .unwrap_or("success")
            .parse::<UnitResult>();
        let main = ExitStatus::from_code(
            self.exec_main_code.unwrap_or(0),
            self.exec_main_status.unwrap_or(0),
        );
        Some((result, main, (exit, self.inactive_enter.unwrap_or(0))))
    }
}

impl Drop for Follow<'_> {
    /// Drops the reference and the match without waiting for replies (systemd drops both
    /// anyway when the connection closes).
    fn drop(&mut self) {
        let conn = self.manager.connection();
        if let Some(token) = self.token.take() {
            conn.stop_receive(token);
        }
        let mut calls = Vec::new();
        if self.referenced
            && let Ok(m) =
                Message::new_method_call(SYSTEMD_NAME, self.path.clone(), UNIT_IFACE, "Unref")
        {
            calls.push(m);
        }
        if let Some(rule) = self.bus_rule.take()
            && let Ok(m) =
                Message::new_method_call(BUS_NAME, "/org/freedesktop/DBus", BUS_NAME, "RemoveMatch")
        {
            calls.push(m.append1(rule));
        }
        for mut call in calls {
            call.set_no_reply(true);
            if conn.send(call).is_err() {
                log::debug!(
                    "{}: could not drop the unit's reference or match",
                    self.unit
                );
            }
        }
        conn.channel().flush();
    }
}

//! The session: the one owner of the connection to the manager, its match rules and signal
//! handlers, the manager's current owner, reconnecting, and the pump that dispatches what
//! arrives. Everything above it (job handles, batches, follow, progress) goes through it and
//! never touches the connection.
//!
//! # Idle costs nothing
//! A session holds a match rule on the bus daemon only while something waits for what the
//! rule routes: the `JobRemoved` and owner rules while any job is waited on
//! ([`Session::hold_job_signals`]), a unit's `PropertiesChanged` rule while it is followed. A
//! rule's `AddMatch` goes out right ahead of the call it serves, without waiting for its
//! reply: the bus daemon handles one connection's messages in order, so the rule is in force
//! before the call is routed, and the call still costs one round trip. The `RemoveMatch` goes
//! out without a reply when the last holder lets go. A handle that nobody waits on thus gets
//! no signal, however many jobs other clients run meanwhile.
//!
//! # Calls and the pump
//! Every call is sent and then waited for by pumping the connection (`process`), which
//! dispatches each message as it arrives, in order ([`router`]). libdbus's own blocking call
//! is never used: while it waits it scans its whole incoming queue for the reply after each
//! read of at most 2 KiB, so a backlog of N signals costs O(N²) (`check_for_reply_unlocked`
//! in `dbus-connection.c`, marked "@todo could use performance improvements").
//!
//! # Re-execution (`daemon-reexec`) and reload
//! systemd serializes its jobs, executes itself anew and carries on with them.
//! - On a bus, `org.freedesktop.systemd1` passes to a new unique name (directly, or through a
//!   moment with no owner). The inbox follows the owner, so `JobRemoved` from the new one
//!   counts. While the name has no owner, waiting goes on for the
//!   [re-exec grace](crate::ManagerBuilder::reexec_grace); if nobody takes the name by then,
//!   the manager is gone.
//! - On a private socket the connection is reset. The session connects to the same socket
//!   again (refused connections are retried for the grace; a connection that is accepted but
//!   not yet answered is waited on up to the deadline), puts its filter on the new
//!   connection, and keeps waiting; every handler registered with it keeps working.
//! - After either, and every [job check interval](crate::ManagerBuilder::job_check_interval)
//!   of a long wait, the session asks the manager whether each job it waits on still exists
//!   (`GetJob`). A job that is gone finished while no `JobRemoved` reached us: its result is
//!   settled from the unit's state ([`recover`]), or reported as unknown.
//!
//! `daemon-reload` keeps the process and its connections: nothing to follow.

pub(crate) mod caller;
pub(crate) mod inbox;
pub(crate) mod recover;
pub(crate) mod router;
mod rules;

use std::cell::{Cell, RefCell};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use dbus::Message;
use dbus::blocking::Connection;
use dbus::channel::{MatchingReceiver, Token};
use dbus::message::MatchRule;

use crate::deadline::Deadline;
use crate::error::{BusError, Error};
use crate::job::Job;
use crate::proto::{SYSTEMD_NAME, calls, errors};
use crate::transport::Bus;
use crate::transport::handshake::{self, OpenFailure};
use caller::Caller;
use router::{HandlerId, OnSignal, Router};
pub(crate) use rules::RuleHold;
use rules::Rules;

/// The shortest time a job check waits for its answer.
const MIN_CHECK_TIMEOUT: Duration = Duration::from_secs(1);

/// How often a refused private socket is tried again while the manager re-executes.
const RECONNECT_PAUSE: Duration = Duration::from_millis(20);

/// Why waiting stopped before the condition held.
#[derive(Debug, Clone)]
pub(crate) enum Interrupted {
    DeadlinePassed,
    ManagerGone,
    Disconnected(BusError),
}

impl Interrupted {
    /// The error an operation on `unit` (and `job`, once queued) reports for this.
    pub(crate) fn into_error(
        self,
        unit: &str,
        job: Option<Job>,
        deadline: &Deadline,
        direct: bool,
    ) -> Error {
        match self {
            Interrupted::DeadlinePassed => Error::timeout(unit, job, deadline),
            Interrupted::ManagerGone => Error::ManagerGone {
                unit: unit.to_owned(),
                job,
            },
            // On a private socket the peer is the manager itself.
            Interrupted::Disconnected(_) if direct => Error::ManagerGone {
                unit: unit.to_owned(),
                job,
            },
            Interrupted::Disconnected(source) => Error::Disconnected {
                unit: unit.to_owned(),
                source,
            },
        }
    }
}

/// Timing settings of a session.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    /// How long the manager may be away while it re-executes.
    pub(crate) grace: Duration,
    /// How often a long wait checks that its jobs still exist.
    pub(crate) job_check_interval: Duration,
}

/// One connection to the manager and everything registered on it.
pub(crate) struct Session {
    conn: RefCell<Connection>,
    /// The dbus-rs token of the router's filter on the current connection.
    filter: Cell<Option<Token>>,
    router: Arc<Mutex<Router>>,
    rules: Rules,
    /// Where to connect again after a reset; `None` for a connection the caller gave us.
    target: Option<Bus>,
    direct: bool,
    /// On a bus, the unique name the bus daemon gave us.
    unique_name: Option<String>,
    timing: Timing,
    /// How many holders keep the job rules ([`Session::hold_job_signals`]).
    job_signal_holders: Cell<usize>,
    /// When the jobs waited on were last checked with `GetJob`.
    jobs_checked_at: Cell<Instant>,
}

impl Session {
    /// Opens `bus` within `deadline`; on a bus that is our own `Hello`, nothing more.
    ///
    /// # Errors
    /// [`Error::Connect`], [`Error::RemoteUnreachable`] or [`Error::ConnectTimeout`].
    pub(crate) fn connect(bus: Bus, deadline: &Deadline, timing: Timing) -> Result<Self, Error> {
        let opened = handshake::open(&bus, deadline)?;
        let direct = bus.is_direct();
        Ok(Session {
            target: Some(bus),
            unique_name: opened.unique_name,
            ..Session::wrap(opened.conn, direct, timing)
        })
    }

    /// A session on a connection the caller opened; it cannot connect again.
    pub(crate) fn wrap(conn: Connection, direct: bool, timing: Timing) -> Self {
        let unique_name = conn.channel().unique_name().map(str::to_owned);
        let session = Session {
            unique_name,
            conn: RefCell::new(conn),
            filter: Cell::new(None),
            router: Arc::new(Mutex::new(Router::new(direct))),
            rules: Rules::default(),
            target: None,
            direct,
            timing,
            job_signal_holders: Cell::new(0),
            jobs_checked_at: Cell::new(Instant::now()),
        };
        session.install_filter(&session.conn.borrow());
        session
    }

    /// Puts the router's one filter on `conn`.
    fn install_filter(&self, conn: &Connection) {
        let router = Arc::clone(&self.router);
        let token = conn.start_receive(
            MatchRule::new(),
            Box::new(move |msg: Message, conn: &Connection| {
                let answer = lock(&router).dispatch(msg);
                if let Some(answer) = answer {
                    let _ = conn.channel().send(answer);
                }
                true
            }),
        );
        self.filter.set(Some(token));
    }

    /// Ends the session and hands the connection back without its filter. Nothing holds a
    /// rule then (every holder borrows the session).
    pub(crate) fn into_connection(self) -> Connection {
        let conn = self.conn.into_inner();
        if let Some(token) = self.filter.take() {
            conn.stop_receive(token);
        }
        conn
    }

    pub(crate) fn is_direct(&self) -> bool {
        self.direct
    }

    /// Our unique name on the bus (`None` on a private socket).
    pub(crate) fn unique_name(&self) -> Option<&str> {
        self.unique_name.as_deref()
    }

    /// Sends calls through the session; `interactive` sets the header flag that lets polkit ask.
    pub(crate) fn caller(&self, interactive: bool) -> Caller<'_> {
        Caller::new(self, interactive)
    }

    pub(crate) fn router(&self) -> MutexGuard<'_, Router> {
        lock(&self.router)
    }

    /// Queues `msg` for sending (libdbus writes what it can at once); returns its serial.
    pub(crate) fn send(&self, msg: Message) -> Result<u32, dbus::Error> {
        let conn = self.conn.borrow();
        let serial = conn.channel().send(msg).map_err(|()| {
            dbus::Error::new_custom(errors::DISCONNECTED, "the message could not be queued")
        })?;
        Ok(serial)
    }

    /// Sends `msg` expecting no reply, and flushes it.
    pub(crate) fn send_no_reply(&self, mut msg: Message) -> bool {
        msg.set_no_reply(true);
        let sent = self.send(msg).is_ok();
        self.conn.borrow().channel().flush();
        sent
    }

    /// Sends `msg` and returns a serial whose reply the router keeps.
    pub(crate) fn send_awaiting(&self, msg: Message) -> Result<u32, dbus::Error> {
        let serial = self.send(msg)?;
        self.router().await_reply(serial);
        Ok(serial)
    }

    /// Sends the method call `msg` and returns its serial, whose reply the router keeps for
    /// whoever pumps the connection next.
    ///
    /// # Errors
    /// `Disconnected` when the connection is gone.
    pub(crate) fn start_call(&self, msg: Message) -> Result<u32, dbus::Error> {
        if self.rules.len() > 0 {
            // Signals may have queued up for us (a job handle kept without waiting): take them
            // in first. A bus daemon drops every message, replies too, for a connection whose
            // queue is over its limit (`max_outgoing_bytes`), so a call sent into a full queue
            // could lose its reply and wait for nothing until its timeout.
            if let Err(Interrupted::Disconnected(e)) = self.drain() {
                return Err(dbus::Error::new_custom(e.name(), e.message()));
            }
        }
        self.send_awaiting(msg)
    }

    /// A method call: sends `msg`, then pumps until its reply arrives or `timeout` passes.
    /// Everything that arrives meanwhile is dispatched in order, each message once.
    ///
    /// # Errors
    /// The error reply; `NoReply` when `timeout` passes; `Disconnected` when the
    /// connection breaks.
    pub(crate) fn call(&self, msg: Message, timeout: Duration) -> Result<Message, dbus::Error> {
        let deadline = Deadline::after(timeout);
        let serial = self.start_call(msg)?;
        loop {
            if let Some(mut reply) = self.router().take_reply(serial) {
                reply.as_result()?;
                return Ok(reply);
            }
            let failed = match deadline.next_slice() {
                None => Some(dbus::Error::new_custom(
                    errors::NO_REPLY,
                    &format!("no reply within {timeout:?}"),
                )),
                Some(slice) => match self.process(slice) {
                    Ok(_) => None,
                    Err(Interrupted::Disconnected(e)) => {
                        Some(dbus::Error::new_custom(e.name(), e.message()))
                    }
                    Err(_) => Some(dbus::Error::new_custom(errors::DISCONNECTED, "gone")),
                },
            };
            if let Some(e) = failed {
                self.router().forget_reply(serial);
                return Err(e);
            }
        }
    }

    /// Holds a bus match rule: `AddMatch` is sent now, without waiting, if nobody held it.
    pub(crate) fn hold_rule(&self, rule: String) -> RuleHold<'_> {
        RuleHold::new(self, rule)
    }

    /// Holds the rules that route `JobRemoved` and changes of systemd's owner to us, for as
    /// long as a job is waited on. Taken before the job call is sent.
    pub(crate) fn hold_job_signals(&self) -> JobSignals<'_> {
        if self.job_signal_holders.get() == 0 {
            // Nothing followed the owner while nobody waited; the job call's reply tells it.
            self.router().inbox.forget_owner();
            self.jobs_checked_at.set(Instant::now());
        }
        self.job_signal_holders
            .set(self.job_signal_holders.get() + 1);
        JobSignals {
            session: self,
            rules: if self.direct {
                Vec::new()
            } else {
                rules::job_rules()
                    .into_iter()
                    .map(|rule| self.hold_rule(rule))
                    .collect()
            },
        }
    }

    /// Registers `on_signal` for signals that match `rule`, on this and every later
    /// connection, until the returned id is removed.
    pub(crate) fn add_handler(&self, rule: MatchRule<'static>, on_signal: OnSignal) -> HandlerId {
        self.router().add_handler(rule, on_signal)
    }

    pub(crate) fn remove_handler(&self, id: HandlerId) {
        self.router().remove_handler(id);
    }

    /// How many match rules the session holds on the bus now.
    pub(crate) fn rules_held(&self) -> usize {
        self.rules.len()
    }

    /// Pumps the connection until `done` holds for the router (its inbox, the replies it
    /// keeps), the deadline passes, the manager goes away for longer than the grace, or the
    /// connection breaks for good. Each wait blocks in `poll` for what is left of the
    /// deadline; nothing spins.
    pub(crate) fn pump_until(
        &self,
        deadline: &Deadline,
        mut done: impl FnMut(&Router) -> bool,
    ) -> Result<(), Interrupted> {
        loop {
            let (reattached, lost_for) = {
                let mut router = self.router();
                if done(&router) {
                    return Ok(());
                }
                (router.inbox.take_reattached(), router.inbox.name_lost_for())
            };
            let next_check = self.jobs_checked_at.get() + self.timing.job_check_interval;
            let check = if reattached {
                Some("after the manager came back")
            } else if Instant::now() >= next_check {
                Some("in a long wait")
            } else {
                None
            };
            if let Some(when) = check {
                match self.check_jobs(deadline, when) {
                    Err(Interrupted::Disconnected(e)) if self.can_reconnect() => {
                        log::debug!("private socket reset ({e}): connecting again");
                        self.reconnect(deadline)?;
                    }
                    other => other?,
                }
                continue;
            }
            let mut wait = match deadline.next_slice() {
                Some(slice) => slice,
                None => {
                    // Hand over anything that already arrived before calling it a timeout.
                    self.drain()?;
                    return if done(&self.router()) {
                        Ok(())
                    } else {
                        Err(Interrupted::DeadlinePassed)
                    };
                }
            };
            let until_check = next_check.saturating_duration_since(Instant::now());
            wait = wait.min(Deadline::after(until_check).next_slice().unwrap_or(wait));
            if let Some(lost_for) = lost_for {
                let Some(left) = self
                    .timing
                    .grace
                    .checked_sub(lost_for)
                    .filter(|l| !l.is_zero())
                else {
                    log::debug!(
                        "{SYSTEMD_NAME} had no owner for {lost_for:?}: the manager is gone"
                    );
                    return Err(Interrupted::ManagerGone);
                };
                wait = wait.min(Deadline::after(left).next_slice().unwrap_or(wait));
            }
            match self.process(wait) {
                Ok(_) => {}
                Err(Interrupted::Disconnected(e)) if self.can_reconnect() => {
                    log::debug!("private socket reset ({e}): connecting again");
                    self.reconnect(deadline)?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Before a call: handles what has arrived, and connects a reset private socket again
    /// (an idle handle learns of a re-execution only here).
    ///
    /// Does nothing where no reconnect is possible (a bus, a wrapped connection): a broken
    /// connection there fails the call itself.
    pub(crate) fn refresh(&self, deadline: &Deadline) -> Result<(), Interrupted> {
        if !self.can_reconnect() {
            return Ok(());
        }
        match self.drain() {
            Err(Interrupted::Disconnected(e)) => {
                log::debug!("private socket reset while idle ({e}): connecting again");
                self.reconnect(deadline)
            }
            other => other,
        }
    }

    /// Handles every message already received, without waiting.
    pub(crate) fn drain(&self) -> Result<(), Interrupted> {
        while self.process(Duration::ZERO)? {}
        Ok(())
    }

    /// Whether a reset connection can be opened again: a private socket this crate opened.
    fn can_reconnect(&self) -> bool {
        self.direct && self.target.is_some()
    }

    fn process(&self, wait: Duration) -> Result<bool, Interrupted> {
        let conn = self.conn.borrow();
        // A failed read or write means the connection is gone, whatever the `dbus` crate
        // names it (`…Error.Failed`, "Failed to read/write data"): it is named `Disconnected`
        // here, which is what reconnecting and the callers look for.
        let handled = conn.process(wait).map_err(|e| {
            Interrupted::Disconnected(BusError::new(
                errors::DISCONNECTED,
                e.message().unwrap_or("the connection failed"),
            ))
        })?;
        if !conn.channel().is_connected() {
            return Err(Interrupted::Disconnected(BusError::new(
                errors::DISCONNECTED,
                "the connection was closed",
            )));
        }
        Ok(handled)
    }

    /// Connects to the private socket again after a reset, within `deadline`; a refused
    /// connection is retried until the grace has passed. The router's filter goes on the new
    /// connection, so every handler carries on.
    fn reconnect(&self, deadline: &Deadline) -> Result<(), Interrupted> {
        let Some(bus) = &self.target else {
            return Err(Interrupted::ManagerGone);
        };
        let refused_until = Deadline::after(self.timing.grace.min(deadline.remaining()));
        let conn = loop {
            match handshake::open_direct(bus, deadline) {
                Ok(opened) => break opened,
                Err(OpenFailure::TimedOut(step)) => {
                    log::debug!("reconnecting: {step} did not finish before the deadline");
                    return Err(Interrupted::DeadlinePassed);
                }
                Err(OpenFailure::Failed(e)) if refused_until.expired() => {
                    log::debug!("reconnecting failed for {:?}: {e}", self.timing.grace);
                    return Err(Interrupted::ManagerGone);
                }
                Err(OpenFailure::Failed(_)) => {
                    std::thread::sleep(RECONNECT_PAUSE.min(refused_until.remaining()));
                }
            }
        };
        log::debug!("reconnected to {bus}");
        // Whatever the manager sent since is still queued on the new connection, and goes
        // through the filter at the next dispatch.
        self.install_filter(&conn);
        let Ok(mut slot) = self.conn.try_borrow_mut() else {
            // Not reachable: the session lends its connection out only within its own calls.
            return Err(Interrupted::Disconnected(BusError::new(
                errors::DISCONNECTED,
                "the connection is in use and cannot be replaced",
            )));
        };
        *slot = conn;
        drop(slot);
        self.router().inbox.mark_reattached();
        Ok(())
    }

    /// Asks whether each job we wait on still exists, and settles those that are gone and
    /// whose `JobRemoved` never came.
    fn check_jobs(&self, deadline: &Deadline, when: &str) -> Result<(), Interrupted> {
        self.jobs_checked_at.set(Instant::now());
        let unsettled = self.router().inbox.unsettled();
        let mut gone = Vec::new();
        let caller = self.caller(false);
        // A check that gets no answer (a reply lost, a busy manager) is tried again at the
        // next interval rather than holding the wait until the deadline.
        let timeout = deadline
            .call_timeout()
            .min(self.timing.job_check_interval.max(MIN_CHECK_TIMEOUT));
        for (path, request) in unsettled {
            let job = Job::from_path(path.as_str());
            match calls::job_exists(&caller, &job, timeout) {
                Ok(true) => log::debug!("{when}, {job} is still queued"),
                Ok(false) => gone.push((path, request)),
                Err(_) if deadline.expired() => return Err(Interrupted::DeadlinePassed),
                Err(e) if e.name() == errors::DISCONNECTED => {
                    return Err(Interrupted::Disconnected(e));
                }
                Err(e) => log::debug!("{when}, {job} could not be checked: {e}"),
            }
        }
        if gone.is_empty() {
            return Ok(());
        }
        // A JobRemoved sent before the manager answered has been dispatched by now.
        self.drain()?;
        for (path, request) in gone {
            if self.router().inbox.settled(&path).is_some() {
                continue;
            }
            let job = Job::from_path(path.as_str());
            log::debug!("{when}, {job} is gone and its JobRemoved never came");
            let settled = recover::settle_lost(&caller, &job, &request, deadline);
            self.router().inbox.settle(&path, settled);
        }
        Ok(())
    }
}

/// The job rules held for one waiter; dropping it lets go.
pub(crate) struct JobSignals<'s> {
    session: &'s Session,
    rules: Vec<RuleHold<'s>>,
}

impl JobSignals<'_> {
    /// The bus daemon's refusal of a job rule, if it refused one (its reply comes before the
    /// reply to any call sent after the rule).
    pub(crate) fn refused(&self) -> Option<BusError> {
        self.rules.iter().find_map(RuleHold::refused)
    }
}

impl Drop for JobSignals<'_> {
    fn drop(&mut self) {
        let holders = &self.session.job_signal_holders;
        holders.set(holders.get().saturating_sub(1));
    }
}

/// Locks the router; a callback that panicked cannot leave it half-written, so poisoning is
/// ignored.
fn lock(router: &Mutex<Router>) -> MutexGuard<'_, Router> {
    router.lock().unwrap_or_else(|p| p.into_inner())
}

//! The live link to the manager: the connection and its subscription, the loop that pumps it
//! until results arrive, and following the manager when it re-executes.
//!
//! # Re-execution (`daemon-reexec`) and reload
//! systemd serializes its jobs, executes itself anew and carries on with them.
//! - On a bus, `org.freedesktop.systemd1` passes to a new unique name (directly, or through a
//!   moment with no owner). The inbox follows the owner, so `JobRemoved` from the new one
//!   counts. While the name has no owner, waiting goes on for the
//!   [re-exec grace](crate::ManagerBuilder::reexec_grace); if nobody takes the name by then,
//!   the manager is gone.
//! - On a private socket the connection is reset. The link connects to the same socket again
//!   (refused connections are retried for the grace; a connection that is accepted but not
//!   yet answered is waited on up to the deadline) and keeps waiting.
//! - After either, the link asks the manager whether each job it waits on still exists
//!   (`GetJob`). A job that is gone finished while no manager could tell us: its result is
//!   settled from the unit's state ([`crate::recover`]), or reported as unknown.
//!
//! `daemon-reload` keeps the process and its connections: nothing to follow.

use std::cell::{Ref, RefCell};
use std::time::Duration;

use dbus::blocking::{Connection, Proxy};

use crate::connect::{Bus, OpenFailure};
use crate::deadline::Deadline;
use crate::error::{BusError, Error};
use crate::job::Job;
use crate::recover;
use crate::watch::{
    self, Inbox, MANAGER_IFACE, MANAGER_PATH, SYSTEMD_NAME, SharedInbox, Subscription,
};

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

/// One connection to the manager, with what is needed to keep it across re-execution.
pub(crate) struct Link {
    conn: RefCell<Connection>,
    /// Where to connect again after a reset; `None` for a connection the caller gave us.
    bus: Option<Bus>,
    direct: bool,
    inbox: SharedInbox,
    subscription: RefCell<Option<Subscription>>,
    grace: Duration,
}

impl Link {
    /// Opens `bus` and subscribes, within `deadline`. On a bus the subscription's calls go
    /// out right behind `Hello` and cost no round trip of their own.
    ///
    /// # Errors
    /// [`Error::Connect`] or [`Error::ConnectTimeout`], naming the step.
    pub(crate) fn connect(bus: Bus, deadline: &Deadline, grace: Duration) -> Result<Self, Error> {
        let direct = bus.is_direct();
        let opened = bus.open(Subscription::calls(direct), deadline)?;
        let link = Link::wrap(opened.conn, direct, grace);
        let sub = Subscription::from_replies(&link.conn(), direct, &link.inbox, opened.replies)
            .map_err(|source| Error::Connect {
                target: bus.to_string(),
                source,
            })?;
        *link.subscription.borrow_mut() = Some(sub);
        Ok(Link {
            bus: Some(bus),
            ..link
        })
    }

    /// A link on a connection the caller opened; it subscribes on first use
    /// ([`Link::subscribe`]) and cannot connect again.
    pub(crate) fn wrap(conn: Connection, direct: bool, grace: Duration) -> Self {
        Link {
            conn: RefCell::new(conn),
            bus: None,
            direct,
            inbox: SharedInbox::default(),
            subscription: RefCell::new(None),
            grace,
        }
    }

    /// Ends the subscription and hands the connection back, for a caller that keeps using
    /// it. The bus daemon is asked to drop the match rules without waiting for its replies.
    pub(crate) fn into_connection(self) -> Connection {
        let conn = self.conn.into_inner();
        if let Some(mut sub) = self.subscription.into_inner() {
            sub.remove_without_reply(&conn);
        }
        conn
    }

    pub(crate) fn conn(&self) -> Ref<'_, Connection> {
        self.conn.borrow()
    }

    pub(crate) fn inbox(&self) -> &SharedInbox {
        &self.inbox
    }

    pub(crate) fn is_direct(&self) -> bool {
        self.direct
    }

    pub(crate) fn is_subscribed(&self) -> bool {
        self.subscription.borrow().is_some()
    }

    /// Whether a reset connection can be opened again: a private socket this crate opened.
    fn can_reconnect(&self) -> bool {
        self.direct && self.bus.is_some()
    }

    /// Adds the subscription on first use (only a link made with [`Link::wrap`] has none).
    pub(crate) fn subscribe(&self, deadline: &Deadline) -> Result<(), BusError> {
        let mut slot = self.subscription.borrow_mut();
        if slot.is_none() {
            *slot = Some(Subscription::add(
                &self.conn.borrow(),
                self.direct,
                &self.inbox,
                deadline,
            )?);
        }
        Ok(())
    }

    /// Pumps the connection until `done` holds for the inbox, the deadline passes, the manager
    /// goes away for longer than the grace, or the connection breaks for good. Each wait
    /// blocks in `poll` for what is left of the deadline; nothing spins.
    pub(crate) fn pump_until(
        &self,
        deadline: &Deadline,
        mut done: impl FnMut(&Inbox) -> bool,
    ) -> Result<(), Interrupted> {
        loop {
            let (reattached, lost_for) = {
                let mut inbox = watch::lock(&self.inbox);
                if done(&inbox) {
                    return Ok(());
                }
                (inbox.take_reattached(), inbox.name_lost_for())
            };
            if reattached {
                self.check_jobs(deadline)?;
                continue;
            }
            let mut wait = match deadline.next_slice() {
                Some(slice) => slice,
                None => {
                    // Hand over anything that already arrived before calling it a timeout.
                    self.drain()?;
                    return if done(&watch::lock(&self.inbox)) {
                        Ok(())
                    } else {
                        Err(Interrupted::DeadlinePassed)
                    };
                }
            };
            if let Some(lost_for) = lost_for {
                let Some(left) = self.grace.checked_sub(lost_for).filter(|l| !l.is_zero()) else {
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

    fn process(&self, wait: Duration) -> Result<bool, Interrupted> {
        let conn = self.conn.borrow();
        let handled = conn
            .process(wait)
            .map_err(|e| Interrupted::Disconnected(e.into()))?;
        if !conn.channel().is_connected() {
            return Err(Interrupted::Disconnected(BusError::new(
                "org.freedesktop.DBus.Error.Disconnected",
                "the connection was closed",
            )));
        }
        Ok(handled)
    }

    /// Connects to the private socket again after a reset, within `deadline`; a refused
    /// connection is retried until the grace has passed.
    fn reconnect(&self, deadline: &Deadline) -> Result<(), Interrupted> {
        let Some(bus) = &self.bus else {
            return Err(Interrupted::ManagerGone);
        };
        let refused_until = Deadline::after(self.grace.min(deadline.remaining()));
        let conn = loop {
            match bus.open_direct(deadline) {
                Ok(opened) => break opened,
                Err(OpenFailure::TimedOut(step)) => {
                    log::debug!("reconnecting: {step} did not finish before the deadline");
                    return Err(Interrupted::DeadlinePassed);
                }
                Err(OpenFailure::Failed(e)) if refused_until.expired() => {
                    log::debug!("reconnecting failed for {:?}: {e}", self.grace);
                    return Err(Interrupted::ManagerGone);
                }
                Err(OpenFailure::Failed(_)) => {
                    std::thread::sleep(RECONNECT_PAUSE.min(refused_until.remaining()));
                }
            }
        };
        log::debug!("reconnected to {bus}");
        if let Some(sub) = self.subscription.borrow_mut().as_mut() {
            sub.forget_filters();
            sub.add_filters(&conn, self.direct, &self.inbox);
        }
        // Whatever the manager sent since is still queued on the new connection, and goes
        // through these filters at the next dispatch.
        watch::lock(&self.inbox).mark_reattached();
        *self.conn.borrow_mut() = conn;
        Ok(())
    }

    /// After the manager came back: asks whether each job we wait on still exists, and
    /// settles those that are gone and whose `JobRemoved` never came.
    fn check_jobs(&self, deadline: &Deadline) -> Result<(), Interrupted> {
        let unsettled = watch::lock(&self.inbox).unsettled();
        let mut gone = Vec::new();
        for (path, request) in unsettled {
            let job = Job::from_path(path.as_str());
            match self.job_exists(&job, deadline) {
                Ok(true) => log::debug!("after re-attaching, {job} is still queued"),
                Ok(false) => gone.push((path, request)),
                Err(_) if deadline.expired() => return Err(Interrupted::DeadlinePassed),
                Err(e) if e.name() == "org.freedesktop.DBus.Error.Disconnected" => {
                    return Err(Interrupted::Disconnected(e));
                }
                Err(e) => log::debug!("after re-attaching, {job} could not be checked: {e}"),
            }
        }
        if gone.is_empty() {
            return Ok(());
        }
        // A JobRemoved sent before the manager answered is already queued on the connection.
        self.drain()?;
        for (path, request) in gone {
            if watch::lock(&self.inbox).settled(&path).is_some() {
                continue;
            }
            let job = Job::from_path(path.as_str());
            let settled = recover::settle_lost(&self.conn.borrow(), &job, &request, deadline);
            watch::lock(&self.inbox).settle(&path, settled);
        }
        Ok(())
    }

    fn job_exists(&self, job: &Job, deadline: &Deadline) -> Result<bool, BusError> {
        let conn = self.conn.borrow();
        let proxy = Proxy::new(SYSTEMD_NAME, MANAGER_PATH, deadline.call_timeout(), &*conn);
        match proxy.method_call::<(dbus::Path<'static>,), _, _, _>(
            MANAGER_IFACE,
            "GetJob",
            (job.id(),),
        ) {
            Ok(_) => Ok(true),
            Err(e) if e.name() == Some("org.freedesktop.systemd1.NoSuchJob") => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}

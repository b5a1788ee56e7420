//! Watching for results: the `JobRemoved` subscription and the record of results for the jobs
//! we wait on.
//!
//! One [`Subscription`] serves every operation of a [`Manager`](crate::Manager): it is added
//! before the first job is queued and removed when the manager is dropped, so an operation
//! sends only its method call. Results are keyed by job *path*; a `JobRemoved` for a path no
//! caller waits on (another client's job, even on the same unit) is dropped.
//!
//! On a bus, the inbox also follows who owns `org.freedesktop.systemd1`: a `JobRemoved` counts
//! only when it comes from the current owner, and a change of owner (systemd re-executing)
//! is recorded so the waiting code can check on its jobs (see [`crate::link`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use dbus::Message;
use dbus::blocking::{Connection, Proxy};
use dbus::channel::{MatchingReceiver, Token};
use dbus::message::MatchRule;

use crate::deadline::Deadline;
use crate::error::BusError;
use crate::job::{JobResult, ResultSource, Verb};

pub(crate) const SYSTEMD_NAME: &str = "org.freedesktop.systemd1";
pub(crate) const MANAGER_PATH: &str = "/org/freedesktop/systemd1";
pub(crate) const MANAGER_IFACE: &str = "org.freedesktop.systemd1.Manager";
pub(crate) const JOB_IFACE: &str = "org.freedesktop.systemd1.Job";
const BUS_NAME: &str = "org.freedesktop.DBus";

/// What `JobRemoved` (or, after a lost signal, the unit's state) said about a job.
#[derive(Debug, Clone)]
pub(crate) struct Removed {
    pub(crate) id: u32,
    pub(crate) unit: String,
    pub(crate) result: JobResult,
    pub(crate) source: ResultSource,
}

/// How a job we wait on ended, as far as we know.
#[derive(Debug, Clone)]
pub(crate) enum Settled {
    Removed(Removed),
    /// The job is gone, its `JobRemoved` was lost, and the unit's state does not tell its
    /// result; the text says what was seen.
    Unknown(String),
}

/// What we asked for, kept to settle a job whose `JobRemoved` was lost.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub(crate) unit: String,
    pub(crate) verb: Verb,
    /// `CLOCK_MONOTONIC` in µs just before the job call was sent (systemd's `…Monotonic`
    /// timestamps use the same clock).
    pub(crate) queued_at_usec: u64,
}

#[derive(Debug)]
struct Watch {
    /// How many [`QueuedJob`](crate::QueuedJob)s wait on this path (systemd may merge requests
    /// into one job, and every requester gets its result).
    waiters: usize,
    request: Request,
    settled: Option<Settled>,
}

/// Shared between the signal callbacks and the waiting code.
#[derive(Debug, Default)]
pub(crate) struct Inbox {
    watched: HashMap<String, Watch>,
    /// On a bus: the unique name that owns `org.freedesktop.systemd1` now (`None` while the
    /// name has no owner). Unused on a direct connection, where signals carry no sender.
    owner: Option<String>,
    direct: bool,
    /// When the name lost its owner, while it has none.
    name_lost_at: Option<Instant>,
    /// Set when the manager came back (a new owner, a new connection); the waiting code then
    /// checks that the jobs it waits on still exist.
    reattached: bool,
}

impl Inbox {
    pub(crate) fn watch(&mut self, path: &str, request: Request) {
        self.watched
            .entry(path.to_owned())
            .or_insert(Watch {
                waiters: 0,
                request,
                settled: None,
            })
            .waiters += 1;
    }

    pub(crate) fn unwatch(&mut self, path: &str) {
        if let Some(w) = self.watched.get_mut(path) {
            w.waiters -= 1;
            if w.waiters == 0 {
                self.watched.remove(path);
            }
        }
    }

    pub(crate) fn settled(&self, path: &str) -> Option<&Settled> {
        self.watched.get(path).and_then(|w| w.settled.as_ref())
    }

    /// How many job paths are being waited on (for tests of leaks).
    pub(crate) fn watched_len(&self) -> usize {
        self.watched.len()
    }

    /// The jobs not settled yet, with what was asked for each.
    pub(crate) fn unsettled(&self) -> Vec<(String, Request)> {
        self.watched
            .iter()
            .filter(|(_, w)| w.settled.is_none())
            .map(|(p, w)| (p.clone(), w.request.clone()))
            .collect()
    }

    pub(crate) fn settle(&mut self, path: &str, settled: Settled) {
        if let Some(w) = self.watched.get_mut(path)
            && w.settled.is_none()
        {
            w.settled = Some(settled);
        }
    }

    /// How long `org.freedesktop.systemd1` has had no owner, if it has none now.
    pub(crate) fn name_lost_for(&self) -> Option<Duration> {
        self.name_lost_at.map(|t| t.elapsed())
    }

    /// Whether the manager came back since the last call (and clears the mark).
    pub(crate) fn take_reattached(&mut self) -> bool {
        std::mem::take(&mut self.reattached)
    }

    /// Marks the manager as reached again on a new connection.
    pub(crate) fn mark_reattached(&mut self) {
        self.reattached = true;
    }

    /// Records a `JobRemoved` if it is systemd's (on a bus: sent by the current owner of
    /// its name) and for a job we wait on.
    pub(crate) fn accept_job_removed(&mut self, msg: &Message) {
        if !self.direct {
            let sender = msg.sender();
            if sender.as_deref() != self.owner.as_deref() {
                log::debug!(
                    "JobRemoved from {sender:?}, not from {SYSTEMD_NAME}'s owner {:?}: ignored",
                    self.owner
                );
                return;
            }
        }
        match msg.read4::<u32, dbus::Path, &str, &str>() {
            Ok((id, path, unit, result)) => self.record(id, &path, unit, result),
            Err(e) => log::debug!("JobRemoved with an unexpected body ignored: {e}"),
        }
    }

    fn record(&mut self, id: u32, path: &str, unit: &str, result: &str) {
        match self.watched.get_mut(path) {
            Some(w) if w.settled.is_none() => {
                log::debug!("JobRemoved for our job {id} ({path}) on {unit}: {result}");
                let Ok(result) = result.parse::<JobResult>();
                w.settled = Some(Settled::Removed(Removed {
                    id,
                    unit: unit.to_owned(),
                    result,
                    source: ResultSource::JobRemoved,
                }));
            }
            Some(_) => log::debug!("JobRemoved for job {id} ({path}) again: ignored"),
            None => log::debug!(
                "JobRemoved for job {id} ({path}) on {unit}: {result}; not ours, ignored"
            ),
        }
    }

    /// Follows `NameOwnerChanged` for systemd's name.
    fn owner_changed(&mut self, old: &str, new: &str) {
        if new.is_empty() {
            log::debug!("{SYSTEMD_NAME} lost its owner {old}: waiting for the manager to return");
            self.owner = None;
            self.name_lost_at.get_or_insert_with(Instant::now);
        } else {
            log::debug!("{SYSTEMD_NAME} moved from {old:?} to {new}: the manager re-executed");
            self.owner = Some(new.to_owned());
            self.name_lost_at = None;
            self.reattached = true;
        }
    }
}

pub(crate) type SharedInbox = Arc<Mutex<Inbox>>;

/// Locks the inbox; a callback that panicked cannot leave it half-written, so poisoning is
/// ignored.
pub(crate) fn lock(inbox: &SharedInbox) -> MutexGuard<'_, Inbox> {
    inbox.lock().unwrap_or_else(|p| p.into_inner())
}

/// The `JobRemoved` rules: for the bus daemon, from systemd's well-known name (the daemon
/// routes signals of whoever owns it); locally, any sender, checked against the current owner
/// in [`Inbox::accept_job_removed`], since a signal unicast to us by any client passes the
/// daemon. On a direct connection signals carry no sender, and only the manager is at the
/// other end.
fn job_removed_rules() -> (MatchRule<'static>, String) {
    let mut rule = MatchRule::new_signal(MANAGER_IFACE, "JobRemoved");
    rule.path = Some(MANAGER_PATH.into());
    let mut bus_rule = rule.clone();
    bus_rule.sender = Some(SYSTEMD_NAME.into());
    (rule, bus_rule.match_str())
}

/// `NameOwnerChanged` for systemd's name, strictly from the bus daemon itself (no client can
/// send with the sender `org.freedesktop.DBus`).
fn owner_rules() -> (MatchRule<'static>, String) {
    let mut rule = MatchRule::new_signal(BUS_NAME, "NameOwnerChanged");
    rule.sender = Some(BUS_NAME.into());
    rule.strict_sender = true;
    rule.path = Some("/org/freedesktop/DBus".into());
    // MatchRule cannot express argument matches; the bus-side rule adds arg0 so the daemon
    // sends us only changes of systemd's name.
    let bus_rule = format!("{},arg0='{SYSTEMD_NAME}'", rule.match_str());
    (rule, bus_rule)
}

/// A proxy on the bus daemon itself, for `GetNameOwner`, `AddMatch` and `RemoveMatch`.
fn bus_daemon(conn: &Connection, timeout: Duration) -> Proxy<'static, &Connection> {
    Proxy::new(BUS_NAME, "/org/freedesktop/DBus", timeout, conn)
}

/// The unique bus name of systemd's manager (`GetNameOwner`).
fn manager_unique_name(conn: &Connection, deadline: &Deadline) -> Result<String, BusError> {
    let (owner,): (String,) = bus_daemon(conn, deadline.call_timeout()).method_call(
        BUS_NAME,
        "GetNameOwner",
        (SYSTEMD_NAME,),
    )?;
    log::debug!("{SYSTEMD_NAME} is {owner}");
    Ok(owner)
}

/// The match rules and local filters a manager handle holds while it lives.
pub(crate) struct Subscription {
    tokens: Vec<Token>,
    bus_rules: Vec<String>,
}

impl Subscription {
    /// Adds the `JobRemoved` match (and, on a bus, a match for changes of systemd's bus name)
    /// with callbacks that record into `inbox`.
    ///
    /// On a bus this is `add_match` done in its two halves, `AddMatch` through a proxy whose
    /// timeout is what is left of `deadline` (the crate's `add_match` always waits up to 5 s)
    /// and `start_receive` for the callback. On a direct connection there is no bus daemon to
    /// ask: the manager sends its signals to us anyway, and only the local filter is added.
    pub(crate) fn add(
        conn: &Connection,
        direct: bool,
        inbox: &SharedInbox,
        deadline: &Deadline,
    ) -> Result<Self, BusError> {
        let mut sub = Subscription {
            tokens: Vec::new(),
            bus_rules: Vec::new(),
        };
        {
            let mut inbox = lock(inbox);
            inbox.direct = direct;
            if !direct {
                inbox.owner = Some(manager_unique_name(conn, deadline)?);
            }
        }
        if !direct {
            for bus_rule in [job_removed_rules().1, owner_rules().1] {
                sub.add_bus_rule(conn, bus_rule, deadline)
                    .inspect_err(|_| sub.remove(conn))?;
            }
        }
        sub.add_filters(conn, direct, inbox);
        Ok(sub)
    }

    /// Adds the local filters (message callbacks) on `conn`; also used on the new connection
    /// that replaces a reset private socket.
    pub(crate) fn add_filters(&mut self, conn: &Connection, direct: bool, inbox: &SharedInbox) {
        let jobs = Arc::clone(inbox);
        self.tokens.push(conn.start_receive(
            job_removed_rules().0,
            Box::new(move |msg: Message, _: &Connection| {
                lock(&jobs).accept_job_removed(&msg);
                true
            }),
        ));
        if !direct {
            let owner = Arc::clone(inbox);
            self.tokens.push(conn.start_receive(
                owner_rules().0,
                Box::new(move |msg: Message, _: &Connection| {
                    if let Ok((name, old, new)) = msg.read3::<&str, &str, &str>()
                        && name == SYSTEMD_NAME
                    {
                        lock(&owner).owner_changed(old, new);
                    }
                    true
                }),
            ));
        }
    }

    /// Forgets the local filters of a connection that is gone (they went with it).
    pub(crate) fn forget_filters(&mut self) {
        self.tokens.clear();
    }

    fn add_bus_rule(
        &mut self,
        conn: &Connection,
        rule: String,
        deadline: &Deadline,
    ) -> Result<(), BusError> {
        bus_daemon(conn, deadline.call_timeout()).method_call::<(), _, _, _>(
            BUS_NAME,
            "AddMatch",
            (&rule,),
        )?;
        log::debug!("match added: {rule}");
        self.bus_rules.push(rule);
        Ok(())
    }

    /// Removes the local filters and the bus-side rules. A failing `RemoveMatch` (bus gone)
    /// is only logged: the daemon drops a client's rules when it disconnects anyway.
    pub(crate) fn remove(&mut self, conn: &Connection) {
        for token in self.tokens.drain(..) {
            conn.stop_receive(token);
        }
        let proxy = bus_daemon(conn, Duration::from_secs(1));
        for rule in self.bus_rules.drain(..) {
            match proxy.method_call::<(), _, _, _>(BUS_NAME, "RemoveMatch", (&rule,)) {
                Ok(()) => log::debug!("match removed: {rule}"),
                Err(e) => log::debug!("RemoveMatch failed (bus gone?): {}", BusError::from(e)),
            }
        }
    }
}

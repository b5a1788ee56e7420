//! Waiting: the `JobRemoved` subscription, the record of results for the jobs we wait on, and
//! the loop that pumps the connection until they arrive or the deadline passes.
//!
//! One [`Subscription`] serves every operation of a [`Manager`](crate::Manager): it is added
//! before the first job is queued and removed when the manager is dropped, so an operation
//! sends only its method call. Results are keyed by job *path*; a `JobRemoved` for a path no
//! caller waits on (another client's job, even on the same unit) is dropped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use dbus::Message;
use dbus::blocking::{Connection, Proxy};
use dbus::channel::{MatchingReceiver, Token};
use dbus::message::MatchRule;

use crate::deadline::Deadline;
use crate::error::BusError;
use crate::job::JobResult;

pub(crate) const SYSTEMD_NAME: &str = "org.freedesktop.systemd1";
pub(crate) const MANAGER_PATH: &str = "/org/freedesktop/systemd1";
pub(crate) const MANAGER_IFACE: &str = "org.freedesktop.systemd1.Manager";
pub(crate) const JOB_IFACE: &str = "org.freedesktop.systemd1.Job";

/// What `JobRemoved` said about a job.
#[derive(Debug, Clone)]
pub(crate) struct Removed {
    pub(crate) id: u32,
    pub(crate) unit: String,
    pub(crate) result: JobResult,
}

#[derive(Debug, Default)]
struct Watch {
    /// How many [`QueuedJob`](crate::QueuedJob)s wait on this path (systemd may merge requests
    /// into one job, and every requester gets its result).
    waiters: usize,
    removed: Option<Removed>,
}

/// Shared between the signal callbacks and the waiting code.
#[derive(Debug, Default)]
pub(crate) struct Inbox {
    watched: HashMap<String, Watch>,
    manager_gone: bool,
}

impl Inbox {
    pub(crate) fn watch(&mut self, path: &str) {
        self.watched.entry(path.to_owned()).or_default().waiters += 1;
    }

    pub(crate) fn unwatch(&mut self, path: &str) {
        if let Some(w) = self.watched.get_mut(path) {
            w.waiters -= 1;
            if w.waiters == 0 {
                self.watched.remove(path);
            }
        }
    }

    pub(crate) fn removed(&self, path: &str) -> Option<&Removed> {
        self.watched.get(path).and_then(|w| w.removed.as_ref())
    }

    pub(crate) fn manager_gone(&self) -> bool {
        self.manager_gone
    }

    /// How many job paths are being waited on (for tests of leaks).
    pub(crate) fn watched_len(&self) -> usize {
        self.watched.len()
    }

    fn record(&mut self, id: u32, path: &str, unit: &str, result: &str) {
        match self.watched.get_mut(path) {
            Some(w) => {
                log::debug!("JobRemoved for our job {id} ({path}) on {unit}: {result}");
                let Ok(result) = result.parse::<JobResult>();
                w.removed = Some(Removed {
                    id,
                    unit: unit.to_owned(),
                    result,
                });
            }
            None => log::debug!(
                "JobRemoved for job {id} ({path}) on {unit}: {result}; not ours, ignored"
            ),
        }
    }
}

pub(crate) type SharedInbox = Arc<Mutex<Inbox>>;

/// Locks the inbox; a callback that panicked cannot leave it half-written, so poisoning is
/// ignored.
pub(crate) fn lock(inbox: &SharedInbox) -> MutexGuard<'_, Inbox> {
    inbox.lock().unwrap_or_else(|p| p.into_inner())
}

/// The `JobRemoved` rule. On a bus the daemon filters by systemd's well-known name, and the
/// local filter by the unique name that owns it (`manager`), strictly: a signal unicast to us
/// by any other client is not taken for systemd's. On a direct connection signals carry no
/// sender, and only the manager is at the other end.
fn job_removed_rules(manager: Option<&str>) -> (MatchRule<'static>, String) {
    let mut rule = MatchRule::new_signal(MANAGER_IFACE, "JobRemoved");
    rule.path = Some(MANAGER_PATH.into());
    let Some(unique) = manager else {
        return (rule, String::new());
    };
    rule.sender = Some(SYSTEMD_NAME.into());
    let bus_rule = rule.match_str();
    rule.sender = Some(unique.to_owned().into());
    rule.strict_sender = true;
    (rule, bus_rule)
}

fn name_lost_rule() -> (MatchRule<'static>, String) {
    let mut rule = MatchRule::new_signal("org.freedesktop.DBus", "NameOwnerChanged");
    rule.sender = Some("org.freedesktop.DBus".into());
    rule.path = Some("/org/freedesktop/DBus".into());
    // MatchRule cannot express argument matches; the bus-side rule adds arg0 so the daemon
    // sends us only changes of systemd's name.
    let bus_rule = format!("{},arg0='{SYSTEMD_NAME}'", rule.match_str());
    (rule, bus_rule)
}

/// A proxy on the bus daemon itself, for `GetNameOwner`, `AddMatch` and `RemoveMatch`.
fn bus_daemon(conn: &Connection, timeout: Duration) -> Proxy<'static, &Connection> {
    Proxy::new(
        "org.freedesktop.DBus",
        "/org/freedesktop/DBus",
        timeout,
        conn,
    )
}

/// The unique bus name of systemd's manager (`GetNameOwner`).
fn manager_unique_name(conn: &Connection, deadline: &Deadline) -> Result<String, BusError> {
    let (owner,): (String,) = bus_daemon(conn, deadline.call_timeout()).method_call(
        "org.freedesktop.DBus",
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
    /// Adds the `JobRemoved` match (and, on a bus, a match for systemd losing its bus name)
    /// with callbacks that record results into `inbox`.
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
        let manager = if direct {
            None
        } else {
            Some(manager_unique_name(conn, deadline)?)
        };
        let (rule, bus_rule) = job_removed_rules(manager.as_deref());
        if !direct {
            sub.add_bus_rule(conn, bus_rule, deadline)
                .inspect_err(|_| sub.remove(conn))?;
        }
        let jobs = Arc::clone(inbox);
        sub.tokens.push(conn.start_receive(
            rule,
            Box::new(move |msg: Message, _: &Connection| {
                match msg.read4::<u32, dbus::Path, &str, &str>() {
                    Ok((id, path, unit, result)) => lock(&jobs).record(id, &path, unit, result),
                    Err(e) => log::debug!("JobRemoved with an unexpected body ignored: {e}"),
                }
                true
            }),
        ));
        if !direct {
            let (rule, bus_rule) = name_lost_rule();
            sub.add_bus_rule(conn, bus_rule, deadline)
                .inspect_err(|_| sub.remove(conn))?;
            let gone = Arc::clone(inbox);
            sub.tokens.push(conn.start_receive(
                rule,
                Box::new(move |msg: Message, _: &Connection| {
                    if let Ok((name, _old, new)) = msg.read3::<&str, &str, &str>()
                        && name == SYSTEMD_NAME
                        && new.is_empty()
                    {
                        log::debug!("{SYSTEMD_NAME} lost its owner: the manager is gone");
                        lock(&gone).manager_gone = true;
                    }
                    true
                }),
            ));
        }
        Ok(sub)
    }

    fn add_bus_rule(
        &mut self,
        conn: &Connection,
        rule: String,
        deadline: &Deadline,
    ) -> Result<(), BusError> {
        bus_daemon(conn, deadline.call_timeout()).method_call::<(), _, _, _>(
            "org.freedesktop.DBus",
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
            match proxy.method_call::<(), _, _, _>("org.freedesktop.DBus", "RemoveMatch", (&rule,))
            {
                Ok(()) => log::debug!("match removed: {rule}"),
                Err(e) => log::debug!("RemoveMatch failed (bus gone?): {}", BusError::from(e)),
            }
        }
    }
}

/// Why waiting stopped before the condition held.
#[derive(Debug, Clone)]
pub(crate) enum Interrupted {
    DeadlinePassed,
    ManagerGone,
    Disconnected(BusError),
}

/// Pumps `conn` until `done` holds for the inbox, the deadline passes, the manager goes away or
/// the connection breaks. Each wait blocks in `poll` for what is left of the deadline; nothing
/// spins.
pub(crate) fn pump_until(
    conn: &Connection,
    inbox: &SharedInbox,
    deadline: &Deadline,
    mut done: impl FnMut(&Inbox) -> bool,
) -> Result<(), Interrupted> {
    loop {
        {
            let inbox = lock(inbox);
            if done(&inbox) {
                return Ok(());
            }
            if inbox.manager_gone() {
                return Err(Interrupted::ManagerGone);
            }
        }
        let Some(slice) = deadline.next_slice() else {
            // Hand over anything that already arrived before calling it a timeout.
            return match drain(conn) {
                Ok(()) if done(&lock(inbox)) => Ok(()),
                Ok(()) => Err(Interrupted::DeadlinePassed),
                Err(e) => Err(e),
            };
        };
        process(conn, slice)?;
    }
}

/// Handles every message already received, without waiting.
pub(crate) fn drain(conn: &Connection) -> Result<(), Interrupted> {
    while process(conn, Duration::ZERO)? {}
    Ok(())
}

fn process(conn: &Connection, wait: Duration) -> Result<bool, Interrupted> {
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

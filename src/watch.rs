//! Watching for results: the `JobRemoved` subscription and the record of results for the jobs
//! we wait on.
//!
//! One [`Subscription`] serves every operation of a [`Manager`](crate::Manager): it is added
//! while connecting (on a wrapped connection, before the first job), and it ends when the
//! connection closes or is handed back, so an operation sends only its method call. Results are keyed by job *path*; a `JobRemoved` for a path no
//! caller waits on (another client's job, even on the same unit) is dropped.
//!
//! On a bus, the inbox also follows who owns `org.freedesktop.systemd1`: a `JobRemoved` counts
//! only when it comes from the current owner, and a change of owner (systemd re-executing)
//! is recorded so the waiting code can check on its jobs (see [`crate::link`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use dbus::Message;
use dbus::blocking::Connection;
use dbus::channel::{MatchingReceiver, Token};
use dbus::message::MatchRule;

use crate::connect::Call;
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
    /// What was asked for; `None` for another job of the same transaction, watched only to
    /// learn its result (see [`crate::dependency`]).
    request: Option<Request>,
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
        let w = self.entry(path);
        w.waiters += 1;
        w.request.get_or_insert(request);
    }

    /// Records the result of another job of our transaction when its `JobRemoved` comes.
    pub(crate) fn watch_companion(&mut self, path: &str) {
        self.entry(path).waiters += 1;
    }

    fn entry(&mut self, path: &str) -> &mut Watch {
        self.watched.entry(path.to_owned()).or_insert(Watch {
            waiters: 0,
            request: None,
            settled: None,
        })
    }

    /// The result `JobRemoved` reported for `path`, if it came.
    pub(crate) fn result_of(&self, path: &str) -> Option<JobResult> {
        match self.settled(path)? {
            Settled::Removed(r) => Some(r.result.clone()),
            Settled::Unknown(_) => None,
        }
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

    /// The jobs asked for and not settled yet, with what was asked for each.
    pub(crate) fn unsettled(&self) -> Vec<(String, Request)> {
        self.watched
            .iter()
            .filter(|(_, w)| w.settled.is_none())
            .filter_map(|(p, w)| Some((p.clone(), w.request.clone()?)))
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

/// A call to the bus daemon itself.
pub(crate) fn bus_call(member: &str, arg: &str) -> Message {
    Message::new_method_call(BUS_NAME, "/org/freedesktop/DBus", BUS_NAME, member)
        .expect("valid bus daemon call")
        .append1(arg)
}

/// The match rules and local filters a manager handle holds while it lives.
pub(crate) struct Subscription {
    tokens: Vec<Token>,
    bus_rules: Vec<String>,
}

impl Subscription {
    /// The calls that set up the subscription: on a bus, `AddMatch` for `JobRemoved` and for
    /// changes of systemd's bus name, then `GetNameOwner` (asked after the owner rule is in
    /// force, so no change of owner can fall between the answer and the rule). On a direct
    /// connection there is no bus daemon to ask: the manager sends its signals to us anyway.
    ///
    /// The bus daemon handles a connection's messages in order, so these may go out together
    /// (right behind `Hello` on a new connection, see [`crate::connect`]): the rules are in
    /// force before any job call sent after them is routed.
    pub(crate) fn calls(direct: bool) -> Vec<Call> {
        if direct {
            return Vec::new();
        }
        vec![
            Call {
                message: bus_call("AddMatch", &job_removed_rules().1),
                step: "subscription (AddMatch)",
                await_reply: true,
            },
            Call {
                message: bus_call("AddMatch", &owner_rules().1),
                step: "subscription (AddMatch)",
                await_reply: true,
            },
            Call {
                message: bus_call("GetNameOwner", SYSTEMD_NAME),
                step: "subscription (GetNameOwner)",
                await_reply: true,
            },
        ]
    }

    /// Makes the subscription from the replies to [`Subscription::calls`], in their order,
    /// and adds the local filters that record into `inbox`.
    ///
    /// # Errors
    /// The bus daemon's error if it refused a match rule (e.g. its per-connection limit).
    /// systemd's name having no owner is not an error: a job call then says so.
    pub(crate) fn from_replies(
        conn: &Connection,
        direct: bool,
        inbox: &SharedInbox,
        mut replies: Vec<Result<Message, dbus::Error>>,
    ) -> Result<Self, BusError> {
        let mut sub = Subscription {
            tokens: Vec::new(),
            bus_rules: Vec::new(),
        };
        lock(inbox).direct = direct;
        if !direct {
            let owner_reply = replies.pop().ok_or_else(|| {
                BusError::new(
                    "org.freedesktop.DBus.Error.Failed",
                    "no reply to GetNameOwner",
                )
            })?;
            for reply in replies {
                reply?;
            }
            sub.bus_rules = vec![job_removed_rules().1, owner_rules().1];
            let owner = match owner_reply {
                Ok(reply) => Some(reply.read1::<String>().map_err(dbus::Error::from)?),
                Err(e) if e.name() == Some("org.freedesktop.DBus.Error.NameHasNoOwner") => None,
                Err(e) => return Err(e.into()),
            };
            log::debug!("subscribed; {SYSTEMD_NAME} is {owner:?}");
            lock(inbox).owner = owner;
        }
        sub.add_filters(conn, direct, inbox);
        Ok(sub)
    }

    /// Sets up the subscription on a connection that is already open (one the caller gave
    /// us): the same calls, each waiting for its reply within `deadline`.
    ///
    /// # Errors
    /// What the bus daemon said, or a timeout at the deadline.
    pub(crate) fn add(
        conn: &Connection,
        direct: bool,
        inbox: &SharedInbox,
        deadline: &Deadline,
    ) -> Result<Self, BusError> {
        let replies = Self::calls(direct)
            .into_iter()
            .map(|call| {
                conn.channel()
                    .send_with_reply_and_block(call.message, deadline.call_timeout())
            })
            .collect();
        Self::from_replies(conn, direct, inbox, replies)
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

    /// Removes the local filters and asks the bus daemon to drop the rules, without waiting
    /// for its replies: it handles them before anything sent later on this connection.
    /// (A connection that is about to close needs none of this: the daemon drops a client's
    /// rules when it disconnects.)
    pub(crate) fn remove_without_reply(&mut self, conn: &Connection) {
        for token in self.tokens.drain(..) {
            conn.stop_receive(token);
        }
        for rule in self.bus_rules.drain(..) {
            match conn.channel().send(bus_call("RemoveMatch", &rule)) {
                Ok(_) => log::debug!("match removed: {rule}"),
                Err(()) => log::debug!("RemoveMatch could not be queued: {rule}"),
            }
        }
        conn.channel().flush();
    }
}

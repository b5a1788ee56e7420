//! The record of results for the jobs we wait on, and of who owns systemd's bus name.
//!
//! Results are keyed by job *path*; a `JobRemoved` for a path no caller waits on (another
//! client's job, even on the same unit) is dropped. On a bus, the inbox also follows who owns
//! `org.freedesktop.systemd1`: a `JobRemoved` counts only when it comes from the current
//! owner, and a change of owner (systemd re-executing) is recorded so the waiting code can
//! check on its jobs (see [`crate::session`]).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use dbus::Message;

use crate::job::{JobResult, ResultSource, Verb};
use crate::proto::{BUS_NAME, BUS_PATH, MANAGER_IFACE, MANAGER_PATH, SYSTEMD_NAME};

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

/// Who owns `org.freedesktop.systemd1`, as far as the inbox knows.
#[derive(Debug, Default)]
enum Owner {
    /// Not known: no rule for its changes was in force (nothing waited), and no reply from
    /// the manager has come since.
    #[default]
    Unknown,
    /// This unique name.
    Known(String),
    /// Nobody, since then.
    Lost(Instant),
}

/// Job watches and the manager's owner, updated from the session's dispatch.
#[derive(Debug, Default)]
pub(crate) struct Inbox {
    watched: HashMap<String, Watch>,
    /// On a bus: who owns `org.freedesktop.systemd1`. Unused on a direct connection, where
    /// signals carry no sender and only the manager is at the other end.
    owner: Owner,
    direct: bool,
    /// Set when the manager came back (a new owner, a new connection); the waiting code then
    /// checks that the jobs it waits on still exist.
    reattached: bool,
    /// How many times the manager came back since the session began.
    comebacks: u64,
}

impl Inbox {
    pub(crate) fn new(direct: bool) -> Self {
        Inbox {
            direct,
            ..Inbox::default()
        }
    }

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
        match self.owner {
            Owner::Lost(at) => Some(at.elapsed()),
            _ => None,
        }
    }

    /// Forgets the owner: its changes are not followed while no rule for them is in force.
    pub(crate) fn forget_owner(&mut self) {
        self.owner = Owner::Unknown;
    }

    /// A reply from the manager came from `name`: it owns systemd's name now. (The session
    /// dispatches messages in the order they arrive, so every earlier change of owner has
    /// been applied.)
    pub(crate) fn answered_by(&mut self, name: &str) {
        if !self.direct && !matches!(&self.owner, Owner::Known(n) if n == name) {
            log::debug!("{SYSTEMD_NAME} answered from {name}");
            self.owner = Owner::Known(name.to_owned());
        }
    }

    /// Whether `msg` is a `JobRemoved` or a change of systemd's owner, and if so records it.
    pub(crate) fn on_signal(&mut self, msg: &Message) -> bool {
        let path = msg.path();
        let member = msg.member();
        let interface = msg.interface();
        if interface.as_deref() == Some(MANAGER_IFACE)
            && member.as_deref() == Some("JobRemoved")
            && path.as_deref() == Some(MANAGER_PATH)
        {
            self.accept_job_removed(msg);
            return true;
        }
        // Only the bus daemon can send as `org.freedesktop.DBus`: no client can forge this.
        if !self.direct
            && msg.sender().as_deref() == Some(BUS_NAME)
            && interface.as_deref() == Some(BUS_NAME)
            && member.as_deref() == Some("NameOwnerChanged")
            && path.as_deref() == Some(BUS_PATH)
        {
            if let Ok((name, old, new)) = msg.read3::<&str, &str, &str>()
                && name == SYSTEMD_NAME
            {
                self.owner_changed(old, new);
            }
            return true;
        }
        false
    }

    /// Whether the manager came back since the last call (and clears the mark).
    pub(crate) fn take_reattached(&mut self) -> bool {
        std::mem::take(&mut self.reattached)
    }

    /// Marks the manager as reached again on a new connection.
    pub(crate) fn mark_reattached(&mut self) {
        self.reattached = true;
        self.comebacks += 1;
    }

    /// How many times the manager came back (a new owner of its name, a new connection to
    /// its socket) since the session began: a change of this count means it re-executed.
    pub(crate) fn comebacks(&self) -> u64 {
        self.comebacks
    }

    /// Records a `JobRemoved` if it is systemd's (on a bus: sent by the current owner of
    /// its name) and for a job we wait on.
    fn accept_job_removed(&mut self, msg: &Message) {
        if !self.direct {
            let sender = msg.sender();
            let owner = match &self.owner {
                Owner::Known(name) => Some(name.as_str()),
                _ => None,
            };
            if sender.as_deref() != owner {
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
            if !matches!(self.owner, Owner::Lost(_)) {
                self.owner = Owner::Lost(Instant::now());
            }
        } else {
            log::debug!("{SYSTEMD_NAME} moved from {old:?} to {new}: the manager re-executed");
            self.owner = Owner::Known(new.to_owned());
            self.mark_reattached();
        }
    }
}

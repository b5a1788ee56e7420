//! Progress while waiting: what a job and its unit are doing, reported to a callback as it
//! changes, from the thread that waits.
//!
//! Opt-in per batch ([`Batch::on_progress`](crate::Batch::on_progress)) or per operation
//! ([`Manager::run_with_progress`](crate::Manager::run_with_progress)); without it nothing
//! here runs and an operation costs what it always did. With it, each unit is followed
//! ([`crate::ops::follow`]: loaded, referenced and matched on a bus, three calls before the job)
//! and its state and status text read once; then every `PropertiesChanged` of the unit is
//! reported at once, and a report also comes every `every` while nothing changes, with the
//! job's `State` read then (one call), so a caller can show elapsed time. A caller that may
//! not hold a reference on the unit (not root on the system bus: polkit would have to ask)
//! gets no signals of it there, and its state is read at each tick instead.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::deadline::Deadline;
use crate::job::{Job, JobState};
use crate::ops::Context;
use crate::ops::follow::Follow;
use crate::proto::calls;
use crate::session::Interrupted;

/// What a job and its unit are doing while we wait.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Progress {
    /// The unit, as given.
    pub unit: String,
    /// The job.
    pub job: Job,
    /// The job's state, [`JobState::Waiting`] or [`JobState::Running`], as last read (`None`
    /// before the first read, or once the job is gone).
    pub job_state: Option<JobState>,
    /// The unit's `ActiveState`: `activating`, `active`, `deactivating`...
    pub active_state: String,
    /// The unit's `SubState`, e.g. `start-pre`, `start`, `running`.
    pub sub_state: String,
    /// A service's own status, as it reported it with `sd_notify(STATUS=...)`.
    pub status_text: Option<String>,
    /// Time since the operation began.
    pub elapsed: Duration,
    /// The operation's whole timeout (`None` when it is too long to represent).
    pub timeout: Option<Duration>,
}

impl fmt::Display for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} ({})",
            self.unit, self.active_state, self.sub_state
        )?;
        if let Some(status) = &self.status_text {
            write!(f, " \"{status}\"")?;
        }
        Ok(())
    }
}

/// A progress callback and how often it wants a report while nothing changes.
pub(crate) struct Reporter<'a> {
    pub(crate) every: Duration,
    pub(crate) callback: Box<dyn FnMut(&Progress) + 'a>,
}

impl fmt::Debug for Reporter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reporter")
            .field("every", &self.every)
            .finish_non_exhaustive()
    }
}

/// A job being waited on, with its unit followed.
pub(crate) struct Watched<'a> {
    pub(crate) unit: &'a str,
    pub(crate) job: &'a Job,
    pub(crate) follow: &'a Follow<'a>,
}

/// Pumps the connection until every job in `watched` has its result, or `deadline` passes,
/// reporting each unit's progress to `reporter` on every change and every `reporter.every`.
pub(crate) fn wait_reporting(
    cx: &Context,
    watched: &[Watched<'_>],
    reporter: &mut Reporter<'_>,
    deadline: &Deadline,
) -> Result<(), Interrupted> {
    let pending = |w: &Watched<'_>| cx.session.router().inbox.settled(w.job.path()).is_none();
    let mut tick = true;
    loop {
        for w in watched.iter().filter(|w| pending(w)) {
            if tick && !w.follow.signals_arrive() {
                // No reference on the unit (polkit would have had to ask): read its state.
                w.follow.read_into_seen(deadline, true);
            }
            let changed = std::mem::take(&mut w.follow.lock_seen().changed);
            if changed || tick {
                let report = report(cx, w, deadline);
                (reporter.callback)(&report);
            }
        }
        if !watched.iter().any(pending) {
            return Ok(());
        }
        let seen: Vec<_> = watched.iter().map(|w| Arc::clone(&w.follow.seen)).collect();
        let paths: Vec<&str> = watched.iter().map(|w| w.job.path()).collect();
        let slice = Deadline::after(reporter.every.min(deadline.remaining()));
        let waited = cx.session.pump_until(&slice, |router| {
            paths.iter().all(|p| router.inbox.settled(p).is_some())
                || seen
                    .iter()
                    .any(|s| s.lock().unwrap_or_else(|p| p.into_inner()).changed)
        });
        tick = match waited {
            Ok(()) => false,
            Err(Interrupted::DeadlinePassed) if !deadline.expired() => true,
            Err(Interrupted::DeadlinePassed) => return Ok(()),
            Err(other) => return Err(other),
        };
    }
}

/// One report on `w`: the unit as its signals last said, the job's state read now.
fn report(cx: &Context, w: &Watched<'_>, deadline: &Deadline) -> Progress {
    let job_state = calls::job_state(&cx.caller(), w.job, deadline.call_timeout()).ok();
    let seen = w.follow.lock_seen();
    Progress {
        unit: w.unit.to_owned(),
        job: w.job.clone(),
        job_state,
        active_state: seen.active_state.clone().unwrap_or_default(),
        sub_state: seen.sub_state.clone().unwrap_or_default(),
        status_text: seen.status_text.clone().filter(|s| !s.is_empty()),
        elapsed: deadline.elapsed(),
        timeout: deadline.total(),
    }
}

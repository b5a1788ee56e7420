//! Running a unit to completion: start it, then follow it until it is no longer active, as
//! `systemctl start --wait` does, and report how it ended.
//!
//! The unit is followed ([`crate::ops::follow`]) from before its start job is queued. A signal
//! only wakes the wait: the end is decided by reading `ActiveState` from systemd, so
//! a forged or lost signal cannot end it early; the state is also read once a second while
//! nothing arrives (a manager that re-executed has dropped our reference and filter).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::deadline::Deadline;
use crate::error::{Error, Result};
use crate::job::{Job, JobOutcome};
use crate::ops::follow::Follow;
use crate::ops::queued::QueuedJob;
use crate::proto::unit_reader::UnitReader;
use crate::session::Interrupted;
use crate::unit::{ExitStatus, FailureReason, UnitResult};

/// The longest wait without reading the unit's state.
const STATE_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// How a unit that ran to completion ended, from [`Manager::run_to_completion`](crate::Manager::run_to_completion): it
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

/// A start queued by [`Manager::enqueue_run`](crate::Manager::enqueue_run): its job, and the unit followed until it
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
    /// As [`Manager::run_to_completion`](crate::Manager::run_to_completion).
    pub fn wait(self, timeout: Duration) -> Result<Completion> {
        self.wait_until(&Deadline::after(timeout))
    }

    pub(crate) fn wait_until(self, deadline: &Deadline) -> Result<Completion> {
        let start = self.job.wait_until(deadline)?;
        until_inactive(self.follow, start, deadline)
    }

    /// The start job's path, for waiting on several runs at once.
    pub(crate) fn job_path(&self) -> &str {
        self.job.job().path()
    }
}

/// After the start job: waits until the unit is `inactive` or `failed`, then reads how
/// it ended.
fn until_inactive(
    follow: Follow<'_>,
    start: JobOutcome,
    deadline: &Deadline,
) -> Result<Completion> {
    let mut last_read = None;
    loop {
        let state = match follow.read_state(deadline) {
            Ok(state) => state,
            // The deadline passed while the state was read (a busy manager answers a read
            // started at the deadline too late): the unit was still running when last read.
            Err(e) => {
                return Err(match last_read.take() {
                    Some(state) if deadline.expired() => Error::StillActive {
                        unit: follow.unit.clone(),
                        state,
                        waited: deadline.elapsed(),
                    },
                    _ => e,
                });
            }
        };
        if matches!(state.active_state.as_str(), "inactive" | "failed") {
            return ended(&follow, start, deadline);
        }
        if deadline.expired() {
            return Err(Error::StillActive {
                unit: follow.unit.clone(),
                state,
                waited: deadline.elapsed(),
            });
        }
        log::debug!("{}: {state}, waiting for it to stop", follow.unit);
        last_read = Some(state);
        follow.lock_seen().active_state = None;
        let slice = Deadline::after(STATE_CHECK_INTERVAL.min(deadline.remaining()));
        let seen = Arc::clone(&follow.seen);
        let waited = follow.cx.session.pump_until(&slice, move |_| {
            matches!(
                seen.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .active_state
                    .as_deref(),
                Some("inactive" | "failed")
            )
        });
        match waited {
            Ok(()) | Err(Interrupted::DeadlinePassed) => {}
            Err(other) => {
                return Err(other.into_error(
                    &follow.unit,
                    Some(start.job.clone()),
                    deadline,
                    follow.cx.is_direct(),
                ));
            }
        }
    }
}

/// Reads how the run ended: success, or [`Error::RunFailed`].
fn ended(follow: &Follow<'_>, start: JobOutcome, deadline: &Deadline) -> Result<Completion> {
    let caller = follow.cx.caller();
    let reader = UnitReader::open(&caller, &follow.unit, deadline.call_timeout())
        .map_err(|e| follow.read_error(e, deadline))?;
    let span = reader
        .run_span()
        .map_err(|e| follow.read_error(e, deadline))?;
    let (result, main_process, span) = match follow.lock_seen().unloaded_since(span) {
        // systemd unloaded the unit after it stopped and loaded it afresh for us: what
        // its last signals said is all there is.
        Some(seen) => seen,
        None => {
            let reason = reader
                .failure_reason()
                .map_err(|e| follow.read_error(e, deadline))?;
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
            unit: follow.unit.clone(),
            job: start.job,
            reason: Box::new(FailureReason {
                start_limit: match result {
                    UnitResult::StartLimitHit => reader.start_limit().ok(),
                    _ => None,
                },
                result,
                main_process,
                journal: follow.cx.journal_wanted().read(&reader, deadline),
            }),
            ran_for,
        });
    }
    Ok(Completion {
        unit: follow.unit.clone(),
        start,
        result,
        main_process,
        ran_for,
        elapsed: deadline.elapsed(),
    })
}

//! Settling a job whose `JobRemoved` was lost (the manager re-executed, the bus daemon dropped
//! it, ...), from what systemd still knows about the unit.
//!
//! The rule is systemd's own (`unit_notify` finishing jobs on state changes), applied only to
//! state changes that happened *after* the job was queued, by comparing the unit's
//! `ActiveEnterTimestampMonotonic` / `InactiveEnterTimestampMonotonic` with the moment the job
//! call was sent (both `CLOCK_MONOTONIC`):
//!
//! | verb | unit now, entered after the call | result |
//! |---|---|---|
//! | start, restart, try-restart, reload-or-restart, reload-or-try-restart | active or reloading | `done` |
//! | the same | failed | `failed` |
//! | stop | inactive or failed, or unloaded since (systemd unloads only inactive units without jobs) | `done` |
//!
//! Anything else (a reload, a unit that went back to inactive, a unit systemd has unloaded) does
//! not tell the job's result, and is reported as unknown rather than guessed.

use dbus::blocking::BlockingSender;

use crate::deadline::Deadline;
use crate::job::{Job, JobResult, ResultSource, Verb};
use crate::proto::unit_reader::UnitReader;
use crate::session::inbox::{Removed, Request, Settled};

/// Settles `job`, which systemd no longer has and whose `JobRemoved` we never saw.
pub(crate) fn settle_lost(
    conn: &impl BlockingSender,
    job: &Job,
    request: &Request,
    deadline: &Deadline,
) -> Settled {
    let unit = request.unit.as_str();
    let reader = match UnitReader::open(conn, unit, deadline.call_timeout()) {
        Ok(r) => r,
        Err(e) => return unknown(job, request, format!("{unit} could not be read: {e}")),
    };
    let seen = match reader.transitions() {
        Ok(t) => t,
        Err(e) => return unknown(job, request, format!("{unit} could not be read: {e}")),
    };
    let after = |usec: u64| usec > request.queued_at_usec;
    let state = seen.state.active_state.as_str();
    let result = match request.verb {
        // A unit read back with no inactive timestamp was loaded anew: systemd had
        // garbage-collected it, which it does only to an inactive unit with no job.
        Verb::Stop
            if matches!(state, "inactive" | "failed")
                && (after(seen.inactive_since) || seen.inactive_since == 0) =>
        {
            Some(JobResult::Done)
        }
        Verb::Stop | Verb::Reload => None,
        _ if matches!(state, "active" | "reloading") && after(seen.active_since) => {
            Some(JobResult::Done)
        }
        _ if state == "failed" && after(seen.inactive_since) => Some(JobResult::Failed),
        _ => None,
    };
    match result {
        Some(result) => {
            log::debug!(
                "{job} finished unseen (its JobRemoved was lost); {unit} is {} since after the \
                 call: {result}",
                seen.state
            );
            Settled::Removed(Removed {
                id: job.id(),
                unit: unit.to_owned(),
                result,
                source: ResultSource::Recovered(Box::new(seen.state)),
            })
        }
        None => unknown(
            job,
            request,
            format!(
                "{unit} is {} and its last change does not tell a {} job's result",
                seen.state, request.verb
            ),
        ),
    }
}

fn unknown(job: &Job, request: &Request, why: String) -> Settled {
    log::debug!(
        "{job} ({} {}) finished unseen, result unknown: {why}",
        request.verb,
        request.unit
    );
    Settled::Unknown(why)
}

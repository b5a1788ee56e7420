//! Explaining a `dependency` result: which dependency failed, and why.
//!
//! A job ends `dependency` when a job systemd queued for one of the unit's requirements failed
//! first. Queued with `EnqueueUnitJob`, an operation knows every other job of its transaction,
//! and the handle records their results as it does its own: systemd sends a failing job's
//! `JobRemoved` before it fails the jobs that depend on it, so by the time ours ends they are
//! in. Those signals reach every client of a private socket; on a bus they reach a client only
//! for jobs it queued itself, unless some client subscribed to all of the manager's signals
//! (`Subscribe`, as desktops and `systemctl --wait` do). Where a dependency's result did not
//! arrive, the unit's state decides: a unit that entered `failed` after our job was queued is
//! a root cause.
//!
//! Without a transaction listing ([`ManagerBuilder::per_verb_methods`](crate::ManagerBuilder::per_verb_methods)),
//! the candidates are the unit's `Requires=`, `Requisite=` and `BindsTo=`, followed down.
//!
//! Everything here runs only after a `dependency` result: the success path makes no call.

use std::collections::HashSet;

use dbus::blocking::BlockingSender;

use crate::deadline::Deadline;
use crate::job::{FailedDependency, Job, JobResult, TransactionJob};
use crate::ops::run_journal::Wanted;
use crate::proto::unit_reader::UnitReader;

/// Most units looked at when following requirements without a transaction listing.
const MAX_UNITS_WALKED: usize = 64;

/// What [`explain`] needs besides the connection.
pub(crate) struct Context<'a> {
    /// The unit whose job ended `dependency`.
    pub(crate) unit: &'a str,
    /// The other jobs of its transaction (empty if not listed).
    pub(crate) transaction: &'a [TransactionJob],
    /// Read each failed unit's reason.
    pub(crate) read_reasons: bool,
    /// The journal lines of each failed unit's run.
    pub(crate) journal: Wanted<'a>,
    /// `CLOCK_MONOTONIC` µs just before our job was queued: a unit counts as failed by this
    /// transaction only if it entered `failed` after that.
    pub(crate) queued_at_usec: u64,
    pub(crate) deadline: &'a Deadline,
}

/// The dependencies at the root of a `dependency` result, from the recorded results of the
/// transaction's jobs (`result_of`) and, where those say nothing, the units' states. Empty if
/// nothing could be found before the deadline.
pub(crate) fn explain(
    conn: &impl BlockingSender,
    cx: &Context<'_>,
    result_of: impl Fn(&str) -> Option<JobResult>,
) -> Vec<FailedDependency> {
    let reason = |unit: &str| {
        if !cx.read_reasons {
            return None;
        }
        cx.journal.failure_reason(conn, unit, cx.deadline)
    };
    // Jobs whose own result says they failed (not merely because of another one).
    let from_results: Vec<FailedDependency> = cx
        .transaction
        .iter()
        .filter_map(|t| {
            let result = result_of(t.job.path())?;
            if result.is_success() || result == JobResult::Dependency {
                return None;
            }
            let reason = match result {
                JobResult::Failed => reason(&t.unit),
                _ => None,
            };
            Some(FailedDependency {
                unit: t.unit.clone(),
                job: Some(t.job.clone()),
                result: Some(result),
                reason,
            })
        })
        .collect();
    if !from_results.is_empty() {
        return from_results;
    }
    // No result arrived (a bus with nobody subscribed): the units that are failed now.
    let candidates: Vec<(String, Option<Job>)> = if cx.transaction.is_empty() {
        requirements_below(conn, cx.unit, cx.deadline)
            .into_iter()
            .map(|u| (u, None))
            .collect()
    } else {
        cx.transaction
            .iter()
            .filter(|t| t.unit != cx.unit)
            .map(|t| (t.unit.clone(), Some(t.job.clone())))
            .collect()
    };
    candidates
        .into_iter()
        .filter(|(unit, _)| !cx.deadline.expired() && failed_since(conn, unit, cx))
        .map(|(unit, job)| FailedDependency {
            reason: reason(&unit),
            unit,
            job,
            result: None,
        })
        .collect()
}

/// Whether `unit` is `failed`, having failed after our job was queued (an old failure of a
/// unit whose job in our transaction never ran is not this one's cause).
fn failed_since(conn: &impl BlockingSender, unit: &str, cx: &Context<'_>) -> bool {
    UnitReader::open(conn, unit, cx.deadline.call_timeout())
        .and_then(|r| r.transitions())
        .is_ok_and(|t| t.state.active_state == "failed" && t.inactive_since >= cx.queued_at_usec)
}

/// Every unit `unit` requires, directly or through others, breadth first, up to
/// [`MAX_UNITS_WALKED`] and the deadline.
fn requirements_below(conn: &impl BlockingSender, unit: &str, deadline: &Deadline) -> Vec<String> {
    let mut seen: HashSet<String> = HashSet::from([unit.to_owned()]);
    let mut order = Vec::new();
    let mut next = vec![unit.to_owned()];
    while let Some(current) = next.pop() {
        if deadline.expired() || seen.len() > MAX_UNITS_WALKED {
            break;
        }
        let Ok(required) = UnitReader::open(conn, &current, deadline.call_timeout())
            .and_then(|r| r.requirements())
        else {
            continue;
        };
        for r in required {
            if seen.insert(r.clone()) {
                order.push(r.clone());
                next.insert(0, r);
            }
        }
    }
    order
}

//! Queuing a job: the job rules held ahead of the one call that queues it, in the same write.

use crate::deadline::Deadline;
use crate::error::{Error, Result};
use crate::ffi::monotonic_usec;
use crate::job::{JobMode, Verb};
use crate::ops::Context;
use crate::ops::completion::QueuedRun;
use crate::ops::follow::Follow;
use crate::ops::queued::QueuedJob;
use crate::proto::calls::{self, Queued};
use crate::proto::{errors, refused_by_bus_policy};
use crate::session::inbox::Request;
use crate::unit_name;

/// Queues a `verb` job for `unit` within `deadline` and returns the handle on it.
///
/// The rules that route `JobRemoved` to us are taken first; on a bus their `AddMatch` goes
/// out in the same write as the job call, so it is in force before the call is routed.
///
/// # Errors
/// As [`Manager::run`](crate::Manager::run), except those about the job's result.
pub(crate) fn enqueue<'m>(
    cx: &'m Context,
    verb: Verb,
    unit: &str,
    mode: JobMode,
    deadline: &Deadline,
) -> Result<QueuedJob<'m>> {
    unit_name::validate(unit)?;
    cx.ready(unit, deadline)?;
    let session = &cx.session;
    let signals = session.hold_job_signals();
    log::debug!("queuing {verb} {unit} ({mode})");
    let queued_at_usec = monotonic_usec();
    let called_at = std::time::SystemTime::now();
    let queued = match queue_job(cx, verb, unit, mode, deadline) {
        Ok(queued) => queued,
        Err((call, e)) => {
            log::debug!("{call}({unit}) failed: {e}");
            let error = Error::unless_timed_out(unit, deadline, || {
                Error::from_job_call(unit, verb, call, e.into())
                    .sent_interactive(cx.options.allow_interactive_authorization)
            });
            return Err(with_cycle(cx, error, called_at, deadline));
        }
    };
    if let Some(name) = &queued.answered_by {
        session.router().inbox.answered_by(name);
    }
    if let Some(e) = signals.refused() {
        // The job is queued, but its result cannot reach us.
        return Err(Error::from_call(unit, "AddMatch", e));
    }
    log::debug!(
        "{verb} {unit} queued {}, with {} other jobs",
        queued.job,
        queued.transaction.len()
    );
    let request = Request {
        unit: unit.to_owned(),
        verb,
        queued_at_usec,
    };
    Ok(QueuedJob::new(
        cx,
        signals,
        request,
        queued.job,
        queued.transaction,
    ))
}

/// Follows `unit` from before its `verb` job is queued, to run it to completion.
///
/// # Errors
/// As [`enqueue`], and those of loading and referencing the unit.
pub(crate) fn enqueue_run<'m>(
    cx: &'m Context,
    verb: Verb,
    unit: &str,
    mode: JobMode,
    deadline: &Deadline,
) -> Result<QueuedRun<'m>> {
    unit_name::validate(unit)?;
    let follow = Follow::start(cx, unit, deadline)?;
    // No active check: a unit run to completion is meant to stop, and how it stopped is
    // what the run reports.
    let job = enqueue(cx, verb, unit, mode, deadline)?.with_active_check(None);
    Ok(QueuedRun::new(job, follow))
}

/// A refusal for an ordering cycle, with the cycle's units read from the manager's log of
/// the call (made at `called_at`); any other error as it is.
fn with_cycle(
    cx: &Context,
    error: Error,
    called_at: std::time::SystemTime,
    deadline: &Deadline,
) -> Error {
    match error {
        Error::TransactionRefused {
            unit,
            source,
            cycle,
        } if cycle.is_empty()
            && source.name() == "org.freedesktop.systemd1.TransactionOrderIsCyclic" =>
        {
            let cycle = cx
                .journal_wanted()
                .ordering_cycle(&cx.caller(), called_at, deadline);
            Error::TransactionRefused {
                unit,
                source,
                cycle,
            }
        }
        other => other,
    }
}

/// The one method call that queues the job: `EnqueueUnitJob`, which also lists the other
/// jobs of the transaction, or the verb's own method where the manager lacks it (or the
/// builder asks for it). Errors name the call.
fn queue_job(
    cx: &Context,
    verb: Verb,
    unit: &str,
    mode: JobMode,
    deadline: &Deadline,
) -> std::result::Result<Queued, (&'static str, dbus::Error)> {
    let caller = cx.action_caller();
    if cx.enqueue_unit_job.get() {
        match calls::enqueue_unit_job(&caller, unit, verb, mode, deadline.call_timeout()) {
            Ok(queued) => return Ok(queued),
            Err(e) if e.name() == Some(errors::UNKNOWN_METHOD) => {
                log::debug!("no EnqueueUnitJob here ({e:?}): using the per-verb methods");
                cx.enqueue_unit_job.set(false);
            }
            // systemd's own bus policy (252) lets callers that are not root send the
            // per-verb methods, for polkit to decide, but not EnqueueUnitJob.
            Err(e) if refused_by_bus_policy(&e) => {
                log::debug!("EnqueueUnitJob refused by the bus policy: using the per-verb methods");
                cx.enqueue_unit_job.set(false);
            }
            Err(e) => return Err(("EnqueueUnitJob", e)),
        }
    }
    calls::per_verb(&caller, unit, verb, mode, deadline.call_timeout())
        .map_err(|e| (verb.method(), e))
}

/// Queues a `verb` job for each of `units` in one transaction (`EnqueueUnitJobMany`), so that
/// ordering dependencies between them hold whatever their order and systemd accepts or
/// refuses them together; one result per unit, in input order. `None` where the manager
/// cannot (systemd before 262, or its bus policy refuses the method): the caller then queues
/// one job per call. Detected once per handle.
///
/// An invalid unit name fails its own item and is left out of the transaction. When systemd
/// refuses the transaction, every item fails: with systemd's error as its own variant for a
/// unit the refusal names (`NoSuchUnit`...), as [`Error::TransactionRefused`] for the others.
pub(crate) fn enqueue_many<'m>(
    cx: &'m Context,
    verb: Verb,
    units: &[&str],
    mode: JobMode,
    deadline: &Deadline,
) -> Option<Vec<Result<QueuedJob<'m>>>> {
    if !cx.enqueue_unit_job_many.get() {
        return None;
    }
    let mut results: Vec<Option<Result<QueuedJob<'m>>>> = units
        .iter()
        .map(|unit| unit_name::validate(unit).err().map(Err))
        .collect();
    let valid: Vec<&str> = units
        .iter()
        .zip(&results)
        .filter(|(_, r)| r.is_none())
        .map(|(u, _)| *u)
        .collect();
    let fail_all = |results: &mut Vec<Option<Result<QueuedJob<'m>>>>,
                    error: &dyn Fn(&str) -> Error| {
        for (unit, slot) in units.iter().zip(results.iter_mut()) {
            slot.get_or_insert_with(|| Err(error(unit)));
        }
    };
    if deadline.expired() {
        fail_all(&mut results, &|unit| Error::timeout(unit, None, deadline));
        return Some(results.into_iter().flatten().collect());
    }
    if let Err(i) = cx.session.refresh(deadline) {
        fail_all(&mut results, &|unit| {
            i.clone().into_error(unit, None, deadline, cx.is_direct())
        });
        return Some(results.into_iter().flatten().collect());
    }
    let mut signals: Vec<_> = valid
        .iter()
        .map(|_| cx.session.hold_job_signals())
        .collect();
    log::debug!("queuing {verb} {valid:?} ({mode}) as one transaction");
    let queued_at_usec = monotonic_usec();
    let reply = calls::enqueue_unit_job_many(
        &cx.action_caller(),
        &valid,
        verb,
        mode,
        deadline.call_timeout(),
    );
    let (jobs, answered_by) = match reply {
        Ok(reply) => reply,
        Err(e) if e.name() == Some(errors::UNKNOWN_METHOD) || refused_by_bus_policy(&e) => {
            log::debug!("no EnqueueUnitJobMany here ({e:?}): one job per call");
            cx.enqueue_unit_job_many.set(false);
            return None;
        }
        Err(e) => {
            let e = crate::error::BusError::from(e);
            log::debug!("EnqueueUnitJobMany({valid:?}) failed: {e}");
            fail_all(&mut results, &|unit| {
                Error::unless_timed_out(unit, deadline, || {
                    if e.message().contains(unit) {
                        Error::from_job_call(unit, verb, "EnqueueUnitJobMany", e.clone())
                            .sent_interactive(cx.options.allow_interactive_authorization)
                    } else {
                        Error::TransactionRefused {
                            unit: unit.to_owned(),
                            source: e.clone(),
                            cycle: Vec::new(),
                        }
                    }
                })
            });
            return Some(results.into_iter().flatten().collect());
        }
    };
    if let Some(name) = &answered_by {
        cx.session.router().inbox.answered_by(name);
    }
    if let Some(e) = signals.first().and_then(|s| s.refused()) {
        fail_all(&mut results, &|unit| {
            Error::from_call(unit, "AddMatch", e.clone())
        });
        return Some(results.into_iter().flatten().collect());
    }
    for (unit, slot) in units.iter().zip(results.iter_mut()) {
        if slot.is_some() {
            continue;
        }
        let Some(found) = job_of(cx, &jobs, unit, deadline) else {
            *slot = Some(Err(Error::Bus {
                unit: (*unit).to_owned(),
                call: "EnqueueUnitJobMany",
                source: crate::error::BusError::new(
                    errors::FAILED,
                    format!("the reply lists no job for {unit}"),
                ),
            }));
            continue;
        };
        let request = Request {
            unit: (*unit).to_owned(),
            verb,
            queued_at_usec,
        };
        let Some(held) = signals.pop() else {
            continue;
        };
        log::debug!("{verb} {unit} queued {} in one transaction", found.job);
        *slot = Some(Ok(QueuedJob::new(
            cx,
            held,
            request,
            found.job.clone(),
            Vec::new(),
        )));
    }
    Some(results.into_iter().flatten().collect())
}

/// The job of `unit` in `EnqueueUnitJobMany`'s reply: by name, or for an alias by the path of
/// the unit it names.
fn job_of<'j>(
    cx: &Context,
    jobs: &'j [calls::UnitJob],
    unit: &str,
    deadline: &Deadline,
) -> Option<&'j calls::UnitJob> {
    if let Some(found) = jobs.iter().find(|j| j.unit == unit) {
        return Some(found);
    }
    let path = calls::get_unit(&cx.caller(), unit, deadline.call_timeout()).ok()?;
    jobs.iter().find(|j| j.unit_path == *path)
}

//! The task's result as Ansible reads it: `changed`, `failed`, `msg`, `diff`, and per unit
//! the steps, jobs (id, result, duration), unit-file changes, and on failure the typed reason,
//! the failed dependencies and the failed run's journal lines.

use systemd_jobs::{Convergence, Error, FailedDependency, FailureReason, JobOutcome, RunJournal};

use crate::args::Args;
use crate::json::{Json, Object};
use crate::task::{TaskReport, UnitReport};

/// The result object, and whether the task failed.
pub fn result(args: &Args, task: &TaskReport) -> (Object, bool) {
    let mut out = Object::new();
    let mut failed_msg: Option<String> = None;
    let mut changed = false;
    let mut units = Vec::new();
    let mut diffs = Vec::new();
    for u in &task.units {
        let (entry, unit_changed) = unit(u);
        changed |= unit_changed;
        if let Err(e) = &u.outcome {
            failed_msg.get_or_insert_with(|| message(e));
        }
        if let Some(d) = diff(u) {
            diffs.push(d);
        }
        units.push(Json::Object(entry));
    }
    if let Some(e) = &task.error {
        failed_msg.get_or_insert_with(|| message(e));
        out.set("reason", reason(e));
    }
    let failed = failed_msg.is_some();
    let msg = failed_msg.unwrap_or_else(|| summary(args, task, changed));
    out.set("changed", changed)
        .set("failed", failed)
        .set("msg", msg)
        .set("check_mode", args.check_mode)
        .set(
            "manager_steps",
            task.manager_steps
                .iter()
                .map(|s| Json::from(*s))
                .collect::<Vec<_>>(),
        )
        .set("units", units)
        .set("elapsed_ms", millis(task.elapsed));
    if args.diff && !diffs.is_empty() {
        // Ansible takes a list of {before, after, before_header, after_header}.
        out.set("diff", diffs);
    }
    (out, failed)
}

fn millis(d: std::time::Duration) -> Json {
    Json::from(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// What succeeded, in a line.
fn summary(args: &Args, task: &TaskReport, changed: bool) -> String {
    let mut parts: Vec<String> = task
        .units
        .iter()
        .filter_map(|u| u.outcome.as_ref().ok())
        .map(ToString::to_string)
        .collect();
    if !task.manager_steps.is_empty() && task.units.is_empty() {
        parts.push(task.manager_steps.join(", "));
    }
    let what = if args.check_mode && changed {
        "would change: "
    } else {
        ""
    };
    format!("{what}{}", parts.join("; "))
}

/// The error's message, with the last line the failed run's own processes wrote (systemd's
/// lines about it only when there are none), so the reason is in the one line Ansible
/// prints.
fn message(e: &Error) -> String {
    let mut msg = e.to_string();
    if let Some((unit, journal)) = e.run_journals().first() {
        let lines = journal.lines();
        let own = lines
            .iter()
            .rev()
            .find(|l| l.identifier.as_deref() != Some("systemd"));
        if let Some(line) = own.or(lines.last()) {
            msg.push_str(&format!("; last log line of {unit}: {}", line.message));
        }
    }
    msg
}

fn unit(u: &UnitReport) -> (Object, bool) {
    let mut o = Object::new();
    o.set("name", u.unit.as_str());
    let (done, error) = match &u.outcome {
        Ok(done) => (Some(done), None),
        Err(Error::PartlyApplied { applied, error, .. }) => (Some(&**applied), Some(&**error)),
        Err(e) => (None, Some(e)),
    };
    let changed = done.is_some_and(|d| d.changed);
    o.set("changed", changed).set("failed", error.is_some());
    if let Some(d) = done {
        convergence(&mut o, d);
    }
    if let Some(e) = error {
        o.set("msg", message(e)).set("reason", reason(e));
        if let Some(job) = e.job() {
            o.set("job_id", job.id()).set("job_path", job.path());
        }
        o.set("failed_dependencies", dependencies(e));
        let journals: Vec<Json> = e
            .run_journals()
            .into_iter()
            .filter(|(unit, _)| *unit == u.unit)
            .map(|(_, j)| journal(j))
            .collect();
        o.set(
            "journal",
            journals
                .into_iter()
                .next()
                .unwrap_or(Json::Array(Vec::new())),
        );
    }
    (o, changed)
}

fn convergence(o: &mut Object, d: &Convergence) {
    o.set(
        "steps",
        d.steps
            .iter()
            .map(|s| Json::from(s.to_string()))
            .collect::<Vec<_>>(),
    );
    let mut before = Object::new();
    before
        .set("active_state", d.before.active_state.as_str())
        .set("sub_state", d.before.sub_state.as_str())
        .set("unit_file_state", d.before.unit_file.to_string());
    o.set("before", before);
    o.set(
        "changes",
        d.changes
            .iter()
            .map(|c| {
                let mut change = Object::new();
                change
                    .set("type", c.kind.to_string())
                    .set("path", c.path.as_str())
                    .set("source", c.source.as_str())
                    .set("text", c.to_string());
                Json::Object(change)
            })
            .collect::<Vec<_>>(),
    );
    o.set("jobs", d.jobs.iter().map(job).collect::<Vec<_>>());
    if let Some(last) = d.jobs.last() {
        o.set("job_id", last.job.id())
            .set("job_result", last.result.as_str())
            .set("job_duration_ms", millis(last.elapsed));
    }
    if !d.queued.is_empty() {
        o.set(
            "queued",
            d.queued
                .iter()
                .map(|j| {
                    let mut q = Object::new();
                    q.set("job_id", j.id()).set("job_path", j.path());
                    Json::Object(q)
                })
                .collect::<Vec<_>>(),
        );
    }
    if let Some(run) = &d.run {
        let mut r = Object::new();
        r.set(
            "main_process",
            run.main_process.as_ref().map(ToString::to_string),
        )
        .set("ran_for_ms", run.ran_for.map(millis));
        o.set("run", r);
    }
}

fn job(j: &JobOutcome) -> Json {
    let mut o = Object::new();
    o.set("job_id", j.job.id())
        .set("job_path", j.job.path())
        .set("verb", j.verb.as_str())
        .set("unit", j.unit.as_str())
        .set("result", j.result.as_str())
        .set("duration_ms", millis(j.elapsed));
    Json::Object(o)
}

/// The typed reason: `kind` names the error, the rest is what it knows.
fn reason(e: &Error) -> Json {
    let mut o = Object::new();
    // First in the object; given its value once the match below has named it.
    o.set("kind", Json::Null);
    let kind = match e {
        Error::InvalidUnitName { .. } => "invalid_unit_name",
        Error::InvalidRequest(_) | Error::UnknownJobMode(_) | Error::UnknownVerb(_) => {
            "invalid_request"
        }
        Error::ConnectTimeout { .. } | Error::Connect { .. } => "connect",
        Error::ManagerUnavailable { .. } => "manager_unavailable",
        Error::NoSuchUnit { .. } => "no_such_unit",
        Error::UnitMasked { .. } => "unit_masked",
        Error::LoadFailed { .. } => "load_failed",
        Error::AccessDenied { .. } => "access_denied",
        Error::JobTypeNotApplicable { .. } => "job_type_not_applicable",
        Error::TransactionRefused { cycle, .. } => {
            if !cycle.is_empty() {
                o.set(
                    "cycle",
                    cycle
                        .iter()
                        .map(|u| Json::from(u.as_str()))
                        .collect::<Vec<_>>(),
                );
            }
            "transaction_refused"
        }
        Error::JobFailed { result, reason, .. } => {
            o.set("job_result", result.as_str());
            if let Some(r) = reason {
                failure(&mut o, r);
            }
            "job_failed"
        }
        Error::OutcomeUnknown { why, .. } => {
            o.set("detail", why.as_str());
            "outcome_unknown"
        }
        Error::NotActive { state, .. } => {
            o.set("active_state", state.active_state.as_str())
                .set("sub_state", state.sub_state.as_str());
            "not_active"
        }
        Error::RunFailed {
            reason, ran_for, ..
        } => {
            failure(&mut o, reason);
            o.set("ran_for_ms", ran_for.map(millis));
            "run_failed"
        }
        Error::StillActive { state, waited, .. } => {
            o.set("active_state", state.active_state.as_str())
                .set("waited_ms", millis(*waited));
            "still_active"
        }
        Error::Timeout { waited, .. } => {
            o.set("waited_ms", millis(*waited));
            "timeout"
        }
        Error::ManagerGone { .. } => "manager_gone",
        Error::Disconnected { .. } => "disconnected",
        Error::UnitFileFailed { problem, .. } => {
            o.set("problem", problem.to_string());
            "unit_file_failed"
        }
        Error::NoInstallInfo { .. } => "no_install_info",
        Error::PartlyApplied { error, .. } => return reason(error),
        _ => "error",
    };
    o.set("kind", kind);
    if let Some(bus) = e.bus_error() {
        o.set("bus_error", bus.name())
            .set("bus_message", bus.message());
    }
    Json::Object(o)
}

fn failure(o: &mut Object, r: &FailureReason) {
    o.set("unit_result", r.result.to_string()).set(
        "main_process",
        r.main_process.as_ref().map(ToString::to_string),
    );
    if let Some(limit) = &r.start_limit {
        o.set("start_limit_burst", limit.burst).set(
            "start_limit_interval_s",
            Json::Number(limit.interval.as_secs_f64()),
        );
    }
}

fn dependencies(e: &Error) -> Json {
    let deps: &[FailedDependency] = match e {
        Error::JobFailed { dependencies, .. } => dependencies,
        _ => &[],
    };
    Json::Array(
        deps.iter()
            .map(|d| {
                let mut o = Object::new();
                o.set("unit", d.unit.as_str())
                    .set("job_id", d.job.as_ref().map(|j| j.id()))
                    .set(
                        "job_result",
                        d.result.as_ref().map(|r| r.as_str().to_owned()),
                    );
                if let Some(r) = &d.reason {
                    failure(&mut o, r);
                    o.set("journal", journal(&r.journal));
                }
                Json::Object(o)
            })
            .collect(),
    )
}

/// A run's journal lines as `systemctl status` shows them; when they could not be read, one
/// line saying why.
fn journal(j: &RunJournal) -> Json {
    match j {
        RunJournal::Unavailable(why) => Json::Array(vec![Json::from(format!("(journal: {why})"))]),
        _ => Json::Array(
            j.lines()
                .iter()
                .map(|l| Json::from(l.to_string()))
                .collect(),
        ),
    }
}

/// Diff mode: one entry per unit, its state before and after.
fn diff(u: &UnitReport) -> Option<Json> {
    let done = u.outcome.as_ref().ok()?;
    let (active, file) = u.after.as_ref()?;
    let mut o = Object::new();
    o.set("before_header", u.unit.as_str())
        .set("after_header", u.unit.as_str())
        .set(
            "before",
            format!(
                "active: {}\nenabled: {}\n",
                done.before.active_state, done.before.unit_file
            ),
        )
        .set("after", format!("active: {active}\nenabled: {file}\n"));
    Some(Json::Object(o))
}

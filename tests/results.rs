//! Every job result and refusal, produced for real by the manager and reported as typed values.

mod common;

use std::time::Duration;

use systemd_jobs::{Error, JobMode, JobResult, Verb};

const T: Duration = Duration::from_secs(20);

const RELOADABLE: &str = "[Unit]\nStartLimitIntervalSec=0\n[Service]\nExecStart=/bin/sleep infinity\nExecReload=/bin/true\n";

fn failed_with(e: Error) -> JobResult {
    match e {
        Error::JobFailed { result, .. } => result,
        other => panic!("expected JobFailed, got {other:?}"),
    }
}

#[test]
fn every_verb_reports_done() {
    let sd = sandbox!();
    sd.install(&[("r.service", RELOADABLE), ("idle.service", RELOADABLE)]);
    let m = sd.manager();
    let active = || sd.unit_property("r.service", "ActiveState");
    for verb in [
        Verb::Start,
        Verb::Reload,
        Verb::Restart,
        Verb::TryRestart,
        Verb::ReloadOrRestart,
        Verb::ReloadOrTryRestart,
    ] {
        let out = m.run(verb, "r.service", JobMode::Replace, T).unwrap();
        assert_eq!(out.result, JobResult::Done, "{verb}");
        assert_eq!(out.verb, verb);
        assert_eq!(active(), "active", "{verb}");
    }
    let out = m.stop("r.service", JobMode::Replace, T).unwrap();
    assert_eq!(out.result, JobResult::Done);
    assert_eq!(active(), "inactive");
    // The no-op cases: try-restart and reload-or-try-restart of an inactive unit.
    for verb in [Verb::TryRestart, Verb::ReloadOrTryRestart] {
        let out = m.run(verb, "idle.service", JobMode::Replace, T).unwrap();
        assert_eq!(out.result, JobResult::Done, "{verb}");
        assert_eq!(sd.unit_property("idle.service", "ActiveState"), "inactive");
    }
    // Stop of a unit that is not running.
    let _ = m.stop("idle.service", JobMode::Replace, T).unwrap();
}

#[test]
fn failed_dependency_and_invalid_results() {
    let sd = sandbox!();
    sd.install(&[
        ("bad.service", common::ONESHOT_FAILS),
        (
            "needs-bad.service",
            "[Unit]\nRequires=bad.service\nAfter=bad.service\nStartLimitIntervalSec=0\n[Service]\nType=oneshot\nExecStart=/bin/true\n",
        ),
        ("r.service", RELOADABLE),
    ]);
    let m = sd.manager();
    assert_eq!(
        failed_with(m.start("bad.service", JobMode::Replace, T).unwrap_err()),
        JobResult::Failed
    );
    assert_eq!(
        failed_with(
            m.start("needs-bad.service", JobMode::Replace, T)
                .unwrap_err()
        ),
        JobResult::Dependency
    );
    // Reload of a unit that is not active.
    assert_eq!(
        failed_with(m.reload("r.service", JobMode::Replace, T).unwrap_err()),
        JobResult::Invalid
    );
}

#[test]
fn requisite_on_an_inactive_unit_is_dependency_for_us_and_skipped_for_its_check() {
    // systemd 252 produces `skipped` only for verify-active jobs (from Requisite=), which no
    // verb queues; here it is the other job, and ours reports `dependency`.
    let sd = sandbox!();
    sd.install(&[
        ("base.service", common::ONESHOT_OK),
        (
            "requisite.service",
            "[Unit]\nRequisite=base.service\nAfter=base.service\n[Service]\nType=oneshot\nExecStart=/bin/true\n",
        ),
    ]);
    let m = sd.manager();
    assert_eq!(
        failed_with(
            m.start("requisite.service", JobMode::Replace, T)
                .unwrap_err()
        ),
        JobResult::Dependency
    );
}

#[test]
fn systemd_job_timeouts_are_reported_as_timeout() {
    let sd = sandbox!();
    sd.install(&[
        (
            "jobtimeout.service",
            "[Unit]\nJobTimeoutSec=1\n[Service]\nType=oneshot\nExecStart=/bin/sleep 30\n",
        ),
        (
            "runningtimeout.service",
            "[Unit]\nJobRunningTimeoutSec=1\n[Service]\nType=oneshot\nExecStart=/bin/sleep 30\n",
        ),
    ]);
    let m = sd.manager();
    for unit in ["jobtimeout.service", "runningtimeout.service"] {
        let err = m.start(unit, JobMode::Replace, T).unwrap_err();
        assert_eq!(failed_with(err), JobResult::Timeout, "{unit}");
    }
}

#[test]
fn a_job_canceled_or_replaced_by_another_client_is_canceled() {
    let sd = sandbox!();
    sd.install(&[("slow.service", &common::slow_start(30.0))]);
    let ours = sd.manager();
    let other = sd.manager();

    // Another client cancels our queued job.
    let job = ours
        .enqueue(Verb::Start, "slow.service", JobMode::Replace, T)
        .unwrap();
    other.cancel(job.job(), T).unwrap();
    assert_eq!(failed_with(job.wait(T).unwrap_err()), JobResult::Canceled);

    // Another client's stop replaces our start.
    let _ = sd.systemctl(&["stop", "slow.service"]);
    let job = ours
        .enqueue(Verb::Start, "slow.service", JobMode::Replace, T)
        .unwrap();
    let stop = other.stop("slow.service", JobMode::Replace, T).unwrap();
    assert_ne!(stop.job, *job.job());
    assert_eq!(failed_with(job.wait(T).unwrap_err()), JobResult::Canceled);
}

#[test]
fn refusals_are_typed_errors_with_the_bus_error_name() {
    let sd = sandbox!();
    sd.install(&[
        ("noreload.service", common::LONG_RUNNING),
        ("slow.service", &common::slow_start(30.0)),
        ("masked.service", common::ONESHOT_OK),
    ]);
    sd.mask("masked.service");
    let m = sd.manager();

    let _ = m.start("noreload.service", JobMode::Replace, T).unwrap();
    match m
        .reload("noreload.service", JobMode::Replace, T)
        .unwrap_err()
    {
        Error::JobTypeNotApplicable { unit, verb, source } => {
            assert_eq!(unit, "noreload.service");
            assert_eq!(verb, Verb::Reload);
            assert_eq!(
                source.name(),
                "org.freedesktop.systemd1.JobTypeNotApplicable"
            );
        }
        other => panic!("expected JobTypeNotApplicable, got {other:?}"),
    }

    // A queued start job, then a stop in mode "fail": the transaction would undo it.
    let queued = m
        .enqueue(Verb::Start, "slow.service", JobMode::Replace, T)
        .unwrap();
    match m.stop("slow.service", JobMode::Fail, T).unwrap_err() {
        Error::TransactionRefused { unit, source, .. } => {
            assert_eq!(unit, "slow.service");
            assert_eq!(
                source.name(),
                "org.freedesktop.systemd1.TransactionIsDestructive"
            );
        }
        other => panic!("expected TransactionRefused, got {other:?}"),
    }
    drop(queued);

    match m.start("masked.service", JobMode::Replace, T).unwrap_err() {
        e @ Error::UnitMasked { .. } => {
            assert_eq!(e.exit_status(), 6);
            assert_eq!(
                e.bus_error().unwrap().name(),
                "org.freedesktop.systemd1.UnitMasked"
            );
        }
        other => panic!("expected UnitMasked, got {other:?}"),
    }
    match m.start("absent.service", JobMode::Replace, T).unwrap_err() {
        Error::NoSuchUnit { unit, .. } => assert_eq!(unit, "absent.service"),
        other => panic!("expected NoSuchUnit, got {other:?}"),
    }
}

/// A start over the unit's start limit: the job fails, and the reason says why in words a
/// user acts on (started too often, the unit's own `StartLimitBurst=` and
/// `StartLimitIntervalSec=`, and that reset-failed clears it), for the library and the
/// example alike; after `reset_failed` the unit starts again.
#[test]
fn a_start_over_the_start_limit_names_the_limit_and_the_way_out() {
    let sd = sandbox!();
    sd.install(&[(
        "often.service",
        // Running (a unit left inactive may be unloaded, and its count with it), restarted:
        // each restart is a start.
        "[Unit]\nStartLimitBurst=3\nStartLimitIntervalSec=60\n[Service]\nExecStart=/bin/sleep infinity\n",
    )]);
    let m = sd.manager();
    for _ in 0..3 {
        assert_eq!(
            m.restart("often.service", JobMode::Replace, T)
                .unwrap()
                .result,
            JobResult::Done
        );
    }
    let e = m.restart("often.service", JobMode::Replace, T).unwrap_err();
    let text = e.to_string();
    match &e {
        Error::JobFailed { result, reason, .. } => {
            assert_eq!(*result, JobResult::Failed);
            let reason = reason.as_ref().expect("a reason");
            assert_eq!(reason.result, systemd_jobs::UnitResult::StartLimitHit);
            let limit = reason.start_limit.expect("the limit");
            assert_eq!((limit.burst, limit.interval), (3, Duration::from_secs(60)));
        }
        other => panic!("expected JobFailed, got {other:?}"),
    }
    for words in [
        "started too often",
        "StartLimitBurst=3",
        "StartLimitIntervalSec=60s",
        "reset-failed",
    ] {
        assert!(text.contains(words), "{words:?} missing from: {text}");
    }
    let (code, _, err) = sd.run_example(&["--user", "--verb", "start", "often.service"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("StartLimitBurst=3 starts within StartLimitIntervalSec=60s"),
        "{err}"
    );
    m.reset_failed("often.service", T).unwrap();
    assert_eq!(
        m.start("often.service", JobMode::Replace, T)
            .unwrap()
            .result,
        JobResult::Done
    );
}

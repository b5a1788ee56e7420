//! Batches, job handles, failure reasons, the active check and the private socket.

mod common;

use std::time::{Duration, Instant};

use systemd_jobs::{
    Bus, Error, ExitStatus, JobMode, JobResult, JobState, Manager, UnitResult, Verb,
};

const T: Duration = Duration::from_secs(20);

#[test]
fn a_batch_reports_every_unit_in_input_order_under_one_deadline() {
    let sd = sandbox!();
    sd.install(&[
        ("ok.service", common::ONESHOT_OK),
        ("bad.service", common::ONESHOT_FAILS),
        ("svc.service", common::LONG_RUNNING),
        ("slow.service", &common::slow_start(10.0)),
    ]);
    let m = sd.manager();
    let _ = m.start("svc.service", JobMode::Replace, T).unwrap();
    let started = Instant::now();
    let results = m
        .batch()
        .add(Verb::Restart, "ok.service")
        .add(Verb::Start, "bad.service")
        .add(Verb::Restart, "missing.service")
        .add_with_mode(Verb::Stop, "svc.service", JobMode::Fail)
        .add(Verb::Start, "slow.service")
        .add(Verb::Start, "bad name")
        .run(Duration::from_millis(1500));
    let took = started.elapsed();
    assert!(took < Duration::from_millis(1750), "{took:?}");
    assert_eq!(results.len(), 6);
    assert_eq!(results[0].as_ref().unwrap().unit, "ok.service");
    assert!(matches!(
        &results[1],
        Err(Error::JobFailed {
            result: JobResult::Failed,
            ..
        })
    ));
    assert!(matches!(&results[2], Err(Error::NoSuchUnit { .. })));
    assert_eq!(results[3].as_ref().unwrap().verb, Verb::Stop);
    assert!(matches!(
        &results[4],
        Err(Error::Timeout { job: Some(_), .. })
    ));
    assert!(matches!(&results[5], Err(Error::InvalidUnitName { .. })));
    assert_eq!(sd.rules_held(&m), 0, "the batch's job rules are gone");
    assert_eq!(m.pending_jobs(), 0);
}

#[test]
fn job_handles_can_be_queried_waited_on_and_canceled() {
    let sd = sandbox!();
    sd.install(&[
        ("slow.service", &common::slow_start(30.0)),
        (
            "after-slow.service",
            "[Unit]\nAfter=slow.service\n[Service]\nType=oneshot\nExecStart=/bin/true\n",
        ),
    ]);
    let m = sd.manager();
    let slow = m
        .enqueue(Verb::Start, "slow.service", JobMode::Replace, T)
        .unwrap();
    assert!(slow.job().id() > 0);
    assert_eq!(slow.unit(), "slow.service");
    assert_eq!(slow.verb(), Verb::Start);
    let waiting = m
        .enqueue(Verb::Start, "after-slow.service", JobMode::Replace, T)
        .unwrap();
    // A job is Waiting until systemd's run queue dispatches it, which a busy manager may do
    // after answering our next call.
    common::eventually(T, || match slow.state(T).unwrap() {
        JobState::Running => Ok(()),
        JobState::Waiting => Err("slow.service's start job is still waiting".into()),
        other => panic!("slow.service's start job: {other:?}"),
    });
    assert_eq!(
        waiting.state(T).unwrap(),
        JobState::Waiting,
        "ordered after a running job"
    );
    assert_eq!(m.pending_jobs(), 2);

    slow.cancel(T).unwrap();
    match slow.wait(T) {
        Err(Error::JobFailed { result, job, .. }) => {
            assert_eq!(result, JobResult::Canceled);
            assert!(job.id() > 0);
        }
        other => panic!("expected canceled, got {other:?}"),
    }
    let out = waiting.wait(T).unwrap();
    assert_eq!(out.result, JobResult::Done);
    assert_eq!(m.pending_jobs(), 0);

    // A finished job that was not collected yet reports Finished.
    let quick = m
        .enqueue(Verb::Restart, "after-slow.service", JobMode::Replace, T)
        .unwrap();
    let state = common::eventually(T, || match quick.state(T).unwrap() {
        JobState::Finished(r) => Ok(r),
        other => Err(format!("still {other:?}")),
    });
    assert_eq!(state, JobResult::Done);
    let _ = quick.wait(T).unwrap();
}

#[test]
fn cancel_on_timeout_cancels_the_job_in_systemd() {
    let sd = sandbox!();
    sd.install(&[("slow.service", &common::slow_start(30.0))]);
    let keep = sd.manager();
    let err = keep
        .start("slow.service", JobMode::Replace, Duration::from_millis(300))
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }));
    assert_eq!(
        sd.unit_property("slow.service", "ActiveState"),
        "activating"
    );
    assert_eq!(jobs(&sd), 1, "by default the job keeps running in systemd");
    let _ = sd.systemctl(&["stop", "slow.service"]);
    assert_eq!(jobs(&sd), 0);

    let cancel = sd.builder().cancel_on_timeout(true).connect().unwrap();
    let started = Instant::now();
    let err = cancel
        .start("slow.service", JobMode::Replace, Duration::from_millis(300))
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_millis(550));
    assert!(matches!(err, Error::Timeout { .. }));
    common::eventually(Duration::from_secs(5), || match jobs(&sd) {
        0 => Ok(()),
        n => Err(format!("the job was not canceled: {n} jobs queued")),
    });
}

/// How many jobs the sandbox manager has queued.
fn jobs(sd: &common::Sandbox) -> usize {
    let out = sd.systemctl(&["list-jobs", "--no-legend"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count()
}

#[test]
fn failures_carry_the_units_own_result() {
    let sd = sandbox!();
    sd.install(&[
        ("exit.service", common::ONESHOT_FAILS),
        (
            "signal.service",
            "[Service]\nType=oneshot\nExecStart=/bin/sh -c 'kill -KILL $$$$'\n",
        ),
        (
            "slowstart.service",
            "[Service]\nType=oneshot\nTimeoutStartSec=0.5\nExecStart=/bin/sleep 10\n",
        ),
        (
            "broken.socket",
            "[Socket]\nListenStream=/proc/systemd-jobs-test/sock\n",
        ),
        ("broken.service", "[Service]\nExecStart=/bin/true\n"),
    ]);
    let m = sd.manager();
    let reason = |unit: &str| match m.start(unit, JobMode::Replace, T).unwrap_err() {
        Error::JobFailed { reason, result, .. } => {
            assert_eq!(result, JobResult::Failed, "{unit}");
            reason.unwrap_or_else(|| panic!("{unit}: no reason"))
        }
        other => panic!("{unit}: expected JobFailed, got {other:?}"),
    };
    let r = reason("exit.service");
    assert_eq!(
        (&r.result, r.main_process),
        (&UnitResult::ExitCode, Some(ExitStatus::Exited(3)))
    );
    assert!(r.to_string().contains("status 3"), "{r}");
    let r = reason("signal.service");
    assert_eq!(
        (r.result, r.main_process),
        (UnitResult::Signal, Some(ExitStatus::Killed(9)))
    );
    let r = reason("slowstart.service");
    assert_eq!(r.result, UnitResult::Timeout);
    let r = reason("broken.socket");
    assert_eq!(r.result, UnitResult::Resources);
    assert_eq!(r.main_process, None);

    let quiet = sd.builder().explain_failures(false).connect().unwrap();
    match quiet
        .start("exit.service", JobMode::Replace, T)
        .unwrap_err()
    {
        Error::JobFailed { reason, .. } => assert_eq!(reason, None),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_active_check_catches_units_that_are_done_but_not_running() {
    let sd = sandbox!();
    sd.install(&[
        (
            "dies.service",
            "[Unit]\nStartLimitIntervalSec=0\n[Service]\nExecStart=/bin/sh -c 'sleep 0.2; exit 1'\n",
        ),
        (
            "condition.service",
            "[Unit]\nConditionPathExists=/proc/systemd-jobs-test-absent\n[Service]\nExecStart=/bin/sleep infinity\n",
        ),
        ("healthy.service", common::LONG_RUNNING),
        (
            "ran.service",
            "[Service]\nType=oneshot\nExecStart=/bin/sh -c 'sleep 0.1'\n",
        ),
    ]);
    // Without the check, systemd's "done" is reported as it is.
    let plain = sd.manager();
    assert_eq!(
        plain
            .start("dies.service", JobMode::Replace, T)
            .unwrap()
            .result,
        JobResult::Done
    );
    assert_eq!(
        plain
            .start("condition.service", JobMode::Replace, T)
            .unwrap()
            .result,
        JobResult::Done
    );

    let checked = sd
        .builder()
        .check_active(Some(Duration::from_millis(600)))
        .connect()
        .unwrap();
    match checked
        .restart("dies.service", JobMode::Replace, T)
        .unwrap_err()
    {
        e @ Error::NotActive { .. } => {
            let Error::NotActive {
                ref state,
                ref unit,
                ..
            } = e
            else {
                unreachable!()
            };
            assert_eq!(unit, "dies.service");
            assert_eq!(state.active_state, "failed");
            assert_eq!(e.exit_status(), 1);
        }
        other => panic!("expected NotActive, got {other:?}"),
    }
    // systemd unloads a unit whose condition failed at once; a reference keeps it loaded so
    // its condition result can be read (without it, the unit reads as plainly inactive).
    let holder = sd.raw_connection().unwrap();
    let p = dbus::blocking::Proxy::new(
        "org.freedesktop.systemd1",
        "/org/freedesktop/systemd1",
        T,
        &holder,
    );
    let (path,): (dbus::Path<'static>,) = p
        .method_call(
            "org.freedesktop.systemd1.Manager",
            "LoadUnit",
            ("condition.service",),
        )
        .unwrap();
    let u = dbus::blocking::Proxy::new("org.freedesktop.systemd1", path, T, &holder);
    let () = u
        .method_call("org.freedesktop.systemd1.Unit", "Ref", ())
        .unwrap();
    let immediate = sd
        .builder()
        .check_active(Some(Duration::ZERO))
        .connect()
        .unwrap();
    match immediate
        .start("condition.service", JobMode::Replace, T)
        .unwrap_err()
    {
        Error::NotActive { state, .. } => {
            assert!(state.condition_failed, "{state}");
            assert!(state.to_string().contains("condition"), "{state}");
        }
        other => panic!("expected NotActive, got {other:?}"),
    }
    // A oneshot without RemainAfterExit= is inactive after a start that went well: its run
    // ended with its start job, and Result=success says it went well.
    let ran = checked.start("ran.service", JobMode::Replace, T).unwrap();
    assert_eq!(ran.result, JobResult::Done);
    assert_eq!(sd.unit_property("ran.service", "ActiveState"), "inactive");
    let started = std::time::Instant::now();
    let out = checked
        .start("healthy.service", JobMode::Replace, T)
        .unwrap();
    assert_eq!(out.result, JobResult::Done);
    // The call waited out the grace; the job's own time, as reported, did not include it.
    assert!(started.elapsed() >= Duration::from_millis(600));
    assert!(
        out.elapsed < Duration::from_millis(600),
        "{:?}",
        out.elapsed
    );
}

#[test]
fn the_private_socket_works_without_the_bus() {
    let sd = sandbox!();
    sd.install(&[
        ("quick.service", common::ONESHOT_OK),
        ("slow.service", &common::slow_start(0.3)),
    ]);
    // Fresh connections each time: the first call on a new direct connection is the tricky one.
    for _ in 0..30 {
        let m = Manager::connect(Bus::PrivateAddress(sd.private_address())).unwrap();
        assert!(m.is_direct());
        let out = m
            .restart("quick.service", JobMode::Replace, Duration::from_secs(5))
            .unwrap();
        assert_eq!(out.result, JobResult::Done);
    }
    let m = Manager::connect(Bus::PrivateAddress(sd.private_address())).unwrap();
    let results = m
        .batch()
        .add(Verb::Restart, "slow.service")
        .add(Verb::Restart, "quick.service")
        .run(T);
    assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
    // With the bus daemon gone, the private socket still works.
    sd.kill(sd.bus_daemon_pid(), "KILL");
    // Let systemd take note that its bus went away before the next job.
    common::eventually(T, || {
        match sd.unit_property("dbus.service", "ActiveState") {
            s if s == "active" => Err("systemd did not notice the dead bus daemon".into()),
            _ => Ok(()),
        }
    });
    let out = m.restart("quick.service", JobMode::Replace, T).unwrap();
    assert_eq!(out.result, JobResult::Done);
}

//! The manager re-executing (`daemon-reexec`) or reloading while we wait: the job's real result,
//! within the deadline, over the bus and over the private socket.

mod common;

use std::time::{Duration, Instant};

use systemd_jobs::{Bus, Error, JobMode, JobResult, Manager, ResultSource, Verb};

const T: Duration = Duration::from_secs(20);

/// How much later than the job's own run time a result may come.
const SLACK: Duration = Duration::from_millis(1500);

fn private(sd: &common::Sandbox) -> Manager {
    Manager::connect(Bus::PrivateAddress(sd.private_address())).expect("private socket")
}

/// Restarts a 3 s oneshot on `m`, re-executes the manager at each of `at` (ms), and checks
/// that the wait ends `done` about when the job does.
fn start_through(sd: &common::Sandbox, m: &Manager, verb: &'static str, at: &[u64]) {
    let pid_before = sd.manager_pid();
    let actor = sd.systemctl_at(verb, at);
    let started = Instant::now();
    let outcome = m
        .restart("slow.service", JobMode::Replace, T)
        .unwrap_or_else(|e| panic!("start through {verb} at {at:?}: {e}"));
    let took = started.elapsed();
    actor.join().unwrap();
    assert_eq!(outcome.result, JobResult::Done);
    // The manager came back long before the job ended: its JobRemoved reached us.
    assert_eq!(outcome.result_source, ResultSource::JobRemoved);
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(3) + SLACK,
        "took {took:?}"
    );
    // The same process, executed anew: re-execution keeps the pid.
    assert_eq!(sd.manager_pid(), pid_before);
    assert_eq!(sd.unit_property("slow.service", "ActiveState"), "active");
}

/// A sandbox with `slow.service`, a 3 s oneshot.
macro_rules! sandbox_with_slow_start {
    () => {{
        let sd = sandbox!();
        sd.install(&[("slow.service", &common::slow_start(3.0))]);
        sd
    }};
}

#[test]
fn a_reexec_during_the_wait_gives_the_real_result_over_the_bus() {
    let sd = sandbox_with_slow_start!();
    let m = sd.manager();
    start_through(&sd, &m, "daemon-reexec", &[500]);
    // No match rule left once the wait is over.
    assert_eq!(sd.rules_held(&m), 0);
    assert_eq!(m.pending_jobs(), 0);
    // And the handle goes on working.
    let again = m.restart("slow.service", JobMode::Replace, T).unwrap();
    assert_eq!(again.result, JobResult::Done);
}

#[test]
fn two_reexecs_during_one_wait_over_the_bus() {
    let sd = sandbox_with_slow_start!();
    let m = sd.manager();
    start_through(&sd, &m, "daemon-reexec", &[300, 1500]);
}

#[test]
fn a_reexec_during_the_wait_gives_the_real_result_over_the_private_socket() {
    let sd = sandbox_with_slow_start!();
    let m = private(&sd);
    start_through(&sd, &m, "daemon-reexec", &[500]);
    assert_eq!(m.pending_jobs(), 0);
    let again = m.restart("slow.service", JobMode::Replace, T).unwrap();
    assert_eq!(again.result, JobResult::Done);
}

#[test]
fn two_reexecs_during_one_wait_over_the_private_socket() {
    let sd = sandbox_with_slow_start!();
    let m = private(&sd);
    start_through(&sd, &m, "daemon-reexec", &[300, 1500]);
}

#[test]
fn a_reload_during_the_wait_changes_nothing() {
    let sd = sandbox_with_slow_start!();
    start_through(&sd, &sd.manager(), "daemon-reload", &[500]);
    start_through(&sd, &private(&sd), "daemon-reload", &[500]);
}

#[test]
fn a_batch_across_a_reexec_gets_every_result() {
    let sd = sandbox!();
    sd.install(&[
        ("slow.service", &common::slow_start(2.0)),
        ("slower.service", &common::slow_start(3.0)),
        ("bad.service", &common::failing_after(2.5)),
    ]);
    for m in [sd.manager(), private(&sd)] {
        let actor = sd.systemctl_at("daemon-reexec", &[500]);
        let started = Instant::now();
        let results = m
            .batch()
            .add(Verb::Restart, "slow.service")
            .add(Verb::Restart, "slower.service")
            .add(Verb::Restart, "bad.service")
            .run(T);
        let took = started.elapsed();
        actor.join().unwrap();
        assert!(took < Duration::from_secs(3) + SLACK, "took {took:?}");
        assert_eq!(results[0].as_ref().unwrap().result, JobResult::Done);
        assert_eq!(results[1].as_ref().unwrap().result, JobResult::Done);
        match &results[2] {
            Err(Error::JobFailed { unit, result, .. }) => {
                assert_eq!(unit, "bad.service");
                assert_eq!(*result, JobResult::Failed);
            }
            other => panic!("bad.service: expected JobFailed, got {other:?}"),
        }
        assert_eq!(m.pending_jobs(), 0);
    }
}

/// Queues `verb` on `unit` over the private socket without waiting, re-executes the manager
/// at once and lets the job finish while this handle is not connected (it reconnects only
/// when it waits), so its `JobRemoved` is lost for it; then waits.
fn wait_after_a_lost_signal(
    sd: &common::Sandbox,
    verb: Verb,
    unit: &str,
    job_runs: Duration,
) -> (Result<systemd_jobs::JobOutcome, Error>, Duration) {
    let m = private(sd);
    let job = m.enqueue(verb, unit, JobMode::Replace, T).unwrap();
    let out = sd.systemctl(&["daemon-reexec"]);
    assert!(out.status.success(), "daemon-reexec: {out:?}");
    // The job ends under the new manager, which has no connection from us to tell.
    std::thread::sleep(job_runs + Duration::from_millis(500));
    let jobs = sd.systemctl(&["list-jobs"]);
    assert!(
        String::from_utf8_lossy(&jobs.stdout).contains("No jobs"),
        "the job should have finished by now: {jobs:?}"
    );
    let started = Instant::now();
    let result = job.wait(T);
    (result, started.elapsed())
}

#[test]
fn a_start_that_finished_while_we_were_cut_off_is_recovered_as_done() {
    let sd = sandbox!();
    sd.install(&[("slow.service", &common::slow_start(1.0))]);
    let (result, took) =
        wait_after_a_lost_signal(&sd, Verb::Start, "slow.service", Duration::from_secs(1));
    let outcome = result.unwrap();
    assert!(took < Duration::from_secs(1), "took {took:?}");
    assert_eq!(outcome.result, JobResult::Done);
    match &outcome.result_source {
        ResultSource::Recovered(state) => assert_eq!(state.active_state, "active"),
        other => panic!("expected a recovered result, got {other:?}"),
    }
    assert!(outcome.to_string().contains("recovered"), "{outcome}");
}

#[test]
fn a_start_that_failed_while_we_were_cut_off_is_recovered_as_failed() {
    let sd = sandbox!();
    sd.install(&[("bad.service", &common::failing_after(1.0))]);
    let (result, took) =
        wait_after_a_lost_signal(&sd, Verb::Start, "bad.service", Duration::from_secs(1));
    assert!(took < Duration::from_secs(1), "took {took:?}");
    match result {
        Err(Error::JobFailed {
            result,
            reason,
            result_source,
            ..
        }) => {
            assert_eq!(result, JobResult::Failed);
            assert!(matches!(result_source, ResultSource::Recovered(_)));
            let reason = reason.expect("a failure reason");
            assert_eq!(
                reason.main_process,
                Some(systemd_jobs::ExitStatus::Exited(3))
            );
        }
        other => panic!("expected a recovered JobFailed, got {other:?}"),
    }
}

#[test]
fn a_stop_that_finished_while_we_were_cut_off_is_recovered_as_done() {
    let sd = sandbox!();
    sd.install(&[("slowstop.service", common::SLOW_STOP)]);
    sd.systemctl(&["start", "slowstop.service"]);
    let (result, _) =
        wait_after_a_lost_signal(&sd, Verb::Stop, "slowstop.service", Duration::from_secs(1));
    let outcome = result.unwrap();
    assert_eq!(outcome.result, JobResult::Done);
    assert!(matches!(outcome.result_source, ResultSource::Recovered(_)));
}

#[test]
fn a_lost_reload_is_an_unknown_outcome_not_a_guess() {
    let sd = sandbox!();
    sd.install(&[("reloads.service", common::SLOW_RELOAD)]);
    sd.systemctl(&["start", "reloads.service"]);
    let (result, _) =
        wait_after_a_lost_signal(&sd, Verb::Reload, "reloads.service", Duration::from_secs(1));
    match result {
        Err(e @ Error::OutcomeUnknown { .. }) => {
            assert_eq!(e.unit(), Some("reloads.service"));
            assert!(e.job().is_some());
            assert_eq!(e.exit_status(), 125);
            assert!(e.to_string().contains("unknown"), "{e}");
        }
        other => panic!("expected OutcomeUnknown, got {other:?}"),
    }
}

#[test]
fn cancel_on_timeout_and_the_active_check_work_across_a_reexec() {
    let sd = sandbox!();
    sd.install(&[
        ("slow.service", &common::slow_start(3.0)),
        ("endless.service", &common::slow_start(60.0)),
    ]);
    let bus = Bus::PrivateAddress(sd.private_address());
    // The active check pumps the connection through a re-execution during its grace.
    let checked = Manager::builder()
        .bus(bus.clone())
        .check_active(Some(Duration::from_millis(1500)))
        .connect()
        .unwrap();
    let actor = sd.systemctl_at("daemon-reexec", &[3500]);
    let outcome = checked
        .restart("slow.service", JobMode::Replace, T)
        .unwrap();
    actor.join().unwrap();
    assert_eq!(outcome.result, JobResult::Done);
    // Cancel-on-timeout reaches the job over the new connection.
    let canceling = Manager::builder()
        .bus(bus)
        .cancel_on_timeout(true)
        .connect()
        .unwrap();
    let actor = sd.systemctl_at("daemon-reexec", &[300]);
    let started = Instant::now();
    let err = canceling
        .start(
            "endless.service",
            JobMode::Replace,
            Duration::from_millis(1500),
        )
        .unwrap_err();
    actor.join().unwrap();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_millis(1750));
    common::eventually(T, || {
        let jobs = sd.systemctl(&["list-jobs"]);
        let text = String::from_utf8_lossy(&jobs.stdout).into_owned();
        if text.contains("No jobs") {
            Ok(())
        } else {
            Err(text)
        }
    });
    assert_eq!(canceling.pending_jobs(), 0);
}

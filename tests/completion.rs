//! Running units to completion (`systemctl start --wait`): how a unit that stops by itself
//! ended, over the bus and the private socket, alone, in a batch and through a handle, and the
//! example's `--wait`.

mod common;

use std::time::{Duration, Instant};

use systemd_jobs::{Error, ExitStatus, JobMode, JobResult, UnitResult, Verb};

const T: Duration = Duration::from_secs(10);

/// A service (Type=simple: its start job is done at once) that runs `script` and stops.
fn simple(script: &str) -> String {
    format!("[Unit]\nStartLimitIntervalSec=0\n[Service]\nExecStart=/bin/sh -c '{script}'\n")
}

/// A oneshot (its start job lasts as long as it runs) that runs `script`.
fn oneshot(script: &str) -> String {
    format!(
        "[Unit]\nStartLimitIntervalSec=0\n[Service]\nType=oneshot\nExecStart=/bin/sh -c '{script}'\n"
    )
}

fn install_all(sd: &common::Sandbox) {
    sd.install(&[
        ("ok.service", &simple("sleep 0.3")),
        ("exits3.service", &simple("sleep 0.3; exit 3")),
        ("killed.service", &simple("sleep 0.3; kill -9 $$$$")),
        ("forever.service", &simple("sleep 30")),
        ("once.service", &oneshot("sleep 0.3")),
        ("oncefails.service", &oneshot("exit 4")),
    ]);
}

#[test]
fn a_unit_that_exits_0_ran_to_completion_and_its_stop_is_seen_at_once() {
    let sd = sandbox!();
    install_all(&sd);
    for (how, m) in sd.on_both_transports() {
        for unit in ["ok.service", "once.service"] {
            let started = Instant::now();
            let done = m
                .run_to_completion(unit, JobMode::Replace, T)
                .unwrap_or_else(|e| panic!("{how} {unit}: {e}"));
            let took = started.elapsed();
            assert_eq!(done.unit, unit);
            assert_eq!(done.result, UnitResult::Success);
            assert_eq!(done.start.result, JobResult::Done);
            assert_eq!(
                done.main_process,
                Some(ExitStatus::Exited(0)),
                "{how} {unit}"
            );
            let ran = done.ran_for.expect("systemd's timestamps");
            assert!(
                ran >= Duration::from_millis(250),
                "{how} {unit}: ran {ran:?}"
            );
            // The stop comes as a signal, not from the once-a-second state check.
            assert!(
                took < Duration::from_millis(900),
                "{how} {unit}: took {took:?}"
            );
            assert!(
                done.to_string().contains("ran to completion, success"),
                "{done}"
            );
        }
        assert_eq!(m.pending_jobs(), 0);
    }
}

#[test]
fn a_unit_that_exits_non_zero_or_is_killed_is_a_run_failure_with_its_status() {
    let sd = sandbox!();
    install_all(&sd);
    for (how, m) in sd.on_both_transports() {
        for (unit, result, status) in [
            (
                "exits3.service",
                UnitResult::ExitCode,
                ExitStatus::Exited(3),
            ),
            ("killed.service", UnitResult::Signal, ExitStatus::Killed(9)),
        ] {
            let err = m.run_to_completion(unit, JobMode::Replace, T).unwrap_err();
            match &err {
                Error::RunFailed {
                    unit: u,
                    reason,
                    ran_for,
                    ..
                } => {
                    assert_eq!(u, unit);
                    assert_eq!(reason.result, result, "{how} {unit}");
                    assert_eq!(reason.main_process, Some(status), "{how} {unit}");
                    assert!(ran_for.is_some());
                }
                other => panic!("{how} {unit}: expected RunFailed, got {other:?}"),
            }
            assert_eq!(err.exit_status(), 1);
        }
        // A oneshot that fails fails its start job, as with systemctl start --wait.
        match m.run_to_completion("oncefails.service", JobMode::Replace, T) {
            Err(Error::JobFailed {
                result: JobResult::Failed,
                reason: Some(reason),
                ..
            }) => assert_eq!(reason.main_process, Some(ExitStatus::Exited(4))),
            other => panic!("{how}: expected JobFailed, got {other:?}"),
        }
    }
}

#[test]
fn a_unit_still_running_at_the_deadline_is_a_timeout_naming_its_state() {
    let sd = sandbox!();
    install_all(&sd);
    for (how, m) in sd.on_both_transports() {
        let limit = Duration::from_millis(1200);
        let started = Instant::now();
        let err = m
            .run_to_completion("forever.service", JobMode::Replace, limit)
            .unwrap_err();
        let took = started.elapsed();
        match &err {
            Error::StillActive { unit, state, .. } => {
                assert_eq!(unit, "forever.service");
                assert_eq!(state.active_state, "active", "{how}");
                assert_eq!(state.sub_state, "running", "{how}");
            }
            other => panic!("{how}: expected StillActive, got {other:?}"),
        }
        assert_eq!(err.exit_status(), 124);
        assert!(
            took >= limit && took < limit + Duration::from_millis(250),
            "{how}: took {took:?}"
        );
        // It keeps running in systemd.
        assert_eq!(sd.unit_property("forever.service", "ActiveState"), "active");
        sd.systemctl(&["stop", "forever.service"]);
    }
}

#[test]
fn batches_and_handles_run_units_to_completion() {
    let sd = sandbox!();
    install_all(&sd);
    let m = sd.manager();
    let results = m
        .batch()
        .add(Verb::Start, "ok.service")
        .add(Verb::Start, "exits3.service")
        .add(Verb::Start, "nonexistent.service")
        .add(Verb::Start, "once.service")
        .run_to_completion(T);
    assert_eq!(results.len(), 4);
    assert_eq!(results[0].as_ref().unwrap().unit, "ok.service");
    assert!(
        matches!(&results[1], Err(Error::RunFailed { .. })),
        "{:?}",
        results[1]
    );
    assert!(
        matches!(&results[2], Err(Error::NoSuchUnit { .. })),
        "{:?}",
        results[2]
    );
    assert_eq!(results[3].as_ref().unwrap().unit, "once.service");

    let run = m.enqueue_run("ok.service", JobMode::Replace, T).unwrap();
    assert!(run.job().id() > 0);
    assert_eq!(run.unit(), "ok.service");
    let done = run.wait(T).unwrap();
    assert_eq!(done.main_process, Some(ExitStatus::Exited(0)));
    assert_eq!(m.pending_jobs(), 0);
}

#[test]
fn the_reference_and_the_match_are_dropped_afterwards() {
    let sd = sandbox!();
    install_all(&sd);
    let m = sd.manager();
    let name = m.unique_name().unwrap().to_string();
    assert_eq!(sd.match_rules_of(&name), 0);
    let _ = m
        .run_to_completion("ok.service", JobMode::Replace, T)
        .unwrap();
    // One more operation: the RemoveMatch and Unref sent without waiting are handled by now.
    let _ = m
        .run(Verb::Start, "once.service", JobMode::Replace, T)
        .unwrap();
    // A round trip to the bus daemon: it has handled everything sent before it.
    common::probe_serial(&m.caller());
    assert_eq!(
        sd.match_rules_of(&name),
        0,
        "the unit's match and the job rules are gone"
    );
    let refs = sd.unit_property("ok.service", "Refs");
    assert_eq!(refs, "", "no reference left on the unit");
}

#[test]
fn the_example_waits_with_wait() {
    let sd = sandbox!();
    install_all(&sd);
    let (code, out, err) = sd.run_example(&["--user", "--wait", "ok", "once"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].starts_with("ok.service: ran to completion, success"),
        "{out}"
    );
    assert!(
        lines[1].starts_with("once.service: ran to completion, success"),
        "{out}"
    );

    let (code, out, err) = sd.run_example(&["--user", "--wait", "ok", "exits3"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.starts_with("ok.service: ran to completion"), "{out}");
    assert!(
        err.contains("exits3.service") && err.contains("status 3"),
        "{err}"
    );

    let (code, _, err) = sd.run_example(&["--user", "--wait", "--no-block", "ok"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = sd.run_example(&["--user", "--wait", "--verb", "stop", "ok"]);
    assert_eq!(code, 2, "{err}");
}

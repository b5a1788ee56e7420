//! Transactions and dependency failures: the other jobs a transaction queued, and which
//! dependency failed and why when a job ends `dependency`, one or more levels down, over the
//! bus and the private socket, and with the per-verb methods instead of `EnqueueUnitJob`.

mod common;

use std::time::Duration;

use systemd_jobs::{
    Bus, Error, ExitStatus, FailedDependency, JobMode, JobResult, Manager, UnitResult, Verb,
};

const T: Duration = Duration::from_secs(10);

/// A oneshot that needs `deps` (Requires= and After=).
fn needs(deps: &str) -> String {
    format!(
        "[Unit]\nStartLimitIntervalSec=0\nRequires={deps}\nAfter={deps}\n[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n"
    )
}

const FAILS_1: &str =
    "[Unit]\nStartLimitIntervalSec=0\n[Service]\nType=oneshot\nExecStart=/bin/sh -c 'exit 1'\n";
const KILLED: &str = "[Unit]\nStartLimitIntervalSec=0\n[Service]\nType=oneshot\nExecStart=/bin/sh -c 'kill -9 $$$$'\n";
const JOB_TIMES_OUT: &str = "[Unit]\nStartLimitIntervalSec=0\nJobTimeoutSec=0.5\n[Service]\nType=oneshot\nTimeoutStartSec=infinity\nExecStart=/bin/sleep 30\n";

fn install_all(sd: &common::Sandbox) {
    sd.install(&[
        ("fail.service", FAILS_1),
        ("killed.service", KILLED),
        ("stuck.service", JOB_TIMES_OUT),
        ("ok1.service", common::ONESHOT_OK),
        ("ok2.service", common::ONESHOT_OK),
        ("needsfail.service", &needs("fail.service")),
        ("mid.service", &needs("fail.service")),
        ("top.service", &needs("mid.service")),
        ("needskilled.service", &needs("killed.service")),
        ("needsstuck.service", &needs("stuck.service")),
        (
            "several.service",
            &needs("ok1.service ok2.service fail.service"),
        ),
    ]);
}

/// Starts `unit` on `m` and returns the failed dependencies of its `dependency` result.
fn dependency_failure(m: &Manager, unit: &str) -> (Vec<FailedDependency>, String) {
    match m.start(unit, JobMode::Replace, T) {
        Err(
            e @ Error::JobFailed {
                result: JobResult::Dependency,
                ..
            },
        ) => {
            let Error::JobFailed { dependencies, .. } = &e else {
                unreachable!()
            };
            (dependencies.to_vec(), e.to_string())
        }
        other => panic!("{unit}: expected a dependency failure, got {other:?}"),
    }
}

/// The only failed dependency, which must be `unit`.
fn only(deps: &[FailedDependency], unit: &str) -> FailedDependency {
    assert_eq!(deps.len(), 1, "{deps:#?}");
    assert_eq!(deps[0].unit, unit, "{deps:#?}");
    deps[0].clone()
}

fn assert_exit(dep: &FailedDependency, status: ExitStatus, result: UnitResult) {
    let reason = dep.reason.as_ref().expect("a reason");
    assert_eq!(reason.result, result, "{dep:?}");
    assert_eq!(reason.main_process, Some(status), "{dep:?}");
}

#[test]
fn a_failed_dependency_one_and_two_levels_down_is_named_with_its_reason() {
    let sd = sandbox!();
    install_all(&sd);
    for (how, m) in sd.on_both_transports() {
        for unit in ["needsfail.service", "top.service"] {
            let (deps, text) = dependency_failure(&m, unit);
            let dep = only(&deps, "fail.service");
            assert_exit(&dep, ExitStatus::Exited(1), UnitResult::ExitCode);
            assert!(dep.job.is_some(), "{how} {unit}: {dep:?}");
            // Every JobRemoved reaches a private-socket client: the job's own result. On a
            // bus with nobody subscribed to the manager, only the unit's failed state tells.
            let expected = (how == "private").then_some(JobResult::Failed);
            assert_eq!(dep.result, expected, "{how} {unit}: {dep:?}");
            assert!(
                text.contains("dependency failed: fail.service"),
                "{how}: {text}"
            );
            assert_eq!(m.pending_jobs(), 0, "{how}: companions are forgotten");
        }
    }
}

#[test]
fn a_dependency_killed_by_a_signal_is_named_with_the_signal() {
    let sd = sandbox!();
    install_all(&sd);
    for (_, m) in sd.on_both_transports() {
        let (deps, _) = dependency_failure(&m, "needskilled.service");
        let dep = only(&deps, "killed.service");
        assert_exit(&dep, ExitStatus::Killed(9), UnitResult::Signal);
    }
}

#[test]
fn a_dependency_whose_job_timed_out_is_named_on_the_private_socket_only() {
    let sd = sandbox!();
    install_all(&sd);
    let m = Manager::connect(Bus::PrivateAddress(sd.private_address())).unwrap();
    let (deps, text) = dependency_failure(&m, "needsstuck.service");
    let dep = only(&deps, "stuck.service");
    assert_eq!(dep.result, Some(JobResult::Timeout), "{dep:?}");
    assert_eq!(dep.reason, None, "the unit itself did not fail: {dep:?}");
    assert!(text.contains("stuck.service: job timeout"), "{text}");
    // Over a bus with nobody subscribed, the timed-out job's JobRemoved does not reach us and
    // the unit is still activating, not failed: nothing is named rather than a guess.
    let m = Manager::connect(Bus::Address(sd.bus_address())).unwrap();
    let (deps, _) = dependency_failure(&m, "needsstuck.service");
    assert!(deps.is_empty(), "{deps:#?}");
}

#[test]
fn of_several_dependencies_only_the_failed_one_is_named() {
    let sd = sandbox!();
    install_all(&sd);
    for (_, m) in sd.on_both_transports() {
        let (deps, _) = dependency_failure(&m, "several.service");
        let dep = only(&deps, "fail.service");
        assert_exit(&dep, ExitStatus::Exited(1), UnitResult::ExitCode);
    }
}

#[test]
fn the_outcome_lists_the_other_jobs_of_the_transaction() {
    let sd = sandbox!();
    sd.install(&[
        ("wanted.service", common::ONESHOT_OK),
        ("required.service", common::ONESHOT_OK),
        (
            "app.service",
            // Ordered after both: when its job is done, theirs are (without the order,
            // wanted.service may still be activating then).
            "[Unit]\nWants=wanted.service\nRequires=required.service\n\
             After=wanted.service required.service\n[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n",
        ),
    ]);
    let m = sd.manager();
    let out = m.start("app.service", JobMode::Replace, T).unwrap();
    let mut listed: Vec<(String, String)> = out
        .transaction
        .iter()
        .map(|t| (t.unit.clone(), t.job_type.clone()))
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        [
            ("required.service".to_owned(), "start".to_owned()),
            ("wanted.service".to_owned(), "start".to_owned())
        ]
    );
    assert!(out.transaction.iter().all(|t| t.job != out.job));
    // Both dependencies were started by that transaction.
    assert_eq!(sd.unit_property("wanted.service", "ActiveState"), "active");
    // Nothing left to queue the second time: the transaction is just our job.
    let again = m.start("app.service", JobMode::Replace, T).unwrap();
    assert!(again.transaction.is_empty(), "{:?}", again.transaction);
}

#[test]
fn the_per_verb_methods_give_the_same_results_where_they_can() {
    let sd = sandbox!();
    install_all(&sd);
    let mut monitor = sd.monitor_calls();
    let m = sd.builder().per_verb_methods(true).connect().unwrap();
    // A dependency failure one and two levels down is still found, from the units' states.
    for unit in ["needsfail.service", "top.service", "several.service"] {
        let (deps, text) = dependency_failure(&m, unit);
        let dep = only(&deps, "fail.service");
        assert_exit(&dep, ExitStatus::Exited(1), UnitResult::ExitCode);
        assert_eq!(dep.job, None);
        assert_eq!(dep.result, None);
        assert!(text.contains("dependency failed: fail.service"), "{text}");
    }
    let out = m.start("ok1.service", JobMode::Replace, T).unwrap();
    assert!(out.transaction.is_empty());
    let name = m.unique_name().unwrap().to_string();
    let methods: Vec<String> = monitor
        .calls_so_far(&sd)
        .into_iter()
        .filter(|c| c.sender == name && c.method.starts_with("org.freedesktop.systemd1.Manager."))
        .map(|c| c.method)
        .collect();
    assert!(
        methods.iter().any(|m| m.ends_with(".StartUnit")),
        "{methods:?}"
    );
    assert!(
        !methods.iter().any(|m| m.ends_with(".EnqueueUnitJob")),
        "{methods:?}"
    );
}

#[test]
fn the_example_says_which_dependency_failed_and_why() {
    let sd = sandbox!();
    install_all(&sd);
    let (code, _, stderr) = sd.run_example(&["--user", "--verb", "start", "top.service"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("top.service")
            && stderr.contains("dependency failed: fail.service")
            && stderr.contains("status 1"),
        "{stderr}"
    );
}

#[test]
fn batches_and_job_handles_explain_dependency_failures_too() {
    let sd = sandbox!();
    install_all(&sd);
    let m = sd.manager();
    let results = m
        .batch()
        .add(Verb::Start, "ok1.service")
        .add(Verb::Start, "top.service")
        .run(T);
    assert!(results[0].is_ok(), "{:?}", results[0]);
    match &results[1] {
        Err(Error::JobFailed { dependencies, .. }) => {
            let _ = only(dependencies, "fail.service");
        }
        other => panic!("expected a dependency failure, got {other:?}"),
    }
    let job = m
        .enqueue(Verb::Start, "needsfail.service", JobMode::Replace, T)
        .unwrap();
    let listed: Vec<&str> = job.transaction().iter().map(|t| t.unit.as_str()).collect();
    assert_eq!(listed, ["fail.service"]);
    match job.wait(T) {
        Err(Error::JobFailed { dependencies, .. }) => {
            let dep = only(&dependencies, "fail.service");
            assert_exit(&dep, ExitStatus::Exited(1), UnitResult::ExitCode);
        }
        other => panic!("expected a dependency failure, got {other:?}"),
    }
    assert_eq!(m.pending_jobs(), 0);
}

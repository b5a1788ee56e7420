//! The core: restart and wait on the real manager.

mod common;

use std::time::{Duration, Instant};

use systemd_jobs::{Error, JobMode, JobResult, NameProblem, ResultSource, UnitResult, Verb};

const T: Duration = Duration::from_secs(20);

#[test]
fn restart_of_an_active_service_is_done() {
    let sd = sandbox!();
    sd.install(&[("svc.service", common::LONG_RUNNING)]);
    let m = sd.manager();
    let _ = m.start("svc.service", JobMode::Replace, T).unwrap();
    let pid_before = sd.unit_property("svc.service", "MainPID");
    let out = m.restart("svc.service", JobMode::Replace, T).unwrap();
    assert_eq!(out.result, JobResult::Done);
    assert_eq!(out.unit, "svc.service");
    assert_eq!(out.verb, Verb::Restart);
    assert!(out.job.id() > 0);
    assert!(out.job.path().ends_with(&format!("/job/{}", out.job.id())));
    assert!(out.elapsed < T);
    assert_eq!(sd.unit_property("svc.service", "ActiveState"), "active");
    assert_ne!(sd.unit_property("svc.service", "MainPID"), pid_before);
}

#[test]
fn restart_of_a_failing_oneshot_is_a_job_failed_error() {
    let sd = sandbox!();
    sd.install(&[("bad.service", common::ONESHOT_FAILS)]);
    let m = sd.manager();
    let err = m.restart("bad.service", JobMode::Replace, T).unwrap_err();
    match &err {
        Error::JobFailed {
            unit,
            verb,
            job,
            result,
            reason,
            dependencies,
            result_source,
        } => {
            assert_eq!(*result_source, ResultSource::JobRemoved);
            assert!(dependencies.is_empty(), "{dependencies:?}");
            assert_eq!(unit, "bad.service");
            assert_eq!(*verb, Verb::Restart);
            assert!(job.id() > 0);
            assert_eq!(*result, JobResult::Failed);
            let reason = reason.as_ref().expect("a failure reason");
            assert_eq!(reason.result, UnitResult::ExitCode);
            assert_eq!(
                reason.main_process,
                Some(systemd_jobs::ExitStatus::Exited(3))
            );
        }
        other => panic!("expected JobFailed, got {other:?}"),
    }
    assert_eq!(err.exit_status(), 1);
    let text = err.to_string();
    assert!(
        text.contains("bad.service") && text.contains("failed"),
        "{text}"
    );
}

#[test]
fn restart_of_a_missing_unit_is_no_such_unit() {
    let sd = sandbox!();
    let m = sd.manager();
    let err = m
        .restart("does-not-exist.service", JobMode::Replace, T)
        .unwrap_err();
    match &err {
        Error::NoSuchUnit { unit, source } => {
            assert_eq!(unit, "does-not-exist.service");
            assert_eq!(source.name(), "org.freedesktop.systemd1.NoSuchUnit");
            assert!(source.message().contains("does-not-exist.service"));
        }
        other => panic!("expected NoSuchUnit, got {other:?}"),
    }
    assert_eq!(err.exit_status(), 5);
    assert!(std::error::Error::source(&err).is_some());
}

#[test]
fn invalid_names_are_refused_before_any_bus_traffic() {
    let sd = sandbox!();
    let m = sd.manager();
    let before = common::probe_serial(&m.caller());
    let long = format!("{}.service", "a".repeat(300));
    type Expect = fn(&NameProblem) -> bool;
    let cases: Vec<(&str, Expect)> = vec![
        ("", |p| *p == NameProblem::Empty),
        (".service", |p| *p == NameProblem::EmptyPrefix),
        (&long, |p| matches!(p, NameProblem::TooLong { len: 308 })),
        ("a/b.service", |p| {
            matches!(p, NameProblem::BadCharacter { ch: '/', .. })
        }),
        ("a\0b.service", |p| {
            matches!(p, NameProblem::BadCharacter { ch: '\0', .. })
        }),
        ("a b.service", |p| {
            matches!(p, NameProblem::BadCharacter { ch: ' ', .. })
        }),
        (
            "foo.bogus",
            |p| matches!(p, NameProblem::UnknownSuffix(s) if s == "bogus"),
        ),
        ("foo", |p| *p == NameProblem::NoSuffix),
        ("café.service", |p| {
            matches!(p, NameProblem::BadCharacter { ch: 'é', .. })
        }),
        ("foo@.service", |p| {
            *p == NameProblem::TemplateWithoutInstance
        }),
    ];
    for (name, expected) in &cases {
        for verb in Verb::ALL {
            match m.run(verb, name, JobMode::Replace, T) {
                Err(Error::InvalidUnitName {
                    name: n,
                    ref problem,
                }) => {
                    assert_eq!(&n, name);
                    assert!(
                        expected(problem),
                        "{name:?}: unexpected problem {problem:?}"
                    );
                }
                other => panic!("{name:?}: expected InvalidUnitName, got {other:?}"),
            }
        }
    }
    let after = common::probe_serial(&m.caller());
    assert_eq!(
        common::sent_between(before, after),
        0,
        "invalid names must not cause bus traffic"
    );
}

#[test]
fn deadline_is_honoured_and_nothing_is_left_behind() {
    let sd = sandbox!();
    sd.install(&[("slow.service", &common::slow_start(5.0))]);
    let m = sd.manager();
    let rules_before = sd.rules_held(&m);
    assert_eq!(rules_before, 0, "an idle handle holds no rule");

    let timeout = Duration::from_millis(700);
    let started = Instant::now();
    let err = m
        .start("slow.service", JobMode::Replace, timeout)
        .unwrap_err();
    let took = started.elapsed();
    assert!(
        took < timeout + Duration::from_millis(250),
        "returned after {took:?}"
    );
    assert!(took >= timeout, "returned early, after {took:?}");
    match &err {
        Error::Timeout { unit, job, waited } => {
            assert_eq!(unit, "slow.service");
            let job = job.as_ref().expect("the job was queued");
            assert!(job.path().starts_with("/org/freedesktop/systemd1/job/"));
            assert!(*waited >= timeout);
            let text = err.to_string();
            assert!(text.contains(job.path()), "{text}");
        }
        other => panic!("expected Timeout, got {other:?}"),
    }
    assert_eq!(err.exit_status(), 124);
    assert_eq!(
        m.pending_jobs(),
        0,
        "the timed-out job is not tracked any more"
    );
    assert_eq!(sd.rules_held(&m), rules_before, "no match rule left behind");
    // By default the job keeps running in systemd.
    assert_eq!(
        sd.unit_property("slow.service", "ActiveState"),
        "activating"
    );
}

#[test]
fn dropping_the_handle_removes_its_match_rules() {
    let sd = sandbox!();
    sd.install(&[("quick.service", common::ONESHOT_OK)]);
    let watcher = sd.raw_connection().unwrap();
    let m = sd.manager();
    let unique = m.unique_name().unwrap().to_string();
    let job = m
        .enqueue(Verb::Start, "quick.service", JobMode::Replace, T)
        .unwrap();
    assert_eq!(
        sd.match_rules_of(&unique),
        2,
        "JobRemoved + NameOwnerChanged while a job is waited on"
    );
    let _ = job.wait(T).unwrap();
    assert_eq!(sd.rules_held(&m), 0, "none once nothing waits");
    let job = m
        .enqueue(Verb::Start, "quick.service", JobMode::Replace, T)
        .unwrap();
    drop(job);
    drop(m);
    // The connection is closed with the handle; the daemon no longer knows it.
    let p = dbus::blocking::Proxy::new(
        "org.freedesktop.DBus",
        "/org/freedesktop/DBus",
        Duration::from_secs(5),
        &watcher,
    );
    let r: Result<(bool,), _> = p.method_call("org.freedesktop.DBus", "NameHasOwner", (&unique,));
    assert!(!r.unwrap().0, "the handle's connection is closed");
}

//! Faults while waiting, and signals that are not ours.

mod common;

use std::time::{Duration, Instant};

use dbus::blocking::Proxy;
use systemd_jobs::{Error, JobMode, JobResult, Verb};

const T: Duration = Duration::from_secs(20);

/// Waits on `job` while `pid` is killed 300 ms in; returns the error and how long after the
/// kill it came.
fn wait_through_kill(job: systemd_jobs::QueuedJob<'_>, pid: u32) -> (Error, Duration) {
    let killer = common::kill_after(pid, Duration::from_millis(300));
    let err = job.wait(T).unwrap_err();
    let returned = Instant::now();
    (err, returned.duration_since(killer.join().unwrap()))
}

#[test]
fn a_killed_manager_ends_the_wait_within_a_second() {
    let sd = sandbox!();
    sd.install(&[("slow.service", &common::slow_start(30.0))]);
    let m = sd.manager();
    let job = m
        .enqueue(Verb::Start, "slow.service", JobMode::Replace, T)
        .unwrap();
    let path = job.job().path().to_owned();
    let (err, gap) = wait_through_kill(job, sd.manager_pid());
    assert!(gap < Duration::from_secs(1), "took {gap:?} after the kill");
    match &err {
        Error::ManagerGone { unit, job } => {
            assert_eq!(unit, "slow.service");
            assert_eq!(job.as_ref().unwrap().path(), path);
        }
        other => panic!("expected ManagerGone, got {other:?}"),
    }
    assert_eq!(err.exit_status(), 125);
}

#[test]
fn a_killed_manager_ends_the_wait_on_the_private_socket_too() {
    let sd = sandbox!();
    sd.install(&[("slow.service", &common::slow_start(30.0))]);
    let m = systemd_jobs::Manager::connect(systemd_jobs::Bus::PrivateAddress(sd.private_address()))
        .unwrap();
    let job = m
        .enqueue(Verb::Start, "slow.service", JobMode::Replace, T)
        .unwrap();
    let (err, gap) = wait_through_kill(job, sd.manager_pid());
    assert!(gap < Duration::from_secs(1), "took {gap:?}");
    assert!(matches!(err, Error::ManagerGone { .. }), "{err:?}");
}

#[test]
fn a_killed_bus_daemon_is_a_prompt_disconnected_error() {
    let sd = sandbox!();
    sd.install(&[("slow.service", &common::slow_start(30.0))]);
    let m = sd.manager();
    let job = m
        .enqueue(Verb::Start, "slow.service", JobMode::Replace, T)
        .unwrap();
    let (err, gap) = wait_through_kill(job, sd.bus_daemon_pid());
    assert!(gap < Duration::from_secs(1), "took {gap:?}");
    match &err {
        Error::Disconnected { unit, .. } => assert_eq!(unit, "slow.service"),
        other => panic!("expected Disconnected, got {other:?}"),
    }
    // The handle stays usable in the sense that it fails cleanly, never panics.
    let again = m.start("slow.service", JobMode::Replace, Duration::from_secs(2));
    assert!(again.is_err());
}

#[test]
fn other_jobs_finishing_first_do_not_count_as_ours() {
    let sd = sandbox!();
    sd.install(&[
        (
            "a.service",
            "[Unit]\nStartLimitIntervalSec=0\n[Service]\nExecStart=/bin/sleep infinity\nExecStop=/bin/sleep 0.5\n",
        ),
        ("b.service", common::ONESHOT_OK),
    ]);
    // A subscriber makes systemd broadcast every job signal, so our connection sees them all.
    let subscriber = sd.raw_connection().unwrap();
    let p = Proxy::new(
        "org.freedesktop.systemd1",
        "/org/freedesktop/systemd1",
        T,
        &subscriber,
    );
    let () = p
        .method_call("org.freedesktop.systemd1.Manager", "Subscribe", ())
        .unwrap();

    let ours = sd.manager();
    let other = sd.manager();
    let _ = ours.start("a.service", JobMode::Replace, T).unwrap();

    // Another client's stop job on the same unit is running when our restart replaces it.
    let their_stop = other
        .enqueue(Verb::Stop, "a.service", JobMode::Replace, T)
        .unwrap();
    // And a job on another unit finishes meanwhile.
    let _ = other.restart("b.service", JobMode::Replace, T).unwrap();
    let out = ours.restart("a.service", JobMode::Replace, T).unwrap();
    assert_eq!(out.result, JobResult::Done);
    assert_ne!(out.job.path(), their_stop.job().path());
    let theirs = their_stop.wait(T);
    // Their stop either was canceled by our restart or had finished; it is never our result.
    match theirs {
        Err(Error::JobFailed { result, .. }) => assert_eq!(result, JobResult::Canceled),
        Ok(o) => assert_eq!(o.result, JobResult::Done),
        Err(e) => panic!("unexpected {e:?}"),
    }
    assert_eq!(sd.unit_property("a.service", "ActiveState"), "active");
}

#[test]
fn forged_job_removed_signals_from_other_clients_are_ignored() {
    let sd = sandbox!();
    sd.install(&[("slow.service", &common::slow_start(1.0))]);
    let ours = sd.manager();
    let job = ours
        .enqueue(Verb::Start, "slow.service", JobMode::Replace, T)
        .unwrap();
    let target = ours.unique_name().unwrap().to_string();
    let forger = sd.raw_connection().unwrap();
    let forge = |body: &dyn Fn(dbus::Message) -> dbus::Message| {
        let mut msg = dbus::Message::new_signal(
            "/org/freedesktop/systemd1",
            "org.freedesktop.systemd1.Manager",
            "JobRemoved",
        )
        .unwrap();
        msg.set_destination(Some(target.clone().into()));
        let msg = body(msg);
        dbus::channel::Sender::send(&forger, msg).unwrap();
    };
    // Our own job path, with a result that is not systemd's: must be ignored.
    let path = dbus::Path::from(job.job().path().to_owned());
    forge(&|m| {
        m.append3(job.job().id(), path.clone(), "slow.service")
            .append1("failed")
    });
    // A JobRemoved with an unexpected body.
    forge(&|m| m.append1("garbage"));
    forge(&|m| m);
    forger.channel().flush();
    let out = job.wait(T).unwrap();
    assert_eq!(out.result, JobResult::Done);
}

//! The session under every handle, on the real manager: an idle handle costs the bus daemon
//! nothing however many jobs other clients run; a `JobRemoved` the bus daemon dropped is
//! found by the job check, not at the deadline; handlers survive a reconnect (progress goes on
//! reporting across a re-execution, a follow dropped afterwards leaves newer ones working);
//! a caller held across a reconnect keeps working.

mod common;

use std::time::{Duration, Instant};

use systemd_jobs::{Bus, JobMode, JobResult, Manager, ResultSource, Verb};

const T: Duration = Duration::from_secs(30);

/// A notify service that says "phase-one" as it starts, "phase-two" 2.5 s later, and is
/// ready 0.5 s after that: its start job runs for 3 s.
const PHASES: &str = "[Unit]\nStartLimitIntervalSec=0\n[Service]\nType=notify\nNotifyAccess=all\nExecStart=/bin/sh -c 'systemd-notify --pid=$$$$ --status=phase-one; sleep 2.5; systemd-notify --pid=$$$$ --status=phase-two; sleep 0.5; systemd-notify --pid=$$$$ --ready; exec sleep 60'\n";

fn private(sd: &common::Sandbox) -> Manager {
    Manager::connect(Bus::PrivateAddress(sd.private_address())).expect("private socket")
}

#[test]
fn an_idle_handle_gets_nothing_while_thousands_of_foreign_jobs_end() {
    let sd = sandbox!();
    sd.install(&[("quick.service", common::ONESHOT_OK)]);
    let m = sd.manager();
    assert_eq!(
        m.start("quick.service", JobMode::Replace, T)
            .unwrap()
            .result,
        JobResult::Done
    );
    let name = m.unique_name().unwrap().to_string();
    assert_eq!(sd.rules_held(&m), 0, "no rule while idle");
    assert_eq!(m.match_rules(), 0);
    assert!(sd.foreign_noop_jobs(5000) >= 5000);
    // Nothing was routed to the idle handle: the bus daemon queued nothing for it.
    let (messages, bytes, peak) = sd.outgoing_queue_of(&name);
    assert_eq!((messages, bytes), (0, 0), "queued for the idle handle");
    assert!(peak < 4096, "peak outgoing bytes {peak}");
    // Its next operation has nothing to drain and ends well within a short deadline.
    let out = m
        .restart("quick.service", JobMode::Replace, Duration::from_secs(2))
        .unwrap();
    assert_eq!(out.result, JobResult::Done);
    assert_eq!(out.result_source, ResultSource::JobRemoved);
    assert_eq!(sd.rules_held(&m), 0);
}

#[test]
fn a_handle_waiting_on_a_queued_job_drains_a_backlog_of_foreign_results() {
    let sd = sandbox!();
    // A start that ends only when the test opens the gate, after the backlog has built up.
    let gate = sd.runtime_dir().join("gate-open");
    let unit = format!(
        "[Unit]\nStartLimitIntervalSec=0\n[Service]\nType=oneshot\nExecStart=/bin/sh -c 'while [ ! -e {} ]; do sleep 0.05; done'\n",
        gate.display()
    );
    sd.install(&[("gate.service", &unit)]);
    let m = sd.manager();
    // A queued job keeps the job rules: every foreign JobRemoved now queues up for us.
    let job = m
        .enqueue(Verb::Start, "gate.service", JobMode::Replace, T)
        .unwrap();
    assert_eq!(m.match_rules(), 2);
    assert!(sd.foreign_noop_jobs(20_000) >= 20_000);
    let (messages, _, _) = sd.outgoing_queue_of(m.unique_name().unwrap());
    assert!(
        messages > 1000,
        "only {messages} queued: no backlog to drain"
    );
    std::fs::write(&gate, "").unwrap();
    // Our JobRemoved comes behind the 20,000 foreign ones: the wait hands each to the router
    // once, in order, and finds ours at the end, well within the deadline.
    let out = job.wait(Duration::from_secs(10)).unwrap();
    assert_eq!(out.result, JobResult::Done);
    assert_eq!(out.result_source, ResultSource::JobRemoved);
    let (messages, _, _) = sd.outgoing_queue_of(m.unique_name().unwrap());
    assert_eq!(messages, 0, "the backlog was drained");
    assert_eq!(sd.rules_held(&m), 0);
    assert_eq!(m.pending_jobs(), 0);
}

#[test]
fn a_job_removed_dropped_by_a_full_bus_queue_is_found_by_the_job_check() {
    // 64 KiB queued for one connection at most; beyond it the daemon drops messages to it.
    let sd = match common::Sandbox::start_with_bus_queue_limit(Some(65_536)) {
        Ok(sd) => sd,
        Err(why) => return common::missing_prerequisite(&why),
    };
    // A start that ends only when the test opens the gate.
    let gate = sd.runtime_dir().join("gate-open");
    let unit = format!(
        "[Unit]\nStartLimitIntervalSec=0\n[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/sh -c 'while [ ! -e {} ]; do sleep 0.05; done'\n",
        gate.display()
    );
    sd.install(&[("gate.service", &unit)]);
    sd.install_noop_units();
    let check = Duration::from_secs(1);
    let m = sd.builder().job_check_interval(check).connect().unwrap();
    let job = m
        .enqueue(Verb::Start, "gate.service", JobMode::Replace, T)
        .unwrap();
    // While the handle does not read, foreign results fill its queue on the bus daemon (and
    // the socket's buffer) past the limit; only then does our job end, and its JobRemoved is
    // dropped.
    sd.foreign_noop_jobs(5000);
    let (_, queued_bytes, _) = sd.outgoing_queue_of(m.unique_name().unwrap());
    assert!(
        queued_bytes > 60_000,
        "the queue is not full: {queued_bytes} bytes"
    );
    std::fs::write(&gate, "").unwrap();
    common::eventually(Duration::from_secs(10), || {
        match sd.unit_property("gate.service", "ActiveState").as_str() {
            "active" => Ok(()),
            other => Err(format!("gate.service is {other}")),
        }
    });
    let started = Instant::now();
    let out = job.wait(T).unwrap();
    let took = started.elapsed();
    assert_eq!(out.result, JobResult::Done);
    assert!(
        matches!(out.result_source, ResultSource::Recovered(_)),
        "{:?}: the JobRemoved was not lost, the test proves nothing",
        out.result_source
    );
    // Found by the first check: the interval had passed before the wait began.
    assert!(
        took < check + Duration::from_millis(1500),
        "found after {took:?}, not within the check interval"
    );
}

#[test]
fn progress_keeps_reporting_across_a_reexec_on_both_transports() {
    let sd = sandbox!();
    sd.install(&[("phases.service", PHASES)]);
    for (how, m) in sd.on_both_transports() {
        let mut texts = Vec::new();
        let reexec = sd.systemctl_at("daemon-reexec", &[1000]);
        let out = m.run_with_progress(
            Verb::Restart,
            "phases.service",
            JobMode::Replace,
            T,
            Duration::from_millis(200),
            |p| texts.extend(p.status_text.clone()),
        );
        reexec.join().unwrap();
        assert_eq!(out.unwrap().result, JobResult::Done, "{how}");
        assert!(texts.iter().any(|t| t == "phase-one"), "{how}: {texts:?}");
        assert!(
            texts.iter().any(|t| t == "phase-two"),
            "{how}: the status sent after the reexec never arrived: {texts:?}"
        );
    }
}

#[test]
fn a_follow_dropped_after_a_reconnect_leaves_newer_ones_working() {
    let sd = sandbox!();
    sd.install(&[
        ("first.service", &common::slow_start(10.0)),
        ("phases.service", PHASES),
    ]);
    let m = private(&sd);
    // A run whose unit is followed from before the reset.
    let mut older = Some(m.enqueue_run("first.service", JobMode::Replace, T).unwrap());
    sd.systemctl_at("daemon-reexec", &[0]).join().unwrap();
    // The handle reconnects at its next call; the follow made then is the newer one, and
    // the older is dropped at the first report, while the newer is live.
    let mut after_drop = Vec::new();
    let out = m.run_with_progress(
        Verb::Restart,
        "phases.service",
        JobMode::Replace,
        T,
        Duration::from_millis(200),
        |p| {
            if older.take().is_none() {
                after_drop.extend(p.status_text.clone());
            }
        },
    );
    assert_eq!(out.unwrap().result, JobResult::Done);
    assert!(
        after_drop.iter().any(|t| t == "phase-two"),
        "the newer follow stopped hearing its unit: {after_drop:?}"
    );
}

#[test]
fn a_caller_held_across_a_reconnect_keeps_working() {
    let sd = sandbox!();
    sd.install(&[("slow.service", &common::slow_start(2.0))]);
    let m = private(&sd);
    let caller = m.caller();
    let systemd = dbus::blocking::Proxy::new(
        "org.freedesktop.systemd1",
        "/org/freedesktop/systemd1",
        Duration::from_secs(5),
        &caller,
    );
    let reexec = sd.systemctl_at("daemon-reexec", &[500]);
    // The wait reconnects while `caller` is alive.
    let out = m.restart("slow.service", JobMode::Replace, T).unwrap();
    reexec.join().unwrap();
    assert_eq!(out.result, JobResult::Done);
    use dbus::blocking::stdintf::org_freedesktop_dbus::Properties;
    let version: String = systemd
        .get("org.freedesktop.systemd1.Manager", "Version")
        .expect("the caller goes to the new connection");
    assert!(!version.is_empty());
}

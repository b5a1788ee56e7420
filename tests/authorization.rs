//! Interactive authorization: the header flag on the wire, only on the calls that act and only
//! when asked for, and calls that still get their replies and results.

mod common;

use std::time::Duration;

use common::{ALLOW_INTERACTIVE_AUTHORIZATION, SeenCall};
use systemd_jobs::{Bus, Error, JobMode, JobResult, Manager, ManagerBuilder, Verb};

const T: Duration = Duration::from_secs(20);

/// A handle from `builder` that allows interactive authorization.
fn asking(builder: ManagerBuilder) -> Manager {
    builder
        .allow_interactive_authorization(true)
        .connect()
        .expect("connect with interactive authorization allowed")
}

fn flagged(call: &SeenCall) -> bool {
    call.flags & ALLOW_INTERACTIVE_AUTHORIZATION != 0
}

fn calls_of(calls: &[SeenCall], sender: &str) -> Vec<SeenCall> {
    calls
        .iter()
        .filter(|c| c.sender == sender)
        .cloned()
        .collect()
}

/// The calls that ask systemd to act, as opposed to reads.
fn acting(call: &SeenCall) -> bool {
    [
        "Manager.EnqueueUnitJob",
        "Manager.RestartUnit",
        "Manager.StartUnit",
        "Job.Cancel",
    ]
    .iter()
    .any(|m| call.method.ends_with(m))
}

#[test]
fn job_and_cancel_calls_carry_the_flag_only_when_asked_for() {
    let sd = sandbox!();
    sd.install(&[
        ("ok.service", common::ONESHOT_OK),
        ("bad.service", common::ONESHOT_FAILS),
        ("slow.service", &common::slow_start(10.0)),
    ]);
    let mut monitor = sd.monitor_calls();
    let asking = asking(sd.builder().cancel_on_timeout(true));
    let plain = sd.builder().cancel_on_timeout(true).connect().unwrap();

    for m in [&asking, &plain] {
        assert_eq!(
            m.restart("ok.service", JobMode::Replace, T).unwrap().result,
            JobResult::Done
        );
        // A failure is explained by reads on the same connection, after the flagged call.
        match m.start("bad.service", JobMode::Replace, T) {
            Err(Error::JobFailed { reason, .. }) => assert!(reason.is_some()),
            other => panic!("bad.service: {other:?}"),
        }
        let job = m
            .enqueue(Verb::Start, "slow.service", JobMode::Replace, T)
            .unwrap();
        job.cancel(T).unwrap();
        assert!(matches!(
            job.wait(T),
            Err(Error::JobFailed {
                result: JobResult::Canceled,
                ..
            })
        ));
        // The deadline passes: a Cancel is sent without waiting for its reply.
        assert!(matches!(
            m.start("slow.service", JobMode::Replace, Duration::from_millis(300)),
            Err(Error::Timeout { job: Some(_), .. })
        ));
    }

    let calls = monitor.calls_so_far(&sd);
    let asking_calls = calls_of(&calls, asking.unique_name().unwrap());
    let plain_calls = calls_of(&calls, plain.unique_name().unwrap());
    for (who, calls, want) in [
        ("asking", &asking_calls, true),
        ("plain", &plain_calls, false),
    ] {
        let acts: Vec<_> = calls.iter().filter(|c| acting(c)).collect();
        assert_eq!(
            acts.iter()
                .map(|c| c.method.rsplit('.').next().unwrap())
                .collect::<Vec<_>>(),
            [
                "EnqueueUnitJob",
                "EnqueueUnitJob",
                "EnqueueUnitJob",
                "Cancel",
                "EnqueueUnitJob",
                "Cancel"
            ],
            "{who}: {calls:#?}"
        );
        for c in &acts {
            assert_eq!(flagged(c), want, "{who}: {c:?}");
        }
        let no_reply_cancel = acts.last().unwrap();
        assert_eq!(
            no_reply_cancel.flags & 0x1,
            0x1,
            "{who}: {no_reply_cancel:?}"
        );
        // Reads (LoadUnit, property Gets) never ask.
        let reads: Vec<_> = calls.iter().filter(|c| !acting(c)).collect();
        assert!(!reads.is_empty(), "{who}: {calls:#?}");
        assert!(reads.iter().all(|c| !flagged(c)), "{who}: {reads:#?}");
    }
    assert_eq!(asking.pending_jobs(), 0);
}

#[test]
fn many_flagged_calls_on_one_connection_each_get_their_own_reply() {
    let sd = sandbox!();
    sd.install(&[
        ("a.service", common::ONESHOT_OK),
        ("b.service", common::ONESHOT_OK),
    ]);
    let m = asking(sd.builder());
    // Flagged calls (serials from the crate's range) alternate with the connection's own
    // (AddMatch, property reads: libdbus's serials); each must get its own reply, success or
    // error, never another call's.
    for i in 0..20 {
        let unit = if i % 2 == 0 { "a.service" } else { "b.service" };
        let outcome = m.restart(unit, JobMode::Replace, T).unwrap();
        assert_eq!(outcome.unit, unit);
        assert_eq!(outcome.result, JobResult::Done);
        let refused = m
            .enqueue(Verb::Start, "nope.service", JobMode::Replace, T)
            .unwrap_err();
        assert!(
            matches!(&refused, Error::NoSuchUnit { unit, .. } if unit == "nope.service"),
            "{refused:?}"
        );
    }
}

#[test]
fn the_private_socket_accepts_flagged_calls() {
    let sd = sandbox!();
    sd.install(&[("ok.service", common::ONESHOT_OK)]);
    let m = asking(Manager::builder().bus(Bus::PrivateAddress(sd.private_address())));
    for _ in 0..3 {
        assert_eq!(
            m.restart("ok.service", JobMode::Replace, T).unwrap().result,
            JobResult::Done
        );
    }
    let job = m
        .enqueue(Verb::Start, "ok.service", JobMode::Replace, T)
        .unwrap();
    assert_eq!(job.wait(T).unwrap().result, JobResult::Done);
}

#[test]
fn a_late_reply_to_a_timed_out_flagged_call_is_never_taken_for_the_next_ones() {
    let sd = sandbox!();
    sd.install(&[
        ("a.service", common::ONESHOT_OK),
        ("b.service", common::ONESHOT_OK),
    ]);
    let m = asking(sd.builder());
    let _ = m.start("b.service", JobMode::Replace, T).unwrap();

    // systemd is frozen, so this call gets no reply before its deadline...
    sd.kill(sd.manager_pid(), "STOP");
    let frozen = m.start("a.service", JobMode::Replace, Duration::from_millis(300));
    sd.kill(sd.manager_pid(), "CONT");
    assert!(
        matches!(&frozen, Err(Error::Timeout { job: None, .. })),
        "{frozen:?}"
    );
    // ...and answers it once thawed. systemd reads its bus connection in order, so once this
    // ping over the bus is answered, the late reply to the start of a.service is on its way to
    // (or already in) the handle's connection.
    common::ping_systemd(&sd);

    // The next calls must get their own replies (b's job), not the late one (a's job).
    for _ in 0..3 {
        let outcome = m
            .restart("b.service", JobMode::Replace, Duration::from_secs(5))
            .unwrap();
        // `unit` is the one systemd named in the JobRemoved of the job path we were given.
        assert_eq!(outcome.unit, "b.service", "{outcome}");
        assert_eq!(outcome.result, JobResult::Done);
    }
}

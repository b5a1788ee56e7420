//! Many handles at once, merged jobs, and a long-lived handle over thousands of operations.

mod common;

use std::sync::{Arc, Barrier};
use std::time::Duration;

use systemd_jobs::{JobMode, JobResult, Manager, Verb};

const T: Duration = Duration::from_secs(30);

#[test]
fn parallel_handles_each_get_their_own_job_result() {
    let sd = sandbox!();
    let units: Vec<String> = (0..4).map(|i| format!("u{i}.service")).collect();
    let mut files: Vec<(String, String)> = units
        .iter()
        .map(|u| (u.clone(), common::slow_start(0.3)))
        .collect();
    files.push(("shared.service".into(), common::ONESHOT_OK.into()));
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    sd.install(&refs);

    let addr = sd.bus_address();
    let barrier = Arc::new(Barrier::new(8));
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let addr = addr.clone();
            let barrier = Arc::clone(&barrier);
            let unit = if i % 2 == 0 {
                units[i / 2].clone()
            } else {
                "shared.service".to_owned()
            };
            std::thread::spawn(move || {
                let m = Manager::connect(systemd_jobs::Bus::Address(addr)).unwrap();
                barrier.wait();
                let mut seen = Vec::new();
                for _ in 0..5 {
                    let job = m
                        .enqueue(Verb::Restart, &unit, JobMode::Replace, T)
                        .unwrap();
                    let path = job.job().path().to_owned();
                    let out = job.wait(T).unwrap();
                    assert_eq!(out.job.path(), path, "the result is for our own job path");
                    assert_eq!(out.result, JobResult::Done);
                    assert_eq!(out.unit, unit);
                    seen.push(path);
                }
                assert_eq!(m.pending_jobs(), 0);
                seen
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap().len(), 5);
    }
}

#[test]
fn callers_whose_requests_are_merged_all_get_the_result() {
    let sd = sandbox!();
    sd.install(&[("slow.service", &common::slow_start(1.0))]);
    let a = sd.manager();
    let b = sd.manager();
    let ja = a
        .enqueue(Verb::Start, "slow.service", JobMode::Replace, T)
        .unwrap();
    let jb = b
        .enqueue(Verb::Start, "slow.service", JobMode::Replace, T)
        .unwrap();
    assert_eq!(
        ja.job().path(),
        jb.job().path(),
        "systemd merged the two start requests"
    );
    // Each handle waits for the same job; the second one to wait has its result queued.
    let oa = ja.wait(T).unwrap();
    let ob = jb.wait(T).unwrap();
    assert_eq!(oa.result, JobResult::Done);
    assert_eq!(ob.result, JobResult::Done);
    assert_eq!(oa.job, ob.job);

    // Within one handle too: a batch naming the unit twice gets one job, reported twice.
    let _ = a.stop("slow.service", JobMode::Replace, T).unwrap();
    let results = a
        .batch()
        .add(Verb::Start, "slow.service")
        .add(Verb::Start, "slow.service")
        .run(T);
    let jobs: Vec<_> = results.into_iter().map(|r| r.unwrap().job).collect();
    assert_eq!(jobs[0], jobs[1]);
    assert_eq!(a.pending_jobs(), 0);
}

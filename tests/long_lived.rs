//! A long-lived handle over thousands of operations: no match rule left between them, no
//! growth in memory.
//! (A test binary of its own, so no other test's threads disturb the memory reading.)

mod common;

use std::time::Duration;

use systemd_jobs::{JobMode, JobResult};

const T: Duration = Duration::from_secs(30);

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn a_long_lived_handle_keeps_constant_match_rules_and_memory_over_2000_operations() {
    let sd = sandbox!();
    sd.install(&[("quick.service", common::ONESHOT_OK)]);
    let m = sd.manager();
    let mut rules = Vec::new();
    let mut rss = Vec::new();
    for i in 0..2000 {
        let out = m.restart("quick.service", JobMode::Replace, T).unwrap();
        assert_eq!(out.result, JobResult::Done);
        if i % 500 == 499 {
            rules.push(sd.rules_held(&m));
            rss.push(rss_kib());
        }
    }
    assert!(
        rules.iter().all(|&r| r == 0),
        "match rules over time: {rules:?}"
    );
    assert_eq!(m.pending_jobs(), 0);
    // Allow allocator noise, not growth: under 1 MiB between the 500th and the 2000th op.
    let growth = rss[3].saturating_sub(rss[0]);
    assert!(growth < 1024, "RSS grew by {growth} KiB: {rss:?}");
}

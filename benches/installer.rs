//! An installer's operations on every systemd the system-manager tests boot (252 from this
//! machine's root, 257 from Debian trixie, 262 from Debian sid), in one run per version:
//!
//! - one process per operation inside the container: the `restart_blocking` example's
//!   `daemon-reload` (over the system bus and over the private socket) against `systemctl
//!   daemon-reload`, and an enable/disable pair (each with its reload, as both do by
//!   default) against `systemctl enable` + `systemctl disable`, every command in rotating
//!   order each round; `/bin/true` is the floor of starting a process there;
//! - what a reload costs a job waited on by the same handle: from this machine over the bus,
//!   the time to the result of a start that takes 300 ms, alone, and with a `daemon_reload`
//!   on the same handle while it waits (interleaved), beside a reload alone.
//!
//! Run as root after `bash .ci/test` has built the roots: `cargo bench --bench installer`
//! (BENCH_N sets the rounds per version, default 60).

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use std::time::{Duration, Instant};

use common::container::{Container, DEBIAN_SUITES, Root};
use systemd_jobs::{JobMode, Verb};

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64()
}

const APP: &str =
    "[Service]\nExecStart=/bin/sleep infinity\n[Install]\nWantedBy=multi-user.target\n";
const SLOW: &str = "[Service]\nType=oneshot\nExecStart=/bin/sleep 0.3\n";

struct Row {
    version: u32,
    floor: Duration,
    reload_bus: Duration,
    reload_private: Duration,
    reload_systemctl: Duration,
    pair_example: Duration,
    pair_systemctl: Duration,
    job_alone: Duration,
    job_with_reload: Duration,
    reload_alone: Duration,
}

/// Runs `commands` inside `c` in rotating order for `n` rounds; each command is a list of
/// processes run one after the other and timed together. Medians, in `commands`' order.
fn interleaved(c: &Container, commands: &[&[&[&str]]], n: usize) -> Vec<Duration> {
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); commands.len()];
    for round in 0..n {
        for slot in 0..commands.len() {
            let which = (round + slot) % commands.len();
            let t = Instant::now();
            for args in commands[which] {
                let (code, _, err) = c.run(None, args);
                assert_eq!(code, 0, "{args:?}: {err}");
            }
            times[which].push(t.elapsed());
        }
    }
    times
        .into_iter()
        .map(|t| support::median_p99(t).0)
        .collect()
}

fn measure(root: Root, n: usize) -> Row {
    let c = Container::boot(root).unwrap_or_else(|e| panic!("{root}: {e}"));
    c.install(&[("app.service", APP), ("slow.service", SLOW)]);
    let ex = "/opt/t/restart_blocking";
    let commands: [&[&[&str]]; 6] = [
        &[&["/bin/true"]],
        &[&[ex, "--verb", "daemon-reload"]],
        &[&[ex, "--private", "--verb", "daemon-reload"]],
        &[&["systemctl", "daemon-reload"]],
        &[
            &[ex, "--private", "--verb", "enable", "app"],
            &[ex, "--private", "--verb", "disable", "app"],
        ],
        &[
            &["systemctl", "enable", "app"],
            &["systemctl", "disable", "app"],
        ],
    ];
    let t = interleaved(&c, &commands, n);

    // A job waited on across a reload by the same handle, from this machine over the bus.
    let m = c.manager();
    let timeout = Duration::from_secs(30);
    let (mut alone, mut with_reload, mut reload) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..n {
        for slot in 0..3 {
            match (round + slot) % 3 {
                0 => {
                    let t = Instant::now();
                    let _ = m.start("slow.service", JobMode::Replace, timeout).unwrap();
                    alone.push(t.elapsed());
                }
                1 => {
                    let t = Instant::now();
                    let job = m
                        .enqueue(Verb::Start, "slow.service", JobMode::Replace, timeout)
                        .unwrap();
                    m.daemon_reload(timeout).unwrap();
                    let _ = job.wait(timeout).unwrap();
                    with_reload.push(t.elapsed());
                }
                _ => {
                    let t = Instant::now();
                    m.daemon_reload(timeout).unwrap();
                    reload.push(t.elapsed());
                }
            }
        }
    }
    let median = |v: Vec<Duration>| support::median_p99(v).0;
    Row {
        version: c.version,
        floor: t[0],
        reload_bus: t[1],
        reload_private: t[2],
        reload_systemctl: t[3],
        pair_example: t[4],
        pair_systemctl: t[5],
        job_alone: median(alone),
        job_with_reload: median(with_reload),
        reload_alone: median(reload),
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n = support::env_n("BENCH_N", 60);
    let roots = std::iter::once(Root::Host).chain(DEBIAN_SUITES.map(Root::Debian));
    let rows: Vec<Row> = roots.map(|root| measure(root, n)).collect();
    println!(
        "one process per operation inside the container, {n} interleaved rounds per version, medians\n"
    );
    println!(
        "| systemd | `/bin/true` (floor) | example daemon-reload, bus | example daemon-reload, private | `systemctl daemon-reload` | example / systemctl, bus | example / systemctl, private | example enable + disable | `systemctl enable` + `disable` | example / systemctl |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {} | {} | {:.2}x | {:.2}x | {} | {} | {:.2}x |",
            r.version,
            ms(r.floor),
            ms(r.reload_bus),
            ms(r.reload_private),
            ms(r.reload_systemctl),
            ratio(r.reload_bus, r.reload_systemctl),
            ratio(r.reload_private, r.reload_systemctl),
            ms(r.pair_example),
            ms(r.pair_systemctl),
            ratio(r.pair_example, r.pair_systemctl),
        );
    }
    println!(
        "\na start that takes 300 ms, waited on by one handle over the bus, {n} interleaved rounds, medians\n"
    );
    println!(
        "| systemd | job alone | job with a daemon-reload on the same handle while it waits | reload alone | with reload / alone | (with reload - alone) / reload alone |"
    );
    println!("|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {} | {:.2}x | {:.2} |",
            r.version,
            ms(r.job_alone),
            ms(r.job_with_reload),
            ms(r.reload_alone),
            ratio(r.job_with_reload, r.job_alone),
            r.job_with_reload.saturating_sub(r.job_alone).as_secs_f64()
                / r.reload_alone.as_secs_f64(),
        );
    }
}

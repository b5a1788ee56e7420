//! A long-lived handle on a busy bus, on a throwaway real `systemd --user` (the test
//! harness's sandbox), in one run: the next operation after an idle period during which other
//! clients' jobs ended, against a quiet one; the bus daemon's and the handle's memory before
//! and after; a backlog of foreign results (a queued job keeps the job rules) drained by the
//! session's pump, against the same backlog drained by libdbus's own blocking call.
//!
//! Run as root: `cargo bench --bench idle` (BENCH_N sets the quiet/10k rounds, default 5;
//! BENCH_BIG the large backlog, default 100000; BENCH_LIMIT the bus daemon's queue limit in
//! bytes for the last row, default 8 MiB).

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use std::time::{Duration, Instant};

use dbus::blocking::BlockingSender;
use systemd_jobs::{JobMode, Manager, Verb};

const T: Duration = Duration::from_secs(120);

/// A oneshot that stays active.
const ACTIVE: &str = "[Unit]\nStartLimitIntervalSec=0\n[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n";

fn us(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

fn rss_kib(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap()
}

/// One operation on `m`, timed: a start of a unit that is active already, a job that ends at
/// once, so the time is the handle's and the bus's, not a process being started.
fn op(m: &Manager) -> Duration {
    let t = Instant::now();
    let _ = m.start("active.service", JobMode::Replace, T).unwrap();
    t.elapsed()
}

/// How long the manager and the bus daemon are left alone after a flood of foreign jobs
/// and between measurements, so that what is timed is the handle, not their own catching up.
const SETTLE: Duration = Duration::from_millis(500);

/// An operation after a pause, as on a handle that was just idle on a quiet bus.
fn quiet_op(m: &Manager) -> Duration {
    std::thread::sleep(SETTLE);
    op(m)
}

/// The time of an operation on a handle that first sat idle while `k` foreign jobs ended.
fn after_idle(sd: &common::Sandbox, m: &Manager, k: usize) -> Duration {
    sd.foreign_noop_jobs(k);
    std::thread::sleep(SETTLE);
    op(m)
}

/// A backlog of `k` foreign results queued for `m` (a job queued and not waited on keeps the
/// job rules), then the next operation, which drains it: (its time, messages queued).
fn after_backlog(sd: &common::Sandbox, m: &Manager, k: usize) -> (Duration, u32) {
    let held = m
        .enqueue(Verb::Start, "active.service", JobMode::Replace, T)
        .unwrap();
    sd.foreign_noop_jobs(k);
    std::thread::sleep(SETTLE);
    let (queued, _, _) = sd.outgoing_queue_of(m.unique_name().unwrap());
    drop(held);
    (op(m), queued)
}

/// The same backlog on a bare connection with the `JobRemoved` rule, drained by libdbus's
/// blocking call (`dbus_connection_send_with_reply_and_block`, a `GetId` to the bus daemon).
fn libdbus_blocking_call_after_backlog(sd: &common::Sandbox, k: usize) -> Duration {
    let conn = sd.raw_connection().unwrap();
    conn.add_match_no_cb(
        "type='signal',sender='org.freedesktop.systemd1',interface='org.freedesktop.systemd1.Manager',member='JobRemoved'",
    )
    .unwrap();
    sd.foreign_noop_jobs(k);
    std::thread::sleep(SETTLE);
    let msg = dbus::Message::new_method_call(
        "org.freedesktop.DBus",
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus",
        "GetId",
    )
    .unwrap();
    let t = Instant::now();
    conn.send_with_reply_and_block(msg, T).unwrap();
    t.elapsed()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n = support::env_n("BENCH_N", 5);
    let big = support::env_n("BENCH_BIG", 100_000);
    let limit = support::env_n("BENCH_LIMIT", 8 << 20);
    let sd = match common::Sandbox::start() {
        Ok(sd) => sd,
        Err(why) => {
            eprintln!("cannot run the benchmark: {why}");
            std::process::exit(1);
        }
    };
    sd.install(&[("active.service", ACTIVE)]);
    let m = sd.manager();
    let _ = op(&m);
    sd.foreign_noop_jobs(100);
    let bus_pid = sd.bus_daemon_pid().to_string();

    // Quiet and 10k-idle operations, interleaved.
    let (mut quiet, mut idle_10k, mut backlog_10k) = (Vec::new(), Vec::new(), Vec::new());
    let mut queued_10k = 0;
    for _ in 0..n {
        for _ in 0..5 {
            quiet.push(quiet_op(&m));
        }
        idle_10k.push(after_idle(&sd, &m, 10_000));
        let (t, q) = after_backlog(&sd, &m, 10_000);
        backlog_10k.push(t);
        queued_10k = q;
    }
    let quiet = support::median_p99(quiet).0;
    let idle_10k = support::median_p99(idle_10k).0;
    let backlog_10k = support::median_p99(backlog_10k).0;
    let raw_10k = libdbus_blocking_call_after_backlog(&sd, 10_000);

    // The large idle period, with memory around it, between two quiet operations.
    let quiet_before = quiet_op(&m);
    let (bus_before, me_before) = (rss_kib(&bus_pid), rss_kib("self"));
    let idle_big = after_idle(&sd, &m, big);
    let (bus_after, me_after) = (rss_kib(&bus_pid), rss_kib("self"));
    let quiet_after = quiet_op(&m);
    let (backlog_big, queued_big) = after_backlog(&sd, &m, big);
    let raw_big = libdbus_blocking_call_after_backlog(&sd, big);

    // A backlog as large as the bus daemon queues for one connection, on a bus whose limit is
    // `limit` bytes (the session bus's own is 1 GB): the flood outruns the limit.
    let limited = common::Sandbox::start_with_bus_queue_limit(Some(limit as u32)).unwrap();
    limited.install(&[("active.service", ACTIVE)]);
    let lm = limited.manager();
    let _ = op(&lm);
    let flood = limit / 150;
    let (backlog_limit, queued_limit) = after_backlog(&limited, &lm, flood);

    // Each foreign job sends one JobRemoved our rule matches; on the limited bus, what the
    // daemon queued is a lower bound of what arrived (the socket's buffer holds more).
    let per = |t: Duration, q: usize| us((t.saturating_sub(quiet)) / q.max(1) as u32);
    println!("a long-lived handle on a busy bus, {n} interleaved rounds + one large run\n");
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| operation on a handle idle on a quiet bus (median) | {} |",
        us(quiet)
    );
    println!(
        "| operation after idling while 10,000 foreign jobs ended (median) | {} |",
        us(idle_10k)
    );
    println!(
        "| operation after idling while {big} foreign jobs ended | {} |",
        us(idle_big)
    );
    println!(
        "| quiet operations just before / after it | {} / {} |",
        us(quiet_before),
        us(quiet_after)
    );
    println!(
        "| bus daemon RSS before / after the {big}-job idle period | {bus_before} KiB / {bus_after} KiB |"
    );
    println!(
        "| the handle's RSS before / after the {big}-job idle period | {me_before} KiB / {me_after} KiB |"
    );
    println!(
        "| operation draining a backlog of 10,000 foreign results, {queued_10k} of them queued at the bus daemon (median) | {} ({} per message) |",
        us(backlog_10k),
        per(backlog_10k, 10_000)
    );
    println!(
        "| operation draining a backlog of {big} foreign results, {queued_big} of them queued at the bus daemon | {} ({} per message) |",
        us(backlog_big),
        per(backlog_big, big)
    );
    println!(
        "| operation draining a backlog at the bus daemon's queue limit ({} MiB: {queued_limit} results) | {} ({} per message) |",
        limit >> 20,
        us(backlog_limit),
        per(backlog_limit, queued_limit as usize)
    );
    println!(
        "| libdbus's blocking call after a backlog of 10,000 | {} |",
        us(raw_10k)
    );
    println!(
        "| libdbus's blocking call after a backlog of {big} | {} |",
        us(raw_big)
    );
    println!();
    println!("| ratio | value |");
    println!("|---|---|");
    let r = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    println!(
        "| after 10,000 foreign jobs idle / quiet | {:.2}x |",
        r(idle_10k, quiet)
    );
    println!(
        "| after {big} foreign jobs idle / the quiet operations around it | {:.2}x |",
        r(idle_big, (quiet_before + quiet_after) / 2)
    );
    println!(
        "| per-message drain, {big} / 10,000 messages | {:.2}x |",
        r(
            backlog_big.saturating_sub(quiet) / big as u32,
            backlog_10k.saturating_sub(quiet) / 10_000
        )
    );
    println!(
        "| libdbus's blocking call / the session's pump, backlog of {big} | {:.1}x |",
        r(raw_big, backlog_big)
    );
}

//! restart-and-wait, side by side with `systemctl --user restart` and a bare `RestartUnit`
//! round trip, on a throwaway real `systemd --user` (the test harness's sandbox), interleaved
//! in one run. Run as root: `cargo bench --bench restart_wait` (BENCH_N sets the rounds,
//! default 300; BENCH_SOAK the operations of the soak, default 10000).

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use std::time::{Duration, Instant};

use dbus::blocking::Proxy;
use systemd_jobs::JobMode;

const T: Duration = Duration::from_secs(30);

/// A oneshot that stays active: starting it again is a job that ends at once.
const NOOP: &str = "[Unit]\nStartLimitIntervalSec=0\n[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n";

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// CPU time (user + system) of the calling thread, from the scheduler's accounting.
fn thread_cpu() -> Duration {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").expect("schedstat");
    Duration::from_nanos(s.split_whitespace().next().unwrap().parse().unwrap())
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n = support::env_n("BENCH_N", 300);
    let soak = support::env_n("BENCH_SOAK", 10_000);
    let sd = match common::Sandbox::start() {
        Ok(sd) => sd,
        Err(why) => {
            eprintln!("cannot run the benchmark: {why}");
            std::process::exit(1);
        }
    };
    sd.install(&[
        ("bench.service", common::ONESHOT_OK),
        ("floor.service", common::ONESHOT_OK),
        ("simple.service", common::LONG_RUNNING),
        ("three.service", &common::slow_start(3.0)),
        ("noop.service", NOOP),
    ]);
    let m = sd.manager();
    let _ = m.restart("bench.service", JobMode::Replace, T).unwrap();
    // The same, with every job call marshalled again to carry the interactive-authorization flag.
    let m_ask = sd
        .builder()
        .allow_interactive_authorization(true)
        .connect()
        .unwrap();
    let _ = m_ask.restart("bench.service", JobMode::Replace, T).unwrap();
    let caller = m.caller();
    let floor = Proxy::new(
        "org.freedesktop.systemd1",
        "/org/freedesktop/systemd1",
        T,
        &caller,
    );

    // The floor for call + wait: a minimal waiter on its own connection, no library code:
    // a match added once, the call, then raw messages popped until our JobRemoved.
    let raw = sd.raw_connection().unwrap();
    raw.add_match_no_cb(
        "type='signal',sender='org.freedesktop.systemd1',interface='org.freedesktop.systemd1.Manager',member='JobRemoved'",
    )
    .unwrap();
    let raw_proxy = Proxy::new(
        "org.freedesktop.systemd1",
        "/org/freedesktop/systemd1",
        T,
        &raw,
    );
    let minimal_wait = |method: &str, unit: &str| {
        let (job,): (dbus::Path<'static>,) = raw_proxy
            .method_call(
                "org.freedesktop.systemd1.Manager",
                method,
                (unit, "replace"),
            )
            .unwrap();
        loop {
            let msg = raw
                .channel()
                .blocking_pop_message(T)
                .unwrap()
                .expect("JobRemoved");
            if msg.member().as_deref() == Some("JobRemoved")
                && msg
                    .read4::<u32, dbus::Path, &str, &str>()
                    .is_ok_and(|(_, p, _, _)| p == job)
            {
                break;
            }
        }
    };

    // The same waiter with this crate's idle-free design done by hand: its two rules' AddMatch
    // sent ahead of the call without waiting, RemoveMatch without a reply after the wait.
    let rules = [
        "type='signal',sender='org.freedesktop.systemd1',path='/org/freedesktop/systemd1',interface='org.freedesktop.systemd1.Manager',member='JobRemoved'",
        "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='org.freedesktop.systemd1'",
    ];
    let per_call = sd.raw_connection().unwrap();
    let bus_call = |member: &str, rule: &str, no_reply: bool| {
        let mut msg = dbus::Message::new_method_call(
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            member,
        )
        .unwrap()
        .append1(rule);
        msg.set_no_reply(no_reply);
        per_call.channel().send(msg).unwrap();
    };
    let minimal_with_rules_per_call = |unit: &str| {
        for rule in rules {
            bus_call("AddMatch", rule, false);
        }
        let serial = per_call
            .channel()
            .send(common::start_unit_call(unit))
            .unwrap();
        let mut job = None;
        'wait: loop {
            let msg = per_call
                .channel()
                .blocking_pop_message(T)
                .unwrap()
                .expect("a message");
            if msg.get_reply_serial() == Some(serial) {
                job = Some(msg.read1::<dbus::Path>().unwrap().into_static());
            } else if msg.member().as_deref() == Some("JobRemoved")
                && let Some(job) = &job
                && msg
                    .read4::<u32, dbus::Path, &str, &str>()
                    .is_ok_and(|(_, p, _, _)| p == *job)
            {
                break 'wait;
            }
        }
        for rule in rules {
            bus_call("RemoveMatch", rule, true);
        }
        per_call.channel().flush();
    };

    // Interleaved rounds: library (plain and with the interactive-authorization flag),
    // systemctl, minimal waiter, bare call; oneshot and simple.
    let mut lib = Vec::new();
    let mut lib_ask = Vec::new();
    let mut ctl = Vec::new();
    let mut bare = Vec::new();
    let mut minimal = Vec::new();
    let mut lib_simple = Vec::new();
    let mut ctl_simple = Vec::new();
    let mut lib_noop = Vec::new();
    let mut minimal_noop = Vec::new();
    let mut minimal_rules_noop = Vec::new();
    for round in 0..n {
        // The four oneshot measurements in a rotating order, so none always follows another.
        for slot in 0..4 {
            let t = Instant::now();
            match (round + slot) % 4 {
                0 => {
                    let _ = m.restart("bench.service", JobMode::Replace, T).unwrap();
                    lib.push(t.elapsed());
                }
                3 => {
                    let _ = m_ask.restart("bench.service", JobMode::Replace, T).unwrap();
                    lib_ask.push(t.elapsed());
                }
                1 => {
                    let out = sd.systemctl(&["restart", "bench.service"]);
                    ctl.push(t.elapsed());
                    assert!(out.status.success());
                }
                _ => {
                    minimal_wait("RestartUnit", "bench.service");
                    minimal.push(t.elapsed());
                }
            }
        }

        // A no-op job (start of an active unit): the handle's own cost, without a process
        // being started, against the minimal waiter's, in alternating order.
        for slot in 0..3 {
            let t = Instant::now();
            match (round + slot) % 3 {
                0 => {
                    let _ = m.start("noop.service", JobMode::Replace, T).unwrap();
                    lib_noop.push(t.elapsed());
                }
                1 => {
                    minimal_wait("StartUnit", "noop.service");
                    minimal_noop.push(t.elapsed());
                }
                _ => {
                    minimal_with_rules_per_call("noop.service");
                    minimal_rules_noop.push(t.elapsed());
                }
            }
        }

        let t = Instant::now();
        let (_job,): (dbus::Path<'static>,) = floor
            .method_call(
                "org.freedesktop.systemd1.Manager",
                "RestartUnit",
                ("floor.service", "replace"),
            )
            .unwrap();
        bare.push(t.elapsed());

        let t = Instant::now();
        let _ = m.restart("simple.service", JobMode::Replace, T).unwrap();
        lib_simple.push(t.elapsed());

        let t = Instant::now();
        let out = sd.systemctl(&["restart", "simple.service"]);
        ctl_simple.push(t.elapsed());
        assert!(out.status.success());
    }
    let (lib_med, lib_p99) = support::median_p99(lib);
    let (ask_med, ask_p99) = support::median_p99(lib_ask);
    let (ctl_med, ctl_p99) = support::median_p99(ctl);
    let (bare_med, bare_p99) = support::median_p99(bare);
    let (min_med, min_p99) = support::median_p99(minimal);
    let (libs_med, libs_p99) = support::median_p99(lib_simple);
    let (ctls_med, ctls_p99) = support::median_p99(ctl_simple);
    let (noop_med, noop_p99) = support::median_p99(lib_noop);
    let (min_noop_med, min_noop_p99) = support::median_p99(minimal_noop);
    let (min_rules_med, min_rules_p99) = support::median_p99(minimal_rules_noop);

    // CPU spent by our thread while blocked on a job that takes 3 s.
    let cpu0 = thread_cpu();
    let t = Instant::now();
    let _ = m.start("three.service", JobMode::Replace, T).unwrap();
    let blocked = t.elapsed();
    let cpu = thread_cpu() - cpu0;

    // Messages our connection sends per operation, from its message serials.
    let k = 100u32;
    let before = common::probe_serial(&m.caller());
    for _ in 0..k {
        let _ = m.restart("bench.service", JobMode::Replace, T).unwrap();
    }
    let after = common::probe_serial(&m.caller());
    let per_op = f64::from(common::sent_between(before, after)) / f64::from(k);

    // Soak: match rules and RSS before and after many operations.
    let rules_before = sd.rules_held(&m);
    let rss_before = rss_kib();
    for _ in 0..soak {
        let _ = m.restart("bench.service", JobMode::Replace, T).unwrap();
    }
    let rules_after = sd.rules_held(&m);
    let rss_after = rss_kib();

    println!("restart-and-wait, {n} interleaved rounds, one long-lived handle\n");
    println!("| measure | median | p99 |");
    println!("|---|---|---|");
    println!(
        "| systemd-jobs restart, oneshot | {} | {} |",
        ms(lib_med),
        ms(lib_p99)
    );
    println!(
        "| systemd-jobs restart with interactive authorization allowed, oneshot | {} | {} |",
        ms(ask_med),
        ms(ask_p99)
    );
    println!(
        "| `systemctl --user restart`, oneshot | {} | {} |",
        ms(ctl_med),
        ms(ctl_p99)
    );
    println!(
        "| minimal waiter (call + raw wait, no library), oneshot | {} | {} |",
        ms(min_med),
        ms(min_p99)
    );
    println!(
        "| bare `RestartUnit` round trip, no wait | {} | {} |",
        ms(bare_med),
        ms(bare_p99)
    );
    println!(
        "| systemd-jobs restart, simple service | {} | {} |",
        ms(libs_med),
        ms(libs_p99)
    );
    println!(
        "| `systemctl --user restart`, simple service | {} | {} |",
        ms(ctls_med),
        ms(ctls_p99)
    );
    println!(
        "| systemd-jobs start, no-op job (unit already active) | {} | {} |",
        ms(noop_med),
        ms(noop_p99)
    );
    println!(
        "| minimal waiter (rule kept, call + raw wait), no-op job | {} | {} |",
        ms(min_noop_med),
        ms(min_noop_p99)
    );
    println!(
        "| minimal waiter adding and removing its two rules around each call, no-op job | {} | {} |",
        ms(min_rules_med),
        ms(min_rules_p99)
    );
    println!();
    let r = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    println!("| ratio (medians) | value |");
    println!("|---|---|");
    println!(
        "| systemd-jobs / systemctl, oneshot | {:.2}x |",
        r(lib_med, ctl_med)
    );
    println!(
        "| systemd-jobs / systemctl, simple service | {:.2}x |",
        r(libs_med, ctls_med)
    );
    println!(
        "| systemd-jobs / minimal waiter (call floor + the job's own run time), oneshot | {:.2}x |",
        r(lib_med, min_med)
    );
    println!(
        "| systemd-jobs / bare call without waiting, oneshot | {:.2}x |",
        r(lib_med, bare_med)
    );
    println!(
        "| systemd-jobs / minimal waiter with a rule kept, no-op job | {:.2}x |",
        r(noop_med, min_noop_med)
    );
    println!(
        "| systemd-jobs / minimal waiter adding and removing its rules per call, no-op job | {:.2}x |",
        r(noop_med, min_rules_med)
    );
    println!(
        "| with interactive authorization allowed / without, oneshot | {:.2}x |",
        r(ask_med, lib_med)
    );
    println!();
    println!("| other | value |");
    println!("|---|---|");
    println!(
        "| CPU of our thread while blocked on a {:.1} s job | {} |",
        blocked.as_secs_f64(),
        ms(cpu)
    );
    println!(
        "| D-Bus messages sent per operation (AddMatch x2 and the job call in one write, RemoveMatch x2 unanswered) | {per_op:.2} |"
    );
    println!(
        "| match rules on the bus between operations, before / after {soak} ops | {rules_before} / {rules_after} |"
    );
    println!("| RSS before / after {soak} ops | {rss_before} KiB / {rss_after} KiB |");
}

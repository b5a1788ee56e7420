//! The cost of connecting: fresh connections, the first operation on a fresh handle against a
//! later one, and the `restart_blocking` example as one process per operation against
//! `systemctl --user start` of the same active unit. All on a throwaway real `systemd --user`
//! (the test harness's sandbox), interleaved in one run. Run as root:
//! `cargo bench --bench connecting` (BENCH_N sets the rounds, default 300).

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::time::{Duration, Instant};

use systemd_jobs::{Bus, JobMode, JobResult, Manager};

const T: Duration = Duration::from_secs(30);
const UNIT: &str = "active.service";

fn us(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

/// The peer's own floor, no library: connect a socket and send `AUTH EXTERNAL` until the
/// peer's `OK`, the first thing any client waits for.
fn raw_auth(address: &str) -> Duration {
    let path = address
        .strip_prefix("unix:path=")
        .expect("unix:path= address");
    // SAFETY: geteuid cannot fail.
    let uid = unsafe { libc::geteuid() }.to_string();
    let hex: String = uid.bytes().map(|b| format!("{b:02x}")).collect();
    let t = Instant::now();
    let mut s = UnixStream::connect(path).unwrap();
    s.write_all(format!("\0AUTH EXTERNAL {hex}\r\n").as_bytes())
        .unwrap();
    let mut buf = [0u8; 128];
    let got = s.read(&mut buf).unwrap();
    let took = t.elapsed();
    assert!(buf[..got].starts_with(b"OK "), "{:?}", &buf[..got]);
    took
}

/// Measurements of one kind, collected over the rounds.
struct Series {
    name: &'static str,
    times: Vec<Duration>,
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n = support::env_n("BENCH_N", 300);
    let sd = match common::Sandbox::start() {
        Ok(sd) => sd,
        Err(why) => {
            eprintln!("cannot run the benchmark: {why}");
            std::process::exit(1);
        }
    };
    sd.install(&[(UNIT, common::ONESHOT_OK)]);
    let _ = sd.manager().start(UNIT, JobMode::Replace, T).unwrap();
    let example = common::example_binary();
    let bus = Bus::Address(sd.bus_address());
    let private = Bus::PrivateAddress(sd.private_address());

    let run = |program: &std::path::Path, args: &[&str]| {
        let out = Command::new(program)
            .args(args)
            .env("XDG_RUNTIME_DIR", sd.runtime_dir())
            .env("DBUS_SESSION_BUS_ADDRESS", sd.bus_address())
            .env_remove("RUST_LOG")
            .output()
            .expect("spawn");
        assert!(out.status.success(), "{program:?} {args:?}: {out:?}");
    };
    let systemctl = std::path::Path::new("systemctl");
    let true_bin = std::path::Path::new("/bin/true");

    // In-process: connecting, the first and a later operation, dropping the handle.
    let mut connect_bus = Vec::new();
    let mut connect_private = Vec::new();
    let mut first_bus = Vec::new();
    let mut later_bus = Vec::new();
    let mut first_private = Vec::new();
    let mut later_private = Vec::new();
    let mut drop_bus = Vec::new();
    let mut auth_bus = Vec::new();
    let mut auth_private = Vec::new();
    // One process per operation.
    let mut procs: Vec<Series> = [
        "`/bin/true` (process start floor)",
        "example `--help` (process start, no connection)",
        "example `--user --verb start` (bus)",
        "example `--user --private --verb start` (private socket)",
        "`systemctl --user start`",
    ]
    .into_iter()
    .map(|name| Series {
        name,
        times: Vec::new(),
    })
    .collect();

    for round in 0..n {
        for (target, connect, first, later) in [
            (&bus, &mut connect_bus, &mut first_bus, &mut later_bus),
            (
                &private,
                &mut connect_private,
                &mut first_private,
                &mut later_private,
            ),
        ] {
            let t = Instant::now();
            let m = Manager::connect(target.clone()).unwrap();
            connect.push(t.elapsed());
            for series in [&mut *first, &mut *later] {
                let t = Instant::now();
                let out = m.start(UNIT, JobMode::Replace, T).unwrap();
                series.push(t.elapsed());
                assert_eq!(out.result, JobResult::Done);
            }
            let t = Instant::now();
            drop(m);
            if !target.is_direct() {
                drop_bus.push(t.elapsed());
            }
        }
        auth_bus.push(raw_auth(&sd.bus_address()));
        auth_private.push(raw_auth(&sd.private_address()));
        // The process measurements in a rotating order, so none always follows another.
        let k = procs.len();
        for slot in 0..k {
            let which = (round + slot) % k;
            let t = Instant::now();
            match which {
                0 => run(true_bin, &[]),
                1 => run(&example, &["--help"]),
                2 => run(&example, &["--user", "--verb", "start", UNIT]),
                3 => run(&example, &["--user", "--private", "--verb", "start", UNIT]),
                _ => run(systemctl, &["--user", "start", UNIT]),
            }
            procs[which].times.push(t.elapsed());
        }
    }

    println!(
        "connecting, {n} interleaved rounds, unit already active (each start is a no-op job)\n"
    );
    println!("| measure | median | p99 |");
    println!("|---|---|---|");
    let row = |name: &str, v: &Vec<Duration>| {
        let (med, p99) = support::median_p99(v.clone());
        println!("| {name} | {} | {} |", us(med), us(p99));
        med
    };
    row(
        "raw socket: connect + `AUTH EXTERNAL` until `OK`, bus (no library)",
        &auth_bus,
    );
    row(
        "raw socket: connect + `AUTH EXTERNAL` until `OK`, private socket (no library)",
        &auth_private,
    );
    row("fresh connection, bus (auth, Hello)", &connect_bus);
    row(
        "fresh connection, private socket (auth, first message written)",
        &connect_private,
    );
    let fb = row("first start on a fresh handle, bus", &first_bus);
    let lb = row("later start on the same handle, bus", &later_bus);
    let fp = row(
        "first start on a fresh handle, private socket",
        &first_private,
    );
    let lp = row(
        "later start on the same handle, private socket",
        &later_private,
    );
    row("dropping a bus handle", &drop_bus);
    let meds: Vec<Duration> = procs.iter().map(|s| row(s.name, &s.times)).collect();
    let r = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    println!();
    println!("| ratio (medians) | value |");
    println!("|---|---|");
    println!("| first / later start, bus | {:.2}x |", r(fb, lb));
    println!(
        "| first / later start, private socket | {:.2}x |",
        r(fp, lp)
    );
    println!(
        "| example process / `systemctl --user start`, bus | {:.2}x |",
        r(meds[2], meds[4])
    );
    println!(
        "| example process / `systemctl --user start`, private socket | {:.2}x |",
        r(meds[3], meds[4])
    );
    println!();
    println!("| where the example's process time goes (medians, bus) | value |");
    println!("|---|---|");
    println!("| starting any process (`/bin/true`) | {} |", us(meds[0]));
    println!(
        "| loading and starting the example (`--help` minus `/bin/true`) | {} |",
        us(meds[1].saturating_sub(meds[0]))
    );
    println!(
        "| connecting, the job and exiting (run minus `--help`) | {} |",
        us(meds[2].saturating_sub(meds[1]))
    );
    println!(
        "| of which in-process: connect + first start | {} |",
        us(support::median_p99(connect_bus.clone()).0 + fb)
    );
}

//! One process per operation on every systemd the system-manager tests boot (252 from this
//! machine's root, 257 from Debian trixie, 262 from Debian sid), in one run: inside each
//! container, the `restart_blocking` example over the private socket and over the system bus
//! against `systemctl start` of the same active unit (a no-op job), and `/bin/true` as the
//! floor of starting a process there (each runs through `nsenter`, which all of them pay).
//!
//! Run as root after `bash .ci/test` has built the roots: `cargo bench --bench versions`
//! (BENCH_N sets the rounds per version, default 200).

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use std::time::{Duration, Instant};

use common::container::{Container, DEBIAN_SUITES, Root};

fn us(d: Duration) -> String {
    format!("{} µs", d.as_micros())
}

/// A oneshot that stays active: starting it again is a job that ends at once.
const ACTIVE: &str = "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n";

struct Row {
    version: u32,
    floor: Duration,
    private: Duration,
    bus: Duration,
    systemctl: Duration,
}

fn measure(root: Root, n: usize) -> Row {
    let c = Container::boot(root).unwrap_or_else(|e| panic!("{root}: {e}"));
    c.install(&[("ok.service", ACTIVE)]);
    let (code, _, err) = c.run(None, &["systemctl", "start", "ok.service"]);
    assert_eq!(code, 0, "{err}");
    let runs: [&[&str]; 4] = [
        &["/bin/true"],
        &[
            "/opt/t/restart_blocking",
            "--private",
            "--verb",
            "start",
            "ok",
        ],
        &["/opt/t/restart_blocking", "--verb", "start", "ok"],
        &["systemctl", "start", "ok.service"],
    ];
    let mut times: [Vec<Duration>; 4] = Default::default();
    for round in 0..n {
        for slot in 0..4 {
            let which = (round + slot) % 4;
            let t = Instant::now();
            let (code, _, err) = c.run(None, runs[which]);
            times[which].push(t.elapsed());
            assert_eq!(code, 0, "{:?}: {err}", runs[which]);
        }
    }
    let [floor, private, bus, systemctl] = times.map(|t| support::median_p99(t).0);
    Row {
        version: c.version,
        floor,
        private,
        bus,
        systemctl,
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n = support::env_n("BENCH_N", 200);
    let roots = std::iter::once(Root::Host).chain(DEBIAN_SUITES.map(Root::Debian));
    let rows: Vec<Row> = roots.map(|root| measure(root, n)).collect();
    println!(
        "one process per operation inside the container, {n} interleaved rounds per version, medians\n"
    );
    println!(
        "| systemd | `/bin/true` (floor) | example, private socket | example, system bus | `systemctl start` | example / systemctl, private | example / systemctl, bus | above the floor, private / systemctl |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for r in &rows {
        let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
        println!(
            "| {} | {} | {} | {} | {} | {:.2}x | {:.2}x | {:.2}x |",
            r.version,
            us(r.floor),
            us(r.private),
            us(r.bus),
            us(r.systemctl),
            ratio(r.private, r.systemctl),
            ratio(r.bus, r.systemctl),
            ratio(
                r.private.saturating_sub(r.floor),
                r.systemctl.saturating_sub(r.floor)
            ),
        );
    }
}

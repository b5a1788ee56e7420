//! A rolling restart across the suite's fleet (containers of systemd 252, 257 and the
//! newest, reached over real ssh; see `tests/common/fleet.rs`) with each module: the same
//! play, `serial: 2`, one task restarting a service on every host, once with `systemd_job`
//! and once with `ansible.builtin.systemd_service`, in alternating order each round. Reports
//! medians of the wall time per play and per host-task (from the task's start on the
//! controller to that host's result), as ratios, and beside them what each module costs to
//! carry: the size Ansible copies to a host for every task (the module's binary; for
//! systemd_service, the AnsiballZ payload it leaves with ANSIBLE_KEEP_REMOTE_FILES) and the
//! time to copy the binary over the same ssh connection, against an empty copy.
//!
//! Run as root after `bash .ci/test` has built the roots: `cargo bench --bench ansible`
//! (BENCH_N sets the rounds, default 10).

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use common::container::Root;
use common::fleet::Fleet;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn play(module: &str) -> String {
    format!(
        "- hosts: fleet\n  serial: 2\n  gather_facts: false\n  tasks:\n\
         \x20   - name: restart\n      {module}: {{name: app.service, state: restarted}}\n"
    )
}

fn main() {
    let n: usize = std::env::var("BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let fleet = match Fleet::boot(&[Root::Host, Root::Debian("trixie"), Root::Debian("sid")]) {
        Ok(f) => f,
        Err(why) => {
            eprintln!("SKIPPED: {why}");
            return;
        }
    };
    // Restarted many times in a row: no start limit.
    fleet.install(&[(
        "app.service",
        "[Unit]\nStartLimitIntervalSec=0\n[Service]\nExecStart=/bin/sleep infinity\n",
    )]);
    let plays = [
        ("systemd_job", play("systemd_job")),
        ("systemd_service", play("ansible.builtin.systemd_service")),
    ];
    // One warm-up each: the ssh control masters, the controller's caches.
    for (_, p) in &plays {
        assert_eq!(fleet.play(p, &[]).code, 0);
    }
    let mut wall = [Vec::new(), Vec::new()];
    let mut task = [Vec::new(), Vec::new()];
    for round in 0..n {
        for slot in 0..2 {
            let which = (round + slot) % 2;
            let out = fleet.play(&plays[which].1, &[]);
            assert_eq!(out.code, 0, "{}", out.output);
            wall[which].push(out.took.as_secs_f64());
            task[which].extend(out.results.iter().map(|r| r.seconds));
        }
    }
    let [wall_ours, wall_theirs] = wall.map(median);
    let [task_ours, task_theirs] = task.map(median);

    // What each module carries to a host.
    let library = common::fleet::module_library().unwrap();
    let binary = std::fs::read(library.join("systemd_job")).unwrap();
    let h = &fleet.hosts[0];
    let kept = fleet.play_with_env(
        &plays[1].1,
        &["--limit", &h.name],
        &[("ANSIBLE_KEEP_REMOTE_FILES", "1")],
    );
    assert_eq!(kept.code, 0);
    let (_, payload, _) = h.container.run(
        None,
        &[
            "sh",
            "-c",
            "find /tmp/.ansible-tmp -name 'AnsiballZ_*.py' -exec stat -c %s {} + | head -n 1",
        ],
    );
    let payload: u64 = payload.trim().parse().unwrap_or(0);
    let mut copy = Vec::new();
    let mut empty = Vec::new();
    for round in 0..20 {
        for slot in 0..2 {
            let (bytes, times): (&[u8], &mut Vec<f64>) = if (round + slot) % 2 == 0 {
                (&binary, &mut copy)
            } else {
                (&[], &mut empty)
            };
            let t = Instant::now();
            assert_eq!(fleet.ssh(h, "cat > /tmp/module-copy", bytes), 0);
            times.push(t.elapsed().as_secs_f64());
        }
    }
    let copy_ms = (median(copy) - median(empty)) * 1e3;

    println!(
        "rolling restart, serial: 2, {} hosts ({}), {n} interleaved rounds",
        fleet.hosts.len(),
        fleet
            .hosts
            .iter()
            .map(|h| h.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("| | systemd_job | systemd_service | ratio |");
    println!("|---|---|---|---|");
    println!(
        "| wall time per play (median) | {:.2} s | {:.2} s | {:.2}x |",
        wall_ours,
        wall_theirs,
        wall_ours / wall_theirs
    );
    println!(
        "| per host-task (median) | {:.0} ms | {:.0} ms | {:.2}x |",
        task_ours * 1e3,
        task_theirs * 1e3,
        task_ours / task_theirs
    );
    println!(
        "| copied to the host per task | {} KiB (binary, stripped) | {} KiB (AnsiballZ payload) | {:.2}x |",
        binary.len() / 1024,
        payload / 1024,
        binary.len() as f64 / payload.max(1) as f64
    );
    println!(
        "| copy time of the binary over the task's ssh connection | {copy_ms:.1} ms ({:.1} % of a host-task) | | |",
        copy_ms / (task_ours * 1e3) * 100.0
    );
}

//! Progress while waiting: the job's state, the unit's state and the service's own status
//! text reach the callback as they change, over the bus and the private socket, and the
//! example shows them on a terminal (under `script`) and nowhere else.

mod common;

use std::process::Command;
use std::time::Duration;

use systemd_jobs::{JobMode, JobResult, JobState, Progress, Verb};

const T: Duration = Duration::from_secs(10);

/// A notify service that reports three statuses over about 1.2 s before it is ready. The
/// notifications carry the main process's pid (`--pid=$$`), so systemd can tell whose they
/// are after `systemd-notify` has exited.
pub const RECOVERING: &str = "[Unit]\nStartLimitIntervalSec=0\n[Service]\nType=notify\nNotifyAccess=all\nExecStart=/bin/sh -c 'systemd-notify --pid=$$$$ --status=\"Recovering 1/3\"; sleep 0.6; systemd-notify --pid=$$$$ --status=\"Recovering 2/3\"; sleep 0.6; systemd-notify --pid=$$$$ --ready --status=\"Ready\"; exec sleep 60'\n";

#[test]
fn the_service_s_status_text_and_states_reach_the_callback_as_they_change() {
    let sd = sandbox!();
    sd.install(&[("recovering.service", RECOVERING)]);
    for (how, m) in sd.on_both_transports() {
        let mut seen: Vec<Progress> = Vec::new();
        let out = m
            .run_with_progress(
                Verb::Restart,
                "recovering.service",
                JobMode::Replace,
                T,
                Duration::from_millis(100),
                |p| seen.push(p.clone()),
            )
            .unwrap_or_else(|e| panic!("{how}: {e}"));
        assert_eq!(out.result, JobResult::Done);
        let texts: Vec<&str> = seen
            .iter()
            .filter_map(|p| p.status_text.as_deref())
            .collect();
        for want in ["Recovering 1/3", "Recovering 2/3"] {
            assert!(
                texts.contains(&want),
                "{how}: {want} missing from {seen:#?}"
            );
        }
        assert!(
            seen.iter()
                .any(|p| p.active_state == "activating" && p.sub_state == "start"),
            "{how}: {seen:#?}"
        );
        assert!(
            seen.iter().any(|p| p.job_state == Some(JobState::Running)),
            "{how}: {seen:#?}"
        );
        // Ticks while nothing changes: at least one report per 100 ms over the 1.2 s start,
        // with the elapsed time growing and the timeout given.
        assert!(seen.len() >= 8, "{how}: {} reports", seen.len());
        assert!(seen.windows(2).all(|w| w[0].elapsed <= w[1].elapsed));
        assert!(
            seen.iter()
                .all(|p| p.timeout == Some(T) && p.job == out.job)
        );
        assert_eq!(m.pending_jobs(), 0);
    }
}

#[test]
fn progress_leaves_nothing_behind_and_plain_runs_cost_what_they_did() {
    let sd = sandbox!();
    sd.install(&[("recovering.service", RECOVERING)]);
    let m = sd.manager();
    let _ = m
        .run_with_progress(
            Verb::Restart,
            "recovering.service",
            JobMode::Replace,
            T,
            Duration::from_millis(200),
            |_| {},
        )
        .unwrap();
    // A plain operation afterwards costs what it always does: the job call with the two job
    // rules' AddMatch ahead of it and their RemoveMatch after, and nothing of progress.
    let before = common::probe_serial(&m.caller());
    let _ = m.start("recovering.service", JobMode::Replace, T).unwrap();
    let after = common::probe_serial(&m.caller());
    assert_eq!(common::sent_between(before, after), 5);
    assert_eq!(sd.rules_held(&m), 0);
    assert_eq!(sd.unit_property("recovering.service", "Refs"), "");
}

/// Runs the example under `script`, so its stderr is a terminal; returns what the terminal
/// got, escape sequences and all.
fn on_a_terminal(sd: &common::Sandbox, args: &[&str]) -> (i32, String) {
    let mut command = vec![common::example_binary().display().to_string()];
    command.extend(args.iter().map(|a| a.to_string()));
    let out = Command::new("script")
        .args(["-qefc", &command.join(" "), "/dev/null"])
        .env("XDG_RUNTIME_DIR", sd.runtime_dir())
        .env("DBUS_SESSION_BUS_ADDRESS", sd.bus_address())
        .env("COLUMNS", "200")
        .env_remove("RUST_LOG")
        .output()
        .expect("run script");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn on_a_terminal_the_example_shows_a_status_line_and_clears_it() {
    let sd = sandbox!();
    sd.install(&[("recovering.service", RECOVERING)]);
    common::example_binary();
    let (code, screen) = on_a_terminal(&sd, &["--user", "--timeout", "10", "recovering"]);
    assert_eq!(code, 0, "{screen:?}");
    assert!(screen.contains("Recovering 1/3"), "{screen:?}");
    assert!(screen.contains("Recovering 2/3"), "{screen:?}");
    assert!(
        screen.contains("recovering.service: activating (start)"),
        "{screen:?}"
    );
    assert!(screen.contains("/ 10s]"), "elapsed / timeout: {screen:?}");
    // The line is redrawn in place, then erased before the final line.
    let clear = "\r\x1b[2K";
    assert!(screen.matches(clear).count() >= 3, "{screen:?}");
    let after_last_clear = &screen[screen.rfind(clear).unwrap() + clear.len()..];
    assert!(
        after_last_clear.starts_with("recovering.service: done (job "),
        "{after_last_clear:?}"
    );
}

#[test]
fn off_a_terminal_the_example_prints_only_its_lines() {
    let sd = sandbox!();
    sd.install(&[("recovering.service", RECOVERING)]);
    let (code, out, err) = sd.run_example(&["--user", "recovering"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("recovering.service: done (job "), "{out:?}");
    assert_eq!(out.lines().count(), 1, "{out:?}");
    assert!(
        !out.contains(['\r', '\x1b']) && !err.contains(['\r', '\x1b']),
        "{out:?} {err:?}"
    );
    assert_eq!(err, "");
}

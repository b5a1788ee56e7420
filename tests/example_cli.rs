//! `restart_blocking` end to end on the real manager: output and exit statuses.

mod common;

use std::time::{Duration, Instant};

/// Checks a `UNIT: done (job ID, N ms)` line.
fn assert_done_line(line: &str, unit: &str) {
    let rest = line
        .strip_prefix(&format!("{unit}: done (job "))
        .unwrap_or_else(|| panic!("not a done line for {unit}: {line:?}"));
    let (id, ms) = rest.split_once(", ").expect("job id and time");
    assert!(id.parse::<u32>().is_ok(), "{line:?}");
    let ms = ms.strip_suffix(" ms)").expect("ms)");
    assert!(ms.parse::<u64>().is_ok(), "{line:?}");
}

#[test]
fn help_lists_every_option_and_exit_status() {
    let sd = sandbox!();
    let (code, out, _) = sd.run_example(&["--help"]);
    assert_eq!(code, 0);
    for needle in [
        "--verb",
        "--mode",
        "--timeout",
        "--user",
        "--address",
        "--private",
        "--no-block",
        "--wait",
        "--cancel-on-timeout",
        "--check-active",
        "--ask-password",
        "--lines",
        "--completions",
        "--version",
        "[default: 90]",
        "124",
        "125",
    ] {
        assert!(out.contains(needle), "--help lacks {needle}");
    }
}

#[test]
fn the_command_line_has_a_version_hints_and_completions() {
    let sd = sandbox!();
    let (code, out, _) = sd.run_example(&["--version"]);
    assert_eq!(code, 0);
    assert_eq!(
        out.trim(),
        format!("restart_blocking {}", env!("CARGO_PKG_VERSION"))
    );
    let (code, _, err) = sd.run_example(&["--verson"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("a similar argument exists: '--version'"),
        "{err}"
    );
    let (code, out, _) = sd.run_example(&["--completions", "bash"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("complete -F") && out.contains("--check-active"),
        "{out}"
    );
    let (code, _, err) = sd.run_example(&["--completions", "tcsh"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn done_units_print_one_line_each_and_exit_0() {
    let sd = sandbox!();
    sd.install(&[
        ("a.service", common::ONESHOT_OK),
        ("b.service", common::LONG_RUNNING),
    ]);
    let (code, out, err) = sd.run_example(&["--user", "a.service", "b"]);
    assert_eq!(code, 0, "stderr: {err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_done_line(lines[0], "a.service");
    assert_done_line(lines[1], "b.service");
    assert_eq!(sd.unit_property("b.service", "ActiveState"), "active");
}

#[test]
fn ask_password_sends_the_interactive_authorization_flag() {
    let sd = sandbox!();
    sd.install(&[("a.service", common::ONESHOT_OK)]);
    let mut monitor = sd.monitor_calls();
    let (code, out, err) = sd.run_example(&["--user", "a.service"]);
    assert_eq!(code, 0, "{err}");
    assert_done_line(out.trim(), "a.service");
    let (code, out, err) = sd.run_example(&["--user", "--ask-password", "a.service"]);
    assert_eq!(code, 0, "{err}");
    assert_done_line(out.trim(), "a.service");
    let restarts: Vec<u8> = monitor
        .calls_so_far(&sd)
        .iter()
        .filter(|c| c.method == "org.freedesktop.systemd1.Manager.EnqueueUnitJob")
        .map(|c| c.flags & common::ALLOW_INTERACTIVE_AUTHORIZATION)
        .collect();
    assert_eq!(
        restarts,
        [0, common::ALLOW_INTERACTIVE_AUTHORIZATION],
        "without, then with --ask-password"
    );
}

#[test]
fn address_and_private_socket_reach_the_manager() {
    let sd = sandbox!();
    sd.install(&[("a.service", common::ONESHOT_OK)]);
    let addr = sd.bus_address();
    let (code, out, err) = sd.run_example(&["--address", &addr, "--verb", "start", "a.service"]);
    assert_eq!(code, 0, "{err}");
    assert_done_line(out.trim(), "a.service");
    let (code, out, err) = sd.run_example(&["--user", "--private", "a.service"]);
    assert_eq!(code, 0, "{err}");
    assert_done_line(out.trim(), "a.service");
    let private = sd.private_address();
    let (code, out, err) = sd.run_example(&["--private", "--address", &private, "a.service"]);
    assert_eq!(code, 0, "{err}");
    assert_done_line(out.trim(), "a.service");
}

#[test]
fn exit_statuses_follow_systemctl() {
    let sd = sandbox!();
    sd.install(&[
        ("bad.service", common::ONESHOT_FAILS),
        ("noreload.service", common::LONG_RUNNING),
        ("slow.service", &common::slow_start(5.0)),
        ("masked.service", common::ONESHOT_OK),
    ]);
    sd.mask("masked.service");
    let (code, _, err) = sd.run_example(&["--user", "bad.service"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("bad.service") && err.contains("failed"),
        "{err}"
    );

    for args in [
        &["--user", "foo@.service"][..],
        &["--user", "ssh*"],
        &["--user", ""],
        &["--user"],
        &["--user", "--bogus", "a.service"],
        &["--user", "--mode", "sideways", "a.service"],
        &["--user", "--verb", "jump", "a.service"],
        &["--user", "--timeout", "-1", "a.service"],
        &["--user", "--timeout", "soon", "a.service"],
    ] {
        let (code, _, err) = sd.run_example(args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(!err.is_empty());
    }

    let _ = sd.systemctl(&["start", "noreload.service"]);
    let (code, _, err) = sd.run_example(&["--user", "--verb", "reload", "noreload.service"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("JobTypeNotApplicable"), "{err}");

    let (code, _, err) = sd.run_example(&["--user", "nope.service"]);
    assert_eq!(code, 5, "{err}");
    assert!(
        err.contains("nope.service") && err.contains("NoSuchUnit"),
        "{err}"
    );

    let (code, _, err) = sd.run_example(&["--user", "masked.service"]);
    assert_eq!(code, 6, "{err}");
    assert!(err.contains("masked"), "{err}");

    let started = Instant::now();
    let (code, _, err) = sd.run_example(&["--user", "--timeout", "0.5", "slow.service"]);
    assert_eq!(code, 124, "{err}");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(
        err.contains("slow.service") && err.contains("/job/"),
        "{err}"
    );

    let (code, _, err) = sd.run_example(&["--address", "unix:path=/nonexistent/bus", "a.service"]);
    assert_eq!(code, 125, "{err}");
}

#[test]
fn several_units_report_each_and_exit_with_the_highest_status() {
    let sd = sandbox!();
    sd.install(&[
        ("ok.service", common::ONESHOT_OK),
        ("bad.service", common::ONESHOT_FAILS),
    ]);
    let (code, out, err) =
        sd.run_example(&["--user", "ok.service", "missing.service", "bad.service"]);
    assert_eq!(code, 5, "{err}");
    assert_done_line(out.trim(), "ok.service");
    assert!(err.contains("missing.service"), "{err}");
    assert!(err.contains("bad.service"), "{err}");
}

#[test]
fn no_block_prints_the_queued_job_and_returns_at_once() {
    let sd = sandbox!();
    sd.install(&[("slow.service", &common::slow_start(3.0))]);
    let started = Instant::now();
    let (code, out, err) =
        sd.run_example(&["--user", "--no-block", "--verb", "start", "slow.service"]);
    assert_eq!(code, 0, "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));
    let line = out.trim();
    let rest = line.strip_prefix("slow.service: queued (job ").expect(line);
    let (id, path) = rest.trim_end_matches(')').split_once(", ").unwrap();
    assert_eq!(path, format!("/org/freedesktop/systemd1/job/{id}"));
    // The job starts on systemd's next turn through its run queue.
    common::eventually(Duration::from_secs(1), || {
        match sd.unit_property("slow.service", "ActiveState") {
            s if s == "activating" => Ok(()),
            other => Err(format!("slow.service is {other}")),
        }
    });
}

#[test]
fn the_readme_command_runs_the_example_beside_a_throwaway_manager() {
    // The script needs what the sandbox needs; this says so (or fails under CI) if missing.
    let _prerequisites = sandbox!();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert!(
        readme.contains(
            "bash .ci/user-manager cargo run --example restart_blocking -- --user demo.service"
        ),
        "the README's example command changed: update this test"
    );
    let run = |args: &[&str]| {
        let out = std::process::Command::new("bash")
            .arg(root.join(".ci/user-manager"))
            .arg(common::example_binary())
            .args(args)
            .env_remove("RUST_LOG")
            .output()
            .expect("run .ci/user-manager");
        common::exit_and_output(&out)
    };
    let (code, out, err) = run(&["--user", "demo.service"]);
    assert_eq!(code, 0, "{err}");
    assert_done_line(out.trim(), "demo.service");
    let (code, _, err) = run(&["--user", "demo-fails"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("demo-fails.service") && err.contains("status 3"),
        "{err}"
    );
}

/// What the help says SECS is: digits with an optional fraction and exponent, or `inf`.
/// Written as a scan of the help's words, apart from the example's own parser.
fn seconds_as_the_help_says(s: &str) -> bool {
    if s == "inf" {
        return true;
    }
    let b = s.as_bytes();
    let mut i = 0;
    let digits_from = |mut i: usize| {
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        i
    };
    let int_end = digits_from(i);
    let mut mantissa_digits = int_end - i;
    i = int_end;
    if i < b.len() && b[i] == b'.' {
        let frac_end = digits_from(i + 1);
        mantissa_digits += frac_end - (i + 1);
        i = frac_end;
    }
    if mantissa_digits == 0 {
        return false;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        let exp_end = digits_from(i);
        if exp_end == i {
            return false;
        }
        i = exp_end;
    }
    i == b.len()
}

/// `--timeout` and `--check-active` take what the help says and refuse the rest (exit 2,
/// naming the value), for generated values: fractions, exponents, signs, NaN, infinities,
/// huge and tiny numbers, spaces, other digits. An accepted value, however large, goes on
/// to connecting (here to no socket), never a panic.
#[test]
fn generated_durations_are_taken_as_the_help_says() {
    const PIECES: &[&str] = &[
        "0",
        "1",
        "9",
        "25",
        ".",
        "e",
        "E",
        "-",
        "+",
        "inf",
        "Inf",
        "nan",
        "NaN",
        "infinity",
        " ",
        "_",
        "400",
        "1e400",
        "1e-400",
        "0x1",
        "\u{0661}",
        "\u{2212}",
        "18446744073709551616",
    ];
    let mut rng = common::differential::Rng::from_env("durations");
    let (mut taken, mut refused) = (0, 0);
    for case in 0..400 {
        let value = if case % 2 == 0 {
            format!(
                "{}{}",
                rng.pick(&["0", "1", "25", ".5"]),
                rng.join(&["0", "1", "25", ".", "e", "E", "e-", "-", "+", "400"], 3)
            )
        } else {
            rng.join(PIECES, 4)
        };
        let option = rng.pick(&["--timeout", "--check-active"]);
        // OPTION=VALUE: a value that starts with '-' is the option's, not another option.
        let (code, _, err) = common::run_example_with(&[
            "--address",
            "unix:path=/nonexistent/bus",
            &format!("{option}={value}"),
            "a.service",
        ]);
        assert_ne!(code, 101, "case {case}: {option} {value:?} panicked: {err}");
        if seconds_as_the_help_says(&value) {
            assert_ne!(code, 2, "case {case}: {option} {value:?} refused: {err}");
            taken += 1;
        } else {
            assert_eq!(code, 2, "case {case}: {option} {value:?} taken: {err}");
            assert!(err.contains(&format!("{value:?}")), "case {case}: {err}");
            refused += 1;
        }
    }
    eprintln!("durations: {taken} taken, {refused} refused, as the help says");
    assert!(taken > 60 && refused > 60, "too few of a kind");
}

/// The unit-file verbs, daemon-reload, daemon-reexec, reset-failed and is-enabled through the
/// example, beside `systemctl` of the same manager: the same exit status for each command,
/// and the same changes printed.
#[test]
fn manager_and_unit_file_verbs_exit_as_systemctl_does() {
    let sd = sandbox!();
    let wanted = "[Unit]\nStartLimitIntervalSec=0\n[Service]\nExecStart=/bin/sleep infinity\n[Install]\nWantedBy=default.target\n";
    sd.install(&[
        ("wanted.service", wanted),
        ("static.service", common::LONG_RUNNING),
        ("bad.service", common::ONESHOT_FAILS),
    ]);
    let (_, version, _) = sd.systemctl_inside(&["--version"]);
    let version: u32 = version.split_whitespace().nth(1).unwrap().parse().unwrap();
    let cases: &[&[&str]] = &[
        &["enable", "wanted.service"],
        &["enable", "wanted.service"],
        &["is-enabled", "wanted.service"],
        &["disable", "wanted.service"],
        &["is-enabled", "wanted.service"],
        &["is-enabled", "static.service"],
        &["is-enabled", "wanted.service", "static.service"],
        &["is-enabled", "nope.service"],
        &["enable", "nope.service"],
        &["enable", "static.service"],
        &["mask", "wanted.service"],
        &["enable", "wanted.service"],
        &["unmask", "wanted.service"],
        &["reenable", "wanted.service"],
        &["preset", "wanted.service"],
        &["reset-failed", "bad.service"],
        &["reset-failed", "never-loaded.service"],
        &["reset-failed"],
        &["daemon-reload"],
        &["daemon-reexec"],
    ];
    for case in cases {
        let (verb, units) = case.split_first().unwrap();
        // The example's turn first, then systemctl's from the same state: each case's
        // change is undone by systemctl doing it again, or by the next case.
        let before = common::places::Place::links(&sd);
        // reset-failed needs a failed unit each time.
        let prepare = || {
            if *verb == "reset-failed" {
                let _ = sd.systemctl(&["start", "bad.service"]);
                assert_eq!(sd.unit_property("bad.service", "ActiveState"), "failed");
            }
        };
        let mut args = vec!["--user", "--verb", verb];
        args.extend_from_slice(units);
        prepare();
        let (ours, out, ours_err) = sd.run_example(&args);
        common::places::Place::restore(&sd, &before);
        prepare();
        let (theirs, their_out, their_err) = sd.systemctl_inside(case);
        if version < 257 && case == &["is-enabled", "nope.service"] {
            // systemctl 257 and later print not-found and exit 4, as the example does;
            // 252's fails with "No such file or directory" and 1.
            assert_eq!(
                (ours, out.as_str(), theirs),
                (4, "not-found\n", 1),
                "{their_err}"
            );
            continue;
        }
        assert_eq!(
            ours, theirs,
            "{case:?}: ours {ours_err:?}, systemctl {their_err:?}"
        );
        let mut ours_changes = common::places::printed_changes(&ours_err);
        let mut their_changes = common::places::printed_changes(&their_err);
        ours_changes.sort();
        their_changes.sort();
        assert_eq!(ours_changes, their_changes, "{case:?}");
        if *verb == "is-enabled" {
            assert_eq!(out, their_out, "{case:?}");
        }
        if case == &["enable", "static.service"] {
            assert!(ours_err.contains("no installation config"), "{ours_err}");
        }
        if *verb == "daemon-reload" {
            assert!(out.starts_with("daemon-reload: reloaded ("), "{out}");
        }
        if *verb == "daemon-reexec" {
            assert!(
                out.starts_with("daemon-reexec: re-executed, systemd "),
                "{out}"
            );
        }
    }
}

#[test]
fn unit_file_verbs_with_now_and_a_reload_before_jobs() {
    let sd = sandbox!();
    let wanted = "[Unit]\nStartLimitIntervalSec=0\n[Service]\nExecStart=/bin/sleep infinity\n[Install]\nWantedBy=default.target\n";
    sd.install(&[("wanted.service", wanted)]);
    let (code, out, err) = sd.run_example(&["--user", "--verb", "enable", "--now", "wanted"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.starts_with("Created symlink '"), "{err}");
    assert_done_line(out.trim(), "wanted.service");
    assert_eq!(sd.unit_property("wanted.service", "ActiveState"), "active");
    let (code, out, _) = sd.run_example(&["--user", "--verb", "disable", "--now", "wanted"]);
    assert_eq!(code, 0);
    assert_done_line(out.trim(), "wanted.service");
    assert_eq!(
        sd.unit_property("wanted.service", "ActiveState"),
        "inactive"
    );
    // A unit file written without a reload: --daemon-reload makes the manager see it first.
    sd.write_unit("fresh.service", common::ONESHOT_OK);
    let (code, out, err) =
        sd.run_example(&["--user", "--daemon-reload", "--verb", "start", "fresh"]);
    assert_eq!(code, 0, "{err}");
    assert_done_line(out.trim(), "fresh.service");
    // Usage errors.
    for args in [
        &["--user", "--verb", "daemon-reload", "a.service"][..],
        &["--user", "--verb", "enable"],
        &["--user", "--verb", "is-enabled"],
        &["--user", "--now", "a.service"],
        &["--user", "--verb", "link", "--now", "/x/a.service"],
        &["--user", "--verb", "enable", "--no-block", "a.service"],
        &["--user", "--verb", "daemon-reload", "--daemon-reload"],
        &["--user", "--verb", "enable", "relative/dir/"],
        &["--user", "--verb", "dance", "a.service"],
        &["--user", "--verb", "cancel"],
        &["--user", "--verb", "cancel", "a.service"],
        &["--user", "--verb", "cancel", "-1"],
    ] {
        let (code, _, err) = sd.run_example(args);
        assert_eq!(code, 2, "{args:?}: {err}");
    }
}

//! The system manager: systemd as PID 1 in a `systemd-nspawn` container
//! (`tests/common/container.rs`), with its system bus, its private socket and polkit deciding
//! for callers that are not root. Every test runs on every root: this machine's own (systemd
//! 252), Debian trixie (257) and Debian sid (the newest systemd Debian has), as `host::NAME`,
//! `trixie::NAME` and `sid::NAME`; each prints the version it booted.

mod common;

use std::time::{Duration, Instant};

use common::container::{Root, with_agent};
use systemd_jobs::{Bus, Error, ExitStatus, JobMode, JobResult, Manager, Verb};

on_every_root!(
    root_inside_uses_the_default_paths_and_gets_systemctl_s_statuses,
    the_library_drives_the_system_manager_over_its_bus,
    callers_that_are_not_root_are_refused_with_status_4,
    the_private_socket_refuses_peers_outside_the_manager_s_pid_namespace,
    interactive_authorization_end_to_end,
    a_batch_of_one_verb_is_one_transaction_where_the_manager_can,
    a_soft_reboot_mid_wait_is_a_prompt_error_not_done,
);

const T: Duration = Duration::from_secs(20);
const NOBODY: u32 = 65534;

fn root_inside_uses_the_default_paths_and_gets_systemctl_s_statuses(root: Root) {
    let c = container!(root);
    c.install(&[
        ("ok.service", common::ONESHOT_OK),
        ("bad.service", common::ONESHOT_FAILS),
    ]);
    // No address given: Manager::system() on /run/dbus/system_bus_socket, and with --private
    // Bus::PrivateSystem on /run/systemd/private.
    for args in [&["ok"][..], &["--private", "ok"]] {
        let (code, out, err) = c.run_example(None, args);
        assert_eq!(code, 0, "{args:?}: {err}");
        assert!(out.starts_with("ok.service: done (job "), "{args:?}: {out}");
    }
    let (code, _, err) = c.run_example(None, &["bad"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("main process exited with status 3"), "{err}");
    let (code, _, err) = c.run_example(None, &["nope"]);
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("nope.service: no such unit"), "{err}");
    // A batch: one line per unit done, the errors on stderr, the highest status. On systemd
    // 262 it is one transaction, which the missing unit makes systemd refuse as a whole.
    let (code, out, err) = c.run_example(None, &["--private", "ok", "bad", "nope"]);
    assert_eq!(code, 5, "{out}{err}");
    if c.version >= 262 {
        assert_eq!(out.lines().count(), 0, "{out}");
        assert_eq!(errors(&err), 3, "{err}");
        assert!(err.contains("ok.service: transaction refused"), "{err}");
    } else {
        assert_eq!(out.lines().count(), 1, "{out}");
        assert_eq!(errors(&err), 2, "{err}");
    }
}

/// The errors the example printed: its lines that are not a failed run's journal lines
/// (those are indented under their error).
fn errors(stderr: &str) -> usize {
    stderr
        .lines()
        .filter(|l| l.starts_with("restart_blocking: "))
        .count()
}

fn the_library_drives_the_system_manager_over_its_bus(root: Root) {
    let c = container!(root);
    c.install(&[
        ("ok.service", common::ONESHOT_OK),
        ("bad.service", common::ONESHOT_FAILS),
        ("slow.service", &common::slow_start(2.0)),
    ]);
    let m = c.manager();
    assert_eq!(
        m.restart("ok.service", JobMode::Replace, T).unwrap().result,
        JobResult::Done
    );
    match m.start("bad.service", JobMode::Replace, T) {
        Err(Error::JobFailed { reason, .. }) => {
            assert_eq!(reason.unwrap().main_process, Some(ExitStatus::Exited(3)))
        }
        other => panic!("{other:?}"),
    }
    let results = m
        .batch()
        .add(Verb::Restart, "ok.service")
        .add(Verb::Start, "nope.service")
        .run(T);
    assert!(results[0].is_ok());
    assert!(matches!(results[1], Err(Error::NoSuchUnit { .. })));

    // PID 1 re-executes while we wait: the job's own JobRemoved still comes, from the new
    // owner of org.freedesktop.systemd1.
    let job = m
        .enqueue(Verb::Restart, "slow.service", JobMode::Replace, T)
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let (code, _, err) = c.run(None, &["systemctl", "daemon-reexec"]);
    assert_eq!(code, 0, "{err}");
    let started = Instant::now();
    let out = job.wait(T).unwrap();
    assert_eq!(out.result, JobResult::Done);
    assert_eq!(out.result_source, systemd_jobs::ResultSource::JobRemoved);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(m.pending_jobs(), 0);
}

fn callers_that_are_not_root_are_refused_with_status_4(root: Root) {
    let c = container!(root);
    c.install(&[("ok.service", common::ONESHOT_OK)]);
    // Over the system bus polkit decides, and without an agent that is a refusal at once,
    // with or without the interactive-authorization flag.
    for args in [&["ok"][..], &["--ask-password", "ok"]] {
        let started = Instant::now();
        let (code, _, err) = c.run_example(Some(NOBODY), args);
        assert_eq!(code, 4, "{args:?}: {err}");
        assert!(
            err.contains("ok.service: access denied")
                && err.contains("InteractiveAuthorizationRequired"),
            "{args:?}: {err}"
        );
        // What was sent, whatever systemd's own words say about it (262's say the program
        // did not enable interactive authentication, flag or not).
        let sent = if args.len() == 2 {
            "the call allowed interactive authorization"
        } else {
            "the call did not allow interactive authorization"
        };
        assert!(err.contains(sent), "systemd {}: {args:?}: {err}", c.version);
        assert!(started.elapsed() < Duration::from_secs(5));
    }
    // The private socket is root's only.
    let (code, _, err) = c.run_example(Some(NOBODY), &["--private", "ok"]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("Permission denied"), "{err}");
    assert_eq!(c.unit_property("ok.service", "ActiveState"), "inactive");
}

fn the_private_socket_refuses_peers_outside_the_manager_s_pid_namespace(root: Root) {
    let c = container!(root);
    c.install(&[("ok.service", common::ONESHOT_OK)]);
    // From the host, the socket file is reachable through /proc/PID1/root, but the kernel
    // reports our pid as 0 to a manager in another pid namespace, and systemd refuses such
    // peers ("Incoming private connection from unprivileged client, refusing").
    let bus = Bus::PrivateAddress(format!(
        "unix:path=/proc/{}/root/run/systemd/private",
        c.pid1()
    ));
    // The refusal comes once authentication is done, so it may meet the connect or the
    // first call.
    let connected = Manager::builder()
        .bus(bus)
        .connect_timeout(Duration::from_secs(5))
        .connect();
    let result = match connected {
        Ok(m) => m.start("ok.service", JobMode::Replace, Duration::from_secs(5)),
        Err(e) => Err(e),
    };
    match result {
        Err(Error::Connect { .. } | Error::ManagerGone { .. } | Error::Disconnected { .. }) => {}
        other => panic!("expected the connection refused, got {other:?}"),
    }
    let (_, log, _) = c.run(
        None,
        &[
            "journalctl",
            "-b",
            "--no-pager",
            "-o",
            "cat",
            "-u",
            "init.scope",
        ],
    );
    assert!(log.contains("refusing"), "{log}");
}

/// Reads a monotonic timestamp property of `unit` inside the container.
fn timestamp(c: &common::container::Container, unit: &str, name: &str) -> u64 {
    c.unit_property(unit, name)
        .parse()
        .unwrap_or_else(|e| panic!("{unit} {name}: {e}"))
}

fn a_batch_of_one_verb_is_one_transaction_where_the_manager_can(root: Root) {
    let c = container!(root);
    // `second` is ordered after `first`, a oneshot that takes 1 s; the batch names them in
    // the reverse order.
    c.install(&[
        ("first.service", "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/sleep 1\n"),
        ("second.service", "[Unit]\nAfter=first.service\n[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n"),
        ("ok.service", common::ONESHOT_OK),
    ]);
    let m = c.manager();
    let results = m
        .batch()
        .add(Verb::Start, "second.service")
        .add(Verb::Start, "first.service")
        .run(T);
    for r in &results {
        assert_eq!(
            r.as_ref().unwrap().result,
            JobResult::Done,
            "systemd {}",
            c.version
        );
    }
    // Results in input order.
    assert_eq!(results[0].as_ref().unwrap().unit, "second.service");
    let second_started = timestamp(&c, "second.service", "ExecMainStartTimestampMonotonic");
    let first_ended = timestamp(&c, "first.service", "ExecMainExitTimestampMonotonic");
    if c.version >= 262 {
        // One transaction: the ordering between the named units holds.
        assert!(
            second_started >= first_ended,
            "systemd {}: second started {second_started}, first ended {first_ended}",
            c.version
        );
    }
    // With one call per unit (before 262) the ordering between them depends on timing: a
    // manager that dispatches `second`'s job before `first`'s call arrives runs it at once,
    // a busy one may not. The refusal below tells the two ways apart deterministically.

    // A transaction systemd refuses is refused as a whole where it is one.
    let results = m
        .batch()
        .add(Verb::Start, "ok.service")
        .add(Verb::Start, "nope.service")
        .run(T);
    assert!(
        matches!(results[1], Err(Error::NoSuchUnit { .. })),
        "{:?}",
        results[1]
    );
    if c.version >= 262 {
        match &results[0] {
            Err(Error::TransactionRefused { unit, source, .. }) => {
                assert_eq!(unit, "ok.service");
                assert!(source.message().contains("nope.service"), "{source}");
            }
            other => panic!("systemd {}: {other:?}", c.version),
        }
        assert_eq!(c.unit_property("ok.service", "ActiveState"), "inactive");
    } else {
        // One call per unit: the unit that exists was started all the same.
        assert_eq!(results[0].as_ref().unwrap().result, JobResult::Done);
    }
    assert_eq!(m.pending_jobs(), 0);
}

fn a_soft_reboot_mid_wait_is_a_prompt_error_not_done(root: Root) {
    let c = container!(root);
    if c.version < 254 {
        // soft-reboot came with systemd 254.
        eprintln!("systemd {} has no soft-reboot: nothing to test", c.version);
        return;
    }
    c.install(&[("slow.service", &common::slow_start(10.0))]);
    let m = c.manager();
    let job = m
        .enqueue(Verb::Start, "slow.service", JobMode::Replace, T)
        .unwrap();
    let (code, _, err) = c.run(None, &["systemctl", "--no-block", "soft-reboot"]);
    assert_eq!(code, 0, "{err}");
    let started = Instant::now();
    let result = job.wait(T);
    let took = started.elapsed();
    eprintln!("systemd {}: {result:?} after {took:?}", c.version);
    // What a waiting client sees (seen here, on 257 and 262 alike, whichever comes first):
    // the soft-reboot's own transaction cancels the job and systemd says so (`canceled`),
    // or the bus daemon is killed before that signal reaches us and the connection breaks.
    // Either way an error at once, never `done`.
    match &result {
        Err(Error::JobFailed {
            result: JobResult::Canceled,
            ..
        })
        | Err(Error::Disconnected { .. }) => {}
        other => panic!("systemd {}: expected an error, got {other:?}", c.version),
    }
    assert!(
        took < Duration::from_secs(5),
        "systemd {}: {took:?}",
        c.version
    );
}

const USER: &str = "sjtest";
const UID: u32 = 4242;
const PASSWORD: &str = "correct horse";

/// The example as [`USER`], with `pkttyagent` registered for its process first (the agent
/// closes `--notify-fd` once polkit has it), all on one terminal.
fn interactive_authorization_end_to_end(root: Root) {
    let c = container!(root);
    c.install(&[("ok.service", common::ONESHOT_OK)]);
    c.add_polkit_user(USER, UID, PASSWORD);
    let limit = Duration::from_secs(30);

    // The right password: the prompt shows, and the job runs to done.
    let run = c.on_terminal(UID, &with_agent("--ask-password ok"), Some(PASSWORD), limit);
    assert_eq!(run.code, 0, "{}", run.screen);
    assert!(
        run.screen
            .contains("AUTHENTICATING FOR org.freedesktop.systemd1.manage-units"),
        "{}",
        run.screen
    );
    assert!(
        run.screen.contains("ok.service: done (job "),
        "{}",
        run.screen
    );

    // A wrong password, at each of PAM's prompts: access denied.
    let run = c.on_terminal(UID, &with_agent("--ask-password ok"), Some("wrong"), limit);
    assert_eq!(run.code, 4, "{}", run.screen);
    assert!(
        run.screen.contains("AUTHENTICATION FAILED"),
        "{}",
        run.screen
    );
    assert!(
        run.screen.contains("ok.service: access denied"),
        "{}",
        run.screen
    );

    // No agent: access denied at once, though the flag allows asking.
    let run = c.on_terminal(
        UID,
        "exec /opt/t/restart_blocking --ask-password ok",
        None,
        limit,
    );
    assert_eq!(run.code, 4, "{}", run.screen);
    assert!(!run.screen.contains("Password:"), "{}", run.screen);
    assert!(run.took < Duration::from_secs(5), "{:?}", run.took);

    // Without the flag, with an agent there: systemd 252 asks all the same for a unit's job
    // (its job methods allowed interaction whatever the header said); 257 and 262 refuse at
    // once. (Without an agent, as above, the refusal is at once either way.)
    let run = c.on_terminal(UID, &with_agent("ok"), Some(PASSWORD), limit);
    if c.version <= 252 {
        assert_eq!(run.code, 0, "systemd {}: {}", c.version, run.screen);
        assert!(run.screen.contains("Password:"), "{}", run.screen);
    } else {
        assert_eq!(run.code, 4, "systemd {}: {}", c.version, run.screen);
        assert!(!run.screen.contains("Password:"), "{}", run.screen);
        assert!(run.took < Duration::from_secs(5), "{:?}", run.took);
    }
    let run = c.on_terminal(UID, "exec /opt/t/restart_blocking ok", None, limit);
    assert_eq!(run.code, 4, "{}", run.screen);
    assert!(run.took < Duration::from_secs(5), "{:?}", run.took);

    // A prompt nobody answers: a timeout at the deadline, with no job queued.
    let run = c.on_terminal(
        UID,
        &with_agent("--ask-password --timeout 3 ok"),
        None,
        limit,
    );
    assert_eq!(run.code, 124, "{}", run.screen);
    assert!(run.screen.contains("Password:"), "{}", run.screen);
    assert!(
        run.took >= Duration::from_secs(3) && run.took < Duration::from_secs(6),
        "{:?}",
        run.took
    );
}

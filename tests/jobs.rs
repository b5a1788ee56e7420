//! The job scenarios of systemd's own integration test of its job engine (job merging, no-op
//! collapsing, cancelling, irreversible jobs, waiting for a run, restarts during
//! auto-restart, stop propagation), written anew from the behaviour they check, each run with
//! `systemctl`, with the example and with the library on the same units of the same system
//! manager (PID 1 in a container, on every root: 252, 257, the newest), asserting that all
//! three end the same way: the exit status class, the job's result, the units' states
//! afterwards, and the crate's own bound (prompt where systemctl is prompt).

mod common;

use std::time::{Duration, Instant};

use common::container::{Container, Root};
use systemd_jobs::{Error, JobMode, JobResult, Manager, Verb};

on_every_root!(
    an_ignore_dependencies_job_merges_into_a_waiting_one,
    try_restart_of_a_waiting_unit_is_a_no_op,
    a_waiting_job_is_canceled_over_the_private_socket,
    an_irreversible_stop_is_not_canceled_by_the_start_it_queues,
    waiting_for_a_run_to_end,
    a_start_during_auto_restart,
    restarts_propagate_stops_as_systemctl_s_do,
    restart_mode_direct_keeps_what_requires_the_unit,
    a_collected_unit_waited_on_without_ref_ends_with_its_true_result,
    a_collected_unit_waited_on_with_ref_survives_reload_and_reexec,
    a_cyclic_transaction_is_refused_at_once_and_the_cycle_named,
);

const T: Duration = Duration::from_secs(20);

/// Who acts on the units: systemctl and the example inside the container, the library from
/// the host over the container's system bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tool {
    Systemctl,
    Example,
    Library,
}

const TOOLS: [Tool; 3] = [Tool::Systemctl, Tool::Example, Tool::Library];

/// How an operation ended, in the terms all three share: success or failure, and for the
/// library the job's result.
#[derive(Debug)]
struct Ended {
    ok: bool,
    took: Duration,
    said: String,
    result: Option<JobResult>,
}

/// `verb` of `unit` in `mode` with `tool`, timed.
fn act(c: &Container, m: &Manager, tool: Tool, verb: Verb, unit: &str, mode: JobMode) -> Ended {
    let started = Instant::now();
    let (ok, said, result) = match tool {
        Tool::Systemctl => {
            let (code, out, err) = c.run(
                None,
                &[
                    "systemctl",
                    verb.as_str(),
                    &format!("--job-mode={}", mode.as_str()),
                    unit,
                ],
            );
            (code == 0, format!("{out}{err}"), None)
        }
        Tool::Example => {
            let (code, out, err) = c.run_example(
                None,
                &["--verb", verb.as_str(), "--mode", mode.as_str(), unit],
            );
            (code == 0, format!("{out}{err}"), None)
        }
        Tool::Library => match m.run(verb, unit, mode, T) {
            Ok(out) => (true, format!("{out:?}"), Some(out.result)),
            Err(Error::JobFailed { result, .. }) => (false, format!("{result}"), Some(result)),
            Err(e) => (false, e.to_string(), None),
        },
    };
    Ended {
        ok,
        took: started.elapsed(),
        said,
        result,
    }
}

/// The container's jobs: `(unit, type, state)` from `systemctl list-jobs`.
fn jobs(c: &Container) -> Vec<(String, String, String)> {
    let (_, out, _) = c.run(
        None,
        &["systemctl", "list-jobs", "--no-legend", "--no-pager"],
    );
    out.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 4).then(|| (f[1].to_owned(), f[2].to_owned(), f[3].to_owned()))
        })
        .collect()
}

fn has_job(c: &Container, unit: &str, state: &str) -> bool {
    jobs(c).iter().any(|(u, _, s)| u == unit && s == state)
}

fn has_no_job(c: &Container, unit: &str) -> bool {
    !jobs(c).iter().any(|(u, _, _)| u == unit)
}

/// `ended` succeeded within 3 s, and for the library with the job `done`.
fn assert_done_at_once(tool: Tool, ended: &Ended) {
    assert!(ended.ok, "{tool:?}: {}", ended.said);
    assert!(
        ended.took < Duration::from_secs(3),
        "{tool:?} took {:?}",
        ended.took
    );
    if tool == Tool::Library {
        assert_eq!(ended.result, Some(JobResult::Done));
    }
}

/// Waits (at most 10 s) until `cond` holds.
fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let started = Instant::now();
    while !cond() {
        assert!(started.elapsed() < Duration::from_secs(10), "never: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Until the container has no job at all.
fn settled(c: &Container) {
    until("no job left", || jobs(c).is_empty());
}

const SLEEP: &str = "[Service]\nType=oneshot\nExecStart=/bin/sleep 10\n";
const HELLO: &str =
    "[Unit]\nAfter=sleep.service\n[Service]\nType=oneshot\nExecStart=/bin/echo hello\n";
const HELLO_AFTER_SLEEP: &str = "[Unit]\nWants=hello.service sleep.service\n";

fn hello_after_sleep(c: &Container) {
    c.install(&[
        ("sleep.service", SLEEP),
        ("hello.service", HELLO),
        ("hello-after-sleep.target", HELLO_AFTER_SLEEP),
    ]);
}

/// Queues the target's start and waits until `sleep.service` runs and `hello.service`
/// waits for it.
fn hello_waits(c: &Container) {
    let (code, _, err) = c.run(
        None,
        &[
            "systemctl",
            "start",
            "--no-block",
            "hello-after-sleep.target",
        ],
    );
    assert_eq!(code, 0, "{err}");
    until("sleep running, hello waiting", || {
        has_job(c, "sleep.service", "running") && has_job(c, "hello.service", "waiting")
    });
}

fn stop_all(c: &Container) {
    let (code, _, err) = c.run(
        None,
        &[
            "systemctl",
            "stop",
            "sleep.service",
            "hello.service",
            "hello-after-sleep.target",
        ],
    );
    assert_eq!(code, 0, "{err}");
    settled(c);
}

/// A start of `hello.service` with `ignore-dependencies` while its start waits for
/// `sleep.service`: merged into the waiting job, it runs now and finishes at once; sleep goes
/// on running, and hello has no job left.
fn an_ignore_dependencies_job_merges_into_a_waiting_one(root: Root) {
    let c = container!(root);
    hello_after_sleep(&c);
    let m = c.manager();
    for tool in TOOLS {
        hello_waits(&c);
        let ended = act(
            &c,
            &m,
            tool,
            Verb::Start,
            "hello.service",
            JobMode::IgnoreDependencies,
        );
        assert_done_at_once(tool, &ended);
        assert!(
            has_job(&c, "sleep.service", "running"),
            "{tool:?}: {:?}",
            jobs(&c)
        );
        assert!(has_no_job(&c, "hello.service"), "{tool:?}: {:?}", jobs(&c));
        stop_all(&c);
    }
}

/// `try-restart` of a unit whose start waits collapses into a no-op job: done at once, with
/// `fail` mode and without, the waiting start left in place.
fn try_restart_of_a_waiting_unit_is_a_no_op(root: Root) {
    let c = container!(root);
    hello_after_sleep(&c);
    let m = c.manager();
    for tool in TOOLS {
        hello_waits(&c);
        for mode in [JobMode::Fail, JobMode::Replace] {
            let ended = act(&c, &m, tool, Verb::TryRestart, "hello.service", mode);
            assert_done_at_once(tool, &ended);
            assert!(
                has_job(&c, "hello.service", "waiting"),
                "{tool:?}: {:?}",
                jobs(&c)
            );
        }
        stop_all(&c);
    }
}

/// A waiting job canceled through the private socket, where messages carry no sender
/// (`systemctl cancel` as root, the example's `--private --verb cancel`; the library cancels
/// over the bus, the private socket refusing peers outside the manager's pid namespace): gone
/// at once, the job it waited for still running; the library waiting on the canceled job
/// over the bus learns `canceled` at once.
fn a_waiting_job_is_canceled_over_the_private_socket(root: Root) {
    let c = container!(root);
    hello_after_sleep(&c);
    let waiter = c.manager();
    let canceller = c.manager();
    for tool in TOOLS {
        hello_waits(&c);
        // The waiter's start merges into the waiting job: the same job path.
        let queued = waiter
            .enqueue(Verb::Start, "hello.service", JobMode::Replace, T)
            .unwrap();
        let id = c.unit_property("hello.service", "Job");
        assert_eq!(
            id,
            queued.job().id().to_string(),
            "merged into the waiting job"
        );
        let started = Instant::now();
        match tool {
            Tool::Systemctl => {
                let (code, _, err) = c.run(None, &["systemctl", "cancel", &id]);
                assert_eq!(code, 0, "{err}");
            }
            Tool::Example => {
                let (code, _, err) = c.run_example(None, &["--private", "--verb", "cancel", &id]);
                assert_eq!(code, 0, "{err}");
            }
            Tool::Library => canceller.cancel(queued.job(), T).unwrap(),
        }
        match queued.wait(T) {
            Err(Error::JobFailed { result, .. }) => assert_eq!(result, JobResult::Canceled),
            other => panic!("{tool:?}: expected canceled, got {other:?}"),
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{tool:?}: {:?}",
            started.elapsed()
        );
        assert!(has_no_job(&c, "hello.service"), "{tool:?}: {:?}", jobs(&c));
        assert!(
            has_job(&c, "sleep.service", "running"),
            "{tool:?}: {:?}",
            jobs(&c)
        );
        stop_all(&c);
    }
    // A job that is not there: systemctl's status and the example's.
    let (code, _, _) = c.run(None, &["systemctl", "cancel", "999999"]);
    let (example, _, err) = c.run_example(None, &["--private", "--verb", "cancel", "999999"]);
    assert_eq!(example, code, "{err}");
    assert!(err.contains("999999"), "{err}");
}

/// A unit whose `ExecStop=` queues its own start (`systemctl start --no-block`): a plain stop
/// is canceled by that start (exit 1; for the library `canceled`), and the start runs; a stop
/// with `replace-irreversibly` cannot be replaced, ends `done`, and the unit stays down.
/// Each stop is made from the same certain state: active, no job queued, no start limit.
fn an_irreversible_stop_is_not_canceled_by_the_start_it_queues(root: Root) {
    let c = container!(root);
    c.install(&[(
        "unstoppable.service",
        "[Unit]\nStartLimitIntervalSec=0\n[Service]\nType=oneshot\nRemainAfterExit=yes\n\
         ExecStart=/bin/true\nExecStop=/bin/systemctl start --no-block unstoppable.service\n",
    )]);
    let m = c.manager();
    let active_and_idle = |c: &Container| {
        until("active with no job", || {
            c.unit_property("unstoppable.service", "ActiveState") == "active"
                && matches!(
                    c.unit_property("unstoppable.service", "Job").as_str(),
                    "" | "0"
                )
        })
    };
    let mut after_irreversible = Vec::new();
    for tool in TOOLS {
        let (code, _, err) = c.run(None, &["systemctl", "start", "unstoppable.service"]);
        assert_eq!(code, 0, "{err}");
        active_and_idle(&c);
        let ended = act(
            &c,
            &m,
            tool,
            Verb::Stop,
            "unstoppable.service",
            JobMode::Replace,
        );
        assert!(
            !ended.ok,
            "{tool:?}: a plain stop succeeded: {}",
            ended.said
        );
        if tool == Tool::Library {
            assert_eq!(ended.result, Some(JobResult::Canceled), "{}", ended.said);
        }
        active_and_idle(&c);
        let ended = act(
            &c,
            &m,
            tool,
            Verb::Stop,
            "unstoppable.service",
            JobMode::ReplaceIrreversibly,
        );
        assert!(ended.ok, "{tool:?}: {}", ended.said);
        if tool == Tool::Library {
            assert_eq!(ended.result, Some(JobResult::Done));
        }
        settled(&c);
        after_irreversible.push((
            tool,
            c.unit_property("unstoppable.service", "ActiveState"),
            c.unit_property("unstoppable.service", "Result"),
        ));
        let _ = c.run(None, &["systemctl", "reset-failed", "unstoppable.service"]);
    }
    // The unit is left down, as systemctl leaves it, whoever stopped it.
    let first = &after_irreversible[0];
    assert_ne!(first.1, "active", "{after_irreversible:?}");
    for other in &after_irreversible[1..] {
        assert_eq!(
            (&first.1, &first.2),
            (&other.1, &other.2),
            "{after_irreversible:?}"
        );
    }
}

/// Waiting for a run to end (`systemctl start --wait`, the example's `--wait`, the library's
/// `run_to_completion`): a unit that runs 2 s succeeds after 2 s; one that fails after 5 s
/// fails after 5 s (the example says how). The three run at once, each on its own copy.
fn waiting_for_a_run_to_end(root: Root) {
    let c = container!(root);
    let mut units = Vec::new();
    for tool in ["systemctl", "example", "library"] {
        units.push((
            format!("wait2-{tool}.service"),
            "[Service]\nExecStart=/bin/sh -c 'sleep 2'\n",
        ));
        units.push((
            format!("wait5fail-{tool}.service"),
            "[Service]\nExecStart=/bin/sh -c 'sleep 5; false'\n",
        ));
    }
    let refs: Vec<(&str, &str)> = units.iter().map(|(n, u)| (n.as_str(), *u)).collect();
    c.install(&refs);
    let m = c.manager();
    for (unit, succeeds, at_least) in [("wait2", true, 2.0), ("wait5fail", false, 5.0)] {
        let started = Instant::now();
        let (systemctl, example, (library, library_took)) = std::thread::scope(|s| {
            let c = &c;
            let a = s.spawn(move || {
                let r = c.run(
                    None,
                    &[
                        "systemctl",
                        "start",
                        "--wait",
                        &format!("{unit}-systemctl.service"),
                    ],
                );
                (r, started.elapsed())
            });
            let b = s.spawn(move || {
                let r = c.run_example(None, &["--wait", &format!("{unit}-example.service")]);
                (r, started.elapsed())
            });
            // The library on this thread meanwhile (a handle stays on its thread).
            let library =
                m.run_to_completion(&format!("{unit}-library.service"), JobMode::Replace, T);
            let took = started.elapsed();
            (a.join().unwrap(), b.join().unwrap(), (library, took))
        });
        let ((sc, _, se), st) = systemctl;
        let ((ec, _, ee), et) = example;
        assert_eq!(sc == 0, succeeds, "systemctl: {se}");
        assert_eq!(ec == 0, succeeds, "example: {ee}");
        assert_eq!(library.is_ok(), succeeds, "library: {library:?}");
        for (who, took) in [
            ("systemctl", st),
            ("example", et),
            ("library", library_took),
        ] {
            assert!(
                took.as_secs_f64() >= at_least,
                "{who} returned after {took:?}"
            );
            assert!(
                took.as_secs_f64() < at_least + 3.0,
                "{who} returned after {took:?}"
            );
        }
        if !succeeds {
            assert_eq!(ec, 1, "{ee}");
            assert!(ee.contains("main process exited with status 1"), "{ee}");
            match library {
                Err(Error::RunFailed { ran_for, .. }) => {
                    assert!(ran_for.unwrap() >= Duration::from_secs(5), "{ran_for:?}")
                }
                other => panic!("{other:?}"),
            }
        }
    }
}

/// A start of a unit waiting in `auto-restart` (its service failed, `Restart=always`,
/// `RestartSec=` not yet over): systemd 254 and later start it now; older ones let the job
/// wait for the restart. Each tool behaves as systemctl does on the same version.
fn a_start_during_auto_restart(root: Root) {
    let c = container!(root);
    c.install(&[(
        "again.service",
        "[Unit]\nStartLimitIntervalSec=0\n[Service]\nRestart=always\nRestartSec=4\n\
         ExecStartPre=/bin/sh -c 'test -e /run/again-ok'\nExecStart=/bin/sleep infinity\n",
    )]);
    let m = c.manager();
    for tool in TOOLS {
        // Failing its ExecStartPre= puts it in auto-restart.
        let _ = c.run(None, &["rm", "-f", "/run/again-ok"]);
        let _ = c.run(None, &["systemctl", "start", "--no-block", "again.service"]);
        until("auto-restart", || {
            c.unit_property("again.service", "SubState") == "auto-restart"
        });
        let _ = c.run(None, &["touch", "/run/again-ok"]);
        let ended = act(&c, &m, tool, Verb::Start, "again.service", JobMode::Replace);
        assert!(ended.ok, "{tool:?}: {}", ended.said);
        if c.version >= 254 {
            assert!(
                ended.took < Duration::from_secs(2),
                "{tool:?} waited {:?}",
                ended.took
            );
        } else {
            assert!(
                ended.took >= Duration::from_secs(2),
                "{tool:?} returned after {:?}",
                ended.took
            );
        }
        assert_eq!(
            c.unit_property("again.service", "ActiveState"),
            "active",
            "{tool:?}"
        );
        let _ = c.run(None, &["systemctl", "stop", "again.service"]);
        settled(&c);
    }
}

/// Restarts of targets with `PropagatesStopTo=`: with a `Wants=` as well, the service is
/// stopped and started again (active after); with `PropagatesStopTo=` only, it is stopped and
/// stays down; through a second target, both go down (systemd 257 and later). Each tool
/// leaves the states systemctl leaves.
fn restarts_propagate_stops_as_systemctl_s_do(root: Root) {
    let c = container!(root);
    c.install(&[
        ("sleep-infinity-simple.service", "[Service]\nExecStart=/bin/sleep infinity\n"),
        (
            "propagatestopto-and-pullin.target",
            "[Unit]\nPropagatesStopTo=sleep-infinity-simple.service\nWants=sleep-infinity-simple.service\n",
        ),
        (
            "propagatestopto-only.target",
            "[Unit]\nPropagatesStopTo=sleep-infinity-simple.service\n",
        ),
        (
            "propagatestopto-indirect.target",
            "[Unit]\nPropagatesStopTo=propagatestopto-and-pullin.target\n",
        ),
    ]);
    let m = c.manager();
    let state = |u: &str| c.unit_property(u, "ActiveState");
    let start = |units: &[&str]| {
        let mut args = vec!["systemctl", "start"];
        args.extend_from_slice(units);
        let (code, _, err) = c.run(None, &args);
        assert_eq!(code, 0, "{err}");
    };
    let mut seen: Vec<(Tool, Vec<String>)> = Vec::new();
    for tool in TOOLS {
        let _ = c.run(
            None,
            &[
                "systemctl",
                "stop",
                "propagatestopto-and-pullin.target",
                "propagatestopto-only.target",
                "propagatestopto-indirect.target",
                "sleep-infinity-simple.service",
            ],
        );
        settled(&c);
        let mut states = Vec::new();
        let restart = |unit: &str| {
            let e = act(&c, &m, tool, Verb::Restart, unit, JobMode::Replace);
            assert!(e.ok, "{tool:?} {unit}: {}", e.said);
            settled(&c);
        };
        start(&["propagatestopto-and-pullin.target"]);
        restart("propagatestopto-and-pullin.target");
        states.push(state("propagatestopto-and-pullin.target"));
        states.push(state("sleep-infinity-simple.service"));
        start(&["propagatestopto-only.target"]);
        states.push(state("sleep-infinity-simple.service"));
        restart("propagatestopto-only.target");
        states.push(state("sleep-infinity-simple.service"));
        start(&[
            "propagatestopto-indirect.target",
            "propagatestopto-and-pullin.target",
        ]);
        restart("propagatestopto-indirect.target");
        states.push(state("propagatestopto-and-pullin.target"));
        states.push(state("sleep-infinity-simple.service"));
        seen.push((tool, states));
    }
    // systemd 252 does not propagate a restart's stop (systemd's issue 26839): there the
    // units stay active, for systemctl as for the crate; 257 and later do.
    if c.version >= 257 {
        assert_eq!(
            seen[0].1,
            [
                "active", "active", "active", "inactive", "inactive", "inactive"
            ],
            "systemctl: {seen:?}"
        );
    }
    for (tool, states) in &seen[1..] {
        assert_eq!(states, &seen[0].1, "{tool:?} against systemctl: {seen:?}");
    }
}

/// `RestartMode=direct` (systemd 254 and later; older ones ignore the setting): a target that
/// requires a oneshot failing once and then succeeding on its automatic restart stays active
/// when the restart is direct (the service never passes through `failed`), and goes down
/// when it is not; with a service that always fails, down either way. Each tool's start
/// ends as systemctl's (success or failure) and leaves the target as systemctl leaves it.
fn restart_mode_direct_keeps_what_requires_the_unit(root: Root) {
    let c = container!(root);
    // The one that always fails gives up after its start limit: two starts.
    let service = |direct: bool, script: &str| {
        format!(
            "[Unit]\nStartLimitBurst=2\nStartLimitIntervalSec=60\n[Service]\nType=oneshot\n\
             Restart=on-failure\nRestartSec=200ms\n{}ExecStart=/bin/sh -c '{script}'\n",
            if direct { "RestartMode=direct\n" } else { "" }
        )
    };
    let once = "test -e /run/%N.ran && exit 0; touch /run/%N.ran; exit 1";
    let always = "exit 1";
    let mut units = Vec::new();
    for (name, direct, script) in [
        ("succeeds-on-restart", false, once),
        ("succeeds-on-restart-restartdirect", true, once),
        ("fails-on-restart", false, always),
        ("fails-on-restart-restartdirect", true, always),
    ] {
        units.push((format!("{name}.service"), service(direct, script)));
        units.push((
            format!("{name}.target"),
            format!("[Unit]\nRequires={name}.service\n"),
        ));
    }
    let refs: Vec<(&str, &str)> = units
        .iter()
        .map(|(n, u)| (n.as_str(), u.as_str()))
        .collect();
    c.install(&refs);
    let m = c.manager();
    let mut seen: Vec<(Tool, Vec<(bool, String)>)> = Vec::new();
    for tool in TOOLS {
        let mut row = Vec::new();
        for name in [
            "succeeds-on-restart-restartdirect",
            "succeeds-on-restart",
            "fails-on-restart-restartdirect",
            "fails-on-restart",
        ] {
            let _ = c.run(
                None,
                &["sh", "-c", &format!("systemctl stop {name}.target {name}.service; systemctl reset-failed {name}.service; rm -f /run/{name}.ran")],
            );
            settled(&c);
            let e = act(
                &c,
                &m,
                tool,
                Verb::Start,
                &format!("{name}.target"),
                JobMode::Replace,
            );
            // The automatic restarts go on after the start job: wait until they are over.
            if name.starts_with("fails") {
                let _ = c.run(None, &["systemctl", "stop", &format!("{name}.service")]);
            }
            std::thread::sleep(Duration::from_millis(600));
            settled(&c);
            row.push((
                e.ok,
                c.unit_property(&format!("{name}.target"), "ActiveState"),
            ));
        }
        seen.push((tool, row));
    }
    let expected_direct = if c.version >= 254 {
        "active"
    } else {
        "inactive"
    };
    assert_eq!(
        seen[0].1[0].1, expected_direct,
        "systemctl on {}: {seen:?}",
        c.version
    );
    assert_eq!(seen[0].1[1].1, "inactive", "{seen:?}");
    assert_eq!(seen[0].1[2].1, "inactive", "{seen:?}");
    assert_eq!(seen[0].1[3].1, "inactive", "{seen:?}");
    for (tool, row) in &seen[1..] {
        assert_eq!(row, &seen[0].1, "{tool:?} against systemctl: {seen:?}");
    }
}

const DENY_REF: &str = "<?xml version=\"1.0\"?>\n<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN\"\n \"https://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n<busconfig>\n  <policy context=\"mandatory\">\n    <deny send_destination=\"org.freedesktop.systemd1\" send_interface=\"org.freedesktop.systemd1.Unit\" send_member=\"Ref\"/>\n  </policy>\n</busconfig>\n";

/// A unit collected as soon as it is inactive or failed (`CollectMode=inactive-or-failed`).
const COLLECTED: &str =
    "[Service]\nCollectMode=inactive-or-failed\nExecStart=/bin/sleep infinity\n";

/// Denies `Unit.Ref()` on the container's bus by policy (as a bus policy of a site may),
/// and waits until the bus daemon has read it.
fn deny_ref(c: &Container) {
    let dir = format!("/proc/{}/root/etc/dbus-1/system.d", c.pid1());
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(format!("{dir}/deny-ref.conf"), DENY_REF).unwrap();
    let (code, _, err) = c.run(
        None,
        &[
            "busctl",
            "call",
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "ReloadConfig",
        ],
    );
    assert_eq!(code, 0, "ReloadConfig: {err}");
}

/// How a wait on a collected unit ended, for each of the three.
#[derive(Debug)]
struct WaitEnd {
    ok: bool,
    said: String,
    took: Duration,
}

/// Starts `gc-TOOL.service` and waits for it to end with each tool (systemctl and the example
/// inside the container, the library from the host, at once), while `then` acts on the units
/// from outside once all three run.
fn wait_on_collected(c: &Container, m: &Manager, then: &str) -> Vec<(Tool, WaitEnd)> {
    let started = Instant::now();
    std::thread::scope(|s| {
        let systemctl = s.spawn(|| {
            // Bounded: a systemctl that misses the unit's removal waits for ever.
            let (code, out, err) = c.run(
                None,
                &[
                    "timeout",
                    "-s",
                    "KILL",
                    "12",
                    "systemctl",
                    "start",
                    "--wait",
                    "gc-systemctl.service",
                ],
            );
            (code, format!("{out}{err}"), started.elapsed())
        });
        let example = s.spawn(|| {
            let (code, out, err) =
                c.run_example(None, &["--timeout", "15", "--wait", "gc-example.service"]);
            (code, format!("{out}{err}"), started.elapsed())
        });
        let actor = s.spawn(|| {
            until("all three running", || {
                ["systemctl", "example", "library"]
                    .iter()
                    .all(|t| c.unit_property(&format!("gc-{t}.service"), "SubState") == "running")
            });
            let (code, _, err) = c.run(None, &["sh", "-c", then]);
            assert_eq!(code, 0, "{then}: {err}");
        });
        let library = m.run_to_completion(
            "gc-library.service",
            JobMode::Replace,
            Duration::from_secs(15),
        );
        let library_took = started.elapsed();
        actor.join().unwrap();
        let (sc, ss, st) = systemctl.join().unwrap();
        let (ec, es, et) = example.join().unwrap();
        vec![
            (
                Tool::Systemctl,
                WaitEnd {
                    ok: sc == 0,
                    said: ss,
                    took: st,
                },
            ),
            (
                Tool::Example,
                WaitEnd {
                    ok: ec == 0,
                    said: es,
                    took: et,
                },
            ),
            (
                Tool::Library,
                WaitEnd {
                    ok: library.is_ok(),
                    said: format!("{library:?}"),
                    took: library_took,
                },
            ),
        ]
    })
}

fn gc_units(c: &Container) {
    c.install(&[
        ("gc-systemctl.service", COLLECTED),
        ("gc-example.service", COLLECTED),
        ("gc-library.service", COLLECTED),
    ]);
}

/// A unit waited on until it ends, collected the moment it does, with `Ref()` denied by bus
/// policy (nothing keeps it loaded): stopped cleanly by another client, the wait ends at once
/// with success; its main process killed, at once with the failure (`signal`), never a
/// success read from the unit loaded afresh. So for the example and the library on every
/// version; systemctl 257 and later never return there.
fn a_collected_unit_waited_on_without_ref_ends_with_its_true_result(root: Root) {
    let c = container!(root);
    gc_units(&c);
    deny_ref(&c);
    let m = c.manager();
    let mut systemctl = Vec::new();
    for (then, succeeds) in [
        ("systemctl stop", true),
        ("systemctl kill --signal=KILL", false),
    ] {
        let ends = wait_on_collected(
            &c,
            &m,
            &format!(
                "sleep 0.5; {then} gc-systemctl.service gc-example.service gc-library.service"
            ),
        );
        for (tool, end) in &ends[1..] {
            assert_eq!(end.ok, succeeds, "{tool:?} after {then}: {end:?}");
            assert!(
                end.took < Duration::from_secs(5),
                "{tool:?} after {then}: {end:?}"
            );
            if !succeeds {
                assert!(end.said.contains("signal"), "{tool:?}: {end:?}");
            }
        }
        systemctl.push((then, ends.into_iter().next().unwrap().1));
    }
    eprintln!(
        "OBSERVED systemd {}: systemctl start --wait: {systemctl:?}",
        c.version
    );
}

/// The same wait with `Ref()` allowed: the reference keeps the unit loaded, so a
/// `daemon-reload` or a `daemon-reexec` during the wait does not end it; the stop after it
/// ends the wait with success, for the three.
fn a_collected_unit_waited_on_with_ref_survives_reload_and_reexec(root: Root) {
    let c = container!(root);
    gc_units(&c);
    let m = c.manager();
    for between in ["systemctl daemon-reload", "systemctl daemon-reexec"] {
        let ends = wait_on_collected(
            &c,
            &m,
            &format!(
                "{between}; sleep 1; systemctl stop gc-systemctl.service gc-example.service gc-library.service"
            ),
        );
        for (tool, end) in &ends {
            assert!(end.ok, "{tool:?} across {between}: {end:?}");
            assert!(end.took < Duration::from_secs(8), "{tool:?}: {end:?}");
        }
    }
}

/// A transaction with an ordering cycle it cannot break (every unit requires and comes after
/// the next): refused at once by each tool, with systemctl's exit status; the crate names the
/// cycle (from the manager's own log of the refused transaction), where systemctl says "See
/// system logs for details".
fn a_cyclic_transaction_is_refused_at_once_and_the_cycle_named(root: Root) {
    let c = container!(root);
    let units: Vec<(String, String)> = (0..3)
        .map(|i| {
            let next = (i + 1) % 3;
            (
                format!("cycle{i}.service"),
                format!(
                    "[Unit]\nAfter=cycle{next}.service\nRequires=cycle{next}.service\n\
                     [Service]\nExecStart=/bin/sleep infinity\n"
                ),
            )
        })
        .collect();
    let refs: Vec<(&str, &str)> = units
        .iter()
        .map(|(n, u)| (n.as_str(), u.as_str()))
        .collect();
    c.install(&refs);
    let m = c.manager();
    let started = Instant::now();
    let (code, _, said) = c.run(None, &["systemctl", "start", "cycle0.service"]);
    let systemctl_took = started.elapsed();
    assert_ne!(code, 0, "{said}");
    assert!(said.contains("cyclic"), "{said}");
    assert!(
        systemctl_took < Duration::from_secs(2),
        "{systemctl_took:?}"
    );
    let started = Instant::now();
    let (example, _, example_said) = c.run_example(None, &["--verb", "start", "cycle0.service"]);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        example, code,
        "the example's status against systemctl's: {example_said}"
    );
    let started = Instant::now();
    let e = m.start("cycle0.service", JobMode::Replace, T).unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    match &e {
        Error::TransactionRefused { source, cycle, .. } => {
            assert_eq!(
                source.name(),
                "org.freedesktop.systemd1.TransactionOrderIsCyclic"
            );
            let mut named: Vec<&str> = cycle.iter().map(String::as_str).collect();
            named.sort_unstable();
            assert_eq!(
                named,
                ["cycle0.service", "cycle1.service", "cycle2.service"],
                "{e}"
            );
        }
        other => panic!("expected TransactionRefused, got {other:?}"),
    }
    for name in ["cycle0.service", "cycle1.service", "cycle2.service"] {
        assert!(e.to_string().contains(name), "{e}");
        assert!(example_said.contains(name), "{example_said}");
    }
}

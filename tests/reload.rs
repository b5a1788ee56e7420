//! `daemon-reload` and `daemon-reexec` on the real user manager, over its bus and its private
//! socket: they return once the manager has finished, under the operation's one deadline
//! (longer than the 25 s a method call gets by default, and no longer than the deadline when
//! the manager never finishes), jobs keep their results across them, and a re-execution
//! during a reload ends it with the true result.
//!
//! How long a reload takes is set with a user generator of the sandbox's own
//! (`/run/systemd/user-generators/`, in its mount namespace): the manager runs it on every
//! reload and waits for it. It sleeps for what `/run/systemd/reload-delay` says and then
//! writes `gen-marker.service`, whose `Description=` is what `/run/systemd/reload-id` says,
//! so a test knows the reload it asked for has run to its end.

mod common;

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::Sandbox;
use systemd_jobs::{Bus, Error, JobMode, JobResult, Manager, Verb};

const T: Duration = Duration::from_secs(30);

/// The slack allowed past a deadline.
const SLACK: Duration = Duration::from_millis(700);

const GENERATOR: &str = "#!/bin/sh
sleep \"$(cat /run/systemd/reload-delay 2>/dev/null || echo 0)\"
printf '[Unit]\\nDescription=%s\\n[Service]\\nExecStart=/bin/true\\n' \
    \"$(cat /run/systemd/reload-id 2>/dev/null)\" > \"$1/gen-marker.service\"
";

/// The sandbox's `/run/systemd` (a tmpfs of its own mount namespace), from this machine.
fn run_systemd(sd: &Sandbox) -> PathBuf {
    PathBuf::from(format!("/proc/{}/root/run/systemd", sd.manager_pid()))
}

/// A sandbox whose reloads run the generator above.
fn sandbox_with_generator() -> Option<Sandbox> {
    let sd = match Sandbox::start() {
        Ok(sd) => sd,
        Err(why) => {
            common::missing_prerequisite(&why);
            return None;
        }
    };
    let dir = run_systemd(&sd).join("user-generators");
    fs::create_dir_all(&dir).unwrap();
    let generator = dir.join("slow-generator");
    fs::write(&generator, GENERATOR).unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&generator, fs::Permissions::from_mode(0o755)).unwrap();
    sd.reload();
    Some(sd)
}

/// The next reload takes `delay` and marks `gen-marker.service` with `id`.
fn next_reload(sd: &Sandbox, delay: &str, id: &str) {
    fs::write(run_systemd(sd).join("reload-delay"), delay).unwrap();
    fs::write(run_systemd(sd).join("reload-id"), id).unwrap();
}

fn marker(sd: &Sandbox) -> String {
    sd.unit_property("gen-marker.service", "Description")
}

fn private(sd: &Sandbox) -> Manager {
    Manager::connect(Bus::PrivateAddress(sd.private_address())).unwrap()
}

#[test]
fn daemon_reload_returns_once_the_manager_has_finished_reloading() {
    let Some(sd) = sandbox_with_generator() else {
        return;
    };
    for (transport, m) in sd.on_both_transports() {
        next_reload(&sd, "1", transport);
        let started = Instant::now();
        let done = m.daemon_reload(T).unwrap();
        assert!(
            started.elapsed() >= Duration::from_secs(1),
            "{transport}: {done}"
        );
        assert!(!done.by_reexecution, "{transport}");
        // The generator's unit of this very reload is loaded when the call returns.
        assert_eq!(marker(&sd), transport);
        assert_eq!(m.match_rules(), 0, "{transport}: no rule left behind");
    }
}

#[test]
fn a_reload_longer_than_a_method_call_s_25_s_is_waited_for() {
    let Some(sd) = sandbox_with_generator() else {
        return;
    };
    let m = sd.manager();
    next_reload(&sd, "26", "long");
    let started = Instant::now();
    let done = m.daemon_reload(Duration::from_secs(60)).unwrap();
    assert!(started.elapsed() >= Duration::from_secs(26), "{done}");
    assert_eq!(marker(&sd), "long");
}

#[test]
fn a_manager_that_never_finishes_reloading_ends_by_the_deadline() {
    let Some(sd) = sandbox_with_generator() else {
        return;
    };
    let limit = Duration::from_secs(2);
    // Reloading for longer than the deadline (the generator sleeps), then the manager
    // stopped outright (SIGSTOP): each a Timeout naming daemon-reload, on time.
    for frozen in ["generator", "SIGSTOP"] {
        for (transport, m) in sd.on_both_transports() {
            if frozen == "SIGSTOP" {
                sd.kill(sd.manager_pid(), "STOP");
            } else {
                next_reload(&sd, "4", "slow");
            }
            let started = Instant::now();
            let e = m.daemon_reload(limit).unwrap_err();
            let took = started.elapsed();
            if frozen == "SIGSTOP" {
                sd.kill(sd.manager_pid(), "CONT");
            }
            assert!(
                matches!(&e, Error::Timeout { unit, job: None, .. } if unit == "daemon-reload"),
                "{frozen} {transport}: {e:?}"
            );
            assert!(
                took >= limit && took < limit + SLACK,
                "{frozen} {transport}: {took:?}"
            );
            assert_eq!(e.exit_status(), 124);
            // The handle works again once the manager does.
            next_reload(&sd, "0", "after");
            common::eventually(Duration::from_secs(15), || {
                m.daemon_reload(T).map(|_| ()).map_err(|e| e.to_string())
            });
        }
    }
}

#[test]
fn jobs_keep_their_results_across_a_reload_on_the_same_handle_and_others() {
    let Some(sd) = sandbox_with_generator() else {
        return;
    };
    sd.install(&[
        ("slow-a.service", &common::slow_start(2.0)),
        ("slow-b.service", &common::slow_start(2.0)),
    ]);
    for (transport, m) in sd.on_both_transports() {
        for unit in ["slow-a.service", "slow-b.service"] {
            let _ = m.stop(unit, JobMode::Replace, T).unwrap();
        }
        // Another handle waits on its own job from another thread.
        let other = sd.manager();
        let waiter = std::thread::spawn(move || {
            other
                .restart("slow-b.service", JobMode::Replace, T)
                .map(|o| o.result)
        });
        let job = m
            .enqueue(Verb::Restart, "slow-a.service", JobMode::Replace, T)
            .unwrap();
        next_reload(&sd, "0.5", transport);
        let reloaded = m.daemon_reload(T).unwrap();
        assert!(!reloaded.by_reexecution);
        let started = Instant::now();
        let out = job.wait(T).unwrap();
        assert_eq!(out.result, JobResult::Done, "{transport}");
        assert!(started.elapsed() < Duration::from_secs(3), "{transport}");
        assert_eq!(
            waiter.join().unwrap().unwrap(),
            JobResult::Done,
            "{transport}"
        );
        assert_eq!(m.pending_jobs(), 0);
    }
}

#[test]
fn a_re_execution_before_the_manager_answers_a_reload_ends_it_with_the_true_result() {
    let Some(sd) = sandbox_with_generator() else {
        return;
    };
    for transport in ["bus", "private"] {
        let m = match transport {
            "bus" => sd.manager(),
            _ => private(&sd),
        };
        next_reload(&sd, "0", transport);
        // Someone's Reexecute reaches the stopped manager before our Reload: it re-executes
        // without answering the reload.
        let raw = sd.raw_connection().unwrap();
        sd.kill(sd.manager_pid(), "STOP");
        use dbus::channel::Sender;
        raw.send(common::reexecute_call()).unwrap();
        raw.channel().flush();
        let pid = sd.manager_pid();
        let resume = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            let _ = std::process::Command::new("kill")
                .args(["-CONT", &pid.to_string()])
                .status();
        });
        let done = m.daemon_reload(T).unwrap();
        resume.join().unwrap();
        // On the bus both calls reach the manager's one connection in order, so the
        // re-execution comes first for certain; on its private socket it depends on which
        // connection it reads first, and either way the reload is done.
        if transport == "bus" {
            assert!(done.by_reexecution, "{done}");
        }
        // Wait until the re-execution is over (the old manager's leaving answers the raw
        // Reexecute with NoReply, then the new one answers a ping): after a reload that was
        // answered first, it may still be under way.
        let gone = Instant::now() + Duration::from_secs(10);
        loop {
            let left = gone.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "the Reexecute was never answered");
            match raw.channel().blocking_pop_message(left).unwrap() {
                Some(msg) if msg.msg_type() == dbus::MessageType::Error => break,
                _ => {}
            }
        }
        common::ping_systemd(&sd);
        assert_eq!(marker(&sd), transport, "{done}");
        // The handle goes on working with the new manager.
        sd.install(&[("after.service", common::ONESHOT_OK)]);
        assert_eq!(
            m.start("after.service", JobMode::Replace, T)
                .unwrap()
                .result,
            JobResult::Done
        );
    }
}

#[test]
fn daemon_reexec_returns_once_the_new_manager_answers() {
    let sd = sandbox!();
    sd.install(&[("slow.service", &common::slow_start(2.0))]);
    for (transport, m) in sd.on_both_transports() {
        let _ = m.stop("slow.service", JobMode::Replace, T).unwrap();
        let other = sd.manager();
        let waiter = std::thread::spawn(move || {
            other
                .restart("slow.service", JobMode::Replace, T)
                .map(|o| o.result)
        });
        std::thread::sleep(Duration::from_millis(300));
        let before = sd.manager_pid();
        let done = m.daemon_reexec(T).unwrap();
        assert!(done.version.starts_with(char::is_numeric), "{done}");
        assert_eq!(sd.manager_pid(), before, "the same process, executed anew");
        // It answers a job call at once.
        let started = Instant::now();
        let _ = m.stop("nothing-here.service", JobMode::Replace, T);
        assert!(started.elapsed() < Duration::from_secs(1), "{transport}");
        assert_eq!(
            waiter.join().unwrap().unwrap(),
            JobResult::Done,
            "{transport}"
        );
        assert_eq!(m.match_rules(), 0);
    }
}

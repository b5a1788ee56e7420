//! Bad input: addresses, a bus without systemd, extreme timeouts.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use systemd_jobs::{Bus, Error, JobMode, JobResult, Manager, Verb};

#[test]
fn bad_addresses_are_connect_errors_at_once() {
    for bus in [
        Bus::Address("unix:path=/nonexistent/bus".into()),
        Bus::Address("not an address".into()),
        Bus::Address(String::new()),
        Bus::PrivateAddress("unix:path=/nonexistent/private".into()),
        Bus::PrivateAddress("tcp:host=".into()),
    ] {
        let started = Instant::now();
        match Manager::connect(bus.clone()) {
            Err(e @ Error::Connect { .. }) => {
                assert_eq!(e.exit_status(), 125);
                assert!(e.bus_error().is_some());
                assert!(!e.to_string().is_empty());
            }
            other => panic!("{bus:?}: expected Connect, got {other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(2), "{bus:?}");
    }
}

/// A bare dbus-daemon with no services at all.
struct BareBus {
    child: Child,
    dir: std::path::PathBuf,
}

impl BareBus {
    fn start() -> Option<BareBus> {
        let dir = std::env::temp_dir().join(format!("systemd-jobs-barebus-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).ok()?;
        let config = dir.join("bus.conf");
        std::fs::write(
            &config,
            format!(
                "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\" \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n\
                 <busconfig><type>session</type><listen>unix:path={}/bus</listen>\
                 <auth>EXTERNAL</auth><policy context=\"default\">\
                 <allow send_destination=\"*\" eavesdrop=\"true\"/><allow eavesdrop=\"true\"/>\
                 <allow own=\"*\"/></policy></busconfig>",
                dir.display()
            ),
        )
        .ok()?;
        let child = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .arg("--nofork")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let bus = BareBus { child, dir };
        // The socket file appears when dbus-daemon binds it, a moment before it listens:
        // wait until a connection is accepted.
        for _ in 0..100 {
            if std::os::unix::net::UnixStream::connect(bus.dir.join("bus")).is_ok() {
                return Some(bus);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for BareBus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn a_bus_without_systemd_is_a_clear_error_without_hanging() {
    let Some(bus) = BareBus::start() else {
        common::missing_prerequisite("dbus-daemon could not be started");
        return;
    };
    let m = Manager::connect(Bus::Address(format!("unix:path={}/bus", bus.dir.display())))
        .expect("connect to the bare bus");
    let started = Instant::now();
    let err = m
        .restart("any.service", JobMode::Replace, Duration::from_secs(30))
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    match &err {
        Error::ManagerUnavailable { unit, source } => {
            assert_eq!(unit, "any.service");
            assert!(
                source.name() == "org.freedesktop.DBus.Error.NameHasNoOwner"
                    || source.name() == "org.freedesktop.DBus.Error.ServiceUnknown",
                "{source}"
            );
        }
        other => panic!("expected ManagerUnavailable, got {other:?}"),
    }
    assert_eq!(err.exit_status(), 125);
}

#[test]
fn a_zero_timeout_fails_before_any_bus_traffic() {
    let sd = sandbox!();
    sd.install(&[("quick.service", common::ONESHOT_OK)]);
    let m = sd.manager();
    let before = common::probe_serial(&m.caller());
    for verb in Verb::ALL {
        match m.run(verb, "quick.service", JobMode::Replace, Duration::ZERO) {
            Err(Error::Timeout { unit, job, .. }) => {
                assert_eq!(unit, "quick.service");
                assert!(job.is_none());
            }
            other => panic!("expected Timeout, got {other:?}"),
        }
    }
    let after = common::probe_serial(&m.caller());
    assert_eq!(common::sent_between(before, after), 0);
    assert_eq!(sd.unit_property("quick.service", "ActiveState"), "inactive");
    assert!(
        m.batch()
            .add(Verb::Start, "quick.service")
            .run(Duration::ZERO)[0]
            .is_err()
    );
}

#[test]
fn timeouts_of_many_years_do_not_overflow() {
    let sd = sandbox!();
    sd.install(&[("quick.service", common::ONESHOT_OK)]);
    let m = sd.manager();
    for timeout in [
        Duration::from_secs(100 * 365 * 24 * 3600),
        Duration::from_secs(u64::MAX),
        Duration::MAX,
        Duration::from_millis(i32::MAX as u64 + 1),
    ] {
        let out = m
            .restart("quick.service", JobMode::Replace, timeout)
            .unwrap();
        assert_eq!(out.result, JobResult::Done, "{timeout:?}");
    }
}

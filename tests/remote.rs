//! Remote hosts over ssh (`Bus::Remote`, the example's `-H`): a real sshd on 127.0.0.1,
//! started here with keys made for the test, whose sessions' `systemd-stdio-bridge` reaches
//! the sandbox's manager. Every feature works there, and a failure says whether ssh failed or
//! there is no systemd on the other side.

mod common;

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use systemd_jobs::{
    Bus, Error, ExitStatus, JobMode, JobResult, JournalUnavailable, Manager, Remote, RemoteProblem,
    RunJournal, Verb,
};

const T: Duration = Duration::from_secs(20);
const SSHD: &str = "/usr/sbin/sshd";

/// An sshd on 127.0.0.1 for root, with its own host key and one authorized client key, and
/// the ssh client configuration that trusts it.
struct Sshd {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Sshd {
    /// Starts an sshd whose sessions get `env` (`NAME=value ...`), within `sd`'s cgroup.
    fn start(sd: &common::Sandbox, env: &str) -> Result<Sshd, String> {
        for tool in [SSHD, "/usr/bin/ssh", "/usr/bin/ssh-keygen"] {
            if !Path::new(tool).exists() {
                return Err(format!(
                    "{tool} is missing (install openssh-server and openssh-client)"
                ));
            }
        }
        let dir = sd.runtime_dir().join("sshd");
        fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).map_err(|e| e.to_string())?;
        for key in ["host_key", "client_key"] {
            let st = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(dir.join(key))
                .status()
                .map_err(|e| e.to_string())?;
            if !st.success() {
                return Err("ssh-keygen failed".into());
            }
        }
        fs::copy(dir.join("client_key.pub"), dir.join("authorized_keys"))
            .map_err(|e| e.to_string())?;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let d = dir.display();
        fs::write(
            dir.join("sshd_config"),
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\n\
                 AuthorizedKeysFile {d}/authorized_keys\nPermitRootLogin prohibit-password\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
                 StrictModes no\nPidFile {d}/sshd.pid\nSetEnv {env}\n"
            ),
        )
        .map_err(|e| e.to_string())?;
        let host_key = fs::read_to_string(dir.join("host_key.pub")).map_err(|e| e.to_string())?;
        fs::write(
            dir.join("known_hosts"),
            format!("[127.0.0.1]:{port} {host_key}"),
        )
        .map_err(|e| e.to_string())?;
        fs::write(
            dir.join("ssh_config"),
            format!(
                "Host *\n  IdentityFile {d}/client_key\n  IdentitiesOnly yes\n  \
                 UserKnownHostsFile {d}/known_hosts\n  StrictHostKeyChecking yes\n  \
                 LogLevel ERROR\n"
            ),
        )
        .map_err(|e| e.to_string())?;
        // sshd's privilege separation directory.
        fs::create_dir_all("/run/sshd").map_err(|e| format!("/run/sshd: {e}"))?;
        let log = fs::File::create(dir.join("sshd.log")).map_err(|e| e.to_string())?;
        let child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(dir.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start sshd: {e}"))?;
        let sshd = Sshd { child, dir, port };
        sd.adopt(sshd.child.id(), "sshd")?;
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if started.elapsed() > Duration::from_secs(10) {
                let log = fs::read_to_string(sshd.dir.join("sshd.log")).unwrap_or_default();
                return Err(format!("sshd did not listen on {port}: {log}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(sshd)
    }

    /// The sandbox's user manager through this sshd.
    fn remote(&self) -> Remote {
        let remote = Remote::new("127.0.0.1")
            .user_manager(true)
            .ssh_arg("-F")
            .ssh_arg(self.dir.join("ssh_config").display().to_string());
        as_root_on(remote, self.port)
    }

    /// A directory with an `ssh` that uses this sshd's client configuration, to put first on
    /// `PATH` for the example (which, like systemctl, takes no ssh options).
    fn ssh_wrapper(&self) -> PathBuf {
        let bin = self.dir.join("bin");
        fs::create_dir_all(&bin).unwrap();
        let ssh = bin.join("ssh");
        fs::write(
            &ssh,
            format!(
                "#!/bin/sh\nexec /usr/bin/ssh -F {} \"$@\"\n",
                self.dir.join("ssh_config").display()
            ),
        )
        .unwrap();
        fs::set_permissions(&ssh, fs::Permissions::from_mode(0o755)).unwrap();
        bin
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `remote` logging in as root on `port`.
fn as_root_on(mut remote: Remote, port: u16) -> Remote {
    remote.user = Some("root".to_owned());
    remote.port = Some(port);
    remote
}

/// The session environment that points the remote side's bridge at the sandbox's manager,
/// with a `journalctl` first on the remote `PATH` that notes each run in `remote-journalctl`
/// under the sandbox's runtime directory before it runs the real one.
fn sandbox_env(sd: &common::Sandbox) -> String {
    let shims = sd.runtime_dir().join("remote-bin");
    fs::create_dir_all(&shims).unwrap();
    let shim = shims.join("journalctl");
    fs::write(
        &shim,
        format!(
            "#!/bin/sh\necho \"$@\" >> {}\nexec /usr/bin/journalctl \"$@\"\n",
            remote_journalctl_log(sd).display()
        ),
    )
    .unwrap();
    fs::set_permissions(&shim, fs::Permissions::from_mode(0o755)).unwrap();
    format!(
        "XDG_RUNTIME_DIR={} DBUS_SESSION_BUS_ADDRESS={} PATH={}:/usr/bin:/bin:/usr/sbin:/sbin",
        sd.runtime_dir().display(),
        sd.bus_address(),
        shims.display()
    )
}

/// Where the remote side's `journalctl` notes its runs.
fn remote_journalctl_log(sd: &common::Sandbox) -> PathBuf {
    sd.runtime_dir().join("remote-journalctl")
}

/// A sandbox with an sshd in front of it, or SKIPPED (a failure under CI=true).
macro_rules! sandbox_with_sshd {
    ($env:expr) => {{
        let sd = sandbox!();
        let env = $env(&sd);
        match Sshd::start(&sd, &env) {
            Ok(sshd) => (sd, sshd),
            Err(why) => {
                common::missing_prerequisite(&why);
                return;
            }
        }
    }};
}

#[test]
fn every_feature_works_over_ssh() {
    let (sd, sshd) = sandbox_with_sshd!(sandbox_env);
    sd.install(&[
        ("ok.service", common::ONESHOT_OK),
        ("bad.service", common::ONESHOT_FAILS),
        ("fail.service", "[Service]\nType=oneshot\nExecStart=/bin/sh -c 'exit 1'\n"),
        (
            "needsfail.service",
            "[Unit]\nRequires=fail.service\nAfter=fail.service\n[Service]\nType=oneshot\nExecStart=/bin/true\n",
        ),
        ("brief.service", "[Service]\nExecStart=/bin/sleep 0.3\n"),
    ]);
    let m = Manager::builder()
        .bus(Bus::Remote(sshd.remote()))
        .connect_timeout(T)
        .connect()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!m.is_direct());
    // A job, a failure with its reason, a dependency explained, a batch, progress, a run to
    // completion.
    assert_eq!(
        m.restart("ok.service", JobMode::Replace, T).unwrap().result,
        JobResult::Done
    );
    match m.start("bad.service", JobMode::Replace, T) {
        Err(Error::JobFailed { reason, .. }) => {
            let reason = reason.unwrap();
            assert_eq!(reason.main_process, Some(ExitStatus::Exited(3)));
            // The journal is read on the remote side (its `journalctl --sync` ran there),
            // and there is none there: no journald runs on this machine.
            assert_eq!(
                reason.journal,
                RunJournal::Unavailable(JournalUnavailable::NoJournal)
            );
            let ran = fs::read_to_string(remote_journalctl_log(&sd)).unwrap_or_default();
            assert!(ran.contains("--sync"), "{ran:?}");
        }
        other => panic!("{other:?}"),
    }
    match m.start("needsfail.service", JobMode::Replace, T) {
        Err(Error::JobFailed { dependencies, .. }) => {
            assert_eq!(dependencies.len(), 1);
            assert_eq!(dependencies[0].unit, "fail.service");
        }
        other => panic!("{other:?}"),
    }
    let results = m
        .batch()
        .add(Verb::Restart, "ok.service")
        .add(Verb::Start, "missing.service")
        .run(T);
    assert!(results[0].is_ok());
    assert!(matches!(results[1], Err(Error::NoSuchUnit { .. })));
    let mut reports = 0;
    let _ = m
        .run_with_progress(
            Verb::Restart,
            "ok.service",
            JobMode::Replace,
            T,
            Duration::from_millis(50),
            |_| reports += 1,
        )
        .unwrap();
    assert!(reports >= 1);
    let done = m
        .run_to_completion("brief.service", JobMode::Replace, T)
        .unwrap();
    assert_eq!(done.main_process, Some(ExitStatus::Exited(0)));
    assert_eq!(m.pending_jobs(), 0);
}

#[test]
fn the_bridge_can_be_pointed_at_a_bus_path() {
    // Sessions with no bus in their environment: only --bus-path reaches the manager.
    let (sd, sshd) = sandbox_with_sshd!(|_: &common::Sandbox| "LANG=C".to_owned());
    sd.install(&[("ok.service", common::ONESHOT_OK)]);
    let remote = sshd.remote().user_manager(false).bus_path(sd.bus_address());
    let m = Manager::connect(Bus::Remote(remote)).unwrap();
    assert_eq!(
        m.start("ok.service", JobMode::Replace, T).unwrap().result,
        JobResult::Done
    );
}

fn unreachable(bus: Bus) -> (RemoteProblem, Error) {
    match Manager::builder().bus(bus).connect_timeout(T).connect() {
        Err(e @ Error::RemoteUnreachable { .. }) => {
            let Error::RemoteUnreachable { problem, .. } = &e else {
                unreachable!()
            };
            (problem.clone(), e)
        }
        Err(other) => panic!("expected RemoteUnreachable, got {other:?}"),
        Ok(_) => panic!("connected"),
    }
}

#[test]
fn ssh_failing_is_told_apart_from_no_systemd_there() {
    // ssh fails: a port nobody listens on, and a host key nobody trusts.
    let (sd, sshd) = sandbox_with_sshd!(sandbox_env);
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (problem, e) = unreachable(Bus::Remote(as_root_on(sshd.remote(), closed)));
    assert!(
        matches!(&problem, RemoteProblem::Ssh(said) if said.contains("refused")),
        "{e}"
    );
    assert_eq!(e.exit_status(), 125);
    let untrusted = as_root_on(
        Remote::new("127.0.0.1")
            .ssh_arg("-oUserKnownHostsFile=/dev/null")
            .ssh_arg("-oStrictHostKeyChecking=yes"),
        sshd.port,
    );
    let (problem, e) = unreachable(Bus::Remote(untrusted));
    assert!(
        matches!(&problem, RemoteProblem::Ssh(said) if said.contains("verification")),
        "{e}"
    );
    drop((sshd, sd));

    // ssh works, but no systemd-stdio-bridge can be found there.
    let (_sd, sshd) = sandbox_with_sshd!(|_: &common::Sandbox| "PATH=/nonexistent".to_owned());
    let (problem, e) = unreachable(Bus::Remote(sshd.remote()));
    assert_eq!(problem, RemoteProblem::NoBridge, "{e}");
    assert!(e.to_string().contains("systemd-stdio-bridge"), "{e}");

    // ssh and the bridge work, but there is no bus for it there.
    let (_sd, sshd) = sandbox_with_sshd!(|_: &common::Sandbox| {
        "DBUS_SESSION_BUS_ADDRESS=unix:path=/nonexistent/bus XDG_RUNTIME_DIR=/nonexistent"
            .to_owned()
    });
    let (problem, e) = unreachable(Bus::Remote(sshd.remote()));
    assert!(
        matches!(&problem, RemoteProblem::NoBus(said) if !said.is_empty()),
        "{e}"
    );
}

#[test]
fn the_example_takes_a_host() {
    let (sd, sshd) = sandbox_with_sshd!(sandbox_env);
    sd.install(&[("ok.service", common::ONESHOT_OK)]);
    let path = format!(
        "{}:{}",
        sshd.ssh_wrapper().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let host = format!("root@127.0.0.1:{}", sshd.port);
    let run = |args: &[&str]| {
        let out = Command::new(common::example_binary())
            .args(args)
            .env("PATH", &path)
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .env_remove("XDG_RUNTIME_DIR")
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        common::exit_and_output(&out)
    };
    let (code, out, err) = run(&["-H", &host, "--user", "ok"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("ok.service: done (job "), "{out}");
    let (code, _, err) = run(&["--host", "root@127.0.0.1:1", "--user", "ok"]);
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("ssh failed"), "{err}");
    let (code, _, err) = run(&["-H", "root@:22", "ok"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = run(&["-H", &host, "--private", "ok"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn the_installer_s_flow_works_over_ssh() {
    let (sd, sshd) = sandbox_with_sshd!(sandbox_env);
    let m = Manager::connect(Bus::Remote(sshd.remote())).unwrap();
    // A unit file written, the manager reloaded over ssh, then enabled and started.
    sd.write_unit(
        "app.service",
        "[Service]\nExecStart=/bin/sleep infinity\n[Install]\nWantedBy=default.target\n",
    );
    let reloaded = m.daemon_reload(T).unwrap();
    assert!(!reloaded.by_reexecution);
    let out = m
        .unit_files(systemd_jobs::UnitFileVerb::Enable, ["app.service"])
        .now(true)
        .run(T)
        .unwrap();
    assert_eq!(out.changes.len(), 1, "{:?}", out.changes);
    assert_eq!(out.jobs[0].as_ref().unwrap().result, JobResult::Done);
    assert_eq!(
        m.unit_file_state("app.service", T).unwrap(),
        systemd_jobs::UnitFileState::Enabled
    );
    let done = m
        .desired("app.service")
        .active(systemd_jobs::ActiveGoal::Running)
        .startup(systemd_jobs::StartupGoal::Enabled)
        .apply(T)
        .unwrap();
    assert!(!done.changed, "{done}");
    let reexec = m.daemon_reexec(T).unwrap();
    assert!(reexec.version.starts_with(char::is_numeric), "{reexec}");
    assert_eq!(sd.unit_property("app.service", "ActiveState"), "active");
}

//! Test harness: a private, real `systemd --user` manager per test.
//!
//! Recipe: a cgroup of its own (hybrid or pure cgroup v2), a private mount namespace with a
//! tmpfs on `/run/systemd` holding the `system` marker directory, a fresh 0700
//! `XDG_RUNTIME_DIR`, no `DBUS_SESSION_BUS_ADDRESS`, then `exec /lib/systemd/systemd --user`.
//! The manager socket-activates its own dbus-daemon at `$XDG_RUNTIME_DIR/bus`.
//! [`Drop`] writes `1` to the cgroup's `cgroup.kill`, removes the cgroups depth-first and the
//! runtime directory, also when the test panicked. Nothing is ever killed by name.
//!
//! Without the prerequisites (root, systemd, cgroup2, unshare) a test says why and passes as
//! skipped; with `CI=true` it fails instead.
#![allow(dead_code)]

pub mod container;
pub mod differential;
pub mod fleet;
pub mod places;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use dbus::blocking::stdintf::org_freedesktop_dbus::Properties;
use dbus::blocking::{Connection, Proxy};
use systemd_jobs::{Bus, Manager, ManagerBuilder};

const SYSTEMD: &str = "/lib/systemd/systemd";
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The version of the systemd under `root`, from its `libsystemd-shared-NNN.so`.
pub fn systemd_version_in(root: &Path) -> Result<u32, String> {
    let lib = root.join("usr/lib");
    let mut dirs = vec![lib.join("systemd")];
    if let Ok(entries) = fs::read_dir(&lib) {
        dirs.extend(entries.flatten().map(|e| e.path().join("systemd")));
    }
    dirs.iter()
        .filter_map(|d| fs::read_dir(d).ok())
        .flat_map(|entries| entries.flatten())
        .find_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.strip_prefix("libsystemd-shared-")?
                .strip_suffix(".so")?
                .parse()
                .ok()
        })
        .ok_or_else(|| format!("no systemd (libsystemd-shared) under {}", root.display()))
}

/// Starts a sandbox manager, or explains why it cannot and returns `None` (panics under CI).
#[macro_export]
macro_rules! sandbox {
    () => {
        match common::Sandbox::start() {
            Ok(sandbox) => sandbox,
            Err(why) => {
                common::missing_prerequisite(&why);
                return;
            }
        }
    };
}

/// Reports a missing prerequisite: a failure under `CI=true`, a loud skip otherwise.
pub fn missing_prerequisite(why: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true and a prerequisite of the real-systemd tests is missing: {why}");
    }
    eprintln!("SKIPPED (prerequisite missing): {why}");
}

/// A running private `systemd --user`.
pub struct Sandbox {
    cgroups: Vec<PathBuf>,
    kill_file: PathBuf,
    runtime_dir: PathBuf,
    child: Child,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn check_prerequisites() -> Result<(), String> {
    if !nix_is_root() {
        return Err("the tests must run as root to start a sandboxed systemd --user".into());
    }
    if !Path::new(SYSTEMD).exists() {
        return Err(format!(
            "{SYSTEMD} is missing (install the systemd package)"
        ));
    }
    if Command::new("unshare").arg("--help").output().is_err() {
        return Err("unshare(1) is missing (util-linux)".into());
    }
    if !Path::new("/usr/bin/dbus-daemon").exists() {
        return Err("dbus-daemon is missing (install the dbus-daemon package)".into());
    }
    Ok(())
}

fn nix_is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// The cgroup directories to create for `id`, and the cgroup2 one that has `cgroup.kill`.
fn cgroup_dirs(id: &str) -> Result<(Vec<PathBuf>, PathBuf), String> {
    let root = Path::new(CGROUP_ROOT);
    if root.join("cgroup.controllers").exists() {
        let d = root.join(id);
        return Ok((vec![d.clone()], d));
    }
    if root.join("unified/cgroup.controllers").exists() && root.join("systemd").is_dir() {
        let unified = root.join("unified").join(id);
        return Ok((
            vec![root.join("systemd").join(id), unified.clone()],
            unified,
        ));
    }
    Err(format!(
        "no cgroup2 hierarchy at {CGROUP_ROOT} or {CGROUP_ROOT}/unified"
    ))
}

impl Sandbox {
    /// Starts a manager and waits until it is up on its bus (at most 30 s).
    pub fn start() -> Result<Sandbox, String> {
        Sandbox::start_with_bus_queue_limit(None)
    }

    /// As [`Sandbox::start`], with the bus daemon's `max_outgoing_bytes` (how much it queues
    /// for one connection before it drops messages to it) set to `limit`: the session bus
    /// configuration is copied with that one value changed and bind-mounted over the original
    /// inside the sandbox's own mount namespace.
    pub fn start_with_bus_queue_limit(limit: Option<u32>) -> Result<Sandbox, String> {
        check_prerequisites()?;
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let id = format!("systemd-jobs-test-{}-{n}", std::process::id());
        let (cgroups, unified) = cgroup_dirs(&id)?;
        let kill_file = unified.join("cgroup.kill");
        for c in &cgroups {
            fs::create_dir_all(c).map_err(|e| format!("cannot create cgroup {c:?}: {e}"))?;
        }
        let runtime_dir = std::env::temp_dir().join(&id);
        let _ = fs::remove_dir_all(&runtime_dir);
        fs::create_dir(&runtime_dir).map_err(|e| format!("{runtime_dir:?}: {e}"))?;
        fs::set_permissions(&runtime_dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| e.to_string())?;
        let join_cgroups: String = cgroups
            .iter()
            .map(|c| format!("echo $$ > {}/cgroup.procs && ", c.display()))
            .collect();
        // SYSTEMD_JOBS_USER_ROOT: run the user manager (and its bus daemon) of another root,
        // its /usr bind-mounted over ours inside the sandbox's mount namespace.
        let user_root = std::env::var_os("SYSTEMD_JOBS_USER_ROOT").map(PathBuf::from);
        let usr_from = match &user_root {
            Some(root) => {
                let version = systemd_version_in(root)?;
                eprintln!("sandbox: systemd {version} from {}", root.display());
                format!("mount --bind {}/usr /usr && ", root.display())
            }
            None => String::new(),
        };
        let bus_config = match limit {
            None => String::new(),
            Some(bytes) => {
                const CONF: &str = "/usr/share/dbus-1/session.conf";
                let conf_path = match &user_root {
                    Some(root) => root.join(CONF.trim_start_matches('/')),
                    None => PathBuf::from(CONF),
                };
                let conf = fs::read_to_string(&conf_path)
                    .map_err(|e| format!("{}: {e}", conf_path.display()))?;
                let from = "<limit name=\"max_outgoing_bytes\">1000000000</limit>";
                if !conf.contains(from) {
                    return Err(format!(
                        "{CONF} does not set max_outgoing_bytes as expected"
                    ));
                }
                let to = format!("<limit name=\"max_outgoing_bytes\">{bytes}</limit>");
                let copy = runtime_dir.join("session.conf");
                fs::write(&copy, conf.replace(from, &to)).map_err(|e| e.to_string())?;
                format!("mount --bind {} {CONF} && ", copy.display())
            }
        };
        let script = format!(
            "{join_cgroups}exec unshare --mount sh -c 'mount --make-rprivate / && \
             mount -t tmpfs tmpfs /run/systemd && mkdir -p /run/systemd/system && \
             {usr_from}{bus_config}exec {SYSTEMD} --user'"
        );
        // The manager's configuration directory (where `enable` writes) is the sandbox's own.
        let config_dir = runtime_dir.join("config");
        fs::create_dir(&config_dir).map_err(|e| format!("{config_dir:?}: {e}"))?;
        let child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .env("XDG_RUNTIME_DIR", &runtime_dir)
            .env("XDG_CONFIG_HOME", &config_dir)
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .env("SYSTEMD_LOG_LEVEL", "warning")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot spawn the sandbox: {e}"))?;
        let sandbox = Sandbox {
            cgroups,
            kill_file,
            runtime_dir,
            child,
        };
        sandbox.wait_until_running(Duration::from_secs(30))?;
        if let Some(root) = &user_root {
            // The manager that runs is the root's, not this machine's.
            let expected = systemd_version_in(root)?;
            let conn = sandbox.raw_connection()?;
            let running: String = systemd_manager(&conn, Duration::from_secs(5))
                .get("org.freedesktop.systemd1.Manager", "Version")
                .map_err(|e| format!("reading the manager's Version: {e}"))?;
            if !running.starts_with(&expected.to_string()) {
                return Err(format!(
                    "the sandbox runs systemd {running}, not {expected} from {}",
                    root.display()
                ));
            }
        }
        Ok(sandbox)
    }

    fn wait_until_running(&self, limit: Duration) -> Result<(), String> {
        let start = Instant::now();
        let mut last = String::from("bus socket not there yet");
        while start.elapsed() < limit {
            if self.runtime_dir.join("bus").exists() {
                match finished_starting(self.raw_connection()) {
                    Ok(()) => return Ok(()),
                    Err(e) => last = e,
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!(
            "the sandbox manager did not come up in {limit:?}: {last}"
        ))
    }

    /// `unix:path=$XDG_RUNTIME_DIR/bus`.
    pub fn bus_address(&self) -> String {
        format!("unix:path={}/bus", self.runtime_dir.display())
    }

    /// `unix:path=$XDG_RUNTIME_DIR/systemd/private`.
    pub fn private_address(&self) -> String {
        format!("unix:path={}/systemd/private", self.runtime_dir.display())
    }

    pub fn runtime_dir(&self) -> &Path {
        &self.runtime_dir
    }

    /// Where the manager keeps its configuration (`$XDG_CONFIG_HOME/systemd/user`): where
    /// `enable`, `mask` and `link` write.
    pub fn config_dir(&self) -> PathBuf {
        self.runtime_dir.join("config/systemd/user")
    }

    /// Where the tests write unit files (`$XDG_RUNTIME_DIR/systemd/user`), below the
    /// configuration directory in the search path, so units there can be masked.
    pub fn unit_dir(&self) -> PathBuf {
        self.runtime_dir.join("systemd/user")
    }

    /// Runs `systemctl --user ARGS` inside the sandbox's mount namespace (the systemctl of
    /// the manager's own `/usr`), where `/run/systemd/system` exists: outside it, systemctl
    /// takes the machine for one not booted with systemd and changes unit files itself
    /// instead of asking the manager. Returns its exit status, stdout and stderr.
    pub fn systemctl_inside(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new("nsenter")
            .args([
                "-t",
                &self.manager_pid().to_string(),
                "-m",
                "--",
                "systemctl",
                "--user",
            ])
            .args(args)
            .env("XDG_RUNTIME_DIR", &self.runtime_dir)
            .env("XDG_CONFIG_HOME", self.runtime_dir.join("config"))
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .env("SYSTEMD_PAGER", "")
            .env("SYSTEMD_COLORS", "0")
            .output()
            .expect("run nsenter systemctl");
        exit_and_output(&out)
    }

    /// A handle on the sandbox manager through its bus.
    pub fn manager(&self) -> Manager {
        self.builder()
            .connect()
            .expect("connect to the sandbox bus")
    }

    /// A builder already pointed at the sandbox bus.
    pub fn builder(&self) -> ManagerBuilder {
        Manager::builder().bus(Bus::Address(self.bus_address()))
    }

    /// A plain bus connection, for checks the library does not make.
    pub fn raw_connection(&self) -> Result<Connection, String> {
        Connection::new_address(&self.bus_address()).map_err(|e| e.to_string())
    }

    /// Writes a unit file where the user manager reads runtime units.
    pub fn write_unit(&self, name: &str, contents: &str) {
        let dir = self.runtime_dir.join("systemd/user");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(name), contents).unwrap();
    }

    /// Writes unit files and reloads the manager (`daemon-reload`).
    pub fn install(&self, units: &[(&str, &str)]) {
        for (name, contents) in units {
            self.write_unit(name, contents);
        }
        self.reload();
    }

    /// `daemon-reload`, waiting for it to finish.
    pub fn reload(&self) {
        let conn = self.raw_connection().unwrap();
        let p = systemd_manager(&conn, Duration::from_secs(30));
        let () = p
            .method_call("org.freedesktop.systemd1.Manager", "Reload", ())
            .expect("daemon-reload");
    }

    /// Moves process `pid` (a helper a test started, such as an sshd) into a cgroup below
    /// the sandbox's, so the sandbox's teardown kills it and whatever it started.
    pub fn adopt(&self, pid: u32, name: &str) -> Result<(), String> {
        for cg in &self.cgroups {
            let dir = cg.join(name);
            fs::create_dir_all(&dir).map_err(|e| format!("{dir:?}: {e}"))?;
            fs::write(dir.join("cgroup.procs"), pid.to_string())
                .map_err(|e| format!("{dir:?}/cgroup.procs: {e}"))?;
        }
        Ok(())
    }

    /// A handle on this manager over its bus and one over its private socket, each with the
    /// name of its transport for assertion messages.
    pub fn on_both_transports(&self) -> [(&'static str, Manager); 2] {
        [
            (
                "bus",
                Manager::connect(Bus::Address(self.bus_address())).unwrap(),
            ),
            (
                "private",
                Manager::connect(Bus::PrivateAddress(self.private_address())).unwrap(),
            ),
        ]
    }

    /// Runs `systemctl --user ARGS` against the sandbox manager.
    pub fn systemctl(&self, args: &[&str]) -> std::process::Output {
        Command::new("systemctl")
            .arg("--user")
            .args(args)
            .env("XDG_RUNTIME_DIR", &self.runtime_dir)
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .output()
            .expect("run systemctl")
    }

    /// A unit's property, read with its own connection.
    pub fn unit_property(&self, unit: &str, name: &str) -> String {
        let out = self.systemctl(&["show", "-P", name, unit]);
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// The pid of the `systemd --user` process (the sandbox's main process).
    pub fn manager_pid(&self) -> u32 {
        self.child.id()
    }

    /// The pid of the sandbox's dbus-daemon.
    pub fn bus_daemon_pid(&self) -> u32 {
        let v: u32 = self
            .unit_property("dbus.service", "MainPID")
            .parse()
            .expect("dbus.service MainPID");
        assert!(v > 0, "dbus.service has no main pid");
        v
    }

    /// What the bus daemon's `org.freedesktop.DBus.Debug.Stats` says about the connection
    /// `unique_name`.
    fn connection_stats(&self, unique_name: &str) -> dbus::arg::PropMap {
        let conn = self.raw_connection().unwrap();
        let p = Proxy::new(
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            Duration::from_secs(5),
            &conn,
        );
        let (stats,): (dbus::arg::PropMap,) = p
            .method_call(
                "org.freedesktop.DBus.Debug.Stats",
                "GetConnectionStats",
                (unique_name,),
            )
            .expect("GetConnectionStats");
        stats
    }

    /// How many match rules the connection `unique_name` has on the sandbox bus, read from
    /// the bus daemon's `org.freedesktop.DBus.Debug.Stats`.
    pub fn match_rules_of(&self, unique_name: &str) -> u32 {
        let stats = self.connection_stats(unique_name);
        dbus::arg::prop_cast::<u32>(&stats, "MatchRules")
            .copied()
            .expect("MatchRules in stats")
    }

    /// Runs `systemctl --user VERB` (`daemon-reexec`, say) at each of `at` (ms from now),
    /// from another thread.
    pub fn systemctl_at(&self, verb: &'static str, at: &[u64]) -> std::thread::JoinHandle<()> {
        let runtime_dir = self.runtime_dir.clone();
        let at = at.to_vec();
        std::thread::spawn(move || {
            let start = Instant::now();
            for ms in at {
                std::thread::sleep(Duration::from_millis(ms).saturating_sub(start.elapsed()));
                let st = Command::new("systemctl")
                    .args(["--user", verb])
                    .env("XDG_RUNTIME_DIR", &runtime_dir)
                    .env_remove("DBUS_SESSION_BUS_ADDRESS")
                    .status()
                    .expect("run systemctl");
                assert!(st.success(), "systemctl --user {verb}: {st}");
            }
        })
    }

    /// The match rules `m` holds on the sandbox bus, read after a round trip on `m`'s own
    /// connection (so the bus daemon has handled every `AddMatch`/`RemoveMatch` it sent).
    pub fn rules_held(&self, m: &Manager) -> u32 {
        probe_serial(&m.caller());
        self.match_rules_of(m.unique_name().expect("a bus handle"))
    }

    /// What the bus daemon holds for the connection `unique_name`, from
    /// `org.freedesktop.DBus.Debug.Stats`: (`OutgoingMessages`, `OutgoingBytes`,
    /// `PeakOutgoingBytes`).
    pub fn outgoing_queue_of(&self, unique_name: &str) -> (u32, u32, u32) {
        let stats = self.connection_stats(unique_name);
        let get = |key: &str| {
            dbus::arg::prop_cast::<u32>(&stats, key)
                .copied()
                .unwrap_or_else(|| panic!("{key} in stats: {stats:?}"))
        };
        (
            get("OutgoingMessages"),
            get("OutgoingBytes"),
            get("PeakOutgoingBytes"),
        )
    }

    /// Installs the units [`Sandbox::foreign_noop_jobs`] uses, if not yet there, and returns
    /// their names.
    pub fn install_noop_units(&self) -> Vec<String> {
        const UNITS: usize = 200;
        let units: Vec<String> = (0..UNITS).map(|k| format!("noop-{k}.service")).collect();
        if !self
            .runtime_dir
            .join("systemd/user/noop-0.service")
            .exists()
        {
            let unit = "[Unit]\nStartLimitIntervalSec=0\n[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n";
            let files: Vec<(&str, &str)> = units.iter().map(|u| (u.as_str(), unit)).collect();
            self.install(&files);
        }
        units
    }

    /// Another client runs at least `n` no-op jobs (starts of units that are active already,
    /// each ending `done` at once), after calling `Subscribe()` as systemd-logind does, so
    /// every job's `JobRemoved` is broadcast to whoever holds a matching rule. Installs and
    /// starts the units it uses (`noop-K.service`) on first use. Returns how many distinct jobs
    /// ran.
    ///
    /// systemd merges a start into a job already queued for the same unit, so the calls go out
    /// in rounds of one per unit, each round after the previous one's jobs have ended.
    pub fn foreign_noop_jobs(&self, n: usize) -> usize {
        let units = self.install_noop_units();
        let conn = self.raw_connection().unwrap();
        systemd_manager(&conn, Duration::from_secs(10))
            .method_call::<(), _, _, _>("org.freedesktop.systemd1.Manager", "Subscribe", ())
            .expect("Subscribe");
        // Our own results tell when a round's jobs have ended.
        conn.add_match_no_cb(
            "type='signal',sender='org.freedesktop.systemd1',interface='org.freedesktop.systemd1.Manager',member='JobRemoved'",
        )
        .expect("AddMatch");
        let channel = conn.channel();
        let mut jobs = std::collections::HashSet::new();
        while jobs.len() < n {
            let mut round = std::collections::HashSet::new();
            for unit in &units {
                channel
                    .send(start_unit_call(unit))
                    .expect("queue StartUnit");
            }
            let (mut answered, mut ended) = (0, 0);
            while answered < units.len() || ended < round.len() {
                channel
                    .read_write(Some(Duration::from_secs(10)))
                    .expect("foreign client connection");
                while let Some(msg) = channel.pop_message() {
                    match msg.msg_type() {
                        dbus::MessageType::MethodReturn => {
                            if let Ok(path) = msg.read1::<dbus::Path>() {
                                answered += 1;
                                round.insert(path.to_string());
                            }
                        }
                        dbus::MessageType::Error => panic!("a foreign job was refused: {msg:?}"),
                        dbus::MessageType::Signal => {
                            if let Ok((_, path)) = msg.read2::<u32, dbus::Path>()
                                && round.contains(&*path)
                            {
                                ended += 1;
                            }
                        }
                        _ => {}
                    }
                }
            }
            jobs.extend(round);
        }
        jobs.len()
    }

    /// Sends `signal` to `pid` (a process of this sandbox).
    pub fn kill(&self, pid: u32, signal: &str) {
        let st = Command::new("kill")
            .args(["-s", signal, &pid.to_string()])
            .status()
            .unwrap();
        assert!(st.success(), "kill -{signal} {pid}");
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = fs::write(&self.kill_file, "1");
        let _ = self.child.kill();
        let _ = self.child.wait();
        let deadline = Instant::now() + Duration::from_secs(10);
        for cg in &self.cgroups {
            while remove_tree(cg).is_err() && Instant::now() < deadline {
                let _ = fs::write(&self.kill_file, "1");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = fs::remove_dir_all(&self.runtime_dir);
    }
}

/// Removes a cgroup directory tree depth-first (cgroup directories are removed with rmdir).
fn remove_tree(dir: &Path) -> std::io::Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            remove_tree(&entry.path())?;
        }
    }
    fs::remove_dir(dir)
}

/// Whether the manager behind `conn` has finished starting (`SystemState` `running` or
/// `degraded`); otherwise what was seen.
fn finished_starting(conn: Result<Connection, String>) -> Result<(), String> {
    let conn = conn?;
    let state: String = systemd_manager(&conn, Duration::from_secs(2))
        .get("org.freedesktop.systemd1.Manager", "SystemState")
        .map_err(|e| e.to_string())?;
    match state.as_str() {
        "running" | "degraded" => Ok(()),
        _ => Err(format!("manager state {state}")),
    }
}

/// A service that runs until stopped, restartable without hitting the start limit.
pub const LONG_RUNNING: &str =
    "[Unit]\nStartLimitIntervalSec=0\n[Service]\nExecStart=/bin/sleep infinity\n";

/// A oneshot that stays active, restartable without limit.
pub const ONESHOT_OK: &str = "[Unit]\nStartLimitIntervalSec=0\n[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n";

/// A oneshot whose start fails with exit status 3.
pub const ONESHOT_FAILS: &str =
    "[Unit]\nStartLimitIntervalSec=0\n[Service]\nType=oneshot\nExecStart=/bin/sh -c 'exit 3'\n";

/// A oneshot whose start fails with exit status 3 after `secs` seconds.
pub fn failing_after(secs: f64) -> String {
    format!(
        "[Unit]\nStartLimitIntervalSec=0\n[Service]\nType=oneshot\nExecStart=/bin/sh -c 'sleep {secs}; exit 3'\n"
    )
}

/// A service whose stop takes 1 s.
pub const SLOW_STOP: &str = "[Unit]\nStartLimitIntervalSec=0\n[Service]\nExecStart=/bin/sleep infinity\nExecStop=/bin/sleep 1\n";

/// A service whose reload takes 1 s.
pub const SLOW_RELOAD: &str = "[Unit]\nStartLimitIntervalSec=0\n[Service]\nExecStart=/bin/sleep infinity\nExecReload=/bin/sleep 1\n";

/// A oneshot whose start takes `secs` seconds.
pub fn slow_start(secs: f64) -> String {
    format!(
        "[Unit]\nStartLimitIntervalSec=0\n[Service]\nType=oneshot\nRemainAfterExit=yes\nTimeoutStartSec=infinity\nExecStart=/bin/sleep {secs}\n"
    )
}

/// Polls `probe` every 20 ms until it returns `Ok`, and returns that value; panics with the
/// last `Err` if `limit` passes first. For states systemd reaches on a later turn of its event
/// loop than the reply we got (a queued job is dispatched, a dead peer is noticed).
pub fn eventually<T>(limit: Duration, mut probe: impl FnMut() -> Result<T, String>) -> T {
    let start = Instant::now();
    loop {
        match probe() {
            Ok(value) => return value,
            Err(last) if start.elapsed() >= limit => panic!("not within {limit:?}: {last}"),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// The serial of the next message `conn` will send, found by sending a `Ping` to the bus and
/// reading the serial its reply answers. Two probes tell how many messages were sent between
/// them: `after - before - 1`.
pub fn probe_serial(conn: &impl dbus::blocking::BlockingSender) -> u32 {
    let msg = dbus::Message::new_method_call(
        "org.freedesktop.DBus",
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus.Peer",
        "Ping",
    )
    .unwrap();
    let reply = conn
        .send_with_reply_and_block(msg, Duration::from_secs(5))
        .expect("Ping the bus");
    reply.get_reply_serial().expect("reply serial")
}

/// Messages `conn` sent between two [`probe_serial`] calls.
pub fn sent_between(before: u32, after: u32) -> u32 {
    after - before - 1
}

/// The `restart_blocking` example binary, built once per test process.
pub fn example_binary() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            // Built with the profile of the calling binary (benchmarks time the release one).
            let mut args = vec!["build", "--quiet", "--example", "restart_blocking"];
            if !cfg!(debug_assertions) {
                args.push("--release");
            }
            let st = Command::new(cargo)
                .args(args)
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .status()
                .expect("run cargo build --example restart_blocking");
            assert!(st.success(), "building the example failed");
            let exe = std::env::current_exe().unwrap();
            let profile_dir = exe.parent().and_then(Path::parent).unwrap();
            profile_dir.join("examples/restart_blocking")
        })
        .clone()
}

/// A finished command's exit status (-1 if killed by a signal), stdout and stderr.
pub fn exit_and_output(out: &std::process::Output) -> (i32, String, String) {
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `restart_blocking ARGS` on this machine, without `RUST_LOG`.
pub fn run_example_with(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(example_binary())
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run restart_blocking");
    exit_and_output(&out)
}

impl Sandbox {
    /// Runs `restart_blocking ARGS` with this sandbox as the user manager.
    pub fn run_example(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(example_binary())
            .args(args)
            .env("XDG_RUNTIME_DIR", &self.runtime_dir)
            .env("DBUS_SESSION_BUS_ADDRESS", self.bus_address())
            .env_remove("RUST_LOG")
            .output()
            .expect("run restart_blocking");
        exit_and_output(&out)
    }

    /// Masks a unit: a link to /dev/null where the manager reads runtime units, then a reload.
    pub fn mask(&self, name: &str) {
        let dir = self.runtime_dir.join("systemd/user");
        fs::create_dir_all(&dir).unwrap();
        let _ = fs::remove_file(dir.join(name));
        std::os::unix::fs::symlink("/dev/null", dir.join(name)).unwrap();
        self.reload();
    }
}

/// Sends SIGKILL to `pid` after `delay`, from another thread; joining gives the moment of the
/// kill.
pub fn kill_after(pid: u32, delay: Duration) -> std::thread::JoinHandle<Instant> {
    std::thread::spawn(move || {
        std::thread::sleep(delay);
        let st = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(st.success(), "kill -KILL {pid}");
        Instant::now()
    })
}

/// A method call to systemd as a bus monitor saw it on the wire.
#[derive(Debug, Clone)]
pub struct SeenCall {
    /// The caller's unique name.
    pub sender: String,
    /// `Interface.Member`, e.g. `org.freedesktop.systemd1.Manager.RestartUnit`.
    pub method: String,
    /// The header's flags byte (0x1 no reply expected, 0x2 no auto start, 0x4 allow
    /// interactive authorization).
    pub flags: u8,
}

/// A bus monitor (`org.freedesktop.DBus.Monitoring.BecomeMonitor`) on the sandbox bus that
/// sees every method call sent to `org.freedesktop.systemd1`, header flags included.
pub struct CallMonitor {
    channel: dbus::channel::Channel,
    seen: Vec<SeenCall>,
}

impl Sandbox {
    /// Starts a monitor of the method calls sent to systemd over the sandbox bus.
    pub fn monitor_calls(&self) -> CallMonitor {
        let mut channel = dbus::channel::Channel::open_private(&self.bus_address())
            .expect("monitor: connect to the sandbox bus");
        channel.register().expect("monitor: Hello");
        let become_monitor = dbus::Message::new_method_call(
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus.Monitoring",
            "BecomeMonitor",
        )
        .unwrap()
        .append2(
            vec!["type='method_call',destination='org.freedesktop.systemd1'"],
            0u32,
        );
        channel
            .send_with_reply_and_block(become_monitor, Duration::from_secs(10))
            .expect("monitor: BecomeMonitor");
        CallMonitor {
            channel,
            seen: Vec::new(),
        }
    }
}

impl CallMonitor {
    /// Every call seen so far. To know it has seen everything sent before, it waits for a
    /// marker call (`Peer.Ping` to systemd from a fresh connection) made after them.
    pub fn calls_so_far(&mut self, sd: &Sandbox) -> Vec<SeenCall> {
        let marker = sd.raw_connection().expect("monitor: marker connection");
        let marker_name = marker.unique_name().to_string();
        ping_systemd_on(&marker);
        let give_up = Instant::now() + Duration::from_secs(10);
        loop {
            let left = give_up.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "monitor: the marker call never showed up");
            let Some(msg) = self
                .channel
                .blocking_pop_message(left)
                .expect("monitor: read")
            else {
                continue;
            };
            let sender = msg.sender().map(|s| s.to_string()).unwrap_or_default();
            if sender == marker_name {
                return self.seen.clone();
            }
            self.seen.push(SeenCall {
                sender,
                method: format!(
                    "{}.{}",
                    msg.interface().map(|s| s.to_string()).unwrap_or_default(),
                    msg.member().map(|s| s.to_string()).unwrap_or_default()
                ),
                flags: header_flags(&msg),
            });
        }
    }
}

/// `Peer.Ping` to systemd over the sandbox bus: returns once systemd has answered every
/// call it read from the bus before this one.
pub fn ping_systemd(sd: &Sandbox) {
    ping_systemd_on(&sd.raw_connection().expect("connect for a ping"));
}

fn ping_systemd_on(conn: &Connection) {
    let () = systemd_manager(conn, Duration::from_secs(10))
        .method_call("org.freedesktop.DBus.Peer", "Ping", ())
        .expect("ping systemd");
}

/// A proxy on the sandbox's systemd manager object over `conn`.
fn systemd_manager(conn: &Connection, timeout: Duration) -> Proxy<'static, &Connection> {
    Proxy::new(
        "org.freedesktop.systemd1",
        "/org/freedesktop/systemd1",
        timeout,
        conn,
    )
}

/// A `Reexecute()` call to the manager, to send without a library (and without waiting: it
/// is never answered).
pub fn reexecute_call() -> dbus::Message {
    dbus::Message::new_method_call(
        "org.freedesktop.systemd1",
        "/org/freedesktop/systemd1",
        "org.freedesktop.systemd1.Manager",
        "Reexecute",
    )
    .unwrap()
}

/// A `StartUnit(unit, "replace")` call to the manager, to send without a library.
pub fn start_unit_call(unit: &str) -> dbus::Message {
    dbus::Message::new_method_call(
        "org.freedesktop.systemd1",
        "/org/freedesktop/systemd1",
        "org.freedesktop.systemd1.Manager",
        "StartUnit",
    )
    .unwrap()
    .append2(unit, "replace")
}

/// The flags byte of a message's header, from its wire form.
pub fn header_flags(msg: &dbus::Message) -> u8 {
    let mut flags = 0;
    msg.marshal(|bytes| {
        flags = bytes[2];
        Ok::<(), ()>(())
    })
    .unwrap();
    flags
}

/// D-Bus's ALLOW_INTERACTIVE_AUTHORIZATION header flag.
pub const ALLOW_INTERACTIVE_AUTHORIZATION: u8 = 0x4;

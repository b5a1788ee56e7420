//! A second real-manager fixture: the *system* manager, as PID 1 of a `systemd-nspawn`
//! container booted from a [`Root`]: this machine's own `/usr` (systemd 252 here), or a Debian
//! root that debootstrap built from Debian's packages (`trixie`: 257, `sid`: the newest; `bash
//! .ci/test` builds them into the roots cache, `$SYSTEMD_JOBS_ROOTS` or
//! `/var/cache/systemd-jobs/roots`).
//!
//! Recipe: a cgroup of its own (as for the user manager), then
//! `systemd-nspawn --register=no --keep-unit -q --volatile=yes -D ROOT --machine=NAME
//! --bind-ro=EXAMPLES:/opt/t --boot -- systemd.firstboot=off systemd.unit=basic.target`:
//! a tmpfs root with the root's `/usr` read-only, systemd as PID 1 in system mode, its system
//! bus at `/proc/PID1/root/run/dbus/system_bus_socket` from the host. systemd 258 and newer
//! refuse this host's hybrid cgroup layout unless nspawn runs with
//! `SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1`, which is set for them. The crate's example
//! binaries are bind-mounted at `/opt/t`, and commands run inside with
//! `nsenter -t PID1 -m -u -i -n -p`, as root or, through `setpriv`, as another user. Unit
//! files go in the container's `/run/systemd/system`. [`Drop`] writes `1` to the cgroup's
//! `cgroup.kill` and removes the cgroups depth-first, also when the test panicked; nspawn's
//! own mounts live in its mount namespace and go with it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use dbus::blocking::Connection;
use systemd_jobs::{Bus, Manager};

const NSPAWN: &str = "/usr/bin/systemd-nspawn";

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Where a container's system comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Root {
    /// This machine's own root (`-D /`).
    Host,
    /// A Debian root of this suite, built by debootstrap into the roots cache.
    Debian(&'static str),
}

/// The Debian suites whose roots `bash .ci/test` builds and the system tests boot.
pub const DEBIAN_SUITES: [&str; 2] = ["trixie", "sid"];

/// Where the Debian roots are kept: `$SYSTEMD_JOBS_ROOTS`, else
/// `/var/cache/systemd-jobs/roots` (outside the checkout, kept between runs).
pub fn roots_cache() -> PathBuf {
    std::env::var_os("SYSTEMD_JOBS_ROOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/systemd-jobs/roots"))
}

impl Root {
    /// The directory nspawn boots.
    pub fn dir(&self) -> PathBuf {
        match self {
            Root::Host => PathBuf::from("/"),
            Root::Debian(suite) => roots_cache().join(suite),
        }
    }

    /// The version of the systemd in this root, from its `libsystemd-shared-NNN.so`.
    pub fn systemd_version(&self) -> Result<u32, String> {
        super::systemd_version_in(&self.dir()).map_err(|e| match self {
            Root::Host => e,
            Root::Debian(suite) => format!(
                "the Debian {suite} root is missing or incomplete at {} (`bash .ci/test` \
                 builds it): {e}",
                self.dir().display()
            ),
        })
    }
}

impl std::fmt::Display for Root {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Root::Host => f.write_str("this machine's root"),
            Root::Debian(suite) => write!(f, "Debian {suite}"),
        }
    }
}

/// Boots a container from a [`Root`], or explains why it cannot and returns (a failure
/// under CI).
#[macro_export]
macro_rules! container {
    ($root:expr) => {
        match common::container::Container::boot($root) {
            Ok(c) => c,
            Err(why) => {
                common::missing_prerequisite(&why);
                return;
            }
        }
    };
}

/// Runs each of the test functions (taking a [`Root`]) on every root, as tests of their own:
/// `host::NAME` (this machine's systemd), `trixie::NAME` and `sid::NAME`.
#[macro_export]
macro_rules! on_every_root {
    ($($test:ident),* $(,)?) => {
        mod host {
            $(#[test] fn $test() { super::$test($crate::common::container::Root::Host) })*
        }
        mod trixie {
            $(#[test] fn $test() { super::$test($crate::common::container::Root::Debian("trixie")) })*
        }
        mod sid {
            $(#[test] fn $test() { super::$test($crate::common::container::Root::Debian("sid")) })*
        }
    };
}

/// A running container with systemd as PID 1.
pub struct Container {
    cgroups: Vec<PathBuf>,
    kill_file: PathBuf,
    child: Child,
    pid1: u32,
    name: String,
    log: PathBuf,
    /// The version of its systemd.
    pub version: u32,
}

impl Container {
    /// Boots a container from `root` and waits until its system manager is up (at most
    /// 60 s).
    pub fn boot(root: Root) -> Result<Container, String> {
        super::check_prerequisites()?;
        if !Path::new(NSPAWN).exists() {
            return Err(format!("{NSPAWN} is missing (install systemd-container)"));
        }
        let version = root.systemd_version()?;
        eprintln!("container: systemd {version} from {root}");
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("sj-sys-{}-{n}", std::process::id());
        let (cgroups, unified) = super::cgroup_dirs(&name)?;
        for c in &cgroups {
            fs::create_dir_all(c).map_err(|e| format!("cannot create cgroup {c:?}: {e}"))?;
        }
        let examples = super::example_binary()
            .parent()
            .map(Path::to_path_buf)
            .ok_or("no examples directory")?;
        let log = std::env::temp_dir().join(format!("{name}.log"));
        let join_cgroups: String = cgroups
            .iter()
            .map(|c| format!("echo $$ > {}/cgroup.procs && ", c.display()))
            .collect();
        let script = format!(
            "{join_cgroups}exec {NSPAWN} --register=no --keep-unit -q --volatile=yes -D {} \
             --machine={name} --bind-ro={}:/opt/t --boot -- systemd.firstboot=off \
             systemd.unit=basic.target",
            root.dir().display(),
            examples.display()
        );
        let out = fs::File::create(&log).map_err(|e| e.to_string())?;
        let mut command = Command::new("sh");
        if version >= 258 {
            command.env("SYSTEMD_NSPAWN_UNIFIED_HIERARCHY", "1");
        }
        let child = command
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(out.try_clone().map_err(|e| e.to_string())?)
            .stderr(out)
            .spawn()
            .map_err(|e| format!("cannot spawn systemd-nspawn: {e}"))?;
        let mut container = Container {
            cgroups,
            kill_file: unified.join("cgroup.kill"),
            pid1: 0,
            child,
            name,
            log,
            version,
        };
        container.wait_until_running(Duration::from_secs(60))?;
        Ok(container)
    }

    fn wait_until_running(&mut self, limit: Duration) -> Result<(), String> {
        let start = Instant::now();
        let mut last = String::from("no PID 1 yet");
        while start.elapsed() < limit {
            if let Ok(Some(_)) = self.child.try_wait() {
                let log = fs::read_to_string(&self.log).unwrap_or_default();
                return Err(format!("systemd-nspawn exited: {log}"));
            }
            if self.pid1 == 0 {
                self.pid1 = container_init(&self.cgroups[self.cgroups.len() - 1]).unwrap_or(0);
            }
            if self.pid1 != 0 {
                match super::finished_starting(self.raw_connection()) {
                    Ok(()) => return Ok(()),
                    Err(e) => last = e,
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!(
            "the container's system manager did not come up in {limit:?}: {last}"
        ))
    }

    /// The container's systemd, as the host sees its pid.
    pub fn pid1(&self) -> u32 {
        self.pid1
    }

    /// The container's system bus, reached from the host.
    pub fn bus_address(&self) -> String {
        format!(
            "unix:path=/proc/{}/root/run/dbus/system_bus_socket",
            self.pid1
        )
    }

    /// A plain connection to the container's system bus, from the host.
    pub fn raw_connection(&self) -> Result<Connection, String> {
        Connection::new_address(&self.bus_address()).map_err(|e| e.to_string())
    }

    /// A handle on the container's system manager through its bus, from the host.
    pub fn manager(&self) -> Manager {
        Manager::connect(Bus::Address(self.bus_address())).expect("connect to the container")
    }

    /// Installs runtime units in the container (`/run/systemd/system`) and reloads.
    pub fn install(&self, units: &[(&str, &str)]) {
        let dir = PathBuf::from(format!("/proc/{}/root/run/systemd/system", self.pid1));
        fs::create_dir_all(&dir).unwrap();
        for (name, contents) in units {
            fs::write(dir.join(name), contents).unwrap();
        }
        let (code, _, err) = self.run(None, &["systemctl", "daemon-reload"]);
        assert_eq!(code, 0, "daemon-reload: {err}");
    }

    /// `nsenter` into the container's namespaces, then, for `user` (a uid), `setpriv` to it:
    /// the command to append the program to.
    fn inside(&self, user: Option<u32>) -> Command {
        let mut command = Command::new("nsenter");
        command.args([
            "-t",
            &self.pid1.to_string(),
            "-m",
            "-u",
            "-i",
            "-n",
            "-p",
            "--",
        ]);
        if let Some(uid) = user {
            let id = uid.to_string();
            command.args([
                "setpriv",
                "--reuid",
                &id,
                "--regid",
                &id,
                "--clear-groups",
                "--",
            ]);
        }
        command
            .env_clear()
            .env("PATH", "/usr/bin:/bin:/usr/sbin:/sbin");
        command
    }

    /// Runs `args` inside the container, as root or as `user` (a uid), and returns its exit
    /// status, stdout and stderr.
    pub fn run(&self, user: Option<u32>, args: &[&str]) -> (i32, String, String) {
        let mut command = self.inside(user);
        let out = command.args(args).output().expect("run nsenter");
        super::exit_and_output(&out)
    }

    /// Runs the example inside the container.
    pub fn run_example(&self, user: Option<u32>, args: &[&str]) -> (i32, String, String) {
        let mut all = vec!["/opt/t/restart_blocking"];
        all.extend_from_slice(args);
        self.run(user, &all)
    }

    /// A unit's property, read inside the container.
    pub fn unit_property(&self, unit: &str, name: &str) -> String {
        let (_, out, _) = self.run(None, &["systemctl", "show", "-P", name, unit]);
        out.trim().to_owned()
    }
}

/// The process of the cgroup tree at `cgroup` that is PID 1 in its own pid namespace.
fn container_init(cgroup: &Path) -> Option<u32> {
    let mut pids = Vec::new();
    collect_pids(cgroup, &mut pids);
    pids.into_iter().find(|pid| {
        fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("NSpid:"))
                .and_then(|l| l.split_whitespace().last())
                == Some("1")
        })
    })
}

fn collect_pids(dir: &Path, pids: &mut Vec<u32>) {
    if let Ok(procs) = fs::read_to_string(dir.join("cgroup.procs")) {
        pids.extend(procs.lines().filter_map(|l| l.parse::<u32>().ok()));
    }
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                collect_pids(&e.path(), pids);
            }
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = fs::write(&self.kill_file, "1");
        let _ = self.child.kill();
        let _ = self.child.wait();
        let deadline = Instant::now() + Duration::from_secs(10);
        for cg in &self.cgroups {
            while super::remove_tree(cg).is_err() && Instant::now() < deadline {
                let _ = fs::write(&self.kill_file, "1");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = fs::remove_dir(format!("/run/systemd/nspawn/propagate/{}", self.name));
        let _ = fs::remove_file(&self.log);
    }
}

/// A shell command (for [`Container::on_terminal`]) that starts `pkttyagent` for itself,
/// waits until the agent is registered, then runs the example with `example_args`.
pub fn with_agent(example_args: &str) -> String {
    format!(
        "f=$(mktemp -u) && mkfifo $f && (pkttyagent --process $$ --notify-fd 3 3>$f &) && \
         cat $f >/dev/null && exec /opt/t/restart_blocking {example_args}"
    )
}

/// What a command run on a terminal inside the container did.
pub struct OnTerminal {
    /// Its exit status (-1 if it was killed at the limit).
    pub code: i32,
    /// Everything the terminal showed.
    pub screen: String,
    /// How long it ran.
    pub took: Duration,
}

impl Container {
    /// A polkit rule that lets the user `name` manage units without asking (polkit reads new
    /// rules files at once).
    pub fn let_manage_units(&self, name: &str) {
        self.manage_units_rule(name, "YES");
    }

    /// A polkit rule (file `rules.d/10-NAME-RESULT.rules`) answering `result` (`YES`,
    /// `AUTH_SELF`, ...) when the user `name` asks to manage units.
    fn manage_units_rule(&self, name: &str, result: &str) {
        self.polkit_rule(name, "manage-units", result);
    }

    /// A polkit rule (file `rules.d/10-NAME-ACTION-RESULT.rules`) answering `result`
    /// (`YES`, `AUTH_SELF`, ...) when the user `name` asks for systemd's polkit action
    /// `action` (`manage-units`, `manage-unit-files`, `reload-daemon`). polkit reads new
    /// rules files at once.
    pub fn polkit_rule(&self, name: &str, action: &str, result: &str) {
        let rules = format!("/proc/{}/root/etc/polkit-1/rules.d", self.pid1);
        fs::create_dir_all(&rules).unwrap();
        fs::write(
            format!("{rules}/10-{name}-{action}-{result}.rules"),
            format!(
                "polkit.addRule(function(action, subject) {{\n  if (action.id == \
                 \"org.freedesktop.systemd1.{action}\" && subject.user == \"{name}\") {{\n    \
                 return polkit.Result.{result};\n  }}\n}});\n"
            ),
        )
        .unwrap();
    }

    /// Adds a user `name` (uid = gid = `uid`) with `password`, and a polkit rule that lets
    /// them manage units after typing their own password (`auth_self`). PAM's configuration
    /// is copied from the host: the container's `/etc` starts empty.
    pub fn add_polkit_user(&self, name: &str, uid: u32, password: &str) {
        let root = format!("/proc/{}/root", self.pid1);
        let st = Command::new("cp")
            .args(["-a", "/etc/pam.d", &format!("{root}/etc/")])
            .status()
            .unwrap();
        assert!(st.success(), "copying /etc/pam.d");
        self.manage_units_rule(name, "AUTH_SELF");
        let script = format!(
            "echo '{name}:x:{uid}:{uid}::/tmp:/bin/sh' >> /etc/passwd && \
             echo '{name}:x:{uid}:' >> /etc/group && echo '{name}:!:19000::::::' >> /etc/shadow && \
             echo '{name}:{password}' | chpasswd"
        );
        let (code, _, err) = self.run(None, &["sh", "-c", &script]);
        assert_eq!(code, 0, "adding {name}: {err}");
    }

    /// Runs `script` with `sh -c` as `uid` on a pseudo-terminal inside the container
    /// (`script`), types `answer` at every `Password:` prompt, and kills it after `limit`.
    pub fn on_terminal(
        &self,
        uid: u32,
        script: &str,
        answer: Option<&str>,
        limit: Duration,
    ) -> OnTerminal {
        use std::io::{Read, Write};
        use std::sync::{Arc, Mutex};
        let mut child = self
            .inside(Some(uid))
            .args(["script", "-qfec", &format!("sh -c '{script}'"), "/dev/null"])
            .env("TERM", "dumb")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run script in the container");
        let screen = Arc::new(Mutex::new(String::new()));
        let reader = {
            let screen = Arc::clone(&screen);
            let mut out = child.stdout.take().unwrap();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = out.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    screen
                        .lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            })
        };
        // Kept open until the end: the terminal must not see end-of-input.
        let mut stdin = child.stdin.take().unwrap();
        let mut answered = 0;
        let mut prompt_seen: Option<Instant> = None;
        let started = Instant::now();
        let code = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status.code().unwrap_or(-1);
            }
            if started.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                break -1;
            }
            // Every prompt is answered (PAM asks again after a wrong password), once it has
            // shown for a moment: pkttyagent prints the prompt before it turns echo off with
            // TCSAFLUSH, which throws away anything typed in between.
            let prompts = screen.lock().unwrap().matches("Password:").count();
            if prompts > answered {
                let since = *prompt_seen.get_or_insert_with(Instant::now);
                if let Some(answer) = answer
                    && since.elapsed() > Duration::from_millis(300)
                {
                    stdin.write_all(format!("{answer}\n").as_bytes()).unwrap();
                    answered = prompts;
                    prompt_seen = None;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        drop(stdin);
        let took = started.elapsed();
        let _ = reader.join();
        let screen = screen.lock().unwrap().clone();
        OnTerminal { code, screen, took }
    }
}

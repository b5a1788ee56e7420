//! A fleet for Ansible: containers booted from the suite's roots (systemd 252, 257, the
//! newest), each serving ssh on its own port of 127.0.0.1 (the containers share the host's
//! network), an inventory naming them, and `ansible-playbook` run against it with the
//! `systemd_job` module (built by `.ci/ansible-module`, linked against the machine's
//! libdbus) in its library path. Every task result comes back through the suite's callback
//! (`tests/ansible/callback_plugins/results_jsonl.py`) as JSON.
//!
//! An sshd of the test's own runs in each container as a transient unit: its host key and
//! the client key are made here, its configuration and the `sshd` privilege-separation
//! user are written into the container's empty `/etc` and `/run`, and root's locked password
//! is replaced by `*` (no password, not locked: sshd without PAM refuses locked accounts).
//! Dropping the fleet drops its containers.

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::container::{Container, Root};

/// One managed host: a container reached over ssh.
pub struct Host {
    /// Its inventory name (`h252`, `h257`, ...).
    pub name: String,
    /// The container.
    pub container: Container,
    /// Its sshd's port on 127.0.0.1.
    pub port: u16,
}

/// The hosts, their inventory and the Ansible configuration that reaches them.
pub struct Fleet {
    /// The hosts, in inventory order.
    pub hosts: Vec<Host>,
    dir: PathBuf,
}

/// One task's result on one host, as the callback wrote it.
#[derive(Debug, Clone)]
pub struct TaskResult {
    /// The inventory name.
    pub host: String,
    /// The task's name.
    pub task: String,
    /// `ok`, `failed`, `skipped` or `unreachable`.
    pub status: String,
    /// The module's result, as Ansible returned it.
    pub result: Value,
    /// From the task's start (on the controller, for all hosts) to this host's result.
    pub seconds: f64,
}

impl TaskResult {
    /// Whether the task failed (whatever `ignore_errors` made of it).
    pub fn failed(&self) -> bool {
        self.status == "failed" || self.result["failed"] == Value::Bool(true)
    }

    /// Whether the task reported a change.
    pub fn changed(&self) -> bool {
        self.result["changed"] == Value::Bool(true)
    }

    /// `msg`, or "".
    pub fn msg(&self) -> &str {
        self.result["msg"].as_str().unwrap_or("")
    }

    /// The first unit's entry of a `systemd_job` result.
    pub fn unit(&self) -> &Value {
        &self.result["units"][0]
    }
}

/// What one `ansible-playbook` run did.
pub struct Play {
    /// Its exit status.
    pub code: i32,
    /// What it printed (the default callback's screen output), and its stderr.
    pub output: String,
    /// Every task result, in the order they arrived.
    pub results: Vec<TaskResult>,
    /// Wall time of the whole run.
    pub took: Duration,
}

impl Play {
    /// The result of the task named `task` on `host`.
    pub fn result(&self, host: &str, task: &str) -> &TaskResult {
        self.results
            .iter()
            .find(|r| r.host == host && r.task == task)
            .unwrap_or_else(|| {
                panic!(
                    "no result of task {task:?} on {host}; the play said:\n{}",
                    self.output
                )
            })
    }
}

/// The `systemd_job` module, built once per test process by `.ci/ansible-module` into
/// `target/ansible/library`.
pub fn module_library() -> Result<PathBuf, String> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let root = Path::new(env!("CARGO_MANIFEST_DIR"));
            let out = Command::new("bash")
                .arg(root.join(".ci/ansible-module"))
                .current_dir(root)
                .output()
                .map_err(|e| format!("cannot run .ci/ansible-module: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "building the module failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
            let path = root.join(String::from_utf8_lossy(&out.stdout).trim());
            Ok(path.parent().unwrap().to_path_buf())
        })
        .clone()
}

/// The inventory name of a host booted from `root`, after its systemd's version.
fn host_name(container: &Container) -> String {
    format!("h{}", container.version)
}

impl Fleet {
    /// Boots a host from each root, starts its sshd, and writes the inventory and Ansible's
    /// configuration; fails (with the reason) when a prerequisite is missing.
    pub fn boot(roots: &[Root]) -> Result<Fleet, String> {
        for tool in [
            "/usr/bin/ansible-playbook",
            "/usr/bin/ssh",
            "/usr/bin/ssh-keygen",
        ] {
            if !Path::new(tool).exists() {
                return Err(format!(
                    "{tool} is missing (`bash .ci/test` installs ansible-core and openssh-client)"
                ));
            }
        }
        module_library()?;
        let dir = std::env::temp_dir().join(format!(
            "sj-fleet-{}-{}",
            std::process::id(),
            unique_suffix()
        ));
        fs::create_dir_all(dir.join("cp")).map_err(|e| e.to_string())?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).map_err(|e| e.to_string())?;
        for key in ["host_key", "client_key"] {
            keygen(&dir.join(key))?;
        }
        let mut hosts = Vec::new();
        let mut known_hosts = String::new();
        for root in roots {
            let container = Container::boot(*root)?;
            let port = free_port()?;
            start_sshd(&container, &dir, port)?;
            let host_key =
                fs::read_to_string(dir.join("host_key.pub")).map_err(|e| e.to_string())?;
            known_hosts.push_str(&format!("[127.0.0.1]:{port} {host_key}"));
            hosts.push(Host {
                name: host_name(&container),
                container,
                port,
            });
        }
        let d = dir.display();
        fs::write(dir.join("known_hosts"), known_hosts).map_err(|e| e.to_string())?;
        let mut inventory = String::from("[fleet]\n");
        for h in &hosts {
            inventory.push_str(&format!(
                "{} ansible_host=127.0.0.1 ansible_port={}\n",
                h.name, h.port
            ));
        }
        inventory.push_str(&format!(
            "[fleet:vars]\nansible_user=root\nansible_ssh_private_key_file={d}/client_key\n\
             ansible_python_interpreter=/usr/bin/python3\n"
        ));
        fs::write(dir.join("inventory.ini"), inventory).map_err(|e| e.to_string())?;
        let plugins = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ansible/callback_plugins");
        fs::write(
            dir.join("ansible.cfg"),
            format!(
                "[defaults]\ninventory = {d}/inventory.ini\nlibrary = {}\n\
                 callback_plugins = {}\ncallbacks_enabled = results_jsonl\n\
                 remote_tmp = /tmp/.ansible-tmp\nlocal_tmp = {d}/local-tmp\nforks = 10\n\
                 retry_files_enabled = False\n\
                 [ssh_connection]\ncontrol_path_dir = {d}/cp\n\
                 ssh_args = -o ControlMaster=auto -o ControlPersist=60s \
                 -o UserKnownHostsFile={d}/known_hosts -o StrictHostKeyChecking=yes\n",
                module_library()?.display(),
                plugins.display()
            ),
        )
        .map_err(|e| e.to_string())?;
        Ok(Fleet { hosts, dir })
    }

    /// The host booted with systemd `version`.
    pub fn host(&self, name: &str) -> &Host {
        self.hosts.iter().find(|h| h.name == name).unwrap()
    }

    /// Installs runtime units on every host and reloads.
    pub fn install(&self, units: &[(&str, &str)]) {
        for h in &self.hosts {
            h.container.install(units);
        }
    }

    /// Runs `command` on `host` over ssh as Ansible reaches it (its key, its known hosts, a
    /// control master kept in the fleet's directory), with `input` on its stdin; returns
    /// its exit status.
    pub fn ssh(&self, host: &Host, command: &str, input: &[u8]) -> i32 {
        use std::io::Write;
        let d = &self.dir;
        let mut child = Command::new("ssh")
            .args(["-p", &host.port.to_string(), "-i"])
            .arg(d.join("client_key"))
            .arg("-o")
            .arg(format!(
                "UserKnownHostsFile={}",
                d.join("known_hosts").display()
            ))
            .args([
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "ControlMaster=auto",
                "-o",
                "ControlPersist=60s",
                "-o",
            ])
            .arg(format!("ControlPath={}/cp/bench-%p", d.display()))
            .args(["root@127.0.0.1", command])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("run ssh");
        child.stdin.take().unwrap().write_all(input).unwrap();
        child.wait().unwrap().code().unwrap_or(-1)
    }

    /// Runs `playbook` (YAML) with `extra` arguments and collects every result.
    pub fn play(&self, playbook: &str, extra: &[&str]) -> Play {
        self.play_with_env(playbook, extra, &[])
    }

    /// [`play`](Fleet::play) with more environment for `ansible-playbook`.
    pub fn play_with_env(&self, playbook: &str, extra: &[&str], env: &[(&str, &str)]) -> Play {
        let n = unique_suffix();
        let book = self.dir.join(format!("play-{n}.yml"));
        let results = self.dir.join(format!("results-{n}.jsonl"));
        fs::write(&book, playbook).unwrap();
        fs::write(&results, "").unwrap();
        let started = Instant::now();
        let out = Command::new("ansible-playbook")
            .arg(&book)
            .args(extra)
            .env("ANSIBLE_CONFIG", self.dir.join("ansible.cfg"))
            .env("RESULTS_JSONL", &results)
            .env("ANSIBLE_NOCOLOR", "1")
            .env("ANSIBLE_FORCE_COLOR", "0")
            .env("HOME", &self.dir)
            .envs(env.iter().copied())
            .current_dir(&self.dir)
            .output()
            .expect("run ansible-playbook");
        let took = started.elapsed();
        let (code, stdout, stderr) = super::exit_and_output(&out);
        let results = fs::read_to_string(&results)
            .unwrap()
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).expect("a result line");
                TaskResult {
                    host: v["host"].as_str().unwrap_or("").to_owned(),
                    task: v["task"].as_str().unwrap_or("").to_owned(),
                    status: v["status"].as_str().unwrap_or("").to_owned(),
                    seconds: v["seconds_since_task_start"].as_f64().unwrap_or(0.0),
                    result: v["result"].clone(),
                }
            })
            .collect();
        Play {
            code,
            output: format!("{stdout}{stderr}"),
            results,
            took,
        }
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        // The ssh control masters exit when their containers' sshd goes; the directory goes
        // now.
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn unique_suffix() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    N.fetch_add(1, Ordering::SeqCst)
}

fn keygen(path: &Path) -> Result<(), String> {
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()
        .map_err(|e| e.to_string())?;
    st.success()
        .then_some(())
        .ok_or_else(|| "ssh-keygen failed".to_owned())
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

/// Writes the sshd's configuration and keys into the container and starts it as a
/// transient unit, then waits until it accepts connections.
fn start_sshd(c: &Container, dir: &Path, port: u16) -> Result<(), String> {
    let root = PathBuf::from(format!("/proc/{}/root", c.pid1()));
    let ssh = root.join("run/sj-ssh");
    fs::create_dir_all(&ssh).map_err(|e| e.to_string())?;
    fs::copy(dir.join("host_key"), ssh.join("host_key")).map_err(|e| e.to_string())?;
    fs::copy(dir.join("client_key.pub"), ssh.join("authorized_keys")).map_err(|e| e.to_string())?;
    fs::write(
        ssh.join("sshd_config"),
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey /run/sj-ssh/host_key\n\
             AuthorizedKeysFile /run/sj-ssh/authorized_keys\nPermitRootLogin prohibit-password\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
             StrictModes no\nPidFile /run/sj-ssh/sshd.pid\nSubsystem sftp internal-sftp\n\
             MaxStartups 100\nMaxSessions 100\n"
        ),
    )
    .map_err(|e| e.to_string())?;
    let script = "grep -q '^sshd:' /etc/passwd || \
                  echo 'sshd:x:990:65534::/run/sshd:/usr/sbin/nologin' >> /etc/passwd; \
                  sed -i 's/^root:[^:]*:/root:*:/' /etc/shadow && mkdir -p -m 755 /run/sshd && \
                  systemd-run --quiet --unit sj-sshd /usr/sbin/sshd -D -e -f /run/sj-ssh/sshd_config";
    let (code, _, err) = c.run(None, &["sh", "-c", script]);
    if code != 0 {
        return Err(format!("starting sshd in the container: {err}"));
    }
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if started.elapsed() > Duration::from_secs(10) {
            let (_, status, _) = c.run(None, &["systemctl", "status", "sj-sshd"]);
            return Err(format!(
                "the container's sshd does not listen on {port}: {status}"
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

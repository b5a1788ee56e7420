//! Remote hosts: a systemd manager on another machine, reached over ssh as `systemctl -H`
//! does. ssh runs `systemd-stdio-bridge` there, which relays D-Bus between its standard input
//! and output and the remote bus; libdbus speaks to it through a `unixexec:` address. Every
//! feature of a bus connection works the same over it.

use std::fmt;
use std::io::Read;
use std::process::{Command, Stdio};
use std::str::FromStr;
use std::time::Duration;

use crate::deadline::Deadline;
use crate::error::{Error, RemoteProblem, Result};
use crate::ffi::escape_address_value;

/// The program that relays D-Bus on the remote side.
const BRIDGE: &str = "systemd-stdio-bridge";

/// A systemd manager on another machine, reached over ssh (see [`Bus::Remote`](crate::Bus::Remote)).
///
/// ```
/// use systemd_jobs::Remote;
///
/// let remote: Remote = "deploy@db1.example.com:2222".parse()?;
/// assert_eq!(remote.user.as_deref(), Some("deploy"));
/// assert_eq!(remote.port, Some(2222));
/// let remote = remote.user_manager(true);
/// # Ok::<(), systemd_jobs::Error>(())
/// ```
///
/// ssh runs with `-x -T` and `-o BatchMode=yes`: it never asks for a password or a host key
/// confirmation on the terminal, so keys and known hosts must be set up (or given with
/// [`ssh_arg`](Remote::ssh_arg)). Connecting is bounded by the connect timeout like any other.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Remote {
    /// The user to log in as (ssh's default if `None`).
    pub user: Option<String>,
    /// The host name or address.
    pub host: String,
    /// The ssh port (ssh's default if `None`).
    pub port: Option<u16>,
    /// The remote user manager (`systemd-stdio-bridge --user`) instead of the system manager.
    pub user_manager: bool,
    /// A bus address on the remote machine for the bridge to use (`--bus-path=`), instead of
    /// the system or user bus.
    pub bus_path: Option<String>,
    /// More arguments for ssh, placed before the host (e.g. `-i KEY`, `-F CONFIG`, `-o ...`).
    pub ssh_args: Vec<String>,
}

impl Remote {
    /// The system manager on `host`, with ssh's default user and port.
    pub fn new(host: impl Into<String>) -> Self {
        Remote {
            user: None,
            host: host.into(),
            port: None,
            user_manager: false,
            bus_path: None,
            ssh_args: Vec::new(),
        }
    }

    /// The remote user manager instead of the system manager.
    pub fn user_manager(mut self, user: bool) -> Self {
        self.user_manager = user;
        self
    }

    /// A bus address on the remote machine for the bridge (`--bus-path=`).
    pub fn bus_path(mut self, address: impl Into<String>) -> Self {
        self.bus_path = Some(address.into());
        self
    }

    /// One more argument for ssh, before the host.
    pub fn ssh_arg(mut self, arg: impl Into<String>) -> Self {
        self.ssh_args.push(arg.into());
        self
    }

    /// The ssh command line, without the program: options, `--`, the destination and the
    /// remote command.
    pub(crate) fn ssh_argv(&self, remote_command: String) -> Vec<String> {
        let mut argv = vec!["-xT".to_owned(), "-oBatchMode=yes".to_owned()];
        if let Some(port) = self.port {
            argv.extend(["-p".to_owned(), port.to_string()]);
        }
        argv.extend(self.ssh_args.iter().cloned());
        argv.push("--".to_owned());
        argv.push(match &self.user {
            Some(user) => format!("{user}@{}", self.host),
            None => self.host.clone(),
        });
        argv.push(remote_command);
        argv
    }

    /// The bridge's command line on the remote side, for the remote login shell.
    ///
    /// For the user manager the user bus's address is given explicitly, as the login session
    /// there defines it (`DBUS_SESSION_BUS_ADDRESS`, else `$XDG_RUNTIME_DIR/bus`, else
    /// `/run/user/UID/bus`): systemd 252's bridge accepts `--user` but still connects to the
    /// system bus.
    fn bridge_command(&self) -> String {
        match (&self.bus_path, self.user_manager) {
            (Some(path), _) => format!("{BRIDGE} {}", shell_quote(&format!("--bus-path={path}"))),
            (None, true) => format!(
                "{BRIDGE} --bus-path=\"${{DBUS_SESSION_BUS_ADDRESS:-unix:path=${{XDG_RUNTIME_DIR:-/run/user/$(id -u)}}/bus}}\""
            ),
            (None, false) => BRIDGE.to_owned(),
        }
    }

    /// The `unixexec:` D-Bus address that runs ssh and the bridge, escaped as D-Bus
    /// addresses require.
    pub fn address(&self) -> String {
        let mut address = format!("unixexec:path={}", escape_address_value(&ssh_program()));
        for (i, arg) in self.ssh_argv(self.bridge_command()).iter().enumerate() {
            address.push_str(&format!(",argv{}={}", i + 1, escape_address_value(arg)));
        }
        address
    }

    /// After connecting failed with the peer gone: runs ssh once more, with the bridge and
    /// closed input, to tell which part failed. `None` if everything works now.
    pub(crate) fn diagnose(&self, deadline: &Deadline) -> Option<RemoteProblem> {
        // The bridge logs to the journal by default; its reason is wanted on stderr here.
        let script = format!(
            "command -v {BRIDGE} >/dev/null || exit 127; SYSTEMD_LOG_TARGET=console exec {} </dev/null",
            self.bridge_command()
        );
        let mut child = Command::new(ssh_program())
            .args(self.ssh_argv(script))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .ok()?;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if deadline.expired() => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return None;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Err(_) => return None,
            }
        };
        let mut said = String::new();
        if let Some(mut stderr) = child.stderr.take() {
            let _ = stderr.read_to_string(&mut said);
        }
        let said = said.trim().lines().last().unwrap_or("").to_owned();
        log::debug!("ssh diagnosis: {status}, {said:?}");
        match status.code() {
            Some(0) => None,
            Some(255) | None => Some(RemoteProblem::Ssh(said)),
            Some(127) => Some(RemoteProblem::NoBridge),
            Some(_) => Some(RemoteProblem::NoBus(said)),
        }
    }
}

impl FromStr for Remote {
    type Err = Error;

    /// Parses `[USER@]HOST[:PORT]` as `systemctl -H` does; an IPv6 address with a port goes
    /// in brackets (`[::1]:2222`).
    fn from_str(spec: &str) -> Result<Self> {
        let bad = |why: &str| Error::BadRemote {
            spec: spec.to_owned(),
            why: why.to_owned(),
        };
        let (user, rest) = match spec.rsplit_once('@') {
            Some((user, rest)) if !user.is_empty() => (Some(user.to_owned()), rest),
            Some(_) => return Err(bad("empty user name")),
            None => (None, spec),
        };
        let (host, port) = if let Some(bracketed) = rest.strip_prefix('[') {
            let (host, after) = bracketed
                .split_once(']')
                .ok_or_else(|| bad("unclosed '['"))?;
            match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None if after.is_empty() => (host, None),
                None => return Err(bad("unexpected text after ']'")),
            }
        } else if rest.matches(':').count() == 1 {
            let (host, port) = rest.split_once(':').expect("one colon");
            (host, Some(port))
        } else {
            (rest, None)
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        if !ssh_accepts(host) {
            return Err(bad("not a host name ssh accepts"));
        }
        if let Some(user) = &user
            && !ssh_accepts(user)
        {
            return Err(bad("not a user name ssh accepts"));
        }
        let port = port
            .map(|p| p.parse::<u16>().ok().filter(|&p| p > 0))
            .map(|p| p.ok_or_else(|| bad("the port is not a number from 1 to 65535")))
            .transpose()?;
        Ok(Remote {
            port,
            user,
            ..Remote::new(host)
        })
    }
}

impl fmt::Display for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scope = if self.user_manager { "user" } else { "system" };
        write!(f, "the {scope} manager on ")?;
        if let Some(user) = &self.user {
            write!(f, "{user}@")?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]", self.host)?;
        } else {
            f.write_str(&self.host)?;
        }
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        f.write_str(" over ssh")
    }
}

/// Whether ssh takes `name` as a host or user name on its command line: not starting with
/// `-` (it would be an option), and without whitespace, control characters or the shell
/// metacharacters that ssh refuses there (``'`"$\;&<>|(){},``; `tests/remote_specs.rs` checks
/// this against `ssh -G`).
fn ssh_accepts(name: &str) -> bool {
    !name.starts_with('-')
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "'`\"$\\;&<>|(){},".contains(c))
}

/// `ssh` as found on `PATH` (libdbus runs the program of a `unixexec:` address as given).
pub(crate) fn ssh_program() -> String {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join("ssh"))
        .find(|p| p.is_file())
        .map_or_else(|| "/usr/bin/ssh".to_owned(), |p| p.display().to_string())
}

/// Quotes a word for a POSIX shell.
pub(crate) fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_as_systemctl_s_host_argument() {
        let r: Remote = "host".parse().unwrap();
        assert_eq!((r.user, r.host.as_str(), r.port), (None, "host", None));
        let r: Remote = "me@host.example:2222".parse().unwrap();
        assert_eq!(r.user.as_deref(), Some("me"));
        assert_eq!((r.host.as_str(), r.port), ("host.example", Some(2222)));
        let r: Remote = "[::1]:22".parse().unwrap();
        assert_eq!((r.host.as_str(), r.port), ("::1", Some(22)));
        let r: Remote = "fe80::1".parse().unwrap();
        assert_eq!((r.host.as_str(), r.port), ("fe80::1", None));
        for bad in [
            "",
            "@host",
            "host:",
            "host:0",
            "host:70000",
            "host:x",
            "[::1",
            "-oProxyCommand=x",
            "a b",
            "a;b",
            "$(id)",
            "x,y",
            "-me@host",
            "me'@host",
        ] {
            assert!(bad.parse::<Remote>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_address_escapes_every_value() {
        let r = Remote::new("10.0.0.1")
            .user_manager(true)
            .ssh_arg("-oUserKnownHostsFile=/tmp/k h");
        let a = r.address();
        assert!(a.starts_with("unixexec:path="), "{a}");
        assert!(a.contains(",argv1=-xT,argv2=-oBatchMode%3dyes,"), "{a}");
        assert!(a.contains("argv3=-oUserKnownHostsFile%3d/tmp/k%20h"), "{a}");
        assert!(
            a.ends_with(
                ",argv4=--,argv5=10.0.0.1,argv6=systemd-stdio-bridge%20--bus-path%3d%22%24%7bDBUS_SESSION_BUS_ADDRESS%3a-unix%3apath%3d%24%7bXDG_RUNTIME_DIR%3a-/run/user/%24%28id%20-u%29%7d/bus%7d%22"
            ),
            "{a}"
        );
        let r = Remote::new("h").bus_path("unix:path=/run/x y/bus");
        assert!(
            r.address().ends_with(
                "systemd-stdio-bridge%20%27--bus-path%3dunix%3apath%3d/run/x%20y/bus%27"
            ),
            "{}",
            r.address()
        );
    }
}

//! One interface over the two real managers the unit-file tests use: the sandbox's user
//! manager and a container's system manager. Each says where unit files go, where the
//! manager writes its symlinks, how to run that manager's own `systemctl`, and snapshots and
//! restores the symlinks, so the crate and `systemctl` can be compared on the same unit files
//! from the same starting point.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use systemd_jobs::Manager;

use super::Sandbox;
use super::container::Container;

/// The symlinks in a manager's configuration directories: path (as the manager sees it) →
/// where it points.
pub type Links = BTreeMap<String, String>;

/// A real manager whose unit files a test changes.
pub trait Place {
    /// A handle on the manager, from this machine.
    fn manager(&self) -> Manager;
    /// Writes a unit file where units are installed for the tests (below the configuration
    /// directory in the search path), as the manager sees it: `DIR/NAME`.
    fn write_unit(&self, name: &str, contents: &str) -> String;
    /// `daemon-reload`, by the harness.
    fn reload(&self);
    /// Runs the manager's own `systemctl` (with `--user` for a user manager).
    fn systemctl(&self, args: &[&str]) -> (i32, String, String);
    /// This machine's path of the manager's `/`.
    fn root(&self) -> PathBuf;
    /// The directories (as the manager sees them) where unit-file operations make links.
    fn link_dirs(&self) -> Vec<String>;
    /// The target units are enabled into.
    fn target(&self) -> &'static str;
    /// A directory outside the unit search path, for `link`.
    fn outside_dir(&self) -> String;
    /// What the assertion messages call it.
    fn name(&self) -> String;

    /// The host path of `path` as the manager sees it.
    fn host_path(&self, path: &str) -> PathBuf {
        self.root().join(path.trim_start_matches('/'))
    }

    /// Every symlink in [`link_dirs`](Place::link_dirs).
    fn links(&self) -> Links {
        let mut links = Links::new();
        for dir in self.link_dirs() {
            collect_links(&self.host_path(&dir), &dir, &mut links);
        }
        links
    }

    /// Makes the symlinks exactly `links` again, then reloads.
    fn restore(&self, links: &Links) {
        for (path, _) in self.links() {
            fs::remove_file(self.host_path(&path)).unwrap();
        }
        for (path, target) in links {
            let host = self.host_path(path);
            fs::create_dir_all(host.parent().unwrap()).unwrap();
            std::os::unix::fs::symlink(target, host).unwrap();
        }
        self.reload();
    }
}

fn collect_links(host: &Path, seen_as: &str, links: &mut Links) {
    let Ok(entries) = fs::read_dir(host) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let path = format!("{seen_as}/{name}");
        let Ok(kind) = e.file_type() else { continue };
        if kind.is_symlink() {
            let target = fs::read_link(e.path()).unwrap();
            links.insert(path, target.to_string_lossy().into_owned());
        } else if kind.is_dir() {
            collect_links(&e.path(), &path, links);
        }
    }
}

impl Place for Sandbox {
    fn manager(&self) -> Manager {
        Sandbox::manager(self)
    }

    fn write_unit(&self, name: &str, contents: &str) -> String {
        Sandbox::write_unit(self, name, contents);
        format!("{}/{name}", self.unit_dir().display())
    }

    fn reload(&self) {
        Sandbox::reload(self)
    }

    fn systemctl(&self, args: &[&str]) -> (i32, String, String) {
        self.systemctl_inside(args)
    }

    fn root(&self) -> PathBuf {
        PathBuf::from("/")
    }

    fn link_dirs(&self) -> Vec<String> {
        [self.config_dir(), self.unit_dir()]
            .iter()
            .map(|d| d.display().to_string())
            .collect()
    }

    fn target(&self) -> &'static str {
        "default.target"
    }

    fn outside_dir(&self) -> String {
        let dir = self.runtime_dir().join("outside");
        fs::create_dir_all(&dir).unwrap();
        dir.display().to_string()
    }

    fn name(&self) -> String {
        "user manager".to_owned()
    }
}

impl Place for Container {
    fn manager(&self) -> Manager {
        Container::manager(self)
    }

    fn write_unit(&self, name: &str, contents: &str) -> String {
        let path = format!("/run/systemd/system/{name}");
        let host = self.host_path(&path);
        fs::create_dir_all(host.parent().unwrap()).unwrap();
        fs::write(host, contents).unwrap();
        path
    }

    fn reload(&self) {
        let (code, _, err) = self.run(None, &["systemctl", "daemon-reload"]);
        assert_eq!(code, 0, "daemon-reload: {err}");
    }

    fn systemctl(&self, args: &[&str]) -> (i32, String, String) {
        let mut all = vec!["systemctl"];
        all.extend_from_slice(args);
        self.run(None, &all)
    }

    fn root(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root", self.pid1()))
    }

    fn link_dirs(&self) -> Vec<String> {
        vec!["/etc/systemd/system".into(), "/run/systemd/system".into()]
    }

    fn target(&self) -> &'static str {
        "multi-user.target"
    }

    fn outside_dir(&self) -> String {
        let dir = "/var/tmp/outside";
        fs::create_dir_all(self.host_path(dir)).unwrap();
        dir.to_owned()
    }

    fn name(&self) -> String {
        format!("system manager {}", self.version)
    }
}

/// A change as `systemctl` printed it, or as the crate reports it: (kind, path, source).
pub type Printed = (String, String, String);

/// The changes `systemctl` printed on stderr: `Created symlink A → B.` (`->` without a
/// UTF-8 locale on older versions, the paths in `'` on 257 and later) and `Removed A.`
/// (`"A"` on 252, `'A'` on 257 and later).
pub fn printed_changes(stderr: &str) -> Vec<Printed> {
    let mut changes = Vec::new();
    for line in stderr.lines() {
        if let Some(rest) = line
            .strip_prefix("Created symlink ")
            .and_then(|r| r.strip_suffix('.'))
        {
            let (path, source) = rest
                .split_once(" \u{2192} ")
                .or_else(|| rest.split_once(" -> "))
                .unwrap_or_else(|| panic!("unexpected line: {line}"));
            let unquote = |s: &str| s.trim_matches(|c| c == '"' || c == '\'').to_owned();
            changes.push(("symlink".into(), unquote(path), unquote(source)));
        } else if let Some(rest) = line
            .strip_prefix("Removed ")
            .and_then(|r| r.strip_suffix('.'))
        {
            let path = rest.trim_matches(|c| c == '"' || c == '\'');
            changes.push(("unlink".into(), path.into(), String::new()));
        }
    }
    changes
}

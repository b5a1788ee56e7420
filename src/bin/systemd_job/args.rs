//! The module's options, read from Ansible's arguments file and checked as Ansible checks a
//! module's argument spec: unknown options, wrong types and choices are refused by name.

use std::time::Duration;

use systemd_jobs::JobMode;

use crate::json::{Json, Object};

/// The task's goal for the units' running state (`state:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Started,
    Stopped,
    Restarted,
    Reloaded,
}

/// Which manager the task talks to (`scope:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    System,
    User,
}

/// The module's options, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Args {
    pub names: Vec<String>,
    pub state: Option<State>,
    pub enabled: Option<bool>,
    pub masked: Option<bool>,
    pub daemon_reload: bool,
    pub daemon_reexec: bool,
    pub scope: Scope,
    pub no_block: bool,
    pub force: bool,
    pub timeout: Duration,
    pub mode: JobMode,
    pub check_active: Duration,
    pub wait: bool,
    pub reset_failed: bool,
    pub journal_lines: usize,
    /// `_ansible_check_mode`: report what would be done, do nothing.
    pub check_mode: bool,
    /// `_ansible_diff`: return the units' states before and after.
    pub diff: bool,
    /// `_ansible_no_log`: keep the services' own output (their journal lines) out of the
    /// result.
    pub no_log: bool,
}

/// The task's deadline unless `timeout:` sets one.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(90);
/// The active check after a start unless `check_active:` sets one.
pub const DEFAULT_CHECK_ACTIVE: Duration = Duration::from_millis(500);
/// Journal lines of a failed run unless `journal_lines:` sets how many.
pub const DEFAULT_JOURNAL_LINES: usize = 10;

/// The options, with their aliases, as the error for an unknown one lists them.
const OPTIONS: &[(&str, &[&str])] = &[
    ("name", &["service", "unit"]),
    ("state", &[]),
    ("enabled", &[]),
    ("masked", &[]),
    ("daemon_reload", &["daemon-reload"]),
    ("daemon_reexec", &["daemon-reexec"]),
    ("scope", &[]),
    ("no_block", &[]),
    ("force", &[]),
    ("timeout", &[]),
    ("mode", &[]),
    ("check_active", &[]),
    ("wait", &[]),
    ("reset_failed", &[]),
    ("journal_lines", &[]),
];

/// Reads the options from the arguments file's text.
///
/// # Errors
/// A message naming what was wrong: not JSON, an unknown option, a value of the wrong type
/// or outside its choices, a name missing where the task needs one.
pub fn parse(text: &str) -> Result<Args, String> {
    let json = crate::json::parse(text)
        .map_err(|e| format!("the arguments file is not valid JSON: {e}"))?;
    let Json::Object(given) = json else {
        return Err("the arguments file does not hold a JSON object".to_owned());
    };
    let o = Options::canonical(&given)?;
    let names = match o.get("name") {
        None | Some(Json::Null) => Vec::new(),
        Some(Json::String(s)) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        Some(Json::Array(items)) => items
            .iter()
            .map(|i| match i {
                Json::String(s) => Ok(s.clone()),
                _ => Err("name: every item of the list must be a string".to_owned()),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("name: must be a string or a list of strings".to_owned()),
    };
    let state = match o.string("state")? {
        None => None,
        Some("started") => Some(State::Started),
        Some("stopped") => Some(State::Stopped),
        Some("restarted") => Some(State::Restarted),
        Some("reloaded") => Some(State::Reloaded),
        Some(other) => {
            return Err(format!(
                "value of state must be one of: reloaded, restarted, started, stopped, got: {other}"
            ));
        }
    };
    let scope = match o.string("scope")? {
        None | Some("system") => Scope::System,
        Some("user") => Scope::User,
        Some("global") => {
            return Err(
                "scope: global (the unit files of every user) is not supported; use \
                 ansible.builtin.systemd_service for it"
                    .to_owned(),
            );
        }
        Some(other) => {
            return Err(format!(
                "value of scope must be one of: system, user, got: {other}"
            ));
        }
    };
    let mode = match o.string("mode")? {
        None => JobMode::Replace,
        Some(m) => m.parse::<JobMode>().map_err(|e| format!("mode: {e}"))?,
    };
    let args = Args {
        state,
        enabled: o.bool("enabled")?,
        masked: o.bool("masked")?,
        daemon_reload: o.bool("daemon_reload")?.unwrap_or(false),
        daemon_reexec: o.bool("daemon_reexec")?.unwrap_or(false),
        scope,
        no_block: o.bool("no_block")?.unwrap_or(false),
        force: o.bool("force")?.unwrap_or(false),
        timeout: o.seconds("timeout")?.unwrap_or(DEFAULT_TIMEOUT),
        mode,
        check_active: o.seconds("check_active")?.unwrap_or(DEFAULT_CHECK_ACTIVE),
        wait: o.bool("wait")?.unwrap_or(false),
        reset_failed: o.bool("reset_failed")?.unwrap_or(false),
        journal_lines: o.count("journal_lines")?.unwrap_or(DEFAULT_JOURNAL_LINES),
        check_mode: o.bool("_ansible_check_mode")?.unwrap_or(false),
        diff: o.bool("_ansible_diff")?.unwrap_or(false),
        no_log: o.bool("_ansible_no_log")?.unwrap_or(false),
        names,
    };
    args.check()?;
    Ok(args)
}

impl Args {
    /// The combinations Ansible's argument spec would refuse.
    fn check(&self) -> Result<(), String> {
        let unit_goal = self.state.is_some()
            || self.enabled.is_some()
            || self.masked.is_some()
            || self.reset_failed;
        if self.names.is_empty() && unit_goal {
            return Err("name is required with state, enabled, masked or reset_failed".to_owned());
        }
        if !self.names.is_empty() && !unit_goal {
            return Err(
                "one of the following is required with name: state, enabled, masked, \
                 reset_failed"
                    .to_owned(),
            );
        }
        if self.names.is_empty() && !self.daemon_reload && !self.daemon_reexec {
            return Err(
                "one of the following is required: name, daemon_reload, daemon_reexec".to_owned(),
            );
        }
        if self.masked == Some(true) && self.enabled == Some(true) {
            return Err(
                "parameters are mutually exclusive: masked: true, enabled: true".to_owned(),
            );
        }
        if self.no_block && self.wait {
            return Err("parameters are mutually exclusive: no_block, wait".to_owned());
        }
        if self.wait && !matches!(self.state, Some(State::Started | State::Restarted)) {
            return Err("wait: needs state started or restarted".to_owned());
        }
        if self.timeout.is_zero() {
            return Err("timeout: must be more than 0 seconds".to_owned());
        }
        Ok(())
    }
}

/// The given options under their canonical names, after the unknown ones were refused.
struct Options<'a> {
    given: &'a Object,
    canonical: Vec<(&'static str, &'a Json)>,
}

impl<'a> Options<'a> {
    fn canonical(given: &'a Object) -> Result<Options<'a>, String> {
        let mut canonical: Vec<(&'static str, &'a Json)> = Vec::new();
        let mut unknown = Vec::new();
        for key in given.keys() {
            if key.starts_with("_ansible_") {
                continue;
            }
            let found = OPTIONS
                .iter()
                .find(|(name, aliases)| *name == key || aliases.contains(&key));
            match found {
                Some((name, _)) => {
                    if canonical.iter().any(|(n, _)| n == name) {
                        return Err(format!("{name}: given twice (under an alias)"));
                    }
                    canonical.push((name, given.get(key).unwrap_or(&Json::Null)));
                }
                None => unknown.push(key),
            }
        }
        if !unknown.is_empty() {
            let mut supported: Vec<&str> = OPTIONS
                .iter()
                .flat_map(|(n, a)| std::iter::once(*n).chain(a.iter().copied()))
                .collect();
            supported.sort_unstable();
            return Err(format!(
                "Unsupported parameters for (systemd_job) module: {}. Supported parameters \
                 include: {}.",
                unknown.join(", "),
                supported.join(", ")
            ));
        }
        Ok(Options { given, canonical })
    }

    fn get(&self, name: &str) -> Option<&'a Json> {
        if name.starts_with("_ansible_") {
            return self.given.get(name);
        }
        self.canonical
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    }

    fn string(&self, name: &str) -> Result<Option<&'a str>, String> {
        match self.get(name) {
            None | Some(Json::Null) => Ok(None),
            Some(Json::String(s)) => Ok(Some(s)),
            Some(other) => Err(format!("{name}: must be a string, got {other}")),
        }
    }

    /// A boolean as Ansible reads one: JSON `true`/`false`, or the strings it takes for them.
    fn bool(&self, name: &str) -> Result<Option<bool>, String> {
        match self.get(name) {
            None | Some(Json::Null) => Ok(None),
            Some(Json::Bool(b)) => Ok(Some(*b)),
            Some(Json::String(s)) => match s.to_ascii_lowercase().as_str() {
                "yes" | "on" | "1" | "true" | "t" | "y" => Ok(Some(true)),
                "no" | "off" | "0" | "false" | "f" | "n" => Ok(Some(false)),
                _ => Err(format!("{name}: {s:?} is not a valid boolean")),
            },
            Some(Json::Number(n)) if *n == 0.0 || *n == 1.0 => Ok(Some(*n == 1.0)),
            Some(other) => Err(format!("{name}: {other} is not a valid boolean")),
        }
    }

    /// A non-negative number of seconds (a number, or a string holding one).
    fn seconds(&self, name: &str) -> Result<Option<Duration>, String> {
        let n = match self.get(name) {
            None | Some(Json::Null) => return Ok(None),
            Some(Json::Number(n)) => *n,
            Some(Json::String(s)) => s
                .trim()
                .parse::<f64>()
                .map_err(|_| format!("{name}: {s:?} is not a number"))?,
            Some(other) => return Err(format!("{name}: must be a number, got {other}")),
        };
        if !n.is_finite() || !(0.0..=1e9).contains(&n) {
            return Err(format!(
                "{name}: {n} is not a number of seconds from 0 to 1e9"
            ));
        }
        Ok(Some(Duration::from_secs_f64(n)))
    }

    /// A whole non-negative count.
    fn count(&self, name: &str) -> Result<Option<usize>, String> {
        let Some(d) = self.seconds(name)? else {
            return Ok(None);
        };
        if d.subsec_nanos() != 0 {
            return Err(format!("{name}: must be a whole number"));
        }
        usize::try_from(d.as_secs())
            .map(Some)
            .map_err(|_| format!("{name}: too large"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_task_with_ansible_s_own_keys() {
        let a = parse(
            r#"{"name": "web.service", "state": "restarted", "enabled": "yes", "timeout": 5,
                "check_active": 1.5, "_ansible_check_mode": true, "_ansible_diff": true,
                "_ansible_no_log": false, "_ansible_module_name": "systemd_job"}"#,
        )
        .unwrap();
        assert_eq!(a.names, ["web.service"]);
        assert_eq!(a.state, Some(State::Restarted));
        assert_eq!(a.enabled, Some(true));
        assert_eq!(a.timeout, Duration::from_secs(5));
        assert_eq!(a.check_active, Duration::from_millis(1500));
        assert!(a.check_mode && a.diff && !a.no_log);
        assert_eq!(a.journal_lines, DEFAULT_JOURNAL_LINES);
        let a = parse(r#"{"service": ["a.service", "b.service"], "state": "started"}"#).unwrap();
        assert_eq!(a.names, ["a.service", "b.service"]);
        assert_eq!(a.timeout, DEFAULT_TIMEOUT);
        assert_eq!(parse(r#"{"daemon-reload": true}"#).unwrap().names.len(), 0);
    }

    #[test]
    fn refuses_by_name() {
        let cases = [
            (
                r#"{"name": "a", "state": "running"}"#,
                "value of state must be one of",
            ),
            (
                r#"{"name": "a", "state": "started", "colour": 1}"#,
                "Unsupported parameters for (systemd_job) module: colour",
            ),
            (
                r#"{"name": "a", "enabled": "maybe"}"#,
                "enabled: \"maybe\" is not a valid boolean",
            ),
            (
                r#"{"name": "a", "state": "started", "timeout": -1}"#,
                "timeout: -1",
            ),
            (
                r#"{"name": "a", "state": "started", "timeout": 0}"#,
                "timeout: must be more",
            ),
            (
                r#"{"name": "a", "state": "started", "mode": "gentle"}"#,
                "mode:",
            ),
            (r#"{"state": "started"}"#, "name is required"),
            (
                r#"{"name": "a"}"#,
                "one of the following is required with name",
            ),
            (r#"{}"#, "one of the following is required"),
            (
                r#"{"name": "a", "masked": true, "enabled": true}"#,
                "mutually exclusive",
            ),
            (
                r#"{"name": "a", "state": "stopped", "wait": true}"#,
                "wait: needs",
            ),
            (
                r#"{"name": "a", "state": "started", "scope": "global"}"#,
                "not supported",
            ),
            (r#"{"name": 7, "state": "started"}"#, "name: must be"),
            (
                r#"{"name": "a", "unit": "b", "state": "started"}"#,
                "given twice",
            ),
            (r#"["name"]"#, "does not hold a JSON object"),
            ("{\"name\": ", "not valid JSON"),
            (
                r#"{"name": "a", "reset_failed": true, "journal_lines": 2.5}"#,
                "whole number",
            ),
        ];
        for (text, said) in cases {
            let e = parse(text).unwrap_err();
            assert!(e.contains(said), "{text}: {e}");
        }
    }
}

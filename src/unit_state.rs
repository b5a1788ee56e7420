//! Reading a unit after its job: why it failed (its `Result` property and main process exit)
//! and whether it is active.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use dbus::arg::Get;
use dbus::blocking::stdintf::org_freedesktop_dbus::Properties;
use dbus::blocking::{Connection, Proxy};

use crate::error::BusError;
use crate::unit_name::unit_type;
use crate::watch::{MANAGER_IFACE, MANAGER_PATH, SYSTEMD_NAME};

/// A unit's own `Result` property after it failed (`org.freedesktop.systemd1.Service.Result`
/// and its twins on sockets, mounts, swaps, timers, paths, automounts and scopes).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UnitResult {
    /// `success`
    Success,
    /// `resources`: systemd could not set up the unit (missing resources, fork failure...).
    Resources,
    /// `protocol`: the service broke its protocol (e.g. no READY notification).
    Protocol,
    /// `timeout`: a start, stop or runtime timeout passed.
    Timeout,
    /// `exit-code`: a process exited with a non-zero status.
    ExitCode,
    /// `signal`: a process was killed by a signal.
    Signal,
    /// `core-dump`: a process was killed by a signal and dumped core.
    CoreDump,
    /// `watchdog`: the watchdog was not pinged in time.
    Watchdog,
    /// `start-limit-hit`: started too often (`StartLimitBurst=`).
    StartLimitHit,
    /// `oom-kill`: the kernel's OOM killer killed a process of the unit.
    OomKill,
    /// `exec-condition`: `ExecCondition=` exited non-zero.
    ExecCondition,
    /// `trigger-limit-hit`: a socket or path unit triggered too often.
    TriggerLimitHit,
    /// `service-start-limit-hit` / `unit-start-limit-hit`: the unit a socket or path triggers
    /// was started too often.
    TriggeredStartLimitHit,
    /// A value newer than this crate.
    Other(String),
}

impl FromStr for UnitResult {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "success" => UnitResult::Success,
            "resources" => UnitResult::Resources,
            "protocol" => UnitResult::Protocol,
            "timeout" => UnitResult::Timeout,
            "exit-code" => UnitResult::ExitCode,
            "signal" => UnitResult::Signal,
            "core-dump" => UnitResult::CoreDump,
            "watchdog" => UnitResult::Watchdog,
            "start-limit-hit" => UnitResult::StartLimitHit,
            "oom-kill" => UnitResult::OomKill,
            "exec-condition" => UnitResult::ExecCondition,
            "trigger-limit-hit" => UnitResult::TriggerLimitHit,
            "service-start-limit-hit" | "unit-start-limit-hit" => {
                UnitResult::TriggeredStartLimitHit
            }
            other => UnitResult::Other(other.to_owned()),
        })
    }
}

impl fmt::Display for UnitResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UnitResult::Success => "it reports success",
            UnitResult::Resources => "of unavailable resources or another system error",
            UnitResult::Protocol => "the service broke its protocol (e.g. no READY notification)",
            UnitResult::Timeout => "a timeout was exceeded",
            UnitResult::ExitCode => "a process exited with an error code",
            UnitResult::Signal => "a fatal signal was delivered to a process",
            UnitResult::CoreDump => "a fatal signal made a process dump core",
            UnitResult::Watchdog => "the watchdog was not pinged in time",
            UnitResult::StartLimitHit => "it was started too often",
            UnitResult::OomKill => "the OOM killer killed a process",
            UnitResult::ExecCondition => "its ExecCondition= failed",
            UnitResult::TriggerLimitHit => "it was triggered too often",
            UnitResult::TriggeredStartLimitHit => "the unit it triggers was started too often",
            UnitResult::Other(s) => return write!(f, "of '{s}'"),
        })
    }
}

/// How a service's main process ended (`ExecMainCode` / `ExecMainStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ExitStatus {
    /// It exited with this status.
    Exited(i32),
    /// It was killed by this signal.
    Killed(i32),
    /// It was killed by this signal and dumped core.
    Dumped(i32),
}

impl ExitStatus {
    /// From `ExecMainCode` (a `CLD_*` code) and `ExecMainStatus`; `None` if no process ran.
    pub(crate) fn from_code(code: i32, status: i32) -> Option<Self> {
        match code {
            1 => Some(ExitStatus::Exited(status)),
            2 => Some(ExitStatus::Killed(status)),
            3 => Some(ExitStatus::Dumped(status)),
            _ => None,
        }
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitStatus::Exited(s) => write!(f, "main process exited with status {s}"),
            ExitStatus::Killed(s) => write!(f, "main process killed by signal {s}"),
            ExitStatus::Dumped(s) => write!(f, "main process killed by signal {s}, core dumped"),
        }
    }
}

/// Why a unit failed, read from the unit after its job ended `failed`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FailureReason {
    /// The unit's `Result` property.
    pub result: UnitResult,
    /// For services: how the main process ended, if one ran.
    pub main_process: Option<ExitStatus>,
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "failed because {}", self.result)?;
        if let Some(p) = &self.main_process {
            write!(f, " ({p})")?;
        }
        Ok(())
    }
}

/// A unit's state as read after its job (`ActiveState`, `SubState`, `ConditionResult`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UnitState {
    /// `active`, `reloading`, `inactive`, `failed`, `activating`, `deactivating`...
    pub active_state: String,
    /// The type-specific state, e.g. `running`, `exited`, `dead`.
    pub sub_state: String,
    /// Whether a `Condition…=` of the unit failed at its last start (so it was skipped).
    /// Known only while systemd keeps the unit loaded: a unit left inactive is often unloaded
    /// at once, and then reads as plainly inactive.
    pub condition_failed: bool,
}

impl UnitState {
    /// `active` or `reloading`.
    pub fn is_active(&self) -> bool {
        matches!(self.active_state.as_str(), "active" | "reloading")
    }
}

impl fmt::Display for UnitState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.active_state, self.sub_state)?;
        if self.condition_failed {
            f.write_str(", a start condition failed")?;
        }
        Ok(())
    }
}

/// A unit's state and the times of its last transitions, read to settle a lost job.
pub(crate) struct Transitions {
    pub(crate) state: UnitState,
    pub(crate) active_since: u64,
    pub(crate) inactive_since: u64,
}

/// The D-Bus interface that carries a unit type's `Result` property.
fn result_interface(unit: &str) -> Option<&'static str> {
    Some(match unit_type(unit)? {
        "service" => "org.freedesktop.systemd1.Service",
        "socket" => "org.freedesktop.systemd1.Socket",
        "mount" => "org.freedesktop.systemd1.Mount",
        "swap" => "org.freedesktop.systemd1.Swap",
        "timer" => "org.freedesktop.systemd1.Timer",
        "path" => "org.freedesktop.systemd1.Path",
        "automount" => "org.freedesktop.systemd1.Automount",
        "scope" => "org.freedesktop.systemd1.Scope",
        _ => return None,
    })
}

/// Reads properties of one unit, each call bounded by `timeout`.
pub(crate) struct UnitReader<'a> {
    proxy: Proxy<'a, &'a Connection>,
    unit: &'a str,
}

impl<'a> UnitReader<'a> {
    /// Looks up the unit's object path (`LoadUnit`: a unit that has just become inactive may
    /// already have been unloaded, and is loaded again to be read).
    pub(crate) fn open(
        conn: &'a Connection,
        unit: &'a str,
        timeout: Duration,
    ) -> Result<Self, BusError> {
        let manager = Proxy::new(SYSTEMD_NAME, MANAGER_PATH, timeout, conn);
        let (path,): (dbus::Path<'static>,) =
            manager.method_call(MANAGER_IFACE, "LoadUnit", (unit,))?;
        Ok(UnitReader {
            proxy: Proxy::new(SYSTEMD_NAME, path, timeout, conn),
            unit,
        })
    }

    fn get<T: for<'b> Get<'b> + 'static>(&self, iface: &str, name: &str) -> Result<T, BusError> {
        Ok(self.proxy.get(iface, name)?)
    }

    /// The unit's `Result` and, for services, its main process status. `None` for unit
    /// types that have no `Result` property.
    pub(crate) fn failure_reason(&self) -> Result<Option<FailureReason>, BusError> {
        let Some(iface) = result_interface(self.unit) else {
            return Ok(None);
        };
        let result: String = self.get(iface, "Result")?;
        let main_process = if iface.ends_with(".Service") {
            let code: i32 = self.get(iface, "ExecMainCode")?;
            let status: i32 = self.get(iface, "ExecMainStatus")?;
            ExitStatus::from_code(code, status)
        } else {
            None
        };
        let Ok(result) = result.parse::<UnitResult>();
        Ok(Some(FailureReason {
            result,
            main_process,
        }))
    }

    /// The unit's state and when it last entered an active and an inactive (or failed) state
    /// (`CLOCK_MONOTONIC` µs, 0 for never).
    pub(crate) fn transitions(&self) -> Result<Transitions, BusError> {
        const UNIT: &str = "org.freedesktop.systemd1.Unit";
        Ok(Transitions {
            state: self.state()?,
            active_since: self.get(UNIT, "ActiveEnterTimestampMonotonic")?,
            inactive_since: self.get(UNIT, "InactiveEnterTimestampMonotonic")?,
        })
    }

    /// When the unit last left `inactive` and last reached `inactive` or `failed`
    /// (`CLOCK_MONOTONIC` µs, 0 for never).
    pub(crate) fn run_span(&self) -> Result<(u64, u64), BusError> {
        const UNIT: &str = "org.freedesktop.systemd1.Unit";
        Ok((
            self.get(UNIT, "InactiveExitTimestampMonotonic")?,
            self.get(UNIT, "InactiveEnterTimestampMonotonic")?,
        ))
    }

    /// A service's `StatusText` (what it reported with `sd_notify(STATUS=...)`); `None` for
    /// other unit types.
    pub(crate) fn status_text(&self) -> Result<Option<String>, BusError> {
        if unit_type(self.unit) != Some("service") {
            return Ok(None);
        }
        Ok(Some(
            self.get("org.freedesktop.systemd1.Service", "StatusText")?,
        ))
    }

    /// The units this one needs to start: `Requires=`, `Requisite=` and `BindsTo=`, the
    /// dependencies whose failure fails its start job with `dependency`.
    pub(crate) fn requirements(&self) -> Result<Vec<String>, BusError> {
        const UNIT: &str = "org.freedesktop.systemd1.Unit";
        let mut all = Vec::new();
        for property in ["Requires", "Requisite", "BindsTo"] {
            all.extend(self.get::<Vec<String>>(UNIT, property)?);
        }
        Ok(all)
    }

    /// The unit's active state, sub-state and condition result.
    pub(crate) fn state(&self) -> Result<UnitState, BusError> {
        const UNIT: &str = "org.freedesktop.systemd1.Unit";
        let condition_passed: bool = self.get(UNIT, "ConditionResult")?;
        // ConditionResult means something only once conditions were checked.
        let checked_at: u64 = self.get(UNIT, "ConditionTimestampMonotonic")?;
        Ok(UnitState {
            active_state: self.get(UNIT, "ActiveState")?,
            sub_state: self.get(UNIT, "SubState")?,
            condition_failed: checked_at > 0 && !condition_passed,
        })
    }
}

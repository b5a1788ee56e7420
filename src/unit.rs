//! What a unit says about itself: its state, its `Result` and how its main process ended.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::journal::RunJournal;

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

/// A unit's start rate limit (`StartLimitBurst=` starts within `StartLimitIntervalSec=`),
/// read from the unit when it was started too often.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct StartLimit {
    /// `StartLimitBurst=`: how many starts the interval allows.
    pub burst: u32,
    /// `StartLimitIntervalSec=`.
    pub interval: Duration,
}

impl fmt::Display for StartLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A whole number of seconds prints without a fraction: 60, 0.5.
        write!(
            f,
            "more than StartLimitBurst={} starts within StartLimitIntervalSec={}s",
            self.burst,
            self.interval.as_secs_f64()
        )
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
    /// For [`UnitResult::StartLimitHit`]: the limit the starts went over, as the unit sets
    /// it. `reset-failed` ([`Manager::reset_failed`](crate::Manager::reset_failed)) clears
    /// the count.
    pub start_limit: Option<StartLimit>,
    /// The last lines the failed run wrote to the journal, or why they could not be read
    /// ([`ManagerBuilder::journal_lines`](crate::ManagerBuilder::journal_lines)).
    pub journal: RunJournal,
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "failed because {}", self.result)?;
        if let Some(limit) = &self.start_limit {
            write!(
                f,
                " ({limit}; reset-failed clears the count, then it can start again)"
            )?;
        } else if let Some(p) = &self.main_process {
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

//! Reading a unit's properties (typed calls): why it failed (its `Result` property and main
//! process exit), whether it is active, when it last changed, what it requires.

use std::time::Duration;

use dbus::arg::Get;
use dbus::blocking::stdintf::org_freedesktop_dbus::Properties;
use dbus::blocking::{BlockingSender, Proxy};

use crate::error::BusError;
use crate::journal::{InvocationId, RunJournal};
use crate::proto::{MANAGER_IFACE, MANAGER_PATH, SYSTEMD_NAME};
use crate::unit::{ExitStatus, FailureReason, StartLimit, UnitResult, UnitState};
use crate::unit_name::unit_type;

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

/// Reads properties of one unit, each call bounded by `timeout`, through any blocking sender
/// (the session's [`Caller`](crate::Caller) in this crate).
pub(crate) struct UnitReader<'a, C: BlockingSender> {
    proxy: Proxy<'a, &'a C>,
    unit: &'a str,
}

impl<'a, C: BlockingSender> UnitReader<'a, C> {
    /// Looks up the unit's object path (`LoadUnit`: a unit that has just become inactive may
    /// already have been unloaded, and is loaded again to be read).
    pub(crate) fn open(conn: &'a C, unit: &'a str, timeout: Duration) -> Result<Self, BusError> {
        let manager = Proxy::new(SYSTEMD_NAME, MANAGER_PATH, timeout, conn);
        let (path,): (dbus::Path<'static>,) =
            manager.method_call(MANAGER_IFACE, "LoadUnit", (unit,))?;
        Ok(UnitReader {
            proxy: Proxy::new(SYSTEMD_NAME, path, timeout, conn),
            unit,
        })
    }

    /// The connection the unit is read through.
    pub(crate) fn sender(&self) -> &'a C {
        self.proxy.connection
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
        let start_limit = if result == UnitResult::StartLimitHit {
            Some(self.start_limit()?)
        } else {
            None
        };
        Ok(Some(FailureReason {
            result,
            main_process,
            start_limit,
            journal: RunJournal::NotRead,
        }))
    }

    /// The unit's `StartLimitBurst=` and `StartLimitIntervalSec=`.
    pub(crate) fn start_limit(&self) -> Result<StartLimit, BusError> {
        const UNIT: &str = "org.freedesktop.systemd1.Unit";
        let burst: u32 = self.get(UNIT, "StartLimitBurst")?;
        let interval: u64 = self.get(UNIT, "StartLimitIntervalUSec")?;
        Ok(StartLimit {
            burst,
            interval: Duration::from_micros(interval),
        })
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

    /// The id of the unit's current or last run (`InvocationID`); `None` if it has none.
    pub(crate) fn invocation_id(&self) -> Result<Option<InvocationId>, BusError> {
        let bytes: Vec<u8> = self.get("org.freedesktop.systemd1.Unit", "InvocationID")?;
        Ok(InvocationId::from_bytes(&bytes))
    }

    /// The unit's own name (`Id`: an alias given resolves to it) and when its current or last
    /// run started (`InactiveExitTimestamp`, µs since the epoch, 0 for never).
    pub(crate) fn id_and_start(&self) -> Result<(String, u64), BusError> {
        const UNIT: &str = "org.freedesktop.systemd1.Unit";
        Ok((
            self.get(UNIT, "Id")?,
            self.get(UNIT, "InactiveExitTimestamp")?,
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

    /// The unit's `LoadState`: `loaded`, `not-found`, `masked`, `bad-setting`, `error`...
    pub(crate) fn load_state(&self) -> Result<String, BusError> {
        self.get("org.freedesktop.systemd1.Unit", "LoadState")
    }

    /// Whether the unit is a `Type=oneshot` service whose last run ended with
    /// `Result=success`: inactive after a start that went well, not a service that died.
    pub(crate) fn is_finished_oneshot(&self) -> Result<bool, BusError> {
        const SERVICE: &str = "org.freedesktop.systemd1.Service";
        if !self.unit.ends_with(".service") {
            return Ok(false);
        }
        let kind: String = self.get(SERVICE, "Type")?;
        if kind != "oneshot" {
            return Ok(false);
        }
        let result: String = self.get(SERVICE, "Result")?;
        Ok(result == "success")
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

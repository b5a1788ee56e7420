//! Clearing units' `failed` state (`systemctl reset-failed`), for one unit or for all.

use crate::deadline::Deadline;
use crate::error::{Error, Result};
use crate::ops::Context;
use crate::proto::manager_call;
use crate::unit_name;

/// What errors of `reset-failed` for every unit carry in place of a unit.
pub(crate) const RESET_FAILED: &str = "reset-failed";

/// Resets the `failed` state of `unit` (`ResetFailedUnit(s)`), or of every unit
/// (`ResetFailed()`) when `unit` is `None`, within `deadline`. It also resets the unit's
/// start-rate counter (`start-limit-hit`).
///
/// # Errors
/// [`Error::InvalidUnitName`] before any bus traffic; [`Error::NoSuchUnit`] for a unit that
/// is not loaded (so not failed either), [`Error::AccessDenied`] when polkit refuses
/// (`manage-units`), the manager and bus errors of any call.
pub(crate) fn reset_failed(cx: &Context, unit: Option<&str>, deadline: &Deadline) -> Result<()> {
    let subject = unit.unwrap_or(RESET_FAILED);
    if let Some(unit) = unit {
        unit_name::validate(unit)?;
    }
    cx.ready(subject, deadline)?;
    let (call, method) = match unit {
        Some(unit) => (
            manager_call("ResetFailedUnit").append1(unit),
            "ResetFailedUnit",
        ),
        None => (manager_call("ResetFailed"), "ResetFailed"),
    };
    log::debug!("{method}({subject})");
    cx.action_caller().call_for(call, deadline).map_err(|e| {
        Error::unless_timed_out(subject, deadline, || {
            Error::from_unit_call(subject, method, e.into())
                .sent_interactive(cx.options.allow_interactive_authorization)
        })
    })?;
    Ok(())
}

//! Following a unit while its job runs and after: a reference on it, a match for its
//! `PropertiesChanged`, and what those signals carried.
//!
//! On a bus, systemd sends a unit's `PropertiesChanged` only to clients that subscribed to
//! all of its signals or hold a reference on the unit, and it may unload a unit that went
//! inactive. So before the job is queued, the unit is loaded (`LoadUnit`), referenced
//! (`Unit.Ref`, which both makes its signals reach us and keeps it loaded so its `Result` can
//! still be read), and a match for its `PropertiesChanged` is added. On a private socket every
//! signal reaches us anyway, and systemd refuses references from clients without a bus name
//! (`InvalidArgs`); a unit unloaded there before it was read is known from the values its
//! last signals carried. The reference and the match are dropped afterwards without waiting
//! for replies.

use std::fmt;
use std::sync::{Arc, Mutex};

use dbus::Message;
use dbus::blocking::BlockingSender;
use dbus::message::MatchRule;

use crate::deadline::Deadline;
use crate::error::{BusError, Error, Result};
use crate::ops::Context;
use crate::proto::unit_reader::UnitReader;
use crate::proto::{PROPERTIES_IFACE, SYSTEMD_NAME, UNIT_IFACE, calls, is_refusal};
use crate::session::RuleHold;
use crate::session::router::HandlerId;
use crate::unit::{ExitStatus, UnitResult, UnitState};

/// A unit followed while its job runs and after: referenced and watched from before the job
/// is queued until dropped.
pub(crate) struct Follow<'m> {
    pub(crate) cx: &'m Context,
    pub(crate) unit: String,
    path: dbus::Path<'static>,
    /// What the unit's `PropertiesChanged` signals carried.
    pub(crate) seen: Arc<Mutex<Seen>>,
    handler: HandlerId,
    /// On a bus, the rule that routes the unit's signals to us.
    _rule: Option<RuleHold<'m>>,
    referenced: bool,
}

impl fmt::Debug for Follow<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Follow")
            .field("unit", &self.unit)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl<'m> Follow<'m> {
    /// Loads, references and watches `unit`, within `deadline`. On a bus the match rule goes
    /// out ahead of the reference, in the same round trip.
    ///
    /// # Errors
    /// [`Error::NoSuchUnit`] and the other errors of loading a unit, or the bus daemon's
    /// refusal of the match.
    pub(crate) fn start(cx: &'m Context, unit: &str, deadline: &Deadline) -> Result<Self> {
        let fail = |call: &'static str, e: BusError| {
            Error::unless_timed_out(unit, deadline, || {
                Error::from_job_call(unit, crate::Verb::Start, call, e)
            })
        };
        cx.ready(unit, deadline)?;
        let caller = cx.caller();
        let path = calls::load_unit(&caller, unit, deadline.call_timeout())
            .map_err(|e| fail("LoadUnit", e.into()))?;
        let mut rule = MatchRule::new_signal(PROPERTIES_IFACE, "PropertiesChanged");
        rule.path = Some(path.clone());
        let seen: Arc<Mutex<Seen>> = Arc::default();
        let into = Arc::clone(&seen);
        let handler = cx.session.add_handler(
            rule.clone(),
            Box::new(move |msg: &Message| {
                into.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .on_signal(msg);
            }),
        );
        let bus_rule = (!cx.is_direct()).then(|| {
            rule.sender = Some(SYSTEMD_NAME.into());
            cx.session.hold_rule(rule.match_str())
        });
        let mut follow = Follow {
            cx,
            unit: unit.to_owned(),
            path: path.clone(),
            seen,
            handler,
            _rule: bus_rule,
            referenced: false,
        };
        if !cx.is_direct() {
            // A reference needs the same authorization as managing the unit; a caller that
            // polkit would have to ask is followed without one (asking twice, once for the
            // reference and once for the job, would be worse).
            let reference = Message::new_method_call(SYSTEMD_NAME, path, UNIT_IFACE, "Ref")
                .expect("a unit path from systemd is a valid object path");
            match caller.send_with_reply_and_block(reference, deadline.call_timeout()) {
                Ok(_) => follow.referenced = true,
                Err(e) if is_refusal(&e) => {
                    log::debug!(
                        "{unit}: no reference allowed ({e}): following by reading its state"
                    );
                }
                Err(e) => return Err(fail("Ref", e.into())),
            }
            if let Some(e) = follow._rule.as_ref().and_then(RuleHold::refused) {
                return Err(fail("AddMatch", e));
            }
        }
        Ok(follow)
    }

    /// Whether the unit's signals are sure to reach us: on a private socket always, on a bus
    /// only while we hold a reference on the unit.
    pub(crate) fn signals_arrive(&self) -> bool {
        self.cx.is_direct() || self.referenced
    }

    /// Reads the unit's state and, for a service, its status text into what was seen: as the
    /// starting point of progress reports (`overwrite` false: values a signal brought
    /// meanwhile are kept), or in place of signals that do not reach us (`overwrite` true).
    pub(crate) fn read_into_seen(&self, deadline: &Deadline, overwrite: bool) {
        let caller = self.cx.caller();
        let Ok(reader) = UnitReader::open(&caller, &self.unit, deadline.call_timeout()) else {
            return;
        };
        let state = reader.state().ok();
        let status = reader.status_text().ok().flatten();
        let mut seen = self.lock_seen();
        let set = |slot: &mut Option<String>, value: String| {
            if overwrite || slot.is_none() {
                *slot = Some(value);
            }
        };
        if let Some(state) = state {
            set(&mut seen.active_state, state.active_state);
            set(&mut seen.sub_state, state.sub_state);
        }
        if let Some(status) = status {
            set(&mut seen.status_text, status);
        }
        seen.changed = true;
    }

    pub(crate) fn lock_seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn read_state(&self, deadline: &Deadline) -> Result<UnitState> {
        UnitReader::open(&self.cx.caller(), &self.unit, deadline.call_timeout())
            .and_then(|r| r.state())
            .map_err(|e| self.read_error(e, deadline))
    }

    pub(crate) fn read_error(&self, e: BusError, deadline: &Deadline) -> Error {
        Error::unless_timed_out(&self.unit, deadline, || {
            Error::from_call(&self.unit, "Get", e)
        })
    }
}

/// What a unit's `PropertiesChanged` signals carried, for a unit unloaded before it is read.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    pub(crate) active_state: Option<String>,
    pub(crate) sub_state: Option<String>,
    /// A service's own status (`sd_notify(STATUS=...)`).
    pub(crate) status_text: Option<String>,
    /// Set by every signal; cleared by whoever reports progress.
    pub(crate) changed: bool,
    result: Option<String>,
    exec_main_code: Option<i32>,
    exec_main_status: Option<i32>,
    inactive_exit: Option<u64>,
    inactive_enter: Option<u64>,
}

impl Seen {
    /// Records what a `PropertiesChanged` signal (`sa{sv}as`) says; a body of another shape,
    /// and values of another type than systemd's, are ignored.
    pub(crate) fn on_signal(&mut self, msg: &Message) {
        if let Ok((_, changed)) = msg.read2::<&str, dbus::arg::PropMap>() {
            self.update(&changed);
        }
    }

    fn update(&mut self, changed: &dbus::arg::PropMap) {
        use dbus::arg::prop_cast;
        self.changed = true;
        if let Some(v) = prop_cast::<String>(changed, "ActiveState") {
            self.active_state = Some(v.clone());
        }
        if let Some(v) = prop_cast::<String>(changed, "SubState") {
            self.sub_state = Some(v.clone());
        }
        if let Some(v) = prop_cast::<String>(changed, "StatusText") {
            self.status_text = Some(v.clone());
        }
        if let Some(v) = prop_cast::<String>(changed, "Result") {
            self.result = Some(v.clone());
        }
        if let Some(v) = prop_cast::<i32>(changed, "ExecMainCode") {
            self.exec_main_code = Some(*v);
        }
        if let Some(v) = prop_cast::<i32>(changed, "ExecMainStatus") {
            self.exec_main_status = Some(*v);
        }
        if let Some(v) = prop_cast::<u64>(changed, "InactiveExitTimestampMonotonic") {
            self.inactive_exit = Some(*v);
        }
        if let Some(v) = prop_cast::<u64>(changed, "InactiveEnterTimestampMonotonic") {
            self.inactive_enter = Some(*v);
        }
    }

    /// If the unit as read now (`span`: when it last left and reached inactive) never ran,
    /// though its signals said it did, it was unloaded and loaded afresh: the result, main
    /// process status and span from the signals.
    #[allow(clippy::type_complexity)]
    pub(crate) fn unloaded_since(
        &self,
        span: (u64, u64),
    ) -> Option<(UnitResult, Option<ExitStatus>, (u64, u64))> {
        let exit = self.inactive_exit.filter(|&t| t > 0)?;
        if span.0 != 0 {
            return None;
        }
        let Ok(result) = self
            .result
            .as_deref()
            .unwrap_or("success")
            .parse::<UnitResult>();
        let main = ExitStatus::from_code(
            self.exec_main_code.unwrap_or(0),
            self.exec_main_status.unwrap_or(0),
        );
        Some((result, main, (exit, self.inactive_enter.unwrap_or(0))))
    }
}

impl Drop for Follow<'_> {
    /// Drops the handler, the reference and the match, without waiting for replies (systemd
    /// and the bus daemon drop the last two anyway when the connection closes).
    fn drop(&mut self) {
        self.cx.session.remove_handler(self.handler);
        if self.referenced
            && let Ok(m) =
                Message::new_method_call(SYSTEMD_NAME, self.path.clone(), UNIT_IFACE, "Unref")
            && !self.cx.caller().send_no_reply(m)
        {
            log::debug!("{}: could not drop the unit's reference", self.unit);
        }
    }
}

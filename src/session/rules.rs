//! Match rules on the bus daemon, counted by holder: `AddMatch` when the first holder takes
//! a rule (sent without waiting; its reply is checked later by serial), `RemoveMatch` with
//! no reply expected when the last one lets go. On a direct connection there is no bus
//! daemon and nothing is sent.

use std::cell::RefCell;
use std::collections::HashMap;

use dbus::message::MatchRule;

use crate::error::BusError;
use crate::proto::{BUS_NAME, BUS_PATH, MANAGER_IFACE, MANAGER_PATH, SYSTEMD_NAME, bus_call};
use crate::session::Session;

/// One rule's holders, and the serial of its `AddMatch` while the reply is not checked.
struct Held {
    holders: usize,
    add_serial: Option<u32>,
}

/// The rules a session holds, by rule text.
#[derive(Default)]
pub(super) struct Rules {
    held: RefCell<HashMap<String, Held>>,
}

impl Rules {
    pub(super) fn len(&self) -> usize {
        self.held.borrow().len()
    }
}

/// The rules that route job results to us: `JobRemoved` from systemd's well-known name (the
/// daemon routes the signals of whoever owns it; the inbox checks the sender against the
/// current owner, since a signal unicast to us by any client passes the daemon), and
/// `NameOwnerChanged` for that name, from the bus daemon itself.
pub(super) fn job_rules() -> [String; 2] {
    let mut removed = MatchRule::new_signal(MANAGER_IFACE, "JobRemoved");
    removed.path = Some(MANAGER_PATH.into());
    removed.sender = Some(SYSTEMD_NAME.into());
    let mut owner = MatchRule::new_signal(BUS_NAME, "NameOwnerChanged");
    owner.sender = Some(BUS_NAME.into());
    owner.path = Some(BUS_PATH.into());
    // MatchRule cannot express argument matches; arg0 makes the daemon send us only changes
    // of systemd's name.
    [
        removed.match_str(),
        format!("{},arg0='{SYSTEMD_NAME}'", owner.match_str()),
    ]
}

/// One holder of a rule; dropping it lets go.
pub(crate) struct RuleHold<'s> {
    session: &'s Session,
    rule: String,
}

impl<'s> RuleHold<'s> {
    pub(super) fn new(session: &'s Session, rule: String) -> Self {
        if !session.is_direct() {
            let mut held = session.rules.held.borrow_mut();
            let entry = held.entry(rule.clone()).or_insert(Held {
                holders: 0,
                add_serial: None,
            });
            if entry.holders == 0 {
                match session.send_awaiting(bus_call("AddMatch", &rule)) {
                    Ok(serial) => {
                        log::debug!("match added: {rule}");
                        entry.add_serial = Some(serial);
                    }
                    // The connection is gone: the call that follows says so.
                    Err(e) => log::debug!("AddMatch could not be sent ({e}): {rule}"),
                }
            }
            entry.holders += 1;
        }
        RuleHold { session, rule }
    }

    /// The bus daemon's error if it refused the rule (e.g. its per-connection limit), once
    /// its reply has come; `None` while it is in force or not yet answered.
    pub(crate) fn refused(&self) -> Option<BusError> {
        let held = self.session.rules.held.borrow();
        let serial = held.get(&self.rule)?.add_serial?;
        let router = self.session.router();
        let mut reply = router.peek_reply(serial)?.duplicate().ok()?;
        reply.as_result().err().map(BusError::from)
    }
}

impl Drop for RuleHold<'_> {
    fn drop(&mut self) {
        if self.session.is_direct() {
            return;
        }
        let mut held = self.session.rules.held.borrow_mut();
        let Some(entry) = held.get_mut(&self.rule) else {
            return;
        };
        entry.holders -= 1;
        if entry.holders > 0 {
            return;
        }
        if let Some(serial) = entry.add_serial {
            self.session.router().forget_reply(serial);
        }
        held.remove(&self.rule);
        drop(held);
        if self
            .session
            .send_no_reply(bus_call("RemoveMatch", &self.rule))
        {
            log::debug!("match removed: {}", self.rule);
        } else {
            log::debug!("RemoveMatch could not be queued: {}", self.rule);
        }
    }
}

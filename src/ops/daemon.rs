//! The manager's own operations: `daemon-reload` and `daemon-reexec`, each under the
//! operation's one deadline.
//!
//! `Reload()` answers only once the reload has finished. The call is sent and its answer
//! waited for by the session's pump, so the wait is the deadline's, not a 25 s method-call
//! default (a bus daemon has no reply timeout of its own by default), and whatever arrives
//! meanwhile, the results of jobs other waits hold, is dispatched as usual. A re-execution
//! while the reload is pending (someone's `daemon-reexec`) takes the pending reload with it:
//! the old manager leaves without answering, and the new one has loaded every unit file
//! anew, so the reload counts as done once the new manager is there
//! ([`Reloaded::by_reexecution`]).
//!
//! `Reexecute()` is never answered: the old manager leaves (on a bus the bus daemon answers
//! `NoReply`, a private socket is reset). The operation is done once the new manager has
//! taken over (its bus name's new owner, or the socket accepting again) and answered a call
//! (its `Version`).

use crate::daemon::{Reexecuted, Reloaded};
use crate::deadline::Deadline;
use crate::error::{BusError, Error, Result};
use crate::ops::Context;
use crate::proto::{BUS_NAME, errors, manager_call, manager_property};

/// The names errors of these operations carry in place of a unit.
pub(crate) const DAEMON_RELOAD: &str = "daemon-reload";
pub(crate) const DAEMON_REEXEC: &str = "daemon-reexec";

/// How a call that a re-execution may cut off ended.
enum Answer {
    /// The manager answered it.
    Reply,
    /// The manager re-executed before it answered (and is back).
    CameBack,
}

/// Reloads the manager (`Reload()`) and returns once it has finished, within `deadline`.
///
/// # Errors
/// [`Error::Timeout`] when the deadline passes (a manager that never finishes reloading),
/// [`Error::AccessDenied`] when polkit refuses (`reload-daemon`), and the manager and bus
/// errors of any operation; each names `daemon-reload`.
pub(crate) fn daemon_reload(cx: &Context, deadline: &Deadline) -> Result<Reloaded> {
    let answer = call_across_reexec(cx, DAEMON_RELOAD, "Reload", deadline)?;
    let by_reexecution = matches!(answer, Answer::CameBack);
    log::debug!(
        "daemon-reload finished{}",
        if by_reexecution {
            " by a re-execution"
        } else {
            ""
        }
    );
    Ok(Reloaded {
        elapsed: deadline.elapsed(),
        by_reexecution,
    })
}

/// Re-executes the manager (`Reexecute()`) and returns once the new one answers, within
/// `deadline`.
///
/// # Errors
/// As [`daemon_reload`], naming `daemon-reexec`; [`Error::ManagerGone`] when no manager is
/// back within the re-exec grace.
pub(crate) fn daemon_reexec(cx: &Context, deadline: &Deadline) -> Result<Reexecuted> {
    let session = &cx.session;
    let before = session.router().inbox.comebacks();
    let answer = call_across_reexec(cx, DAEMON_REEXEC, "Reexecute", deadline)?;
    if let Answer::Reply = answer {
        // A manager that answers before it leaves: it is not back until it came back.
        let _signals = session.hold_job_signals();
        session
            .pump_until(deadline, |r| r.inbox.comebacks() != before)
            .map_err(|i| i.into_error(DAEMON_REEXEC, None, deadline, cx.is_direct()))?;
    }
    let reply = cx
        .caller()
        .call_for(manager_property("Version"), deadline)
        .map_err(|e| {
            Error::unless_timed_out(DAEMON_REEXEC, deadline, || {
                Error::from_call(DAEMON_REEXEC, "Get(Version)", e.into())
            })
        })?;
    let version = reply
        .read1::<dbus::arg::Variant<String>>()
        .map(|v| v.0)
        .map_err(|e| Error::Bus {
            unit: DAEMON_REEXEC.to_owned(),
            call: "Get(Version)",
            source: BusError::new(errors::FAILED, format!("unexpected reply: {e}")),
        })?;
    log::debug!("daemon-reexec finished: systemd {version} answers");
    Ok(Reexecuted {
        elapsed: deadline.elapsed(),
        version,
    })
}

/// Calls `method` on the manager (as a call that asks it to act: with the authorization
/// flag if the handle sets it) and waits for its answer, or for the manager to come back
/// from a re-execution that took the call with it.
fn call_across_reexec(
    cx: &Context,
    operation: &'static str,
    method: &'static str,
    deadline: &Deadline,
) -> Result<Answer> {
    cx.ready(operation, deadline)?;
    let session = &cx.session;
    let interrupted =
        |i: crate::session::Interrupted| i.into_error(operation, None, deadline, cx.is_direct());
    // The rule for changes of systemd's owner, so that a re-execution is seen.
    let _signals = session.hold_job_signals();
    let before = session.router().inbox.comebacks();
    log::debug!("{operation}: calling {method}");
    let serial = cx
        .action_caller()
        .start_call(manager_call(method))
        .map_err(|e| Error::from_call(operation, method, e.into()))?;
    let waited = session.pump_until(deadline, |r| {
        r.peek_reply(serial).is_some() || r.inbox.comebacks() != before
    });
    let reply = session.router().take_reply(serial);
    if reply.is_none() {
        session.router().forget_reply(serial);
    }
    waited.map_err(interrupted)?;
    let Some(mut reply) = reply else {
        log::debug!("{operation}: the manager re-executed before it answered {method}");
        return Ok(Answer::CameBack);
    };
    let Err(e) = reply.as_result() else {
        return Ok(Answer::Reply);
    };
    if left_without_answering(&e, reply.sender().as_deref()) {
        // The old manager left (re-executing, or dying): wait for the new one.
        log::debug!("{operation}: the manager left without answering {method} ({e:?})");
        session
            .pump_until(deadline, |r| r.inbox.comebacks() != before)
            .map_err(interrupted)?;
        return Ok(Answer::CameBack);
    }
    Err(Error::unless_timed_out(operation, deadline, || {
        Error::from_call(operation, method, BusError::from(e))
            .sent_interactive(cx.options.allow_interactive_authorization)
    }))
}

/// Whether an error reply means the manager left without answering: the bus daemon's
/// `NoReply` for a call whose recipient disconnected (dbus-daemon's "Message recipient
/// disconnected from message bus without replying"), not the one it sends when a reply
/// timeout it may be configured with passes ("Did not receive a reply...").
fn left_without_answering(e: &dbus::Error, sender: Option<&str>) -> bool {
    e.name() == Some(errors::NO_REPLY)
        && sender == Some(BUS_NAME)
        && e.message()
            .is_some_and(|m| m.to_ascii_lowercase().contains("disconnected"))
}

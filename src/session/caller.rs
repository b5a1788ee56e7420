//! Method calls through a session, usable wherever dbus-rs takes a blocking connection.

use std::time::Duration;

use dbus::Message;
use dbus::blocking::BlockingSender;

use crate::proto::authorization::allow_interactive;
use crate::session::Session;

/// Makes method calls on a [`Manager`](crate::Manager)'s connection, for calls this crate
/// does not make: a [`BlockingSender`], so it serves as the connection of a
/// [`dbus::blocking::Proxy`] and with dbus-rs's generated and standard interfaces.
///
/// Each call is sent and its reply waited for by the handle's own dispatch, which also
/// handles every signal that arrives meanwhile; a call never blocks past its timeout. It
/// borrows the connection only for the duration of a call, so holding a `Caller` while the
/// handle reconnects (after a private socket was reset) cannot fail: later calls go to the
/// new connection.
///
/// ```no_run
/// use std::time::Duration;
/// use dbus::blocking::Proxy;
/// use dbus::blocking::stdintf::org_freedesktop_dbus::Properties;
/// use systemd_jobs::Manager;
///
/// let manager = Manager::system()?;
/// let caller = manager.caller();
/// let systemd = Proxy::new(
///     "org.freedesktop.systemd1",
///     "/org/freedesktop/systemd1",
///     Duration::from_secs(5),
///     &caller,
/// );
/// let version: String = systemd.get("org.freedesktop.systemd1.Manager", "Version")?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy)]
pub struct Caller<'s> {
    session: &'s Session,
    interactive: bool,
}

impl std::fmt::Debug for Caller<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caller")
            .field("interactive", &self.interactive)
            .finish_non_exhaustive()
    }
}

impl<'s> Caller<'s> {
    pub(crate) fn new(session: &'s Session, interactive: bool) -> Self {
        Caller {
            session,
            interactive,
        }
    }

    /// The message with the interactive-authorization flag if this caller sets it.
    fn prepare(&self, msg: Message) -> Result<Message, dbus::Error> {
        if self.interactive {
            allow_interactive(msg)
        } else {
            Ok(msg)
        }
    }
}

impl BlockingSender for Caller<'_> {
    fn send_with_reply_and_block(
        &self,
        msg: Message,
        timeout: Duration,
    ) -> Result<Message, dbus::Error> {
        self.session.call(self.prepare(msg)?, timeout)
    }
}

impl dbus::channel::Sender for Caller<'_> {
    /// Sends `msg` without waiting for anything; a reply to it is dropped when it comes.
    fn send(&self, msg: Message) -> Result<u32, ()> {
        let msg = self.prepare(msg).map_err(|e| {
            log::debug!("could not set the interactive-authorization flag: {e}");
        })?;
        self.session.send(msg).map_err(|_| ())
    }
}

impl Caller<'_> {
    /// A method call whose answer is waited for until `deadline` at most.
    ///
    /// # Errors
    /// As [`BlockingSender::send_with_reply_and_block`].
    pub(crate) fn call_for(
        &self,
        msg: Message,
        deadline: &crate::deadline::Deadline,
    ) -> Result<Message, dbus::Error> {
        self.session
            .call(self.prepare(msg)?, deadline.call_timeout())
    }

    /// Sends the call `msg` and returns its serial, whose reply the session's router keeps
    /// for a wait that pumps the connection itself ([`Session::pump_until`]).
    ///
    /// # Errors
    /// The interactive-authorization flag could not be set, or the message not be queued.
    pub(crate) fn start_call(&self, msg: Message) -> Result<u32, dbus::Error> {
        self.session.start_call(self.prepare(msg)?)
    }

    /// Sends `msg` with no reply expected, and flushes it; whether it could be queued.
    pub(crate) fn send_no_reply(&self, msg: Message) -> bool {
        match self.prepare(msg) {
            Ok(msg) => self.session.send_no_reply(msg),
            Err(e) => {
                log::debug!("could not set the interactive-authorization flag: {e}");
                false
            }
        }
    }
}

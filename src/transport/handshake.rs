//! Opening a connection under a deadline: authentication, then `Hello` on a bus or a padded
//! first message on a private socket, driven with `read_write` so that no step blocks past
//! the deadline (libdbus's own blocking authentication and `Hello` ignore every timeout).

use dbus::Message;
use dbus::blocking::Connection;
use dbus::channel::Channel;

use crate::deadline::Deadline;
use crate::error::{ConnectStep, Error, Result};
use crate::ffi;
use crate::proto::{BUS_NAME, BUS_PATH, MANAGER_PATH, SYSTEMD_NAME, errors};
use crate::transport::Bus;

/// Bytes of padding in the first message on a direct connection: enough that it cannot fit
/// into sd-bus's last authentication read (256 bytes) together with `BEGIN`.
const FIRST_MESSAGE_PADDING: usize = 256;

/// A connection just opened.
pub(crate) struct Opened {
    pub(crate) conn: Connection,
    /// On a bus, the unique name the bus daemon gave us.
    pub(crate) unique_name: Option<String>,
}

/// Why a direct connection could not be opened.
#[derive(Debug)]
pub(crate) enum OpenFailure {
    /// Refused, reset, or no such socket.
    Failed(dbus::Error),
    /// The deadline passed during this step.
    TimedOut(ConnectStep),
}

/// Opens a connection to `bus` within `deadline`.
///
/// On a bus the first message is our own `Hello`, and connecting ends with its reply. On a
/// private socket the first message is the padded `Ping` of [`padded_ping`], and connecting
/// ends once it is written.
///
/// # Errors
/// [`Error::Connect`] (or [`Error::RemoteUnreachable`] over ssh, diagnosed) when the peer
/// cannot be reached or refuses us, [`Error::ConnectTimeout`] naming the step that did not
/// finish.
pub(crate) fn open(bus: &Bus, deadline: &Deadline) -> Result<Opened> {
    let plain = |e: dbus::Error| Error::Connect {
        target: bus.to_string(),
        source: e.into(),
    };
    // Over ssh, a connection that breaks before authenticating is looked into: ssh, the
    // bridge, or the bus on the other side.
    let fail = |e: dbus::Error| match bus {
        Bus::Remote(remote) => match remote.diagnose(deadline) {
            Some(problem) => Error::RemoteUnreachable {
                target: bus.to_string(),
                problem,
            },
            None => plain(e),
        },
        _ => plain(e),
    };
    let channel = Channel::open_private(&bus.address()?).map_err(fail)?;
    let first = if bus.is_direct() {
        padded_ping()
    } else {
        hello()
    };
    let replies = drive(&channel, first, deadline).map_err(|failure| match failure {
        OpenFailure::Failed(e) => fail(e),
        OpenFailure::TimedOut(step) => Error::ConnectTimeout {
            target: bus.to_string(),
            step,
            waited: deadline.elapsed(),
        },
    })?;
    let unique_name = match replies {
        Some(mut hello_reply) => {
            let (name,): (String,) =
                hello_reply
                    .as_result()
                    .map_err(fail)?
                    .read_all()
                    .map_err(|e| {
                        fail(dbus::Error::new_failed(&format!(
                            "unexpected reply to Hello: {e}"
                        )))
                    })?;
            if !ffi::set_unique_name(&channel, &name) {
                log::warn!("libdbus did not record our unique name {name}");
            }
            Some(name)
        }
        None => None,
    };
    log::debug!("connected to {bus}");
    Ok(Opened {
        conn: Connection::from(channel),
        unique_name,
    })
}

/// Opens a direct connection to a manager's private socket: authenticated by the manager
/// and the padded `Ping` written, within `deadline`. The `Ping`'s reply is left to the
/// connection, like anything the manager sends after it. Also used to connect again after
/// the manager re-executed.
pub(crate) fn open_direct(bus: &Bus, deadline: &Deadline) -> Result<Connection, OpenFailure> {
    let addr = bus
        .address()
        .map_err(|e| OpenFailure::Failed(dbus::Error::new_failed(&e.to_string())))?;
    let channel = Channel::open_private(&addr).map_err(OpenFailure::Failed)?;
    drive(&channel, padded_ping(), deadline)?;
    Ok(Connection::from(channel))
}

/// The first message, and the step a timeout waiting for it is named after.
struct First {
    message: Message,
    step: ConnectStep,
    /// Whether connecting waits for its reply; otherwise only until it is written (which
    /// libdbus does once authentication is done), and its reply is left to the connection.
    await_reply: bool,
}

/// `Hello` to the bus daemon: registration, which assigns our unique name.
fn hello() -> First {
    First {
        message: Message::new_method_call(BUS_NAME, BUS_PATH, BUS_NAME, "Hello")
            .expect("valid Hello"),
        step: ConnectStep::Registration,
        await_reply: true,
    }
}

/// The first message on a direct connection: a `Peer.Ping` padded with a string argument to
/// well over 256 bytes.
///
/// systemd's sd-bus (seen with systemd 252) reads the end of authentication with at most 256
/// bytes at once; when a short first message arrives in the same read as `BEGIN`, it stays in
/// sd-bus's buffer and the manager handles it only when the socket becomes readable again,
/// which may be never. A longer first message cannot fit into that read, so the socket stays
/// readable and the manager reads on. (sd-bus answers `Ping` whatever its arguments.)
fn padded_ping() -> First {
    First {
        message: Message::new_method_call(
            SYSTEMD_NAME,
            MANAGER_PATH,
            "org.freedesktop.DBus.Peer",
            "Ping",
        )
        .expect("valid Ping")
        .append1(" ".repeat(FIRST_MESSAGE_PADDING)),
        step: ConnectStep::FirstCall,
        await_reply: false,
    }
}

/// Queues `first` on a fresh channel and drives it with `read_write`, in slices of what is
/// left of `deadline`, until it is written and, if it awaits one, its reply is in. Messages
/// that arrive before that reply are dropped: nothing waits on anything yet. What comes after
/// stays queued for the connection's own dispatch.
///
/// libdbus authenticates lazily, and sends the queued message as soon as authentication is
/// done; a stopped peer accepts the socket but never answers, so each step is bounded here.
fn drive(
    channel: &Channel,
    first: First,
    deadline: &Deadline,
) -> Result<Option<Message>, OpenFailure> {
    let serial = channel
        .send(first.message)
        .map_err(|()| OpenFailure::Failed(dbus::Error::new_failed("cannot queue a message")))?;
    let mut reply = None;
    loop {
        let done = |reply: &Option<Message>| {
            !channel.has_messages_to_send() && (reply.is_some() || !first.await_reply)
        };
        while first.await_reply && reply.is_none() {
            let Some(msg) = channel.pop_message() else {
                break;
            };
            if msg.get_reply_serial() == Some(serial) {
                reply = Some(msg);
            }
        }
        if done(&reply) {
            return Ok(reply);
        }
        if !channel.is_connected() {
            return Err(OpenFailure::Failed(dbus::Error::new_custom(
                errors::DISCONNECTED,
                "the peer closed the connection",
            )));
        }
        let Some(slice) = deadline.next_slice() else {
            let step = if channel.has_messages_to_send() {
                ConnectStep::Authentication
            } else {
                first.step
            };
            return Err(OpenFailure::TimedOut(step));
        };
        channel.read_write(Some(slice)).map_err(|()| {
            OpenFailure::Failed(dbus::Error::new_custom(
                errors::DISCONNECTED,
                "the connection broke",
            ))
        })?;
    }
}

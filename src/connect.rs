//! Connecting: which bus (or private socket) reaches the systemd manager, and opening it.

use dbus::Message;
use dbus::blocking::Connection;
use dbus::channel::Channel;
use std::fmt;

use crate::deadline::Deadline;
use crate::error::{BusError, Error, Result};
use crate::remote::Remote;
use crate::watch::{MANAGER_PATH, SYSTEMD_NAME};

/// Where the systemd manager is reached.
///
/// | variant | address | use |
/// |---|---|---|
/// | [`System`](Bus::System) | `DBUS_SYSTEM_BUS_ADDRESS` or `/run/dbus/system_bus_socket` | system services (root or polkit) |
/// | [`User`](Bus::User) | `DBUS_SESSION_BUS_ADDRESS`, else `$XDG_RUNTIME_DIR/bus` | the caller's `systemd --user` |
/// | [`Address`](Bus::Address) | as given, e.g. `unix:path=/run/user/1000/bus` | a bus elsewhere |
/// | [`PrivateSystem`](Bus::PrivateSystem) | `unix:path=/run/systemd/private` | system manager with no bus daemon (root) |
/// | [`PrivateUser`](Bus::PrivateUser) | `unix:path=$XDG_RUNTIME_DIR/systemd/private` | user manager with no bus daemon |
/// | [`PrivateAddress`](Bus::PrivateAddress) | as given | a manager's private socket elsewhere |
/// | [`Remote`](Bus::Remote) | `unixexec:` running `ssh HOST systemd-stdio-bridge` | a manager on another machine |
///
/// The private variants talk to the manager directly, as `systemctl` does: no bus daemon is
/// involved, so they work while it is down or being upgraded. Only the manager's own user (root
/// for the system manager) may connect there.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Bus {
    /// The system bus (the default).
    #[default]
    System,
    /// The caller's user bus.
    User,
    /// A bus daemon at this D-Bus address.
    Address(String),
    /// The system manager's private socket, `/run/systemd/private`.
    PrivateSystem,
    /// The user manager's private socket, `$XDG_RUNTIME_DIR/systemd/private`.
    PrivateUser,
    /// A manager's private socket at this D-Bus address.
    PrivateAddress(String),
    /// The system or user manager of another machine, over ssh (as `systemctl -H`).
    Remote(Remote),
}

impl Bus {
    /// Whether this is a direct connection to the manager, with no bus daemon in between.
    pub fn is_direct(&self) -> bool {
        matches!(
            self,
            Bus::PrivateSystem | Bus::PrivateUser | Bus::PrivateAddress(_)
        )
    }

    /// The D-Bus address this resolves to.
    ///
    /// # Errors
    /// [`Error::Connect`] for the user variants when neither `DBUS_SESSION_BUS_ADDRESS` nor
    /// `XDG_RUNTIME_DIR` says where the user bus is.
    pub fn address(&self) -> Result<String> {
        let runtime_dir = || {
            std::env::var("XDG_RUNTIME_DIR")
                .ok()
                .filter(|d| !d.is_empty())
                .ok_or_else(|| Error::Connect {
                    target: self.to_string(),
                    source: BusError::new(
                        "org.freedesktop.DBus.Error.NotSupported",
                        "XDG_RUNTIME_DIR is not set, so the user manager cannot be found",
                    ),
                })
        };
        let from_env = |name: &str| std::env::var(name).ok().filter(|a| !a.is_empty());
        Ok(match self {
            Bus::System => from_env("DBUS_SYSTEM_BUS_ADDRESS")
                .unwrap_or_else(|| "unix:path=/run/dbus/system_bus_socket".to_owned()),
            Bus::User => match from_env("DBUS_SESSION_BUS_ADDRESS") {
                Some(a) => a,
                None => format!("unix:path={}/bus", runtime_dir()?),
            },
            Bus::Address(a) | Bus::PrivateAddress(a) => a.clone(),
            Bus::PrivateSystem => "unix:path=/run/systemd/private".to_owned(),
            Bus::PrivateUser => format!("unix:path={}/systemd/private", runtime_dir()?),
            Bus::Remote(remote) => remote.address(),
        })
    }

    /// Opens a connection and sends `setup` right behind the first message, all within
    /// `deadline`; returns once every call has its reply.
    ///
    /// On a bus the first message is `Hello`, and the bus daemon handles one connection's
    /// messages in order, so the setup calls are handled after registration and need no
    /// round trip of their own. On a private socket the first message is the padded `Ping`
    /// of [`Bus::open_direct`], and connecting ends once it is written.
    pub(crate) fn open(&self, setup: Vec<Call>, deadline: &Deadline) -> Result<Opened> {
        let fail = |e: dbus::Error| Error::Connect {
            target: self.to_string(),
            source: e.into(),
        };
        let first = if self.is_direct() {
            padded_ping()
        } else {
            hello()
        };
        // Over ssh, a connection that breaks before authenticating is looked into: ssh, the
        // bridge, or the bus on the other side.
        let fail = |e: dbus::Error| match self {
            Bus::Remote(remote) => match remote.diagnose(deadline) {
                Some(problem) => Error::RemoteUnreachable {
                    target: self.to_string(),
                    problem,
                },
                None => fail(e),
            },
            _ => fail(e),
        };
        let channel = Channel::open_private(&self.address()?).map_err(fail)?;
        let mut calls = vec![first];
        calls.extend(setup);
        let mut replies =
            handshake(&channel, calls, deadline).map_err(|failure| match failure {
                OpenFailure::Failed(e) => fail(e),
                OpenFailure::TimedOut(step) => Error::ConnectTimeout {
                    target: self.to_string(),
                    step,
                    waited: deadline.elapsed(),
                },
            })?;
        if !self.is_direct() {
            let mut hello_reply = replies.remove(0);
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
            register_unique_name(&channel, &name);
        }
        log::debug!("connected to {self}");
        Ok(Opened {
            conn: Connection::from(channel),
            replies: replies.into_iter().map(into_result).collect(),
        })
    }

    /// Opens a direct connection to a manager's private socket: authenticated by the
    /// manager and the padded `Ping` written, within `deadline`. The `Ping`'s reply is left to
    /// the connection, like anything the manager sends after it. Also used to connect again
    /// after the manager re-executed.
    pub(crate) fn open_direct(
        &self,
        deadline: &Deadline,
    ) -> std::result::Result<Connection, OpenFailure> {
        let addr = self
            .address()
            .map_err(|e| OpenFailure::Failed(dbus::Error::new_failed(&e.to_string())))?;
        let channel = Channel::open_private(&addr).map_err(OpenFailure::Failed)?;
        handshake(&channel, vec![padded_ping()], deadline)?;
        Ok(Connection::from(channel))
    }
}

/// A call queued while connecting, with the name of its step for a timeout.
pub(crate) struct Call {
    pub(crate) message: Message,
    pub(crate) step: &'static str,
    /// Whether connecting waits for its reply; otherwise only until it is written (which
    /// libdbus does once authentication is done), and its reply is left to the connection.
    pub(crate) await_reply: bool,
}

/// A connection just opened, with the replies to the setup calls sent with it.
pub(crate) struct Opened {
    pub(crate) conn: Connection,
    /// The replies to the setup calls, in the order queued.
    pub(crate) replies: Vec<std::result::Result<Message, dbus::Error>>,
}

/// A reply, or the error it carries.
fn into_result(mut reply: Message) -> std::result::Result<Message, dbus::Error> {
    reply.as_result()?;
    Ok(reply)
}

/// `Hello` to the bus daemon: registration, which assigns our unique name.
fn hello() -> Call {
    Call {
        message: Message::new_method_call(
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "Hello",
        )
        .expect("valid Hello"),
        step: "registration (Hello)",
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
fn padded_ping() -> Call {
    Call {
        message: Message::new_method_call(
            SYSTEMD_NAME,
            MANAGER_PATH,
            "org.freedesktop.DBus.Peer",
            "Ping",
        )
        .expect("valid Ping")
        .append1(" ".repeat(FIRST_MESSAGE_PADDING)),
        step: "first call",
        await_reply: false,
    }
}

/// Queues `calls` on a fresh channel and drives it with `read_write`, in slices of what is
/// left of `deadline`, until every call is written and each that awaits a reply has it.
/// Returns those replies in the order of their calls. Other messages that arrive before the
/// last of them are dropped: nothing waits on a job yet, and systemd's owner comes from
/// `GetNameOwner`, answered after the owner rule took effect. What comes after stays queued
/// for the connection's own dispatch (and its filters).
///
/// libdbus authenticates lazily, and its blocking calls do not bound that step (a stopped
/// peer accepts the socket but never answers), so nothing here blocks without the deadline:
/// libdbus sends the queued messages as soon as authentication is done.
fn handshake(
    channel: &Channel,
    calls: Vec<Call>,
    deadline: &Deadline,
) -> std::result::Result<Vec<Message>, OpenFailure> {
    struct Pending {
        serial: u32,
        step: &'static str,
        reply: Option<Message>,
    }
    let mut pending = Vec::with_capacity(calls.len());
    for call in calls {
        let serial = channel
            .send(call.message)
            .map_err(|()| OpenFailure::Failed(dbus::Error::new_failed("cannot queue a message")))?;
        if call.await_reply {
            pending.push(Pending {
                serial,
                step: call.step,
                reply: None,
            });
        }
    }
    let done = |pending: &[Pending]| {
        !channel.has_messages_to_send() && pending.iter().all(|p| p.reply.is_some())
    };
    loop {
        while !done(&pending)
            && let Some(msg) = channel.pop_message()
        {
            if let Some(p) = msg
                .get_reply_serial()
                .and_then(|r| pending.iter_mut().find(|p| p.serial == r))
            {
                p.reply = Some(msg);
            }
        }
        if done(&pending) {
            return Ok(pending.into_iter().filter_map(|p| p.reply).collect());
        }
        if !channel.is_connected() {
            return Err(OpenFailure::Failed(dbus::Error::new_custom(
                "org.freedesktop.DBus.Error.Disconnected",
                "the peer closed the connection",
            )));
        }
        let Some(slice) = deadline.next_slice() else {
            let step = if channel.has_messages_to_send() {
                "authentication"
            } else {
                pending
                    .iter()
                    .find(|p| p.reply.is_none())
                    .map_or("authentication", |p| p.step)
            };
            return Err(OpenFailure::TimedOut(step));
        };
        channel.read_write(Some(slice)).map_err(|()| {
            OpenFailure::Failed(dbus::Error::new_custom(
                "org.freedesktop.DBus.Error.Disconnected",
                "the connection broke",
            ))
        })?;
    }
}

/// Tells libdbus the unique name the bus daemon gave us in reply to our own `Hello`, as
/// `dbus_bus_register` would have (`dbus_bus_set_unique_name` exists for callers that
/// register by hand, as here, so that the blocking `Hello` is not needed).
///
/// The `dbus` crate does not hand out its connection pointer; its `Channel` prints it in its
/// `Debug` output (`ConnHandle(0x…, …)`), which is where it is read from. If that ever fails
/// to parse, the name is not set: everything this crate does works without it, and only
/// `Connection::unique_name` (which panics on a missing name) needs it.
fn register_unique_name(channel: &Channel, name: &str) {
    unsafe extern "C" {
        fn dbus_bus_set_unique_name(
            connection: *mut std::ffi::c_void,
            unique_name: *const std::ffi::c_char,
        ) -> u32;
    }
    let debug = format!("{channel:?}");
    let Some(ptr) = connection_pointer(&debug) else {
        log::warn!("cannot find libdbus's connection in {debug:?}: unique name not recorded");
        return;
    };
    let Ok(c_name) = std::ffi::CString::new(name) else {
        return;
    };
    // SAFETY: `ptr` is the live DBusConnection that `channel` owns (read from its own Debug
    // output), and the connection has no unique name yet: it was opened privately a moment
    // ago and never registered. libdbus copies the string.
    let ok = unsafe { dbus_bus_set_unique_name(ptr.cast(), c_name.as_ptr()) } != 0;
    if !ok || channel.unique_name() != Some(name) {
        log::warn!("libdbus did not record our unique name {name}");
    }
}

/// The address in `ConnHandle(0x…` of a `Channel`'s `Debug` output.
fn connection_pointer(debug: &str) -> Option<*mut u8> {
    let hex = debug.split("ConnHandle(0x").nth(1)?;
    let end = hex.find(|c: char| !c.is_ascii_hexdigit())?;
    let addr = usize::from_str_radix(&hex[..end], 16).ok()?;
    (addr != 0).then_some(addr as *mut u8)
}

/// Bytes of padding in the first message on a direct connection: enough that it cannot fit
/// into sd-bus's last authentication read (256 bytes) together with `BEGIN`.
const FIRST_MESSAGE_PADDING: usize = 256;

/// Why a direct connection could not be opened.
#[derive(Debug)]
pub(crate) enum OpenFailure {
    /// Refused, reset, or no such socket.
    Failed(dbus::Error),
    /// The deadline passed during this step.
    TimedOut(&'static str),
}

impl fmt::Display for Bus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Bus::System => f.write_str("the system bus"),
            Bus::User => f.write_str("the user bus"),
            Bus::Address(a) => write!(f, "the bus at {a}"),
            Bus::PrivateSystem => f.write_str("the system manager's private socket"),
            Bus::PrivateUser => f.write_str("the user manager's private socket"),
            Bus::PrivateAddress(a) => write!(f, "the manager's private socket at {a}"),
            Bus::Remote(r) => write!(f, "{r}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_pointer_is_found_in_a_channel_s_debug_output() {
        // A listening socket completes the connection through its backlog; nothing is sent.
        let dir = std::env::temp_dir().join(format!("systemd-jobs-ptr-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("socket");
        let _ = std::fs::remove_file(&path);
        let _listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let channel = Channel::open_private(&format!("unix:path={}", path.display())).unwrap();
        let debug = format!("{channel:?}");
        let _ = std::fs::remove_dir_all(&dir);
        assert!(connection_pointer(&debug).is_some(), "{debug}");
        // Before registering, libdbus knows no unique name; afterwards it knows ours.
        assert_eq!(channel.unique_name(), None);
        register_unique_name(&channel, ":1.42");
        assert_eq!(channel.unique_name(), Some(":1.42"));
    }

    #[test]
    fn connection_pointers_parse_only_from_the_expected_shape() {
        assert_eq!(
            connection_pointer(
                "Channel { handle: ConnHandle(0x55d0c0ffee10, true), watchmap: None }"
            ),
            Some(0x55d0_c0ff_ee10 as *mut u8)
        );
        assert_eq!(connection_pointer("ConnHandle(0x0, true)"), None);
        assert_eq!(connection_pointer("Channel { .. }"), None);
        assert_eq!(connection_pointer("ConnHandle(0xzz)"), None);
    }
}

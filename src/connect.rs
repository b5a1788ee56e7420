//! Connecting: which bus (or private socket) reaches the systemd manager, and opening it.

use dbus::Message;
use dbus::blocking::Connection;
use dbus::channel::Channel;
use std::fmt;

use crate::deadline::Deadline;
use crate::error::{BusError, Error, Result};
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
}

impl Bus {
    /// Whether this is a direct connection to the manager, with no bus daemon in between.
    pub fn is_direct(&self) -> bool {
        matches!(
            self,
            Bus::PrivateSystem | Bus::PrivateUser | Bus::PrivateAddress(_)
        )
    }

    /// The D-Bus address this resolves to, where it can be known without connecting
    /// (`None` for the system bus, which libdbus resolves itself).
    ///
    /// # Errors
    /// [`Error::Connect`] for the user variants when neither `DBUS_SESSION_BUS_ADDRESS` nor
    /// `XDG_RUNTIME_DIR` says where the user bus is.
    pub fn address(&self) -> Result<Option<String>> {
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
        Ok(match self {
            Bus::System => None,
            Bus::User => match std::env::var("DBUS_SESSION_BUS_ADDRESS") {
                Ok(a) if !a.is_empty() => Some(a),
                _ => Some(format!("unix:path={}/bus", runtime_dir()?)),
            },
            Bus::Address(a) | Bus::PrivateAddress(a) => Some(a.clone()),
            Bus::PrivateSystem => Some("unix:path=/run/systemd/private".to_owned()),
            Bus::PrivateUser => Some(format!("unix:path={}/systemd/private", runtime_dir()?)),
        })
    }

    /// Opens a connection; on a bus, registers with the daemon (`Hello`). A direct connection
    /// is authenticated and settled within `deadline`; see [`Bus::open_direct`].
    pub(crate) fn open(&self, deadline: &Deadline) -> Result<Connection> {
        let fail = |e: dbus::Error| Error::Connect {
            target: self.to_string(),
            source: e.into(),
        };
        let conn = match self.address()? {
            _ if self.is_direct() => match self.open_direct(deadline) {
                Ok((conn, _)) => conn,
                Err(OpenFailure::Failed(e)) => return Err(fail(e)),
                Err(OpenFailure::TimedOut(step)) => {
                    return Err(Error::ConnectTimeout {
                        target: self.to_string(),
                        step,
                        waited: deadline.elapsed(),
                    });
                }
            },
            None => Connection::new_system().map_err(fail)?,
            Some(addr) => Connection::new_address(&addr).map_err(fail)?,
        };
        log::debug!("connected to {self}");
        Ok(conn)
    }

    /// Opens a direct connection to a manager's private socket and makes sure the manager
    /// answers on it, all within `deadline`. Returns the connection and any message that
    /// arrived before the manager's first answer (signals it sent us meanwhile).
    ///
    /// libdbus authenticates lazily, and its blocking calls do not bound that step (a stopped
    /// manager accepts the socket but never answers). So the first message is queued and the
    /// connection driven with `read_write` in slices of what is left of the deadline until
    /// the answer arrives: libdbus sends the message as soon as authentication is done.
    ///
    /// The first message is a `Peer.Ping` padded with a string argument to well over 256
    /// bytes. systemd's sd-bus (seen with systemd 252) reads the end of authentication with
    /// at most 256 bytes at once; when a short first message arrives in the same read as
    /// `BEGIN`, it stays in sd-bus's buffer and the manager handles it only when the socket
    /// becomes readable again, which may be never. A longer first message cannot fit into
    /// that read, so the socket stays readable and the manager reads on. (sd-bus answers
    /// `Ping` whatever its arguments.)
    pub(crate) fn open_direct(
        &self,
        deadline: &Deadline,
    ) -> std::result::Result<(Connection, Vec<Message>), OpenFailure> {
        let addr = self
            .address()
            .ok()
            .flatten()
            .ok_or_else(|| OpenFailure::Failed(dbus::Error::new_failed("no address")))?;
        let channel = Channel::open_private(&addr).map_err(OpenFailure::Failed)?;
        let ping = Message::new_method_call(
            SYSTEMD_NAME,
            MANAGER_PATH,
            "org.freedesktop.DBus.Peer",
            "Ping",
        )
        .map_err(|e| OpenFailure::Failed(dbus::Error::new_failed(&e)))?
        .append1(" ".repeat(FIRST_MESSAGE_PADDING));
        let serial = channel
            .send(ping)
            .map_err(|()| OpenFailure::Failed(dbus::Error::new_failed("cannot queue Ping")))?;
        let mut early = Vec::new();
        loop {
            while let Some(msg) = channel.pop_message() {
                if msg.get_reply_serial() == Some(serial) {
                    return Ok((Connection::from(channel), early));
                }
                early.push(msg);
            }
            if !channel.is_connected() {
                return Err(OpenFailure::Failed(dbus::Error::new_custom(
                    "org.freedesktop.DBus.Error.Disconnected",
                    "the manager closed the connection",
                )));
            }
            let Some(slice) = deadline.next_slice() else {
                return Err(OpenFailure::TimedOut(if channel.has_messages_to_send() {
                    "authentication"
                } else {
                    "first call"
                }));
            };
            channel.read_write(Some(slice)).map_err(|()| {
                OpenFailure::Failed(dbus::Error::new_custom(
                    "org.freedesktop.DBus.Error.Disconnected",
                    "the connection broke",
                ))
            })?;
        }
    }
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
        }
    }
}

//! Connecting: which bus (or private socket) reaches the systemd manager, and opening it.

use std::fmt;
use std::time::Duration;

use dbus::Message;
use dbus::blocking::Connection;
use dbus::channel::Channel;

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

    /// Opens a connection; on a bus, registers with the daemon (`Hello`).
    ///
    /// Connecting is bounded by libdbus's own timeouts (the `Hello` call waits up to its
    /// default of 25 s for a daemon that accepted the socket but does not answer); the
    /// deadline of each job operation starts after this.
    pub(crate) fn open(&self) -> Result<Connection> {
        let fail = |e: dbus::Error| Error::Connect {
            target: self.to_string(),
            source: e.into(),
        };
        let conn = match self.address()? {
            None => Connection::new_system().map_err(fail)?,
            Some(addr) if self.is_direct() => {
                let conn = Connection::from(Channel::open_private(&addr).map_err(fail)?);
                settle_direct(&conn).map_err(fail)?;
                conn
            }
            Some(addr) => Connection::new_address(&addr).map_err(fail)?,
        };
        log::debug!("connected to {self}");
        Ok(conn)
    }
}

/// Makes sure a new direct connection to the manager is fully up before the first real call.
///
/// libdbus sends the first message in the same write as the end of authentication (`BEGIN`).
/// systemd's private socket (seen with systemd 252) then reads both at once and leaves the
/// message unprocessed until more bytes arrive, so a lone method call may never be answered.
/// Pinging until a reply comes settles this: each further ping wakes the manager, which then
/// handles everything buffered. Retries wait 25 ms, 50 ms, ... up to about 3 s in all.
fn settle_direct(conn: &Connection) -> Result<(), dbus::Error> {
    use dbus::blocking::BlockingSender;
    let mut wait = Duration::from_millis(25);
    loop {
        let ping = Message::new_method_call(
            SYSTEMD_NAME,
            MANAGER_PATH,
            "org.freedesktop.DBus.Peer",
            "Ping",
        )
        .map_err(|e| dbus::Error::new_failed(&e))?;
        match conn.send_with_reply_and_block(ping, wait) {
            Ok(_) => return Ok(()),
            Err(e)
                if e.name() == Some("org.freedesktop.DBus.Error.NoReply")
                    && wait < MAX_SETTLE_WAIT =>
            {
                log::debug!("private socket: no answer to Ping within {wait:?}, pinging again");
                wait *= 2;
            }
            Err(e) => return Err(e),
        }
    }
}

const MAX_SETTLE_WAIT: Duration = Duration::from_millis(1600);

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

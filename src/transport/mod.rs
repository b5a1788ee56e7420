//! Transports: which bus, private socket or remote host reaches the systemd manager
//! ([`Bus`]), and opening a connection to it under a deadline ([`handshake`]).

pub(crate) mod handshake;
pub(crate) mod remote;

use std::fmt;

use crate::error::{BusError, Error, Result};
use remote::Remote;

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
                None => unix_path(&format!("{}/bus", runtime_dir()?)),
            },
            Bus::Address(a) | Bus::PrivateAddress(a) => a.clone(),
            Bus::PrivateSystem => "unix:path=/run/systemd/private".to_owned(),
            Bus::PrivateUser => unix_path(&format!("{}/systemd/private", runtime_dir()?)),
            Bus::Remote(remote) => remote.address(),
        })
    }
}

/// The address of the socket at `path`, escaped as D-Bus addresses require.
fn unix_path(path: &str) -> String {
    format!("unix:path={}", crate::ffi::escape_address_value(path))
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

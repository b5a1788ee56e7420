//! The D-Bus side of systemd: names, messages and typed calls. Nothing here holds a
//! connection; every call goes through a [`BlockingSender`](dbus::blocking::BlockingSender)
//! given to it (the session's [`Caller`](crate::Caller)).

pub(crate) mod authorization;
pub(crate) mod calls;
pub(crate) mod unit_files;
pub(crate) mod unit_reader;

use dbus::Message;

pub(crate) const SYSTEMD_NAME: &str = "org.freedesktop.systemd1";
pub(crate) const MANAGER_PATH: &str = "/org/freedesktop/systemd1";
pub(crate) const MANAGER_IFACE: &str = "org.freedesktop.systemd1.Manager";
pub(crate) const JOB_IFACE: &str = "org.freedesktop.systemd1.Job";
pub(crate) const UNIT_IFACE: &str = "org.freedesktop.systemd1.Unit";
pub(crate) const BUS_NAME: &str = "org.freedesktop.DBus";
pub(crate) const BUS_PATH: &str = "/org/freedesktop/DBus";
pub(crate) const PROPERTIES_IFACE: &str = "org.freedesktop.DBus.Properties";

/// D-Bus error names this crate tells apart.
pub(crate) mod errors {
    pub(crate) const ACCESS_DENIED: &str = "org.freedesktop.DBus.Error.AccessDenied";
    pub(crate) const INTERACTIVE_AUTHORIZATION_REQUIRED: &str =
        "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired";
    pub(crate) const DISCONNECTED: &str = "org.freedesktop.DBus.Error.Disconnected";
    pub(crate) const NO_REPLY: &str = "org.freedesktop.DBus.Error.NoReply";
    pub(crate) const UNKNOWN_METHOD: &str = "org.freedesktop.DBus.Error.UnknownMethod";
    pub(crate) const NO_SUCH_JOB: &str = "org.freedesktop.systemd1.NoSuchJob";
    pub(crate) const FAILED: &str = "org.freedesktop.DBus.Error.Failed";
    pub(crate) const FILE_NOT_FOUND: &str = "org.freedesktop.DBus.Error.FileNotFound";
}

/// A call to the bus daemon itself with one string argument (`AddMatch`, `RemoveMatch`...).
pub(crate) fn bus_call(member: &str, arg: &str) -> Message {
    Message::new_method_call(BUS_NAME, BUS_PATH, BUS_NAME, member)
        .expect("valid bus daemon call")
        .append1(arg)
}

/// A method call on the manager object.
pub(crate) fn manager_call(member: &str) -> Message {
    Message::new_method_call(SYSTEMD_NAME, MANAGER_PATH, MANAGER_IFACE, member)
        .expect("valid manager call")
}

/// A property of the manager object (`Get` on `org.freedesktop.systemd1.Manager`).
pub(crate) fn manager_property(name: &str) -> Message {
    Message::new_method_call(SYSTEMD_NAME, MANAGER_PATH, PROPERTIES_IFACE, "Get")
        .expect("valid manager property call")
        .append2(MANAGER_IFACE, name)
}

/// Whether systemd (or polkit for it) refused a call, as opposed to failing it.
pub(crate) fn is_refusal(e: &dbus::Error) -> bool {
    matches!(
        e.name(),
        Some(errors::ACCESS_DENIED | errors::INTERACTIVE_AUTHORIZATION_REQUIRED)
    )
}

/// Whether the bus daemon itself refused a call by its policy (dbus-daemon's "Rejected send
/// message", dbus-broker's "not authorized to send"), as opposed to the manager or polkit
/// refusing it after it arrived.
pub(crate) fn refused_by_bus_policy(e: &dbus::Error) -> bool {
    e.name() == Some(errors::ACCESS_DENIED)
        && e.message().is_some_and(|m| {
            m.starts_with("Rejected send message") || m.contains("not authorized to send")
        })
}

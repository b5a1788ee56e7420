//! Letting polkit ask the user: the D-Bus `ALLOW_INTERACTIVE_AUTHORIZATION` header flag on the
//! calls that ask systemd to act.
//!
//! The `dbus` crate has no setter for this flag and keeps the raw libdbus message to itself,
//! so the flag is set on the message's wire form: the message is given a serial, marshalled,
//! flag bit `0x4` is set in the header's flags byte (byte 2 in either byte order), and the
//! bytes are demarshalled into the message that is sent. libdbus sends a message that already
//! has a serial with that serial and matches the reply to it, so the call behaves exactly like
//! any other blocking call.
//!
//! The serials given here come from the upper half of the `u32` range, counting up from
//! `0x8000_0000`. libdbus numbers a connection's own messages from 1 upwards, so the two can
//! only meet after two billion messages on one connection. That matters: libdbus matches a
//! reply to a call by serial alone, so a serial used twice would hand a late reply to an
//! earlier, timed-out call to the later one (`tests/authorization.rs` shows this).

use std::sync::atomic::{AtomicU32, Ordering};

use dbus::Message;

/// The header flag, from the D-Bus specification ("Message Format", header flags).
const ALLOW_INTERACTIVE_AUTHORIZATION: u8 = 0x4;

/// Where the flags byte sits in a marshalled message: after the endianness and type bytes.
const FLAGS_BYTE: usize = 2;

/// The first serial handed out; see the module documentation for why this range.
const FIRST_SERIAL: u32 = 0x8000_0000;

static NEXT_SERIAL: AtomicU32 = AtomicU32::new(0);

/// A serial in `0x8000_0000..=0xffff_ffff`, different from the previous 2³¹ ones.
fn next_serial() -> u32 {
    serial_for(NEXT_SERIAL.fetch_add(1, Ordering::Relaxed))
}

/// The `count`-th serial handed out: the counter's low 31 bits in the upper half, so the
/// sequence wraps within it and never reaches zero (which D-Bus forbids).
fn serial_for(count: u32) -> u32 {
    FIRST_SERIAL | (count & !FIRST_SERIAL)
}

/// Returns `msg` with the `ALLOW_INTERACTIVE_AUTHORIZATION` flag set (and a serial, if it had
/// none). Everything else (destination, path, interface, member, arguments, other flags) is
/// carried over byte for byte.
///
/// # Errors
/// libdbus's error if the patched bytes do not load back into a message (not expected: only
/// a header flag changes).
pub(crate) fn allow_interactive(mut msg: Message) -> Result<Message, dbus::Error> {
    if msg.get_serial().is_none() {
        msg.set_serial(next_serial());
    }
    let mut wire = wire_form(&msg);
    wire[FLAGS_BYTE] |= ALLOW_INTERACTIVE_AUTHORIZATION;
    Message::demarshal(&wire)
}

/// The message as it goes on the wire (libdbus's `dbus_message_marshal`).
fn wire_form(msg: &Message) -> Vec<u8> {
    let mut wire = Vec::new();
    msg.marshal(|bytes| {
        wire.extend_from_slice(bytes);
        Ok::<(), std::convert::Infallible>(())
    })
    .unwrap_or_else(|never| match never {});
    wire
}

/// Whether `msg` carries the `ALLOW_INTERACTIVE_AUTHORIZATION` flag.
#[cfg(test)]
fn allows_interactive(msg: &Message) -> bool {
    wire_form(msg)[FLAGS_BYTE] & ALLOW_INTERACTIVE_AUTHORIZATION != 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{MANAGER_IFACE, MANAGER_PATH, SYSTEMD_NAME};

    fn restart_call() -> Message {
        Message::new_method_call(SYSTEMD_NAME, MANAGER_PATH, MANAGER_IFACE, "RestartUnit")
            .unwrap()
            .append2("a.service", "replace")
    }

    #[test]
    fn the_flag_is_set_and_nothing_else_changes() {
        let plain = restart_call();
        assert!(!allows_interactive(&plain));
        let flagged = allow_interactive(restart_call()).unwrap();
        assert!(allows_interactive(&flagged));
        assert_eq!(flagged.destination(), plain.destination());
        assert_eq!(flagged.path(), plain.path());
        assert_eq!(flagged.interface(), plain.interface());
        assert_eq!(flagged.member(), plain.member());
        assert_eq!(
            flagged.read2::<&str, &str>().unwrap(),
            ("a.service", "replace")
        );
        assert!(flagged.get_auto_start());
        assert!(!flagged.get_no_reply());
    }

    #[test]
    fn other_flags_are_kept() {
        let mut msg = restart_call();
        msg.set_no_reply(true);
        msg.set_auto_start(false);
        let flagged = allow_interactive(msg).unwrap();
        assert!(allows_interactive(&flagged));
        assert!(flagged.get_no_reply());
        assert!(!flagged.get_auto_start());
    }

    #[test]
    fn a_serial_already_set_is_kept() {
        let mut msg = restart_call();
        msg.set_serial(42);
        assert_eq!(allow_interactive(msg).unwrap().get_serial(), Some(42));
    }

    #[test]
    fn serials_come_from_the_upper_half_and_differ() {
        let a = allow_interactive(restart_call())
            .unwrap()
            .get_serial()
            .unwrap();
        let b = allow_interactive(restart_call())
            .unwrap()
            .get_serial()
            .unwrap();
        assert!(a >= FIRST_SERIAL && b >= FIRST_SERIAL, "{a:#x} {b:#x}");
        assert_ne!(a, b);
    }

    #[test]
    fn the_serial_counter_wraps_within_the_upper_half() {
        assert_eq!(serial_for(0), 0x8000_0000);
        assert_eq!(serial_for(1), 0x8000_0001);
        assert_eq!(serial_for(0x7fff_ffff), 0xffff_ffff);
        assert_eq!(serial_for(0x8000_0000), 0x8000_0000);
        assert_eq!(serial_for(u32::MAX), 0xffff_ffff);
    }
}

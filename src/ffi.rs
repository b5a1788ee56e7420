//! All of the crate's `unsafe` code: calls into C that neither `dbus` nor `std` offers.
//! Every block carries a `SAFETY` comment (enforced by `clippy::undocumented_unsafe_blocks`).

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::os::fd::RawFd;

use dbus::channel::Channel;

/// `CLOCK_MONOTONIC` now, in µs, the clock of systemd's `…TimestampMonotonic` properties.
/// (`std::time::Instant` reads the same clock on Linux but does not show its value.)
pub(crate) fn monotonic_usec() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec that outlives the call; CLOCK_MONOTONIC
    // always exists on Linux, so the call cannot fail and `ts` is always written.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000
}

/// Waits up to `timeout` until one of `fds` can be read (or has hung up), and says which
/// can (`poll(2)`): how the journal reader reads a subprocess's two pipes under a deadline
/// without a thread. An interrupted or failed wait reports none ready.
pub(crate) fn poll_readable(fds: &[RawFd], timeout: std::time::Duration) -> Vec<bool> {
    let mut polled: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let millis = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: `polled` is a valid, writable array of exactly `polled.len()` pollfd structs
    // that outlives the call; poll only reads `fd`/`events` and writes `revents`. A closed
    // or invalid fd is reported through `revents` (POLLNVAL), never undefined behaviour.
    let n = unsafe { libc::poll(polled.as_mut_ptr(), polled.len() as libc::nfds_t, millis) };
    polled.iter().map(|p| n > 0 && p.revents != 0).collect()
}

/// Tells libdbus the unique name the bus daemon gave us in reply to our own `Hello`, as
/// `dbus_bus_register` would have (`dbus_bus_set_unique_name` exists for callers that
/// register by hand, as here, so that libdbus's blocking `Hello`, which ignores every
/// timeout, is not needed). Returns whether libdbus now reports that name.
///
/// The `dbus` crate does not hand out its connection pointer; its `Channel` prints it in its
/// `Debug` output (`ConnHandle(0x…, …)`), which is where it is read from. That format is the
/// `dbus` crate's, which is why Cargo.toml bounds its version to the releases whose format
/// the unit test below has checked. If it ever fails to parse, the name is not set:
/// everything this crate does works without it, and only `Connection::unique_name` (which
/// panics on a missing name) needs it.
pub(crate) fn set_unique_name(channel: &Channel, name: &str) -> bool {
    unsafe extern "C" {
        fn dbus_bus_set_unique_name(
            connection: *mut std::ffi::c_void,
            unique_name: *const std::ffi::c_char,
        ) -> u32;
    }
    let debug = format!("{channel:?}");
    let Some(ptr) = connection_pointer(&debug) else {
        log::warn!("cannot find libdbus's connection in {debug:?}: unique name not recorded");
        return false;
    };
    let Ok(c_name) = std::ffi::CString::new(name) else {
        return false;
    };
    // SAFETY: `ptr` is the live DBusConnection that `channel` owns: the `dbus` versions that
    // Cargo.toml allows print exactly that pointer as `ConnHandle(0x…` (checked by the unit
    // test below against a live connection), and `channel` is borrowed for the whole call, so
    // the connection cannot be freed meanwhile. The connection has no unique name yet (it was
    // opened privately a moment ago and never registered), which is what libdbus requires.
    // libdbus copies the string, so `c_name` may be dropped afterwards.
    let ok = unsafe { dbus_bus_set_unique_name(ptr.cast(), c_name.as_ptr()) } != 0;
    ok && channel.unique_name() == Some(name)
}

unsafe extern "C" {
    fn dbus_address_escape_value(value: *const c_char) -> *mut c_char;
    fn dbus_free(memory: *mut c_void);
    fn dbus_parse_address(
        address: *const c_char,
        entries: *mut *mut *mut c_void,
        len: *mut c_int,
        error: *mut c_void,
    ) -> u32;
    fn dbus_address_entry_get_method(entry: *mut c_void) -> *const c_char;
    fn dbus_address_entry_get_value(entry: *mut c_void, key: *const c_char) -> *const c_char;
    fn dbus_address_entries_free(entries: *mut *mut c_void);
}

/// `value` escaped for a D-Bus address by libdbus itself (`dbus_address_escape_value`): the
/// value that libdbus's parser gives back exactly. A NUL byte, which no C string holds, is
/// written as `%00`, where libdbus's reader ends the value, as `execve` would.
pub(crate) fn escape_address_value(value: &str) -> String {
    value
        .split('\0')
        .map(|piece| {
            let c_piece = CString::new(piece).expect("split at every NUL");
            // SAFETY: `c_piece` is a valid NUL-terminated string for the whole call. The
            // result is NULL (out of memory) or a NUL-terminated string libdbus allocated,
            // copied here and then released with libdbus's own `dbus_free`, once.
            unsafe {
                let escaped = dbus_address_escape_value(c_piece.as_ptr());
                if escaped.is_null() {
                    std::alloc::handle_alloc_error(std::alloc::Layout::new::<u8>());
                }
                let out = CStr::from_ptr(escaped).to_string_lossy().into_owned();
                dbus_free(escaped.cast());
                out
            }
        })
        .collect::<Vec<_>>()
        .join("%00")
}

/// The `key` values of the entries of `address` whose transport is `method`, unescaped, as
/// libdbus's own parser reads them (`dbus_parse_address`); none for an address it refuses.
pub(crate) fn address_values(address: &str, method: &str, key: &str) -> Vec<String> {
    let (Ok(c_address), Ok(c_key)) = (CString::new(address), CString::new(key)) else {
        return Vec::new();
    };
    let mut entries: *mut *mut c_void = std::ptr::null_mut();
    let mut len: c_int = 0;
    let mut values = Vec::new();
    // SAFETY: every pointer passed is valid for its call; a NULL `DBusError` is allowed.
    // On success libdbus fills `entries` with `len` valid entry pointers, which are read
    // (method and values are strings the entries own, copied before the entries are freed)
    // and then freed once with libdbus's own function.
    unsafe {
        if dbus_parse_address(
            c_address.as_ptr(),
            &mut entries,
            &mut len,
            std::ptr::null_mut(),
        ) == 0
        {
            return values;
        }
        for i in 0..usize::try_from(len).unwrap_or(0) {
            let entry = *entries.add(i);
            let m = dbus_address_entry_get_method(entry);
            if m.is_null() || CStr::from_ptr(m).to_bytes() != method.as_bytes() {
                continue;
            }
            let v = dbus_address_entry_get_value(entry, c_key.as_ptr());
            if !v.is_null() {
                values.push(CStr::from_ptr(v).to_string_lossy().into_owned());
            }
        }
        dbus_address_entries_free(entries);
    }
    values
}

/// The address in `ConnHandle(0x…` of a `Channel`'s `Debug` output.
fn connection_pointer(debug: &str) -> Option<*mut u8> {
    let hex = debug.split("ConnHandle(0x").nth(1)?;
    let end = hex.find(|c: char| !c.is_ascii_hexdigit())?;
    let addr = usize::from_str_radix(&hex[..end], 16).ok()?;
    (addr != 0).then_some(addr as *mut u8)
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
        assert!(set_unique_name(&channel, ":1.42"));
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

    #[test]
    fn address_values_round_trip_through_libdbus() {
        for value in ["/run/x y/bus", "a,b;c=d%e", "é\\*"] {
            let escaped = escape_address_value(value);
            let address = format!("tcp:host=h;unix:guid=0,path={escaped};unix:abstract=z");
            assert_eq!(
                address_values(&address, "unix", "path"),
                [value],
                "{address}"
            );
        }
        assert_eq!(escape_address_value("a\0b"), "a%00b");
        // libdbus refuses a bad escape and an empty value, so nothing is read from them.
        assert!(address_values("unix:path=%zz", "unix", "path").is_empty());
        assert!(address_values("unix:path=", "unix", "path").is_empty());
        assert!(address_values("no colon", "unix", "path").is_empty());
    }

    #[test]
    fn the_monotonic_clock_moves_forward() {
        let a = monotonic_usec();
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert!(monotonic_usec() >= a + 2000);
    }
}

//! Differential checks of `[USER@]HOST[:PORT]` against the real implementations: every
//! generated spec that `Remote` accepts becomes a `unixexec:` address that libdbus's own
//! parser (`dbus_parse_address`) turns back into exactly the intended argument vector, and
//! `ssh -G` given that vector resolves the same user, host and port, with nothing from the
//! spec before `--`. Seeded: `SYSTEMD_JOBS_SEED=N` reproduces a run (the seed is printed);
//! CI uses the fixed default.

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::process::Command;

use systemd_jobs::Remote;

const CASES: usize = 3000;
const DEFAULT_SEED: u64 = 0x5eed_2026;

/// libdbus's `DBusError`, as its header lays it out.
#[repr(C)]
struct DBusError {
    name: *const c_char,
    message: *const c_char,
    dummy: u32,
    padding: *mut c_void,
}

unsafe extern "C" {
    fn dbus_error_init(error: *mut DBusError);
    fn dbus_error_free(error: *mut DBusError);
    fn dbus_parse_address(
        address: *const c_char,
        entries: *mut *mut *mut c_void,
        len: *mut c_int,
        error: *mut DBusError,
    ) -> u32;
    fn dbus_address_entry_get_method(entry: *mut c_void) -> *const c_char;
    fn dbus_address_entry_get_value(entry: *mut c_void, key: *const c_char) -> *const c_char;
    fn dbus_address_entries_free(entries: *mut *mut c_void);
}

/// The program and argument vector libdbus reads from a one-entry `unixexec:` address.
fn libdbus_argv(address: &str) -> Result<(String, Vec<String>), String> {
    let c_address = CString::new(address).map_err(|e| e.to_string())?;
    let mut entries: *mut *mut c_void = std::ptr::null_mut();
    let mut len: c_int = 0;
    let mut error = DBusError {
        name: std::ptr::null(),
        message: std::ptr::null(),
        dummy: 0,
        padding: std::ptr::null_mut(),
    };
    // SAFETY: every pointer is valid for the call; libdbus fills `entries` and `len` on
    // success and `error` on failure, and each is freed below with libdbus's own functions.
    unsafe {
        dbus_error_init(&mut error);
        if dbus_parse_address(c_address.as_ptr(), &mut entries, &mut len, &mut error) == 0 {
            let said = CStr::from_ptr(error.message).to_string_lossy().into_owned();
            dbus_error_free(&mut error);
            return Err(said);
        }
        let read = |key: &str| {
            let key = CString::new(key).unwrap();
            let value = dbus_address_entry_get_value(*entries, key.as_ptr());
            (!value.is_null()).then(|| CStr::from_ptr(value).to_string_lossy().into_owned())
        };
        let method = CStr::from_ptr(dbus_address_entry_get_method(*entries))
            .to_string_lossy()
            .into_owned();
        let path = read("path");
        let mut argv = Vec::new();
        let mut i = 1;
        while let Some(arg) = read(&format!("argv{i}")) {
            argv.push(arg);
            i += 1;
        }
        dbus_address_entries_free(entries);
        if len != 1 || method != "unixexec" {
            return Err(format!("{len} entries, method {method}"));
        }
        Ok((path.ok_or("no path")?, argv))
    }
}

/// A small, seeded generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// A spec built from the pieces that matter to `[USER@]HOST[:PORT]`, to ssh and to
    /// D-Bus addresses.
    fn spec(&mut self) -> String {
        const PIECES: &[&str] = &[
            "a",
            "Host",
            "db1",
            ".",
            "-",
            "_",
            "@",
            ":",
            "::1",
            "[",
            "]",
            "2222",
            "0",
            "65536",
            "22",
            " ",
            "\n",
            "%",
            ",",
            "=",
            ";",
            "'",
            "\"",
            "$",
            "\\",
            "é",
            "*",
            "/",
            "-o",
            "ProxyCommand=x",
            "|",
            "&",
            "(",
            ")",
            "{",
            "}",
            "<",
            ">",
            "`",
            "\t",
            "root",
        ];
        let n = self.below(7);
        (0..n).map(|_| PIECES[self.below(PIECES.len())]).collect()
    }
}

/// What `ssh -G` resolves for `args`: user, host (the destination's host as ssh read it,
/// before it normalises an address such as `65536` to `0.1.0.0`), port; or what it said.
fn ssh_resolves(args: &[String]) -> Result<(String, String, String), String> {
    let out = Command::new("ssh")
        .arg("-G")
        .args(args)
        .env("HOME", "/nonexistent")
        .output()
        .map_err(|e| format!("ssh: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
    }
    let get = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key} ")))
            .unwrap_or_default()
            .to_owned()
    };
    Ok((get("user"), get("host"), get("port")))
}

#[test]
fn accepted_specs_round_trip_through_libdbus_and_mean_the_same_to_ssh() {
    if Command::new("ssh").arg("-V").output().is_err() {
        panic!("ssh is missing (install openssh-client)");
    }
    let seed = std::env::var("SYSTEMD_JOBS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_SEED);
    eprintln!("seed {seed} (SYSTEMD_JOBS_SEED={seed} reproduces this run)");
    let mut rng = Rng(seed | 1);
    let local_user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout)
        .unwrap()
        .trim()
        .to_owned();
    let (mut accepted, mut refused) = (0, 0);
    for case in 0..CASES {
        let spec = rng.spec();
        let Ok(remote) = spec.parse::<Remote>() else {
            refused += 1;
            continue;
        };
        accepted += 1;
        let address = remote.address();
        let (path, argv) = libdbus_argv(&address)
            .unwrap_or_else(|e| panic!("case {case} {spec:?}: libdbus refused {address:?}: {e}"));
        assert!(path.ends_with("/ssh"), "case {case} {spec:?}: {path}");
        // Before `--` only the crate's own options (and the port, a number).
        let dashes = argv.iter().position(|a| a == "--").expect("--");
        let before = &argv[..dashes];
        let expected_before: Vec<String> = ["-xT", "-oBatchMode=yes"]
            .iter()
            .map(|s| s.to_string())
            .chain(
                remote
                    .port
                    .iter()
                    .flat_map(|p| ["-p".to_owned(), p.to_string()]),
            )
            .collect();
        assert_eq!(before, expected_before, "case {case} {spec:?}");
        assert_eq!(argv.len(), dashes + 3, "case {case} {spec:?}: {argv:?}");
        let destination = &argv[dashes + 1];
        let expected_destination = match &remote.user {
            Some(u) => format!("{u}@{}", remote.host),
            None => remote.host.clone(),
        };
        assert_eq!(destination, &expected_destination, "case {case} {spec:?}");
        // What ssh makes of it.
        let (user, host, port) = ssh_resolves(&argv)
            .unwrap_or_else(|e| panic!("case {case} {spec:?}: accepted, but ssh says: {e}"));
        assert_eq!(
            user,
            remote.user.clone().unwrap_or(local_user.clone()),
            "case {case} {spec:?}"
        );
        assert_eq!(host, remote.host, "case {case} {spec:?}");
        assert_eq!(
            port,
            remote.port.unwrap_or(22).to_string(),
            "case {case} {spec:?}"
        );
    }
    eprintln!("{accepted} accepted and checked, {refused} refused, of {CASES}");
    assert!(accepted > CASES / 10, "too few accepted: {accepted}");
}

//! What the differential tests share: a seeded generator and libdbus's own address parser.
//!
//! `SYSTEMD_JOBS_SEED=N` reproduces a run (each test prints its seed); CI uses the fixed
//! default.

use std::collections::HashMap;
use std::ffi::{CStr, CString, c_char, c_int, c_void};

/// The seed used when `SYSTEMD_JOBS_SEED` is not set.
pub const DEFAULT_SEED: u64 = 0x5eed_2026;

/// A small, seeded generator (xorshift64*).
pub struct Rng(u64);

impl Rng {
    /// The generator for this run, seeded from `SYSTEMD_JOBS_SEED` or [`DEFAULT_SEED`]; the
    /// seed is printed.
    pub fn from_env(test: &str) -> Rng {
        let seed = std::env::var("SYSTEMD_JOBS_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(DEFAULT_SEED);
        eprintln!("{test}: seed {seed} (SYSTEMD_JOBS_SEED={seed} reproduces this run)");
        Rng(seed | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// One of `items`.
    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    /// Up to `most` of `pieces`, joined.
    pub fn join(&mut self, pieces: &[&str], most: usize) -> String {
        let n = self.below(most + 1);
        (0..n).map(|_| self.pick(pieces)).collect()
    }
}

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

/// One entry of an address as libdbus reads it: its method and the values of the keys asked
/// for (and of `argv1`, `argv2`, ... as long as they go on), unescaped.
#[derive(Debug)]
pub struct AddressEntry {
    pub method: String,
    pub values: HashMap<String, String>,
    pub argv: Vec<String>,
}

/// `address` parsed by libdbus (`dbus_parse_address`), or what libdbus said.
pub fn libdbus_parse(address: &str, keys: &[&str]) -> Result<Vec<AddressEntry>, String> {
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
        let mut parsed = Vec::new();
        for i in 0..len as usize {
            let entry = *entries.add(i);
            let read = |key: &str| {
                let key = CString::new(key).unwrap();
                let value = dbus_address_entry_get_value(entry, key.as_ptr());
                (!value.is_null()).then(|| CStr::from_ptr(value).to_string_lossy().into_owned())
            };
            let mut values = HashMap::new();
            for key in keys {
                if let Some(v) = read(key) {
                    values.insert(key.to_string(), v);
                }
            }
            let mut argv = Vec::new();
            while let Some(arg) = read(&format!("argv{}", argv.len() + 1)) {
                argv.push(arg);
            }
            let method = CStr::from_ptr(dbus_address_entry_get_method(entry))
                .to_string_lossy()
                .into_owned();
            parsed.push(AddressEntry {
                method,
                values,
                argv,
            });
        }
        dbus_address_entries_free(entries);
        Ok(parsed)
    }
}

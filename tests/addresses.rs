//! Differential check of the addresses the crate writes against libdbus's own parser
//! (`dbus_parse_address`, which the connection itself uses): for generated runtime
//! directories holding every byte that D-Bus addresses escape (`%`, `,`, `;`, `=`, spaces,
//! non-ASCII), the user bus's and the user manager's private socket's addresses parse back
//! to exactly `$XDG_RUNTIME_DIR/bus` and `$XDG_RUNTIME_DIR/systemd/private`. Seeded (see
//! `tests/common/differential.rs`). This test binary's only test: it sets the environment.

mod common;

use common::differential::{Rng, libdbus_parse};
use systemd_jobs::Bus;

const CASES: usize = 3000;

#[test]
fn runtime_directories_round_trip_through_libdbus() {
    const PIECES: &[&str] = &[
        "/",
        "run",
        "user",
        "1000",
        " ",
        "%",
        "%2f",
        ",",
        ";",
        "=",
        ":",
        "-",
        "_",
        ".",
        "..",
        "*",
        "\\",
        "'",
        "\"",
        "é",
        "\u{1F600}",
        "\t",
        "\n",
        "$",
        "unix:path=",
        "a",
        "Z",
        "9",
    ];
    let mut rng = Rng::from_env("addresses");
    // SAFETY: this test binary has this one test, so no other thread reads the environment.
    unsafe { std::env::remove_var("DBUS_SESSION_BUS_ADDRESS") };
    for case in 0..CASES {
        let dir = format!("/{}", rng.join(PIECES, 8));
        // SAFETY: as above.
        unsafe { std::env::set_var("XDG_RUNTIME_DIR", &dir) };
        for (bus, socket) in [(Bus::User, "bus"), (Bus::PrivateUser, "systemd/private")] {
            let address = bus.address().unwrap();
            let entries = libdbus_parse(&address, &["path"]).unwrap_or_else(|e| {
                panic!("case {case} {dir:?}: libdbus refused {address:?}: {e}")
            });
            assert_eq!(entries.len(), 1, "case {case} {dir:?}: {address:?}");
            assert_eq!(entries[0].method, "unix", "case {case} {dir:?}");
            assert_eq!(
                entries[0].values.get("path"),
                Some(&format!("{dir}/{socket}")),
                "case {case} {dir:?}: {address:?}"
            );
        }
    }
    eprintln!("{CASES} runtime directories, 2 addresses each, checked");
}

//! Unit name mangling, checked against systemd's own `systemd-escape`.

mod common;

use std::process::Command;

use systemd_jobs::unit_name::{escape_path, mangle};

fn systemd_escape(args: &[&str]) -> Option<String> {
    let out = Command::new("systemd-escape").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

#[test]
fn mangling_matches_systemd_escape() {
    if systemd_escape(&["x"]).is_none() {
        common::missing_prerequisite("systemd-escape is missing (install systemd)");
        return;
    }
    for input in [
        "nginx",
        "nginx.service",
        "foo bar",
        "getty@tty1",
        "a:b_c.d",
        "ünïcode",
        "a/b",
        "x.timer",
        "with-dash",
        "back\\slash",
        "tab\there",
    ] {
        let expected = systemd_escape(&["--mangle", input]).unwrap();
        assert_eq!(mangle(input).unwrap(), expected, "mangle {input:?}");
    }
    for (path, suffix) in [
        ("/", "mount"),
        ("/var/lib", "mount"),
        ("//var//lib//", "mount"),
        ("/home/a b", "mount"),
        ("/srv/with-dash/.hidden", "mount"),
        ("/.dotdir", "mount"),
        ("/mnt/ünï", "mount"),
        ("/dev/sda1", "device"),
        ("/dev/disk/by-label/x-y", "device"),
        ("/sys/devices/foo", "device"),
    ] {
        let expected = systemd_escape(&["--path", &format!("--suffix={suffix}"), path]).unwrap();
        assert_eq!(mangle(path).unwrap(), expected, "mangle {path:?}");
        let bare = systemd_escape(&["--path", path]).unwrap();
        assert_eq!(escape_path(path).unwrap(), bare, "escape_path {path:?}");
    }
}

#[test]
fn mangling_refuses_what_names_no_single_unit() {
    for input in [
        "",
        "ssh*",
        "a?.service",
        "x[12]",
        "foo@.service",
        "/var/../etc",
    ] {
        assert!(mangle(input).is_err(), "{input:?}");
    }
}

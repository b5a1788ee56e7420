//! Differential checks of `[USER@]HOST[:PORT]` against the real implementations: every
//! generated spec that `Remote` accepts becomes a `unixexec:` address that libdbus's own
//! parser (`dbus_parse_address`) turns back into exactly the intended argument vector, and
//! `ssh -G` given that vector resolves the same user, host and port, with nothing from the
//! spec before `--`. Seeded: `SYSTEMD_JOBS_SEED=N` reproduces a run (the seed is printed);
//! CI uses the fixed default.

mod common;

use std::process::Command;

use common::differential::{Rng, libdbus_parse};
use systemd_jobs::Remote;

const CASES: usize = 3000;

/// The program and argument vector libdbus reads from a one-entry `unixexec:` address.
fn libdbus_argv(address: &str) -> Result<(String, Vec<String>), String> {
    let mut entries = libdbus_parse(address, &["path"])?;
    match entries.as_mut_slice() {
        [e] if e.method == "unixexec" => Ok((
            e.values.remove("path").ok_or("no path")?,
            std::mem::take(&mut e.argv),
        )),
        _ => Err(format!("not one unixexec entry: {entries:?}")),
    }
}

/// A spec built from the pieces that matter to `[USER@]HOST[:PORT]`, to ssh and to D-Bus
/// addresses.
fn spec(rng: &mut Rng) -> String {
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
    rng.join(PIECES, 6)
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
    let mut rng = Rng::from_env("remote specs");
    let local_user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout)
        .unwrap()
        .trim()
        .to_owned();
    let (mut accepted, mut refused) = (0, 0);
    for case in 0..CASES {
        let spec = spec(&mut rng);
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

//! Unit name mangling, checked against systemd's own `systemd-escape`.

mod common;

use std::process::Command;

use systemd_jobs::Error;
use systemd_jobs::unit_name::{
    MAX_UNIT_NAME_LEN, NameProblem, check, escape, escape_path, instance, mangle,
};

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

/// `systemd-escape` of one systemd: this machine's, or a Debian root's run in it by chroot.
struct Escaper {
    name: String,
    root: Option<std::path::PathBuf>,
}

impl Escaper {
    /// The escapers to compare with: this machine's and those of the roots the
    /// system-manager tests boot (missing roots are a missing prerequisite).
    fn all() -> Vec<Escaper> {
        let mut all = vec![Escaper {
            name: "this machine's".into(),
            root: None,
        }];
        for suite in ["trixie", "sid"] {
            let root = common::container::roots_cache().join(suite);
            if root.join("usr/bin/systemd-escape").exists() {
                all.push(Escaper {
                    name: format!("Debian {suite}'s"),
                    root: Some(root),
                });
            } else {
                common::missing_prerequisite(&format!(
                    "no Debian {suite} root in {} (bash .ci/test builds it)",
                    root.display()
                ));
            }
        }
        all
    }

    fn command(&self) -> Command {
        match &self.root {
            None => Command::new("systemd-escape"),
            Some(root) => {
                let mut c = Command::new("chroot");
                c.arg(root).arg("/usr/bin/systemd-escape");
                c
            }
        }
    }

    /// `systemd-escape MODE -- input` for each input: its output, or `None` where it failed.
    /// The inputs `expected` to succeed run in batches (the outputs are escaped, so they hold
    /// no space), a failed batch split in halves until each failure stands alone; those
    /// expected to fail run one process each, and those expected `None` not at all.
    fn escape(
        &self,
        mode: &[&str],
        inputs: &[String],
        expected: &[Option<bool>],
    ) -> Vec<Option<String>> {
        let run = |inputs: &[&String]| {
            let out = self
                .command()
                .args(mode)
                .arg("--")
                .args(inputs)
                .output()
                .expect("run systemd-escape");
            out.status.success().then(|| {
                String::from_utf8(out.stdout)
                    .expect("escaped output is ASCII")
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
        };
        fn each(
            inputs: &[(usize, &String)],
            run: &dyn Fn(&[&String]) -> Option<Vec<String>>,
            out: &mut [Option<String>],
        ) {
            let args: Vec<&String> = inputs.iter().map(|(_, s)| *s).collect();
            match run(&args) {
                Some(outs) if outs.len() == inputs.len() => {
                    for ((i, _), o) in inputs.iter().zip(outs) {
                        out[*i] = Some(o);
                    }
                }
                _ if inputs.len() == 1 => {}
                _ => {
                    let (a, b) = inputs.split_at(inputs.len() / 2);
                    each(a, run, out);
                    each(b, run, out);
                }
            }
        }
        let mut all = vec![None; inputs.len()];
        let (good, bad): (Vec<_>, Vec<_>) = inputs
            .iter()
            .enumerate()
            .filter(|(i, _)| expected[*i].is_some())
            .partition(|(i, _)| expected[*i] == Some(true));
        for batch in good.chunks(500) {
            each(batch, &run, &mut all);
        }
        for one in bad.chunks(1) {
            each(one, &run, &mut all);
        }
        all
    }
}

/// Names as people type them and paths, built from the pieces that matter to systemd's
/// escaping (separators, dots, `@`, suffixes, globs, bytes outside ASCII, long runs).
fn generated_inputs(count: usize) -> Vec<String> {
    const PIECES: &[&str] = &[
        "a",
        "Z",
        "9",
        "nginx",
        "-",
        "_",
        ".",
        "..",
        ":",
        "\\",
        "@",
        "/",
        "//",
        "/./",
        "/../",
        " ",
        "\t",
        "é",
        "\u{1F600}",
        "%",
        "\\x2d",
        "x2d",
        ".service",
        ".mount",
        ".device",
        ".timer",
        ".target",
        ".foo",
        "*",
        "]",
        "~",
        "'",
        "dev",
        "sys",
        "/dev/",
        "/sys/",
        "getty@tty1",
        "@.service",
    ];
    let mut rng = common::differential::Rng::from_env("unit names");
    (0..count)
        .map(|_| {
            let lead = rng.pick(&["", "", "/", "/dev/", "/sys/", "-"]);
            let mut s = format!("{lead}{}", rng.join(PIECES, 7));
            if rng.below(40) == 0 {
                s.push_str(&"x".repeat(250));
            }
            if s.is_empty() { "a".to_owned() } else { s }
        })
        .collect()
}

/// Why the crate refuses an input that `systemd-escape --mangle` turns into a name, if it is
/// one of the crate's documented choices (see the `unit_name` module docs).
fn refused_by_design(input: &str, problem: &NameProblem, systemd: Option<&str>) -> bool {
    match problem {
        NameProblem::Glob => input.contains(['*', '?', '[']),
        NameProblem::TemplateWithoutInstance => systemd.is_some_and(|s| s.contains("@.")),
        // systemd-escape does not check it; the manager refuses such a name (tested below).
        NameProblem::NoInstances(_) => systemd.is_some_and(|s| s.contains('@')),
        NameProblem::UnnormalizedPath => {
            input.starts_with('/') && input.split('/').any(|c| c == "..")
        }
        _ => false,
    }
}

#[test]
fn generated_names_mangle_and_escape_as_every_systemd_does() {
    let inputs = generated_inputs(3000);
    let (mut same, mut refused) = (0, 0);
    // Refusals whose reason lies in the input alone (globs, `..` paths) need no comparison.
    let by_input_alone = |i: &String| {
        matches!(
            mangle(i),
            Err(Error::InvalidUnitName {
                problem: NameProblem::Glob | NameProblem::UnnormalizedPath,
                ..
            })
        )
    };
    let ours_mangled: Vec<Option<bool>> = inputs
        .iter()
        .map(|i| (!by_input_alone(i)).then(|| mangle(i).is_ok()))
        .collect();
    let ours_paths: Vec<Option<bool>> = inputs
        .iter()
        .map(|i| Some(escape_path(i).is_ok()))
        .collect();
    eprintln!(
        "unit names: {} inputs, {} mangled and {} escaped as paths by the crate",
        inputs.len(),
        ours_mangled.iter().filter(|b| **b == Some(true)).count(),
        ours_paths.iter().filter(|b| **b == Some(true)).count()
    );
    for escaper in Escaper::all() {
        let mangled = escaper.escape(&["--mangle"], &inputs, &ours_mangled);
        let paths = escaper.escape(&["--path"], &inputs, &ours_paths);
        for ((input, systemd), systemd_path) in inputs.iter().zip(&mangled).zip(&paths) {
            let ours = mangle(input);
            match (&ours, systemd) {
                (Ok(ours), Some(theirs)) => assert_eq!(
                    ours, theirs,
                    "mangle({input:?}) differs from {} systemd-escape --mangle",
                    escaper.name
                ),
                (Err(Error::InvalidUnitName { problem, .. }), theirs) => {
                    assert!(
                        theirs.is_none() || refused_by_design(input, problem, theirs.as_deref()),
                        "mangle({input:?}) refused ({problem}), {} systemd-escape --mangle \
                         gives {theirs:?}",
                        escaper.name
                    );
                    refused += 1;
                    continue;
                }
                (ours, None) => panic!(
                    "mangle({input:?}) = {ours:?}, {} systemd-escape --mangle refuses it",
                    escaper.name
                ),
                (Err(other), _) => panic!("mangle({input:?}): {other}"),
            }
            same += 1;
            // --path: the same bytes, or the same refusal (`..`, nothing to escape).
            let ours = escape_path(input).ok();
            if input.len() <= MAX_UNIT_NAME_LEN || ours.is_some() == systemd_path.is_some() {
                assert_eq!(
                    &ours, systemd_path,
                    "escape_path({input:?}) against {} systemd-escape --path",
                    escaper.name
                );
            }
        }
    }
    eprintln!("unit names: {same} mangled alike, {refused} refused by design or by both");
    // Plain escaping, --template and --suffix: the same output or the same refusal
    // (systemd-escape checks --suffix's result against no limit: plain escaping, then it).
    let timer = |i: &String| Some(format!("{}.timer", escape(i)));
    let ours: [(&[&str], Vec<Option<String>>); 3] = [
        (&[], inputs.iter().map(|i| Some(escape(i))).collect()),
        (
            &["--template=app@.service"],
            inputs
                .iter()
                .map(|i| instance("app@.service", i).ok())
                .collect(),
        ),
        (&["--suffix=timer"], inputs.iter().map(timer).collect()),
    ];
    for escaper in Escaper::all() {
        for (mode, ours) in &ours {
            let expected: Vec<Option<bool>> = ours.iter().map(|o| Some(o.is_some())).collect();
            let theirs = escaper.escape(mode, &inputs, &expected);
            for ((input, ours), theirs) in inputs.iter().zip(ours).zip(theirs) {
                assert_eq!(
                    ours, &theirs,
                    "{input:?}: {} systemd-escape {mode:?}",
                    escaper.name
                );
            }
        }
    }
    eprintln!("unit names: plain, --template and --suffix alike for every input");
    assert!(
        same > refused,
        "too few compared: {same} alike, {refused} refused"
    );
}

/// Raw names (not mangled), built from the pieces that matter to systemd's validity rules.
fn generated_names(count: usize) -> Vec<String> {
    const PIECES: &[&str] = &[
        "a",
        "Z",
        "9",
        "-",
        "_",
        ".",
        ":",
        "\\",
        "\\x2d",
        "@",
        "@@",
        " ",
        "é",
        "/",
        "*",
        "%",
        "~",
        ".service",
        ".socket",
        ".mount",
        ".device",
        ".scope",
        ".slice",
        ".swap",
        ".automount",
        ".path",
        ".timer",
        ".target",
        ".snapshot",
        ".busname",
        ".foo",
        ".",
    ];
    let mut rng = common::differential::Rng::from_env("unit name validity");
    (0..count)
        .map(|_| {
            let mut s = rng.join(PIECES, 5);
            if rng.below(30) == 0 {
                s = format!("{}{s}", "y".repeat(245 + rng.below(15)));
            }
            if rng.below(30) == 0 {
                s = "tmpl@".to_owned();
            }
            s.push_str(rng.pick(&[".service", ".target", ".mount", "", ".x"]));
            s
        })
        .collect()
}

/// The crate's `check` accepts exactly the names the real manager loads (`LoadUnit`), and
/// refuses the others as the manager does (`InvalidArgs`), templates without an instance
/// and instances of types without templates among them.
#[test]
fn generated_names_are_valid_exactly_when_the_manager_loads_them() {
    let sd = sandbox!();
    let conn = sd.raw_connection().unwrap();
    let proxy = conn.with_proxy(
        "org.freedesktop.systemd1",
        "/org/freedesktop/systemd1",
        std::time::Duration::from_secs(5),
    );
    let names = generated_names(3000);
    let (mut valid, mut invalid, mut templates) = (0, 0, 0);
    let is_template = |p: &NameProblem| matches!(p, NameProblem::TemplateWithoutInstance);
    for name in &names {
        let loaded: Result<(dbus::Path<'static>,), dbus::Error> = proxy.method_call(
            "org.freedesktop.systemd1.Manager",
            "LoadUnit",
            (name.as_str(),),
        );
        match (check(name), &loaded) {
            (Ok(()), Ok(_)) => valid += 1,
            // On the bus "" names the caller's own unit, never a unit typed by a person.
            (Err(NameProblem::Empty), Err(e))
                if e.name() == Some("org.freedesktop.systemd1.NoSuchUnit") => {}
            (Err(p), Err(e)) if e.name() == Some("org.freedesktop.DBus.Error.InvalidArgs") => {
                invalid += 1;
                templates += usize::from(is_template(&p));
            }
            (ours, theirs) => {
                panic!("check({name:?}) = {ours:?}, but the manager's LoadUnit gives {theirs:?}")
            }
        }
    }
    eprintln!(
        "unit name validity: {valid} valid, {invalid} invalid, {templates} of them templates, \
         alike on the manager"
    );
    assert!(
        valid > 300 && invalid > 300 && templates > 10,
        "too few of a kind"
    );
}

//! An installer's whole flow on the real system manager of every root (`host::*`, systemd
//! 252; `trixie::*`, 257; `sid::*`, the newest): the case this crate was made for (a line
//! appended to `/etc/fstab`, a reload so the fstab generator makes its `.mount` unit, then
//! `local-fs.target` and `remote-fs.target` restarted with mode `fail`), through the library
//! alone and through the example's one command; and polkit deciding for callers that are not
//! root, on unit files and reloads as on jobs.

mod common;

use std::time::{Duration, Instant};

use common::container::{Container, Root, with_agent};
use common::places::Place;
use systemd_jobs::{Error, JobMode, JobResult, Verb};

const T: Duration = Duration::from_secs(30);

on_every_root!(
    the_seed_case_through_the_library_and_the_example,
    polkit_decides_on_unit_files_and_reloads_for_callers_that_are_not_root,
    reload_and_reexec_of_the_system_manager,
);

/// Appends a tmpfs line for `dir` to the container's `/etc/fstab`.
fn append_fstab(c: &Container, dir: &str) {
    use std::io::Write;
    let mut fstab = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(c.host_path("/etc/fstab"))
        .unwrap();
    writeln!(fstab, "tmpfs {dir} tmpfs defaults,size=1m 0 0").unwrap();
}

/// The file system type mounted at `dir` in the container, if any.
fn mounted(c: &Container, dir: &str) -> Option<String> {
    let (code, out, _) = c.run(
        None,
        &["findmnt", "-n", "-o", "FSTYPE", "--mountpoint", dir],
    );
    (code == 0).then(|| out.trim().to_owned())
}

fn the_seed_case_through_the_library_and_the_example(root: Root) {
    let c = container!(root);
    let m = Place::manager(&c);
    let targets = ["local-fs.target", "remote-fs.target"];
    let restart_both = |reload: bool| {
        targets
            .iter()
            .fold(
                m.batch().mode(JobMode::Fail).daemon_reload_first(reload),
                |b, t| b.add(Verb::Restart, *t),
            )
            .run(T)
    };

    // Without the reload, as the seed's tool did: the restarts succeed and the new line is
    // silently not mounted.
    append_fstab(&c, "/mnt/unseen");
    for result in restart_both(false) {
        assert_eq!(result.unwrap().result, JobResult::Done);
    }
    assert_eq!(
        mounted(&c, "/mnt/unseen"),
        None,
        "mounted without a reload?"
    );

    // The library alone: reload first, under the batch's one deadline; the generator's new
    // mount unit is pulled in by the restart of local-fs.target.
    append_fstab(&c, "/mnt/seed");
    for result in restart_both(true) {
        assert_eq!(result.unwrap().result, JobResult::Done);
    }
    assert_eq!(mounted(&c, "/mnt/seed").as_deref(), Some("tmpfs"));
    assert_eq!(mounted(&c, "/mnt/unseen").as_deref(), Some("tmpfs"));

    // The example's one command, run inside the container as an installer would.
    append_fstab(&c, "/mnt/seed-example");
    let (code, out, err) = c.run_example(
        None,
        &[
            "--daemon-reload",
            "--mode",
            "fail",
            "local-fs.target",
            "remote-fs.target",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(out.starts_with("local-fs.target: done (job "), "{out}");
    assert_eq!(mounted(&c, "/mnt/seed-example").as_deref(), Some("tmpfs"));
}

const USER: &str = "sjfiles";
const UID: u32 = 4343;
const PASSWORD: &str = "battery staple";
const NOBODY: u32 = 65534;

fn polkit_decides_on_unit_files_and_reloads_for_callers_that_are_not_root(root: Root) {
    let c = container!(root);
    let wanted = "[Unit]\nStartLimitIntervalSec=0\n[Service]\nExecStart=/bin/sleep infinity\n[Install]\nWantedBy=multi-user.target\n";
    c.install(&[("wanted.service", wanted)]);
    // Without an agent and without a rule: refused at once, with systemctl's status (1).
    for args in [
        &["--verb", "enable", "wanted.service"][..],
        &["--verb", "daemon-reload"],
        &["--verb", "reset-failed"],
    ] {
        let (ours, _, err) = c.run_example(Some(NOBODY), args);
        let mut theirs = vec!["systemctl"];
        theirs.extend_from_slice(&args[1..]);
        let (their_code, _, their_err) = c.run(Some(NOBODY), &theirs);
        assert_eq!(ours, their_code, "{args:?}: {err} / {their_err}");
        assert_eq!(ours, 1, "{args:?}: {err}");
        assert!(err.contains("access denied"), "{args:?}: {err}");
    }
    assert_eq!(
        c.unit_property("wanted.service", "UnitFileState"),
        "disabled"
    );

    // Interactive authorization, as for jobs: a user polkit lets act after typing their
    // password is asked through the agent for the unit files, then for the reload.
    c.add_polkit_user(USER, UID, PASSWORD);
    for action in ["manage-unit-files", "reload-daemon"] {
        c.polkit_rule(USER, action, "AUTH_SELF");
    }
    let run = c.on_terminal(
        UID,
        &with_agent("--ask-password --verb enable wanted.service"),
        Some(PASSWORD),
        T,
    );
    assert_eq!(run.code, 0, "{}", run.screen);
    for action in ["manage-unit-files", "reload-daemon"] {
        assert!(
            run.screen.contains(&format!(
                "AUTHENTICATING FOR org.freedesktop.systemd1.{action}"
            )),
            "{action}: {}",
            run.screen
        );
    }
    assert!(run.screen.contains("Created symlink"), "{}", run.screen);
    assert_eq!(
        c.unit_property("wanted.service", "UnitFileState"),
        "enabled"
    );

    // A user polkit lets act outright: systemd 252's bus policy does not let such callers
    // send the ...WithFlags methods at all, so the crate falls back to the older ones there;
    // 257 and later allow them. Either way it works, as with systemctl.
    for action in ["manage-unit-files", "reload-daemon"] {
        c.polkit_rule("nobody", action, "YES");
    }
    let (code, _, err) = c.run_example(Some(NOBODY), &["--verb", "disable", "wanted.service"]);
    assert_eq!(code, 0, "systemd {}: {err}", c.version);
    assert!(err.contains("Removed '"), "{err}");
    assert_eq!(
        c.unit_property("wanted.service", "UnitFileState"),
        "disabled"
    );
    let (code, out, err) = c.run_example(Some(NOBODY), &["--verb", "daemon-reload"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("daemon-reload: reloaded"), "{out}");
}

fn reload_and_reexec_of_the_system_manager(root: Root) {
    let c = container!(root);
    c.install(&[("slow.service", &common::slow_start(1.5))]);
    let m = Place::manager(&c);
    // A job another handle waits on keeps its result across a reload and a re-execution,
    // both of which return once the manager is done.
    let other = Place::manager(&c);
    let waiter = std::thread::spawn(move || {
        other
            .restart("slow.service", JobMode::Replace, T)
            .map(|o| o.result)
    });
    std::thread::sleep(Duration::from_millis(200));
    let reloaded = m.daemon_reload(T).unwrap();
    assert!(!reloaded.by_reexecution, "{reloaded}");
    let reexec = m.daemon_reexec(T).unwrap();
    assert!(
        reexec.version.starts_with(&c.version.to_string()),
        "{reexec} on {}",
        c.version
    );
    assert_eq!(waiter.join().unwrap().unwrap(), JobResult::Done);

    // PID 1 stopped: the reload ends at its deadline, naming daemon-reload.
    let pid1 = c.pid1().to_string();
    let signal = move |s: &str| {
        let st = std::process::Command::new("kill")
            .args([s, &pid1])
            .status()
            .unwrap();
        assert!(st.success());
    };
    signal("-STOP");
    let started = Instant::now();
    let e = m.daemon_reload(Duration::from_secs(2)).unwrap_err();
    let took = started.elapsed();
    signal("-CONT");
    assert!(
        matches!(&e, Error::Timeout { unit, .. } if unit == "daemon-reload"),
        "{e:?}"
    );
    assert!(took < Duration::from_millis(2700), "{took:?}");

    // A Reexecute that reaches the stopped PID 1 before our Reload: the reload is done by
    // the re-execution, and the handle goes on with the new manager.
    let raw = c.raw_connection().unwrap();
    signal("-STOP");
    use dbus::channel::Sender;
    raw.send(common::reexecute_call()).unwrap();
    raw.channel().flush();
    let resume = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        signal("-CONT");
    });
    let done = m.daemon_reload(T).unwrap();
    resume.join().unwrap();
    assert!(done.by_reexecution, "{done}");
    let out = m.start("slow.service", JobMode::Replace, T).unwrap();
    assert_eq!(out.result, JobResult::Done);
}

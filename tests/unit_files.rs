//! Unit files through the crate, compared with `systemctl` on the same unit files of the same
//! real manager: the user manager of the sandbox (systemd 252, and 257 in `.ci/test`'s
//! second pass), and the system manager of each container root (252, 257, the newest), as
//! `user_*`, `host::*`, `trixie::*` and `sid::*` tests.
//!
//! For each unit shape (`WantedBy=`, `RequiredBy=`, `Alias=`, `Also=`, a template with
//! `DefaultInstance=`, no `[Install]`) and each operation (enable, disable, reenable,
//! mask, unmask, preset, enable --runtime, link) from the same starting links, the crate's
//! operation and `systemctl`'s must leave the same symlinks on disk, report the same
//! changes, succeed or fail alike, and `unit_file_state` must say what `systemctl
//! is-enabled` says.

mod common;

use std::time::Duration;

use common::container::Root;
use common::places::{Links, Place, Printed, printed_changes};
use systemd_jobs::{
    ChangeKind, Error, JobMode, JobResult, Manager, UnitFileProblem, UnitFileState, UnitFileVerb,
    Verb,
};

const T: Duration = Duration::from_secs(30);

on_every_root!(
    system_unit_files_match_systemctl,
    system_bad_input_is_a_typed_error_naming_the_unit,
    system_read_only_configuration_is_reported_and_changes_nothing,
);

fn shapes(target: &str) -> Vec<(&'static str, String)> {
    let run = "[Unit]\nStartLimitIntervalSec=0\n[Service]\nExecStart=/bin/sleep infinity\n";
    vec![
        (
            "wanted.service",
            format!("{run}[Install]\nWantedBy={target}\n"),
        ),
        (
            "required.service",
            format!("{run}[Install]\nRequiredBy={target}\n"),
        ),
        (
            "aliased.service",
            format!("{run}[Install]\nWantedBy={target}\nAlias=aliased-alias.service\n"),
        ),
        (
            "also.service",
            format!("{run}[Install]\nWantedBy={target}\nAlso=also-helper.service\n"),
        ),
        (
            "also-helper.service",
            format!("{run}[Install]\nWantedBy={target}\n"),
        ),
        (
            "tmpl@.service",
            format!("{run}[Install]\nWantedBy={target}\nDefaultInstance=one\n"),
        ),
        ("noinstall.service", run.to_owned()),
    ]
}

/// The operations compared, each from a starting point: `None` for no links at all, or
/// the `systemctl` verb that makes it.
const CASES: [(Option<&str>, UnitFileVerb, bool); 8] = [
    (None, UnitFileVerb::Enable, false),
    (None, UnitFileVerb::Enable, true),
    (None, UnitFileVerb::Reenable, false),
    (None, UnitFileVerb::Mask, false),
    (None, UnitFileVerb::Preset, false),
    (Some("enable"), UnitFileVerb::Disable, false),
    (Some("enable"), UnitFileVerb::Reenable, false),
    (Some("mask"), UnitFileVerb::Unmask, false),
];

fn ours_as_printed(changes: &[systemd_jobs::UnitFileChange]) -> Vec<Printed> {
    let mut printed: Vec<Printed> = changes
        .iter()
        .filter(|c| c.kind.is_change())
        .map(|c| {
            let kind = if c.kind == ChangeKind::Symlink {
                "symlink"
            } else {
                "unlink"
            };
            (kind.to_owned(), c.path.clone(), c.source.clone())
        })
        .collect();
    printed.sort();
    printed
}

/// Runs every case on every shape at `place`, the crate's way and `systemctl`'s, and
/// compares. Returns how many comparisons were made.
fn unit_files_match_systemctl(place: &dyn Place) -> usize {
    let target = place.target();
    let units = shapes(target);
    for (name, contents) in &units {
        place.write_unit(name, contents);
    }
    place.reload();
    let m = place.manager();
    let clean = place.links();
    let mut compared = 0;
    for (name, _) in &units {
        for (start, verb, runtime) in CASES {
            let what = format!(
                "{}: {verb}{} {name} from {start:?}",
                place.name(),
                if runtime { " --runtime" } else { "" }
            );
            // The starting point, made by systemctl.
            place.restore(&clean);
            if let Some(start) = start {
                let (code, _, err) = place.systemctl(&[start, name]);
                assert_eq!(code, 0, "{what}: preparing: {err}");
            }
            let before: Links = place.links();

            let ours = m.unit_files(verb, [*name]).runtime(runtime).run(T);
            let ours_links = place.links();

            place.restore(&before);
            let mut args = vec![verb.as_str()];
            if runtime {
                args.push("--runtime");
            }
            args.push(name);
            let (code, _, err) = place.systemctl(&args);
            let theirs_links = place.links();

            assert_eq!(ours_links, theirs_links, "{what}: links differ ({err})");
            match &ours {
                Ok(outcome) => {
                    assert_eq!(code, 0, "{what}: the crate succeeded, systemctl: {err}");
                    let mut theirs = printed_changes(&err);
                    theirs.sort();
                    assert_eq!(ours_as_printed(&outcome.changes), theirs, "{what}: {err}");
                    if *name == "noinstall.service"
                        && matches!(verb, UnitFileVerb::Enable | UnitFileVerb::Reenable)
                    {
                        assert_eq!(outcome.carries_install_info, Some(false), "{what}");
                        assert!(err.contains("no installation config"), "{what}: {err}");
                    }
                    assert!(outcome.reloaded);
                }
                Err(e) => {
                    assert_ne!(code, 0, "{what}: the crate failed ({e}), systemctl did not");
                    assert_eq!(e.exit_status(), 1, "{what}: {e}");
                }
            }
            compared += 1;

            // What the unit file's state is now: the crate's reading and is-enabled's.
            let ours_state = m.unit_file_state(name, T).unwrap();
            let (code, out, _) = place.systemctl(&["is-enabled", name]);
            assert_eq!(
                ours_state.as_str(),
                out.lines().next().unwrap_or(""),
                "{what}: is-enabled"
            );
            assert_eq!(
                ours_state.is_enabled(),
                code == 0,
                "{what}: is-enabled {code}"
            );
        }
    }
    // link: a unit file outside the search path.
    let outside = format!("{}/linked.service", place.outside_dir());
    std::fs::write(
        place.host_path(&outside),
        "[Service]\nExecStart=/bin/sleep infinity\n",
    )
    .unwrap();
    place.restore(&clean);
    let ours = m
        .unit_files(UnitFileVerb::Link, [outside.as_str()])
        .run(T)
        .unwrap();
    let ours_links = place.links();
    place.restore(&clean);
    let (code, _, err) = place.systemctl(&["link", &outside]);
    assert_eq!(code, 0, "link: {err}");
    assert_eq!(ours_links, place.links(), "link");
    let mut theirs = printed_changes(&err);
    theirs.sort();
    assert_eq!(ours_as_printed(&ours.changes), theirs, "link");
    assert_eq!(
        m.unit_file_state("linked.service", T).unwrap(),
        UnitFileState::Linked
    );
    // A unit with no file at all.
    let (code, out, _) = place.systemctl(&["is-enabled", "nope.service"]);
    let ours = m.unit_file_state("nope.service", T).unwrap();
    assert_eq!(ours, UnitFileState::NotFound);
    assert_ne!(code, 0);
    eprintln!(
        "{}: systemctl is-enabled nope.service: {code} {:?}",
        place.name(),
        out.trim()
    );
    compared + 1
}

#[test]
fn user_unit_files_match_systemctl() {
    let sd = sandbox!();
    let n = unit_files_match_systemctl(&sd);
    assert_eq!(n, shapes("").len() * CASES.len() + 1);
}

fn system_unit_files_match_systemctl(root: Root) {
    let c = container!(root);
    let n = unit_files_match_systemctl(&c);
    assert_eq!(n, shapes("").len() * CASES.len() + 1);
}

/// Bad input at `place`: each a typed error naming the unit and what systemd said.
fn bad_input_is_a_typed_error_naming_the_unit(place: &dyn Place) {
    let target = place.target();
    for (name, contents) in shapes(target) {
        place.write_unit(name, &contents);
    }
    place.reload();
    let m = place.manager();
    // No such unit file.
    match m.unit_files(UnitFileVerb::Enable, ["nope.service"]).run(T) {
        Err(
            e @ Error::UnitFileFailed {
                problem: UnitFileProblem::NotFound,
                ..
            },
        ) => {
            assert_eq!(e.unit(), Some("nope.service"));
            assert!(e.to_string().contains("nope.service does not exist"), "{e}");
            assert_eq!(e.exit_status(), 1, "as systemctl enable exits");
        }
        other => panic!("{other:?}"),
    }
    // A masked unit cannot be enabled.
    m.unit_files(UnitFileVerb::Mask, ["wanted.service"])
        .run(T)
        .unwrap();
    match m
        .unit_files(UnitFileVerb::Enable, ["wanted.service"])
        .run(T)
    {
        Err(
            e @ Error::UnitFileFailed {
                problem: UnitFileProblem::Masked,
                ..
            },
        ) => {
            assert_eq!(e.unit(), Some("wanted.service"));
            assert_eq!(e.exit_status(), 1, "as systemctl enable exits");
        }
        other => panic!("{other:?}"),
    }
    m.unit_files(UnitFileVerb::Unmask, ["wanted.service"])
        .run(T)
        .unwrap();
    // A unit without [Install]: systemd has nothing to enable, and says so.
    let out = m
        .unit_files(UnitFileVerb::Enable, ["noinstall.service"])
        .run(T)
        .unwrap();
    assert_eq!(out.carries_install_info, Some(false));
    assert!(out.changes.is_empty(), "{:?}", out.changes);
    // A symlink in the way, pointing to another unit's file: an alias (systemd always
    // replaces links in .wants/ and .requires/, but not an alias) is refused without force,
    // the error naming the file, and replaced with it.
    let link = format!("{}/aliased-alias.service", place.link_dirs()[0]);
    let host = place.host_path(&link);
    std::fs::create_dir_all(host.parent().unwrap()).unwrap();
    let elsewhere = place.write_unit("elsewhere.service", "[Service]\nExecStart=/bin/true\n");
    std::os::unix::fs::symlink(&elsewhere, &host).unwrap();
    match m
        .unit_files(UnitFileVerb::Enable, ["aliased.service"])
        .run(T)
    {
        Err(Error::UnitFileFailed {
            unit,
            verb,
            problem,
            source,
        }) => {
            assert_eq!(
                (unit.as_str(), verb, problem),
                (
                    "aliased.service",
                    UnitFileVerb::Enable,
                    UnitFileProblem::Exists
                )
            );
            assert!(source.message().contains(&link), "{source}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        std::fs::read_link(&host).unwrap().to_string_lossy(),
        elsewhere,
        "nothing was changed"
    );
    let out = m
        .unit_files(UnitFileVerb::Enable, ["aliased.service"])
        .force(true)
        .run(T)
        .unwrap();
    let kinds: Vec<_> = out
        .changes
        .iter()
        .filter(|c| c.path == link)
        .map(|c| c.kind.clone())
        .collect();
    assert_eq!(
        kinds,
        [ChangeKind::Unlink, ChangeKind::Symlink],
        "{:?}",
        out.changes
    );
    // A broken symlink in the way (to a file that does not exist): what systemd does with
    // it depends on its version; the crate does what systemctl does, on disk and in the
    // changes reported.
    m.unit_files(UnitFileVerb::Disable, ["wanted.service"])
        .run(T)
        .unwrap();
    std::fs::remove_file(&host).ok();
    std::os::unix::fs::symlink("/nonexistent/wanted.service", &host).unwrap();
    let before = place.links();
    let ours = m
        .unit_files(UnitFileVerb::Enable, ["wanted.service"])
        .run(T);
    let ours_links = place.links();
    place.restore(&before);
    let (code, _, err) = place.systemctl(&["enable", "wanted.service"]);
    assert_eq!(
        ours_links,
        place.links(),
        "{}: a broken symlink: {err}",
        place.name()
    );
    assert_eq!(
        ours.is_ok(),
        code == 0,
        "{}: {ours:?} / {err}",
        place.name()
    );
    if let Ok(ours) = ours {
        let mut theirs = printed_changes(&err);
        theirs.sort();
        assert_eq!(ours_as_printed(&ours.changes), theirs);
    }
    // Names that are not unit names are refused before any bus traffic.
    for bad in ["", "a b", "relative/app.service", "/abs/not-a-unit"] {
        assert!(
            matches!(
                m.unit_files(UnitFileVerb::Enable, [bad]).run(T),
                Err(Error::InvalidUnitName { .. })
            ),
            "{bad:?}"
        );
    }
    // --now with an operation that queues no job.
    assert!(matches!(
        m.unit_files(UnitFileVerb::Link, ["/x/a.service"])
            .now(true)
            .run(T),
        Err(Error::InvalidRequest(_))
    ));
}

#[test]
fn user_bad_input_is_a_typed_error_naming_the_unit() {
    let sd = sandbox!();
    bad_input_is_a_typed_error_naming_the_unit(&sd);
}

fn system_bad_input_is_a_typed_error_naming_the_unit(root: Root) {
    let c = container!(root);
    bad_input_is_a_typed_error_naming_the_unit(&c);
}

fn system_read_only_configuration_is_reported_and_changes_nothing(root: Root) {
    let c = container!(root);
    for (name, contents) in shapes("multi-user.target") {
        c.write_unit(name, &contents);
    }
    c.reload();
    // /etc/systemd/system read-only, in PID 1's own mount namespace.
    let (code, _, err) = c.run(
        None,
        &[
            "sh",
            "-c",
            "mount --bind /etc/systemd/system /etc/systemd/system && \
             mount -o remount,bind,ro /etc/systemd/system",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let m = Place::manager(&c);
    let before = c.links();
    match m
        .unit_files(UnitFileVerb::Enable, ["wanted.service"])
        .run(T)
    {
        Err(Error::UnitFileFailed {
            problem, source, ..
        }) => {
            assert_eq!(problem, UnitFileProblem::ReadOnly, "{source}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(c.links(), before, "nothing half-done");
    // --runtime writes under /run, which is writable.
    let out = m
        .unit_files(UnitFileVerb::Enable, ["wanted.service"])
        .runtime(true)
        .run(T)
        .unwrap();
    assert!(
        out.changes.iter().all(|ch| ch.path.starts_with("/run/")),
        "{:?}",
        out.changes
    );
    assert_eq!(
        m.unit_file_state("wanted.service", T).unwrap(),
        UnitFileState::EnabledRuntime
    );
}

#[test]
fn user_enable_now_reports_the_change_and_the_job() {
    let sd = sandbox!();
    let good = "[Unit]\nStartLimitIntervalSec=0\n[Service]\nExecStart=/bin/sleep infinity\n[Install]\nWantedBy=default.target\n";
    let bad = "[Unit]\nStartLimitIntervalSec=0\n[Service]\nType=oneshot\nExecStart=/bin/sh -c 'exit 3'\n[Install]\nWantedBy=default.target\n";
    sd.install(&[("good.service", good), ("bad.service", bad)]);
    let m = sd.manager();
    let out = m
        .unit_files(UnitFileVerb::Enable, ["good.service", "bad.service"])
        .now(true)
        .run(T)
        .unwrap();
    assert_eq!(out.changes.len(), 2, "{:?}", out.changes);
    assert_eq!(out.jobs.len(), 2);
    assert_eq!(out.jobs[0].as_ref().unwrap().result, JobResult::Done);
    assert!(
        matches!(
            &out.jobs[1],
            Err(Error::JobFailed {
                result: JobResult::Failed,
                ..
            })
        ),
        "{:?}",
        out.jobs[1]
    );
    assert!(!out.jobs_succeeded());
    assert_eq!(sd.unit_property("good.service", "ActiveState"), "active");
    assert_eq!(
        m.unit_file_state("bad.service", T).unwrap(),
        UnitFileState::Enabled,
        "the change stays, beside the failed job"
    );
    // disable --now: the links go and the unit stops.
    let out = m
        .unit_files(UnitFileVerb::Disable, ["good.service"])
        .now(true)
        .run(T)
        .unwrap();
    assert_eq!(out.jobs[0].as_ref().unwrap().verb, Verb::Stop);
    assert_eq!(sd.unit_property("good.service", "ActiveState"), "inactive");
    // mask --now of a template stops its loaded instances, as systemctl does.
    let tmpl = "[Unit]\nStartLimitIntervalSec=0\n[Service]\nExecStart=/bin/sleep infinity\n";
    sd.install(&[("t@.service", tmpl)]);
    for unit in ["t@a.service", "t@b.service"] {
        let _ = m.start(unit, JobMode::Replace, T).unwrap();
    }
    let out = m
        .unit_files(UnitFileVerb::Mask, ["t@.service"])
        .now(true)
        .run(T)
        .unwrap();
    let mut stopped: Vec<_> = out
        .jobs
        .iter()
        .map(|j| j.as_ref().unwrap().unit.clone())
        .collect();
    stopped.sort();
    assert_eq!(stopped, ["t@a.service", "t@b.service"]);
    // The reload afterwards, as systemctl does, unless turned off (a bus monitor sees every
    // call the handle makes).
    let mut monitor = sd.monitor_calls();
    let reloads = |monitor: &mut common::CallMonitor| {
        monitor
            .calls_so_far(&sd)
            .iter()
            .filter(|c| {
                Some(c.sender.as_str()) == m.unique_name()
                    && c.method == "org.freedesktop.systemd1.Manager.Reload"
            })
            .count()
    };
    let out = m
        .unit_files(UnitFileVerb::Enable, ["good.service"])
        .reload(false)
        .run(T)
        .unwrap();
    assert!(!out.reloaded);
    assert_eq!(reloads(&mut monitor), 0);
    let out = m
        .unit_files(UnitFileVerb::Disable, ["good.service"])
        .run(T)
        .unwrap();
    assert!(out.reloaded);
    assert_eq!(reloads(&mut monitor), 1);
    // enable --now of a template starts nothing: it has no job of its own.
    let out = m
        .unit_files(UnitFileVerb::Unmask, ["t@.service"])
        .now(true)
        .run(T)
        .unwrap();
    assert_eq!(out.skipped, ["t@.service"]);
    assert!(out.jobs.is_empty());
}

#[test]
fn user_reset_failed_clears_failure_and_start_limit() {
    let sd = sandbox!();
    // Dies at once and is restarted until it hits its start limit (2 starts in 60 s).
    let crashy = "[Unit]\nStartLimitIntervalSec=60\nStartLimitBurst=2\n[Service]\nExecStart=/bin/false\nRestart=always\nRestartSec=0\n";
    sd.install(&[
        ("bad.service", common::ONESHOT_FAILS),
        ("crashy.service", crashy),
    ]);
    let m = sd.manager();
    assert!(m.start("bad.service", JobMode::Replace, T).is_err());
    assert_eq!(sd.unit_property("bad.service", "ActiveState"), "failed");
    m.reset_failed("bad.service", T).unwrap();
    assert_eq!(sd.unit_property("bad.service", "ActiveState"), "inactive");
    // A unit that is not loaded has no failed state to reset: systemd says so.
    assert!(matches!(
        m.reset_failed("never-loaded.service", T),
        Err(Error::NoSuchUnit { .. })
    ));
    // The start limit: once hit, a start is refused until reset-failed clears it.
    let _ = m.start("crashy.service", JobMode::Replace, T);
    common::eventually(Duration::from_secs(10), || {
        match sd.unit_property("crashy.service", "ActiveState").as_str() {
            "failed" => Ok(()),
            other => Err(other.to_owned()),
        }
    });
    assert!(matches!(
        m.start("crashy.service", JobMode::Replace, T),
        Err(Error::JobFailed {
            result: JobResult::Failed,
            ..
        })
    ));
    let refused_at = sd.unit_property("crashy.service", "InactiveExitTimestampMonotonic");
    m.reset_all_failed(T).unwrap();
    assert_eq!(
        sd.unit_property("crashy.service", "ActiveState"),
        "inactive"
    );
    // It starts again: a new run (Type=simple: the start is done once it is forked).
    let out = m.start("crashy.service", JobMode::Replace, T).unwrap();
    assert_eq!(out.result, JobResult::Done);
    assert_ne!(
        sd.unit_property("crashy.service", "InactiveExitTimestampMonotonic"),
        refused_at
    );
    let _ = m.stop("crashy.service", JobMode::Replace, T).unwrap();
}

#[test]
fn user_polkit_free_errors_name_the_operation() {
    let sd = sandbox!();
    let m: Manager = sd.manager();
    // A zero timeout fails before any bus traffic, naming the operation.
    for e in [
        m.daemon_reload(Duration::ZERO).unwrap_err(),
        m.daemon_reexec(Duration::ZERO).unwrap_err(),
        m.reset_all_failed(Duration::ZERO).unwrap_err(),
    ] {
        assert!(matches!(e, Error::Timeout { job: None, .. }), "{e:?}");
        assert!(
            e.to_string().starts_with("daemon-") || e.to_string().starts_with("reset-failed"),
            "{e}"
        );
    }
}

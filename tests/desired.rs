//! A unit's desired state on real managers: a check changes nothing (unit files and unit
//! state compared before and after), an apply converges, a second apply is unchanged and
//! makes no call that changes anything (a bus monitor sees every call), a service that exits
//! at once is a failure with its reason and, where there is a journal, its lines. User
//! manager (`user_*`) and every container root (`host::*`, `trixie::*`, `sid::*`).

mod common;

use std::time::Duration;

use common::container::Root;
use common::places::Place;
use systemd_jobs::{
    ActiveGoal, Error, JobResult, RunJournal, StartupGoal, Step, UnitFileState, Verb,
};

const T: Duration = Duration::from_secs(30);

on_every_root!(
    system_check_then_apply_then_nothing,
    system_a_service_that_exits_at_once_is_a_failure_with_its_journal_lines,
);

const SERVICE: &str = "[Unit]\nStartLimitIntervalSec=0\n[Service]\nExecStart=/bin/sleep infinity\n[Install]\nWantedBy=TARGET\n";

/// What a check must leave alone: the links and the unit's state.
fn observed(place: &dyn Place, unit: &str) -> (common::places::Links, String, String) {
    let (_, out, _) = place.systemctl(&["show", "-P", "ActiveState", unit]);
    let (_, file, _) = place.systemctl(&["show", "-P", "UnitFileState", unit]);
    (place.links(), out.trim().to_owned(), file.trim().to_owned())
}

/// Check, apply, apply again, for running + enabled, then stopped + disabled, then masked.
fn check_then_apply_then_nothing(place: &dyn Place) {
    let unit = "app.service";
    place.write_unit(unit, &SERVICE.replace("TARGET", place.target()));
    place.reload();
    let m = place.manager();
    let goals = [
        (
            ActiveGoal::Running,
            StartupGoal::Enabled,
            vec![
                Step::Enable,
                Step::ReloadAfterChange,
                Step::Job(Verb::Start),
            ],
            "active",
            UnitFileState::Enabled,
        ),
        (
            ActiveGoal::Stopped,
            StartupGoal::Disabled,
            vec![
                Step::Disable,
                Step::ReloadAfterChange,
                Step::Job(Verb::Stop),
            ],
            "inactive",
            UnitFileState::Disabled,
        ),
        (
            ActiveGoal::Stopped,
            StartupGoal::Masked,
            vec![Step::Mask, Step::ReloadAfterChange],
            "inactive",
            UnitFileState::Masked,
        ),
        (
            ActiveGoal::Running,
            StartupGoal::Enabled,
            vec![
                Step::Unmask,
                Step::Enable,
                Step::ReloadAfterChange,
                Step::Job(Verb::Start),
            ],
            "active",
            UnitFileState::Enabled,
        ),
    ];
    for (active, startup, steps, state, file_state) in goals {
        let what = format!("{}: {active} {startup}", place.name());
        let desired = || m.desired(unit).active(active).startup(startup);
        // Check: the plan, and nothing touched.
        let before = observed(place, unit);
        let plan = desired().check(T).unwrap();
        assert!(plan.checked_only && plan.changed, "{what}: {plan}");
        assert_eq!(plan.steps, steps, "{what}");
        assert!(plan.jobs.is_empty() && plan.changes.is_empty(), "{what}");
        assert_eq!(
            observed(place, unit),
            before,
            "{what}: a check changed something"
        );
        // Apply: converged.
        let done = desired().apply(T).unwrap();
        assert!(done.changed && !done.checked_only, "{what}: {done}");
        assert_eq!(done.steps, steps, "{what}");
        assert_eq!(done.before.active_state, before.1, "{what}");
        assert!(!done.changes.is_empty(), "{what}");
        let (_, now_state, _) = observed(place, unit);
        assert_eq!(now_state, state, "{what}");
        assert_eq!(m.unit_file_state(unit, T).unwrap(), file_state, "{what}");
        // Again: unchanged, no step, no job.
        let again = desired().apply(T).unwrap();
        assert!(!again.changed, "{what}: {again}");
        assert!(
            again.steps.is_empty() && again.jobs.is_empty(),
            "{what}: {again:?}"
        );
        assert_eq!(again.to_string(), format!("{unit}: unchanged"));
        let check = desired().check(T).unwrap();
        assert!(!check.changed && check.steps.is_empty(), "{what}: {check}");
    }
    // daemon-reload asked for: a step every time, never a change.
    let again = m
        .desired(unit)
        .active(ActiveGoal::Running)
        .daemon_reload(true)
        .apply(T)
        .unwrap();
    assert_eq!(again.steps, [Step::DaemonReload]);
    assert!(!again.changed);
}

#[test]
fn user_check_then_apply_then_nothing() {
    let sd = sandbox!();
    check_then_apply_then_nothing(&sd);
}

fn system_check_then_apply_then_nothing(root: Root) {
    let c = container!(root);
    check_then_apply_then_nothing(&c);
}

#[test]
fn user_a_second_apply_makes_no_call_that_changes_anything() {
    let sd = sandbox!();
    sd.install(&[("app.service", &SERVICE.replace("TARGET", "default.target"))]);
    let m = sd.manager();
    let desired = || {
        m.desired("app.service")
            .active(ActiveGoal::Running)
            .startup(StartupGoal::Enabled)
    };
    let mut monitor = sd.monitor_calls();
    let _ = desired().apply(T).unwrap();
    let first = monitor.calls_so_far(&sd);
    let ours = |calls: &[common::SeenCall]| -> Vec<String> {
        calls
            .iter()
            .filter(|c| Some(c.sender.as_str()) == m.unique_name())
            .map(|c| c.method.rsplit('.').next().unwrap().to_owned())
            .collect()
    };
    let first = ours(&first);
    assert!(
        first.iter().any(|c| c == "EnableUnitFilesWithFlags")
            && first.iter().any(|c| c == "EnqueueUnitJob"),
        "{first:?}"
    );
    let _ = desired().apply(T).unwrap();
    let all = monitor.calls_so_far(&sd);
    let second = ours(&all)[first.len()..].to_vec();
    let reads = ["GetUnitFileState", "LoadUnit", "Get", "GetAll"];
    assert!(
        second.iter().all(|c| reads.contains(&c.as_str())),
        "the second apply only reads: {second:?}"
    );
}

#[test]
fn user_failures_say_what_was_done_before_them() {
    let sd = sandbox!();
    let fails = "[Unit]\nStartLimitIntervalSec=0\n[Service]\nType=oneshot\nExecStart=/bin/sh -c 'exit 3'\n[Install]\nWantedBy=default.target\n";
    sd.install(&[
        ("fails.service", fails),
        ("static.service", common::LONG_RUNNING),
    ]);
    let m = sd.manager();
    // Enabled, then the start fails: the enable stays, and the error says it was done.
    match m
        .desired("fails.service")
        .active(ActiveGoal::Running)
        .startup(StartupGoal::Enabled)
        .apply(T)
    {
        Err(e @ Error::PartlyApplied { .. }) => {
            let Error::PartlyApplied { applied, error, .. } = &e else {
                unreachable!()
            };
            assert_eq!(applied.steps, [Step::Enable, Step::ReloadAfterChange]);
            assert!(matches!(
                **error,
                Error::JobFailed {
                    result: JobResult::Failed,
                    ..
                }
            ));
            assert_eq!(e.exit_status(), 1);
            assert!(
                e.to_string().contains("after: enable, daemon-reload"),
                "{e}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        m.unit_file_state("fails.service", T).unwrap(),
        UnitFileState::Enabled
    );
    // A failed unit, stopped wanted, reset-failed asked for: cleared, a change.
    let done = m
        .desired("fails.service")
        .active(ActiveGoal::Stopped)
        .reset_failed(true)
        .apply(T)
        .unwrap();
    assert_eq!(done.steps, [Step::ResetFailed]);
    assert_eq!(sd.unit_property("fails.service", "ActiveState"), "inactive");
    // A unit without [Install] that is not static (it has none, and nothing wants it) is
    // static: nothing to enable, left alone.
    let done = m
        .desired("static.service")
        .startup(StartupGoal::Enabled)
        .apply(T)
        .unwrap();
    assert!(!done.changed);
    assert_eq!(done.before.unit_file, UnitFileState::Static);
    // No such unit at all.
    assert!(matches!(
        m.desired("nope.service")
            .active(ActiveGoal::Running)
            .check(T),
        Err(Error::NoSuchUnit { .. })
    ));
}

fn system_a_service_that_exits_at_once_is_a_failure_with_its_journal_lines(root: Root) {
    let c = container!(root);
    c.install(&[(
        "dies.service",
        "[Unit]\nStartLimitIntervalSec=0\n[Service]\nExecStart=/bin/sh -c 'echo cannot bind port 80 >&2; exit 1'\n",
    )]);
    let m = c.manager();
    // Type=simple: the start job is done as soon as the process is forked; it dies a moment
    // later. Applied, that is a failure, not a change.
    match m
        .desired("dies.service")
        .active(ActiveGoal::Running)
        .apply(T)
    {
        Err(e @ Error::NotActive { .. }) => {
            let journals = e.run_journals();
            let Some((_, RunJournal::Lines { lines, .. })) = journals.first() else {
                panic!("no journal lines: {e:?}");
            };
            assert!(
                lines
                    .iter()
                    .any(|l| l.message.contains("cannot bind port 80")),
                "{lines:?}"
            );
            assert_eq!(e.exit_status(), 1);
        }
        other => panic!("{other:?}"),
    }
}

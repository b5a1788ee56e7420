//! One task: connect to the manager, re-execute or reload it if asked, then bring each unit
//! to its desired state (or, in check mode, say what that would take), all under the task's
//! one deadline.

use std::time::{Duration, Instant};

use systemd_jobs::{
    ActiveGoal, Bus, Convergence, Error, JobWait, Manager, StartupGoal, Step, UnitFileState,
};

use crate::args::{Args, Scope, State};

/// What the task did for one unit: its convergence, or the error that ended it.
pub struct UnitReport {
    pub unit: String,
    pub outcome: Result<Convergence, Error>,
    /// For diff mode: the unit's state afterwards (predicted in check mode).
    pub after: Option<(String, String)>,
}

/// What the whole task did.
pub struct TaskReport {
    /// The manager-wide steps taken (`daemon-reexec`, `daemon-reload`), or would be.
    pub manager_steps: Vec<&'static str>,
    /// The error that ended the task before any unit (connecting, the re-execution).
    pub error: Option<Error>,
    pub units: Vec<UnitReport>,
    pub elapsed: Duration,
}

/// What is left of the task's deadline.
struct Clock {
    started: Instant,
    timeout: Duration,
}

impl Clock {
    fn left(&self) -> Duration {
        self.timeout.saturating_sub(self.started.elapsed())
    }
}

pub fn run(args: &Args) -> TaskReport {
    let clock = Clock {
        started: Instant::now(),
        timeout: args.timeout,
    };
    let mut report = TaskReport {
        manager_steps: Vec::new(),
        error: None,
        units: Vec::new(),
        elapsed: Duration::ZERO,
    };
    if let Err(e) = run_into(args, &clock, &mut report) {
        report.error = Some(e);
    }
    report.elapsed = clock.started.elapsed();
    report
}

fn run_into(args: &Args, clock: &Clock, report: &mut TaskReport) -> Result<(), Error> {
    let manager = connect(args, clock)?;
    if args.daemon_reexec {
        report.manager_steps.push("daemon-reexec");
        if !args.check_mode {
            manager.daemon_reexec(clock.left())?;
        }
    }
    // One reload for the task: before the first unit, or alone.
    let mut reload_first = args.daemon_reload;
    if reload_first && args.names.is_empty() {
        report.manager_steps.push("daemon-reload");
        if !args.check_mode {
            manager.daemon_reload(clock.left())?;
        }
        reload_first = false;
    }
    for unit in &args.names {
        let outcome = converge(&manager, args, unit, reload_first, clock);
        if reload_first {
            report.manager_steps.push("daemon-reload");
            reload_first = false;
        }
        let failed = outcome.is_err();
        let after = if args.diff {
            after(&manager, args, unit, &outcome, clock)
        } else {
            None
        };
        report.units.push(UnitReport {
            unit: unit.clone(),
            outcome,
            after,
        });
        if failed {
            break;
        }
    }
    Ok(())
}

fn connect(args: &Args, clock: &Clock) -> Result<Manager, Error> {
    let bus = match args.scope {
        Scope::System => Bus::System,
        Scope::User => user_bus(),
    };
    Manager::builder()
        .bus(bus)
        .connect_timeout(clock.left())
        .check_active(Some(args.check_active))
        .journal_lines(if args.no_log { 0 } else { args.journal_lines })
        .connect()
}

/// The user bus: the session's if the environment names one, else the user manager's bus at
/// `/run/user/UID/bus`, as `ansible.builtin.systemd_service` finds it when the task's
/// environment lacks `XDG_RUNTIME_DIR` (`become_user`, a plain ssh command).
fn user_bus() -> Bus {
    if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some()
        || std::env::var_os("XDG_RUNTIME_DIR").is_some()
    {
        return Bus::User;
    }
    use std::os::unix::fs::MetadataExt;
    match std::fs::metadata("/proc/self") {
        Ok(me) => Bus::Address(format!("unix:path=/run/user/{}/bus", me.uid())),
        Err(_) => Bus::User,
    }
}

/// The desired-state goals of the task's options for one unit.
fn startup_goal(args: &Args) -> Option<StartupGoal> {
    match (args.masked, args.enabled) {
        (Some(true), _) => Some(StartupGoal::Masked),
        (Some(false), Some(true)) | (None, Some(true)) => Some(StartupGoal::Enabled),
        (Some(false), Some(false)) | (None, Some(false)) => Some(StartupGoal::Disabled),
        (Some(false), None) => Some(StartupGoal::Unmasked),
        (None, None) => None,
    }
}

fn active_goal(state: State) -> ActiveGoal {
    match state {
        State::Started => ActiveGoal::Running,
        State::Stopped => ActiveGoal::Stopped,
        State::Restarted => ActiveGoal::Restarted,
        State::Reloaded => ActiveGoal::Reloaded,
    }
}

fn converge(
    manager: &Manager,
    args: &Args,
    unit: &str,
    reload_first: bool,
    clock: &Clock,
) -> Result<Convergence, Error> {
    let desired = || {
        let mut d = manager
            .desired(unit)
            .daemon_reload(reload_first)
            .reset_failed(args.reset_failed)
            .check_active(args.check_active)
            .mode(args.mode)
            .force(args.force)
            .wait(if args.no_block {
                JobWait::Queued
            } else if args.wait {
                JobWait::Completed
            } else {
                JobWait::Finished
            });
        if let Some(state) = args.state {
            d = d.active(active_goal(state));
        }
        d
    };
    // `enabled: true` leaves a mask alone unless `masked: false` says to lift it, as
    // systemctl (and systemd_service) refuse to enable a masked unit.
    if args.enabled == Some(true) && args.masked.is_none() {
        let state = manager.unit_file_state(unit, clock.left())?;
        if matches!(state, UnitFileState::Masked | UnitFileState::MaskedRuntime) {
            return Err(Error::InvalidRequest(format!(
                "{unit}: is {state}: it cannot be enabled unless `masked: false` lifts the mask"
            )));
        }
    }
    // `masked: false` with `enabled: false`: unmask, then disable.
    let mut first: Option<Convergence> = None;
    if args.masked == Some(false) && args.enabled == Some(false) {
        let unmask = manager.desired(unit).startup(StartupGoal::Unmasked);
        first = Some(if args.check_mode {
            unmask.check(clock.left())?
        } else {
            unmask.apply(clock.left())?
        });
    }
    let mut main = desired();
    if let Some(goal) = startup_goal(args) {
        main = main.startup(goal);
    }
    let result = if args.check_mode {
        main.check(clock.left())
    } else {
        main.apply(clock.left())
    };
    match (first, result) {
        (None, r) => r,
        (Some(mut first), Ok(then)) => {
            first.changed |= then.changed;
            first.steps.extend(then.steps);
            first.changes.extend(then.changes);
            first.jobs.extend(then.jobs);
            first.queued.extend(then.queued);
            first.run = then.run;
            Ok(first)
        }
        (Some(_), Err(e)) => Err(e),
    }
}

/// The unit's state after the task, for diff mode: read again after an apply, predicted
/// from the goals in check mode. `(active state, unit-file state)`.
fn after(
    manager: &Manager,
    args: &Args,
    unit: &str,
    outcome: &Result<Convergence, Error>,
    clock: &Clock,
) -> Option<(String, String)> {
    let done = outcome.as_ref().ok()?;
    if !args.check_mode {
        let now = manager.desired(unit).check(clock.left()).ok()?;
        return Some((now.before.active_state, now.before.unit_file.to_string()));
    }
    let before = &done.before;
    let active = match args.state {
        None => before.active_state.clone(),
        Some(State::Stopped) => match before.active_state.as_str() {
            "failed" if !args.reset_failed => "failed".to_owned(),
            _ => "inactive".to_owned(),
        },
        Some(_) => "active".to_owned(),
    };
    let did = |step: Step| done.steps.contains(&step);
    let file = if did(Step::Mask) {
        "masked".to_owned()
    } else if did(Step::Enable) {
        "enabled".to_owned()
    } else if did(Step::Disable) || did(Step::Unmask) {
        "disabled".to_owned()
    } else {
        before.unit_file.to_string()
    };
    Some((active, file))
}

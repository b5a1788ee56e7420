//! Bringing one unit to a desired state, idempotently: read its state, plan the steps that
//! differ (a reload, reset-failed, unit-file changes, a job), then either report them (a
//! check, which changes nothing) or do them in order under one deadline.

use std::time::Duration;

use crate::deadline::Deadline;
use crate::desired::{ActiveGoal, Convergence, JobWait, RunEnd, StartupGoal, Step, UnitStatus};
use crate::error::{BusError, Error, Result};
use crate::job::{JobMode, Verb};
use crate::ops::Context;
use crate::ops::daemon::daemon_reload;
use crate::ops::enqueue::{enqueue, enqueue_run};
use crate::ops::reset_failed::reset_failed;
use crate::ops::unit_files::change_files;
use crate::proto::unit_files::{self, FileFlags};
use crate::proto::unit_reader::UnitReader;
use crate::unit_file::{UnitFileState, UnitFileVerb};
use crate::unit_name;

/// The grace of the active check after a start a desired state makes, unless the builder
/// or the handle sets one: a service that dies within it is a failure, not a change.
pub const DEFAULT_ACTIVE_CHECK: Duration = Duration::from_millis(500);

/// A unit's desired state, to check or to apply: whether it runs ([`ActiveGoal`]), whether
/// it starts at boot ([`StartupGoal`]), and whether the manager reloads first. Build it with
/// [`Manager::desired`](crate::Manager::desired); leave a goal unset to leave that part
/// alone.
///
/// [`check`](Desired::check) reads the unit's state and reports the steps it would take,
/// touching nothing; [`apply`](Desired::apply) takes them, in order: daemon-reload (if asked
/// for), reset-failed (if asked for and the unit is `failed`), the unit-file change
/// (unmask, enable, disable or mask) followed by a daemon-reload as `systemctl` does, then
/// the job. On a converged system a second apply queues no job, changes no file and reports
/// unchanged.
///
/// How it maps onto a configuration tool's check-and-apply step, and onto Ansible:
/// [`Convergence::changed`] is Ansible's `changed`, [`check`](Desired::check) is check mode
/// (`--check`: the same steps reported, nothing done), and an error is `failed`, with the
/// reason and the failed run's journal lines. A start whose service dies right after
/// starting is a failure ([`Error::NotActive`], after the active check), never a change.
///
/// ```no_run
/// use std::time::Duration;
/// use systemd_jobs::{ActiveGoal, Manager, StartupGoal};
///
/// let manager = Manager::system()?;
/// let done = manager
///     .desired("nginx.service")
///     .active(ActiveGoal::Running)
///     .startup(StartupGoal::Enabled)
///     .apply(Duration::from_secs(90))?;
/// println!("{done}"); // nginx.service: changed (enable, daemon-reload, start)
/// # Ok::<(), systemd_jobs::Error>(())
/// ```
#[must_use = "a desired state does nothing until check() or apply()"]
pub struct Desired<'m> {
    cx: &'m Context,
    unit: String,
    active: Option<ActiveGoal>,
    startup: Option<StartupGoal>,
    daemon_reload: bool,
    reset_failed: bool,
    check_active: Option<Duration>,
    mode: JobMode,
    force: bool,
    wait: JobWait,
}

impl std::fmt::Debug for Desired<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Desired")
            .field("unit", &self.unit)
            .field("active", &self.active)
            .field("startup", &self.startup)
            .field("daemon_reload", &self.daemon_reload)
            .field("reset_failed", &self.reset_failed)
            .field("check_active", &self.check_active)
            .field("mode", &self.mode)
            .field("force", &self.force)
            .field("wait", &self.wait)
            .finish_non_exhaustive()
    }
}

impl<'m> Desired<'m> {
    pub(crate) fn new(cx: &'m Context, unit: String) -> Self {
        Desired {
            cx,
            unit,
            active: None,
            startup: None,
            daemon_reload: false,
            reset_failed: false,
            check_active: None,
            mode: JobMode::Replace,
            force: false,
            wait: JobWait::Finished,
        }
    }

    /// Whether the unit should run. Default: unset, left as it is.
    pub fn active(mut self, goal: ActiveGoal) -> Self {
        self.active = Some(goal);
        self
    }

    /// Whether the unit should start at boot. Default: unset, left as it is.
    pub fn startup(mut self, goal: StartupGoal) -> Self {
        self.startup = Some(goal);
        self
    }

    /// Reload the manager first (`daemon-reload`: after writing a unit file, or a generator's
    /// input such as `/etc/fstab`), under the same deadline. A check only reports it. It is
    /// a step, not a change. Default: `false`.
    pub fn daemon_reload(mut self, reload: bool) -> Self {
        self.daemon_reload = reload;
        self
    }

    /// Clear the unit's `failed` state (and its start-rate counter) if it is `failed`,
    /// before anything else is done to it; a change. Default: `false`.
    pub fn reset_failed(mut self, reset: bool) -> Self {
        self.reset_failed = reset;
        self
    }

    /// How long after a start (or restart) ends `done` the unit must still be active, or the
    /// apply fails with [`Error::NotActive`]. Default: the handle's
    /// [`check_active`](crate::ManagerBuilder::check_active) if it sets one, else
    /// [`DEFAULT_ACTIVE_CHECK`] (500 ms), cut to what is left of the deadline.
    pub fn check_active(mut self, grace: Duration) -> Self {
        self.check_active = Some(grace);
        self
    }

    /// The job mode of the job the apply queues. Default: [`JobMode::Replace`].
    pub fn mode(mut self, mode: JobMode) -> Self {
        self.mode = mode;
        self
    }

    /// Let a unit-file change replace symlinks in its way (`systemctl --force`): an enable
    /// over a link to another unit, a mask over a unit file's link. Default: `false`.
    pub fn force(mut self, force: bool) -> Self {
        self.force = force;
        self
    }

    /// How far the apply waits for its job ([`JobWait`]): until it finishes (the default),
    /// not at all (queued only), or, for a start, until the unit has run to completion.
    pub fn wait(mut self, wait: JobWait) -> Self {
        self.wait = wait;
        self
    }

    /// Reads the unit's state and reports the steps an [`apply`](Desired::apply) would take
    /// now, within `timeout`. Nothing is changed: no reload, no unit file, no job.
    ///
    /// # Errors
    /// [`Error::InvalidUnitName`] before any bus traffic; [`Error::NoSuchUnit`] when there is
    /// neither a unit file nor a loaded unit of that name; [`Error::Timeout`] and the manager
    /// and bus errors of the reads.
    pub fn check(self, timeout: Duration) -> Result<Convergence> {
        let deadline = Deadline::after(timeout);
        let before = self.read(&deadline)?;
        let steps = self.plan(&before)?;
        Ok(Convergence {
            unit: self.unit.clone(),
            changed: steps.iter().any(|s| s.is_change()),
            checked_only: true,
            steps,
            before,
            changes: Vec::new(),
            jobs: Vec::new(),
            queued: Vec::new(),
            run: None,
        })
    }

    /// Brings the unit to the desired state within `timeout` (see [`Desired`] for the
    /// order) and reports what was done.
    ///
    /// # Errors
    /// As [`check`](Desired::check) for reading the state, then the errors of each step:
    /// those of [`Manager::daemon_reload`](crate::Manager::daemon_reload),
    /// [`Manager::reset_failed`](crate::Manager::reset_failed),
    /// [`UnitFiles::run`](crate::UnitFiles::run) and [`Manager::run`](crate::Manager::run)
    /// (with the active check after a start); [`Error::NoInstallInfo`] when the unit is to
    /// be enabled but its file has nothing to enable. A failure after something was done
    /// is [`Error::PartlyApplied`], which says what was.
    pub fn apply(self, timeout: Duration) -> Result<Convergence> {
        let deadline = Deadline::after(timeout);
        let before = self.read(&deadline)?;
        let planned = self.plan(&before)?;
        let mut done = Convergence {
            unit: self.unit.clone(),
            changed: false,
            checked_only: false,
            steps: Vec::new(),
            before,
            changes: Vec::new(),
            jobs: Vec::new(),
            queued: Vec::new(),
            run: None,
        };
        for step in planned {
            if let Err(error) = self.take(step, &mut done, &deadline) {
                return Err(if done.steps.is_empty() {
                    error
                } else {
                    Error::PartlyApplied {
                        unit: self.unit.clone(),
                        applied: Box::new(done),
                        error: Box::new(error),
                    }
                });
            }
        }
        Ok(done)
    }

    /// The unit's unit-file state and active state.
    fn read(&self, deadline: &Deadline) -> Result<UnitStatus> {
        unit_name::validate(&self.unit)?;
        let unit = self.unit.as_str();
        let cx = self.cx;
        cx.ready(unit, deadline)?;
        let caller = cx.caller();
        let failed = |call: &'static str| {
            move |e: BusError| {
                Error::unless_timed_out(unit, deadline, || Error::from_unit_call(unit, call, e))
            }
        };
        let unit_file = unit_files::unit_file_state(&caller, unit, deadline.call_timeout())
            .map_err(|e| failed("GetUnitFileState")(e.into()))?;
        let reader =
            UnitReader::open(&caller, unit, deadline.call_timeout()).map_err(failed("LoadUnit"))?;
        let load_state = reader.load_state().map_err(failed("Get(LoadState)"))?;
        if unit_file == UnitFileState::NotFound && load_state == "not-found" {
            return Err(Error::NoSuchUnit {
                unit: unit.to_owned(),
                source: BusError::new(
                    "org.freedesktop.systemd1.NoSuchUnit",
                    format!("Unit {unit} not found: no unit file and no such unit loaded."),
                ),
            });
        }
        let state = reader.state().map_err(failed("Get(ActiveState)"))?;
        Ok(UnitStatus {
            unit_file,
            active_state: state.active_state,
            sub_state: state.sub_state,
        })
    }

    /// The steps that bring a unit in state `now` to the goals, in order.
    fn plan(&self, now: &UnitStatus) -> Result<Vec<Step>> {
        use UnitFileState as F;
        let mut steps = Vec::new();
        if self.daemon_reload {
            steps.push(Step::DaemonReload);
        }
        if self.reset_failed && now.active_state == "failed" {
            steps.push(Step::ResetFailed);
        }
        let file = &now.unit_file;
        let file_steps: &[Step] = match self.startup {
            None => &[],
            Some(StartupGoal::Enabled) => match file {
                F::Masked | F::MaskedRuntime => &[Step::Unmask, Step::Enable],
                // Nothing to enable: enabled already, or not meant to be (no [Install]
                // section, made at runtime or by a generator, enabled through its Also=
                // units, or an alias of a unit that is).
                F::Enabled | F::Static | F::Generated | F::Transient | F::Indirect | F::Alias => {
                    &[]
                }
                _ => &[Step::Enable],
            },
            Some(StartupGoal::Disabled) => match file {
                F::Enabled | F::EnabledRuntime | F::Linked | F::LinkedRuntime => &[Step::Disable],
                _ => &[],
            },
            Some(StartupGoal::Masked) => match file {
                F::Masked => &[],
                _ => &[Step::Mask],
            },
            Some(StartupGoal::Unmasked) => match file {
                F::Masked | F::MaskedRuntime => &[Step::Unmask],
                _ => &[],
            },
        };
        steps.extend_from_slice(file_steps);
        if !file_steps.is_empty() {
            steps.push(Step::ReloadAfterChange);
        }
        let active = matches!(now.active_state.as_str(), "active" | "reloading");
        let job = match self.active {
            None => None,
            Some(ActiveGoal::Running) => (!active).then_some(Verb::Start),
            Some(ActiveGoal::Stopped) => {
                (!matches!(now.active_state.as_str(), "inactive" | "failed")).then_some(Verb::Stop)
            }
            Some(ActiveGoal::Restarted) => Some(Verb::Restart),
            Some(ActiveGoal::Reloaded) => Some(if active { Verb::Reload } else { Verb::Start }),
        };
        steps.extend(job.map(Step::Job));
        Ok(steps)
    }

    /// Takes one step and records it in `done` (a unit-file step that changed nothing, and
    /// the reload after it, are not recorded).
    fn take(&self, step: Step, done: &mut Convergence, deadline: &Deadline) -> Result<()> {
        let cx = self.cx;
        let unit = self.unit.as_str();
        match step {
            Step::DaemonReload => {
                daemon_reload(cx, deadline)?;
            }
            Step::ReloadAfterChange => {
                if done.changes.iter().all(|c| !c.kind.is_change()) {
                    return Ok(());
                }
                daemon_reload(cx, deadline)?;
            }
            Step::ResetFailed => reset_failed(cx, Some(unit), deadline)?,
            Step::Unmask => return self.change(UnitFileVerb::Unmask, step, done, deadline),
            Step::Enable => return self.change(UnitFileVerb::Enable, step, done, deadline),
            Step::Disable => return self.change(UnitFileVerb::Disable, step, done, deadline),
            Step::Mask => return self.change(UnitFileVerb::Mask, step, done, deadline),
            Step::Job(verb) => self.job(verb, done, deadline)?,
        }
        done.steps.push(step);
        done.changed |= step.is_change();
        Ok(())
    }

    /// Queues the `verb` job and waits for it as [`Desired::wait`] says.
    fn job(&self, verb: Verb, done: &mut Convergence, deadline: &Deadline) -> Result<()> {
        let cx = self.cx;
        let unit = self.unit.as_str();
        match self.wait {
            JobWait::Queued => {
                let queued = enqueue(cx, verb, unit, self.mode, deadline)?;
                done.queued.push(queued.job().clone());
            }
            JobWait::Completed if matches!(verb, Verb::Start | Verb::Restart) => {
                let ran = enqueue_run(cx, verb, unit, self.mode, deadline)?.wait_until(deadline)?;
                done.jobs.push(ran.start);
                done.run = Some(RunEnd {
                    main_process: ran.main_process,
                    ran_for: ran.ran_for,
                });
            }
            JobWait::Finished | JobWait::Completed => {
                let grace = self
                    .check_active
                    .or(cx.options.check_active)
                    .unwrap_or(DEFAULT_ACTIVE_CHECK);
                let outcome = enqueue(cx, verb, unit, self.mode, deadline)?
                    .with_active_check(Some(grace))
                    .wait_until(deadline)?;
                done.jobs.push(outcome);
            }
        }
        Ok(())
    }

    /// Takes a unit-file `step` (the `verb` change to the unit) and records it in `done` if
    /// it changed something.
    fn change(
        &self,
        verb: UnitFileVerb,
        step: Step,
        done: &mut Convergence,
        deadline: &Deadline,
    ) -> Result<()> {
        let cx = self.cx;
        let unit = self.unit.as_str();
        let flags = FileFlags {
            force: self.force,
            ..FileFlags::default()
        };
        let changed = change_files(cx, verb, &[unit], flags, deadline)?;
        if verb == UnitFileVerb::Enable && changed.carries_install_info == Some(false) {
            let state = unit_files::unit_file_state(&cx.caller(), unit, deadline.call_timeout())
                .unwrap_or(UnitFileState::Other("unknown".to_owned()));
            return Err(Error::NoInstallInfo {
                unit: unit.to_owned(),
                state,
            });
        }
        let any = changed.changes.iter().any(|c| c.kind.is_change());
        done.changes.extend(changed.changes);
        if any {
            done.steps.push(step);
            done.changed = true;
        }
        Ok(())
    }
}

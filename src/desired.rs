//! A unit's desired state, and what bringing it there did or would do
//! ([`Manager::desired`](crate::Manager::desired)).

use std::fmt;
use std::time::Duration;

use crate::job::{Job, JobOutcome, Verb};
use crate::unit::ExitStatus;
use crate::unit_file::{UnitFileChange, UnitFileState};

/// Whether and how the unit should run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ActiveGoal {
    /// Active: started if it is not `active` (or `reloading`); left alone if it is.
    Running,
    /// Stopped: stopped if it is not `inactive` or `failed`; left alone if it is.
    Stopped,
    /// Restarted, always (a change every time).
    Restarted,
    /// Reloaded if active, started if not; always a change.
    Reloaded,
}

impl fmt::Display for ActiveGoal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ActiveGoal::Running => "running",
            ActiveGoal::Stopped => "stopped",
            ActiveGoal::Restarted => "restarted",
            ActiveGoal::Reloaded => "reloaded",
        })
    }
}

/// Whether the unit should start at boot (its unit-file state).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StartupGoal {
    /// Enabled (`enabled`, in `/etc` or `~/.config`, not only until reboot). A masked unit
    /// is unmasked first. A unit that is `static`, `generated` or `transient` has nothing
    /// to enable and is left alone; one whose file has no `[Install]` section otherwise is
    /// [`Error::NoInstallInfo`](crate::Error::NoInstallInfo).
    Enabled,
    /// Not enabled: disabled if it is `enabled`, `enabled-runtime`, `linked` or
    /// `linked-runtime`. A mask is left in place (a masked unit does not start at boot).
    Disabled,
    /// Masked (`masked`, not only until reboot).
    Masked,
    /// Not masked: unmasked if it is `masked` or `masked-runtime`; otherwise left as it is
    /// (enabled or not).
    Unmasked,
}

impl fmt::Display for StartupGoal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StartupGoal::Enabled => "enabled",
            StartupGoal::Disabled => "disabled",
            StartupGoal::Masked => "masked",
            StartupGoal::Unmasked => "unmasked",
        })
    }
}

/// How far an apply waits for the job it queues
/// ([`Desired::wait`](crate::Desired::wait)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum JobWait {
    /// Until the job has finished, then (after a start, restart or a reload that started)
    /// the active check. The default.
    #[default]
    Finished,
    /// Not at all, as `systemctl --no-block` (Ansible's `no_block`): the job is queued and
    /// the apply returns with it in [`Convergence::queued`]. Its result is not known, and a
    /// service that dies right after starting is not noticed.
    Queued,
    /// After a start (or restart): until the unit has run and stopped again, as `systemctl
    /// start --wait`. A run that ends badly is
    /// [`Error::RunFailed`](crate::Error::RunFailed); how it ended is in
    /// [`Convergence::run`]. Other jobs are waited for as [`JobWait::Finished`].
    Completed,
}

/// How a unit that an apply ran to completion ([`JobWait::Completed`]) ended: it ran and
/// stopped with `Result=success`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunEnd {
    /// For services: how the main process ended, if one ran.
    pub main_process: Option<ExitStatus>,
    /// How long the unit ran (systemd's own timestamps), when systemd recorded it.
    pub ran_for: Option<Duration>,
}

/// One step of bringing a unit to its desired state, in the order it is (or would be) done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Step {
    /// `daemon-reload`, asked for before anything else (not a change by itself).
    DaemonReload,
    /// `reset-failed` of the unit, which was `failed`.
    ResetFailed,
    /// `unmask`.
    Unmask,
    /// `enable`.
    Enable,
    /// `disable`.
    Disable,
    /// `mask`.
    Mask,
    /// `daemon-reload` after a unit-file change, as `systemctl` does (not a change by itself).
    ReloadAfterChange,
    /// A job of this verb.
    Job(Verb),
}

impl Step {
    /// Whether the step changes the unit's state (a reload alone does not).
    pub fn is_change(self) -> bool {
        !matches!(self, Step::DaemonReload | Step::ReloadAfterChange)
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::DaemonReload | Step::ReloadAfterChange => f.write_str("daemon-reload"),
            Step::ResetFailed => f.write_str("reset-failed"),
            Step::Unmask => f.write_str("unmask"),
            Step::Enable => f.write_str("enable"),
            Step::Disable => f.write_str("disable"),
            Step::Mask => f.write_str("mask"),
            Step::Job(verb) => write!(f, "{verb}"),
        }
    }
}

/// A unit's state as read before anything was done.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UnitStatus {
    /// Its unit file's state (`enabled`, `disabled`, `masked`, `static`, `not-found`...).
    pub unit_file: UnitFileState,
    /// `ActiveState`: `active`, `inactive`, `failed`, `activating`...
    pub active_state: String,
    /// `SubState`: `running`, `dead`, `exited`...
    pub sub_state: String,
}

impl fmt::Display for UnitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}), {}",
            self.active_state, self.sub_state, self.unit_file
        )
    }
}

/// What bringing a unit to its desired state did (apply) or would do (check).
///
/// Maps onto a configuration tool's check-and-apply step and onto Ansible's result:
/// [`changed`](Convergence::changed) is Ansible's `changed`, a check's
/// [`steps`](Convergence::steps) are what check mode reports, and an error is `failed`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Convergence {
    /// The unit.
    pub unit: String,
    /// Whether the unit's state was (or would be) changed: a step other than a reload.
    pub changed: bool,
    /// `true` for a check: the steps are what would be done, and nothing was.
    pub checked_only: bool,
    /// The steps done (or that would be done), in order.
    pub steps: Vec<Step>,
    /// The unit's state as read first.
    pub before: UnitStatus,
    /// The unit-file changes systemd reported (empty for a check).
    pub changes: Vec<UnitFileChange>,
    /// The jobs that ran, with their results (empty for a check).
    pub jobs: Vec<JobOutcome>,
    /// The jobs queued and not waited for ([`JobWait::Queued`]).
    pub queued: Vec<Job>,
    /// How the run ended, for a start run to completion ([`JobWait::Completed`]).
    pub run: Option<RunEnd>,
}

impl Convergence {
    /// The steps done, for an error's message: `enable, daemon-reload, start`.
    pub(crate) fn done_summary(&self) -> String {
        let steps: Vec<String> = self.steps.iter().map(ToString::to_string).collect();
        if steps.is_empty() {
            "nothing".to_owned()
        } else {
            steps.join(", ")
        }
    }
}

impl fmt::Display for Convergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match (self.changed, self.checked_only) {
            (false, _) => "unchanged",
            (true, true) => "would change",
            (true, false) => "changed",
        };
        write!(f, "{}: {what}", self.unit)?;
        if !self.steps.is_empty() {
            write!(f, " ({})", self.done_summary())?;
        }
        Ok(())
    }
}

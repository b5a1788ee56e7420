//! Unit-file operations (`enable`, `disable`, `mask`...): the change, the reload that makes
//! the manager see it, and with `--now` the jobs, all under one deadline.

use std::time::Duration;

use crate::deadline::Deadline;
use crate::error::{Error, Result};
use crate::job::{JobMode, Verb};
use crate::ops::Context;
use crate::ops::batch::Batch;
use crate::ops::daemon::daemon_reload;
use crate::proto::calls;
use crate::proto::unit_files::{self, FileFlags};
use crate::unit_file::{UnitFileOutcome, UnitFileVerb};
use crate::unit_name;

/// A unit-file operation on one or more units, as `systemctl enable` (and `disable`,
/// `reenable`, `link`, `preset`, `mask`, `unmask`) does it: the change, then a
/// `daemon-reload` so the manager sees it, then with [`now`](UnitFiles::now) the job that
/// `--now` queues for each unit, all under one deadline. Build it with
/// [`Manager::unit_files`](crate::Manager::unit_files).
///
/// ```no_run
/// use std::time::Duration;
/// use systemd_jobs::{Manager, UnitFileVerb};
///
/// let manager = Manager::system()?;
/// let done = manager
///     .unit_files(UnitFileVerb::Enable, ["app.service"])
///     .now(true)
///     .run(Duration::from_secs(60))?;
/// for change in &done.changes {
///     println!("{change}"); // Created symlink /etc/systemd/system/multi-user.target.wants/app.service → ...
/// }
/// for job in done.jobs {
///     println!("{}", job?); // app.service: done (job 812, 40 ms)
/// }
/// # Ok::<(), systemd_jobs::Error>(())
/// ```
#[must_use = "a unit-file operation does nothing until run()"]
pub struct UnitFiles<'m> {
    cx: &'m Context,
    verb: UnitFileVerb,
    files: Vec<String>,
    flags: FileFlags,
    reload: bool,
    now: bool,
    mode: JobMode,
}

/// Asks the manager to make the `verb` change to `files` within `deadline`, and maps its
/// refusal to the crate's error, naming the files.
///
/// # Errors
/// As [`UnitFiles::run`] for the change.
pub(crate) fn change_files(
    cx: &Context,
    verb: UnitFileVerb,
    files: &[&str],
    flags: FileFlags,
    deadline: &Deadline,
) -> Result<unit_files::Changed> {
    log::debug!("{verb} {files:?} ({flags:?})");
    let changed = unit_files::change(
        &cx.action_caller(),
        &cx.unit_file_methods,
        verb,
        files,
        flags,
        deadline.call_timeout(),
    )
    .map_err(|(call, e)| {
        log::debug!("{call}({files:?}) failed: {e}");
        let subject = files.join(", ");
        Error::unless_timed_out(&subject, deadline, || {
            Error::from_unit_file_call(&subject, verb, call, e.into())
                .sent_interactive(cx.options.allow_interactive_authorization)
        })
    })?;
    log::debug!(
        "{} answered {} changes, install info {:?}",
        changed.method,
        changed.changes.len(),
        changed.carries_install_info
    );
    Ok(changed)
}

impl std::fmt::Debug for UnitFiles<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnitFiles")
            .field("verb", &self.verb)
            .field("files", &self.files)
            .field("flags", &self.flags)
            .field("reload", &self.reload)
            .field("now", &self.now)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl<'m> UnitFiles<'m> {
    pub(crate) fn new(cx: &'m Context, verb: UnitFileVerb, files: Vec<String>) -> Self {
        UnitFiles {
            cx,
            verb,
            files,
            flags: FileFlags::default(),
            reload: true,
            now: false,
            mode: JobMode::Replace,
        }
    }

    /// Make the change under `/run` only, until the next reboot (`systemctl --runtime`).
    /// Default: `false`, the change is in `/etc` (`~/.config` for a user manager).
    pub fn runtime(mut self, runtime: bool) -> Self {
        self.flags.runtime = runtime;
        self
    }

    /// Replace symlinks that are in the way (`systemctl --force`); for `enable`,
    /// `reenable`, `link`, `preset` and `mask`. Default: `false`, a symlink in the way is
    /// [`Error::UnitFileFailed`] with [`UnitFileProblem::Exists`](crate::UnitFileProblem::Exists).
    pub fn force(mut self, force: bool) -> Self {
        self.flags.force = force;
        self
    }

    /// Reload the manager after the change, as `systemctl` does (its `--no-reload` is
    /// `false` here). Default: `true`. Without it the manager goes on with the
    /// dependencies it had loaded until the next reload.
    pub fn reload(mut self, reload: bool) -> Self {
        self.reload = reload;
        self
    }

    /// Also queue each unit's job and wait for it (`systemctl --now`): start after
    /// `enable` and `unmask`, stop after `disable` and `mask`, try-restart after
    /// `reenable` ([`UnitFileVerb::now_verb`]). A template gets no job after `enable`,
    /// `reenable` or `unmask` (it is listed in [`UnitFileOutcome::skipped`]); after
    /// `disable` or `mask`, every loaded instance of it is stopped, as `systemctl` does.
    /// Default: `false`.
    pub fn now(mut self, now: bool) -> Self {
        self.now = now;
        self
    }

    /// The job mode of the jobs [`now`](UnitFiles::now) queues. Default: [`JobMode::Replace`].
    pub fn mode(mut self, mode: JobMode) -> Self {
        self.mode = mode;
        self
    }

    /// Makes the change, reloads, and with [`now`](UnitFiles::now) runs the jobs, all
    /// within `timeout`.
    ///
    /// # Errors
    /// Before any bus traffic: [`Error::InvalidUnitName`] for an argument that is neither a
    /// unit name, a template nor an absolute path to a unit file, [`Error::InvalidRequest`]
    /// for `now` with `link` or `preset` (which queue no job). For the change:
    /// [`Error::NoSuchUnit`] (no such unit file), [`Error::UnitMasked`],
    /// [`Error::UnitFileFailed`] (a file in the way, a read-only configuration directory, a
    /// generated unit...), [`Error::AccessDenied`] when polkit refuses
    /// (`manage-unit-files`), [`Error::Timeout`] and the manager and bus errors of any
    /// call; the errors of [`Manager::daemon_reload`](crate::Manager::daemon_reload) for
    /// the reload. Once the change is made, each job's failure is reported in
    /// [`UnitFileOutcome::jobs`], beside the changes, not as this error.
    pub fn run(self, timeout: Duration) -> Result<UnitFileOutcome> {
        self.run_until(&Deadline::after(timeout))
    }

    pub(crate) fn run_until(self, deadline: &Deadline) -> Result<UnitFileOutcome> {
        let subject = self.files.join(", ");
        for file in &self.files {
            unit_name::validate_file(file)?;
        }
        let now_verb = match (self.now, self.verb.now_verb()) {
            (false, _) => None,
            (true, Some(verb)) => Some(verb),
            (true, None) => {
                return Err(Error::InvalidRequest(format!(
                    "{} queues no job, so --now cannot be used with it",
                    self.verb
                )));
            }
        };
        let cx = self.cx;
        cx.ready(&subject, deadline)?;
        let files: Vec<&str> = self.files.iter().map(String::as_str).collect();
        let changed = change_files(cx, self.verb, &files, self.flags, deadline)?;
        if self.reload {
            daemon_reload(cx, deadline)?;
        }
        let mut outcome = UnitFileOutcome {
            verb: self.verb,
            changes: changed.changes,
            carries_install_info: changed.carries_install_info,
            reloaded: self.reload,
            jobs: Vec::new(),
            skipped: Vec::new(),
        };
        if let Some(verb) = now_verb {
            let mut failed = Vec::new();
            let units = self.units_for(verb, &mut outcome.skipped, &mut failed, deadline);
            let batch = units.iter().fold(Batch::new(cx).mode(self.mode), |b, u| {
                b.add(verb, u.as_str())
            });
            outcome.jobs = batch.run_until(deadline);
            outcome.jobs.extend(failed.into_iter().map(Err));
        }
        Ok(outcome)
    }

    /// The units `--now` queues `verb` for: each argument's unit; for a template, its
    /// loaded instances when they are to be stopped (a failure to list them goes to
    /// `failed`), nothing otherwise (recorded in `skipped`).
    fn units_for(
        &self,
        verb: Verb,
        skipped: &mut Vec<String>,
        failed: &mut Vec<Error>,
        deadline: &Deadline,
    ) -> Vec<String> {
        let mut units = Vec::new();
        for file in &self.files {
            let unit = unit_name::file_unit(file);
            if !unit_name::is_template(unit) {
                units.push(unit.to_owned());
                continue;
            }
            if verb != Verb::Stop {
                skipped.push(unit.to_owned());
                continue;
            }
            let pattern = unit.replacen("@.", "@*.", 1);
            match calls::units_matching(&self.cx.caller(), &pattern, deadline.call_timeout()) {
                Ok(instances) => units.extend(instances),
                Err(e) => failed.push(Error::from_call(unit, "ListUnitsByPatterns", e.into())),
            }
        }
        units
    }
}

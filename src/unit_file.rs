//! Unit files: the operations on them (`enable`, `disable`, `mask`...), the changes systemd
//! reports for them, and a unit file's state (`systemctl is-enabled`).

use std::convert::Infallible;
use std::fmt;
use std::str::FromStr;

use crate::error::Error;
use crate::job::{JobOutcome, Verb};

/// An operation on unit files, as `systemctl` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UnitFileVerb {
    /// `enable`: create the symlinks the `[Install]` section asks for.
    Enable,
    /// `disable`: remove every symlink to the unit file from the configuration directories.
    Disable,
    /// `reenable`: disable, then enable (the symlinks as the `[Install]` section says now).
    Reenable,
    /// `link`: make a unit file outside the search path (given by absolute path) loadable.
    Link,
    /// `preset`: enable or disable as the preset policy (`*.preset` files) says.
    Preset,
    /// `mask`: link the unit name to `/dev/null`, so it cannot be started at all.
    Mask,
    /// `unmask`: remove such a link.
    Unmask,
}

impl UnitFileVerb {
    /// Every verb, in `systemctl`'s order.
    pub const ALL: [UnitFileVerb; 7] = [
        UnitFileVerb::Enable,
        UnitFileVerb::Disable,
        UnitFileVerb::Reenable,
        UnitFileVerb::Link,
        UnitFileVerb::Preset,
        UnitFileVerb::Mask,
        UnitFileVerb::Unmask,
    ];

    /// The `systemctl` command, e.g. `reenable`.
    pub fn as_str(self) -> &'static str {
        match self {
            UnitFileVerb::Enable => "enable",
            UnitFileVerb::Disable => "disable",
            UnitFileVerb::Reenable => "reenable",
            UnitFileVerb::Link => "link",
            UnitFileVerb::Preset => "preset",
            UnitFileVerb::Mask => "mask",
            UnitFileVerb::Unmask => "unmask",
        }
    }

    /// The job `--now` queues after the change, as `systemctl` does: start after `enable`
    /// and `unmask`, stop after `disable` and `mask`, try-restart after `reenable`; `None`
    /// for `link` and `preset`, which `systemctl` refuses with `--now`.
    pub fn now_verb(self) -> Option<Verb> {
        match self {
            UnitFileVerb::Enable | UnitFileVerb::Unmask => Some(Verb::Start),
            UnitFileVerb::Disable | UnitFileVerb::Mask => Some(Verb::Stop),
            UnitFileVerb::Reenable => Some(Verb::TryRestart),
            UnitFileVerb::Link | UnitFileVerb::Preset => None,
        }
    }
}

impl fmt::Display for UnitFileVerb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for UnitFileVerb {
    type Err = Error;

    /// Parses `systemctl`'s command names (`enable`, `unmask`, ...).
    fn from_str(s: &str) -> Result<Self, Error> {
        UnitFileVerb::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| Error::UnknownVerb(s.to_owned()))
    }
}

/// What kind of change systemd made (or declined to make) to a unit file, the first field of
/// the `a(sss)` changes its unit-file methods return.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChangeKind {
    /// `symlink`: the symlink [`UnitFileChange::path`] was created, pointing to
    /// [`UnitFileChange::source`].
    Symlink,
    /// `unlink`: the file or symlink [`UnitFileChange::path`] was removed.
    Unlink,
    /// `masked`: the unit is masked, so it was left alone.
    Masked,
    /// `masked by generator`: the unit is masked by a generator and cannot be unmasked.
    MaskedByGenerator,
    /// `dangling`: the unit is an alias to a unit that is not present, so it was left alone.
    Dangling,
    /// `destination not present`: the unit was added as a dependency of a unit that does
    /// not exist ([`UnitFileChange::path`]).
    DestinationNotPresent,
    /// `auxiliary unit failed`: enabling a unit named in `Also=` failed; it was ignored.
    AuxiliaryFailed,
    /// A kind newer than this crate.
    Other(String),
}

impl ChangeKind {
    /// systemd's string for this kind.
    pub fn as_str(&self) -> &str {
        match self {
            ChangeKind::Symlink => "symlink",
            ChangeKind::Unlink => "unlink",
            ChangeKind::Masked => "masked",
            ChangeKind::MaskedByGenerator => "masked by generator",
            ChangeKind::Dangling => "dangling",
            ChangeKind::DestinationNotPresent => "destination not present",
            ChangeKind::AuxiliaryFailed => "auxiliary unit failed",
            ChangeKind::Other(s) => s,
        }
    }

    /// Whether something was changed on disk (a symlink created or removed), as opposed to
    /// a note about something left alone.
    pub fn is_change(&self) -> bool {
        matches!(self, ChangeKind::Symlink | ChangeKind::Unlink)
    }
}

impl FromStr for ChangeKind {
    type Err = Infallible;

    fn from_str(s: &str) -> Result<Self, Infallible> {
        Ok(match s {
            "symlink" => ChangeKind::Symlink,
            "unlink" => ChangeKind::Unlink,
            "masked" => ChangeKind::Masked,
            "masked by generator" => ChangeKind::MaskedByGenerator,
            "dangling" => ChangeKind::Dangling,
            "destination not present" => ChangeKind::DestinationNotPresent,
            "auxiliary unit failed" => ChangeKind::AuxiliaryFailed,
            other => ChangeKind::Other(other.to_owned()),
        })
    }
}

impl fmt::Display for ChangeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One change systemd reported for a unit-file operation: `(type, file, destination)`.
///
/// Its `Display` is what `systemctl` prints for it, in the wording of systemd 257 and later:
/// `Created symlink '/etc/systemd/system/multi-user.target.wants/app.service' →
/// '/etc/systemd/system/app.service'.`, `Removed '/etc/.../app.service'.`, ...
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct UnitFileChange {
    /// What happened.
    pub kind: ChangeKind,
    /// The file created or removed (for notes: the unit concerned).
    pub path: String,
    /// For a symlink, where it points; otherwise usually empty.
    pub source: String,
}

impl UnitFileChange {
    /// A change as systemd reports it.
    pub fn new(kind: ChangeKind, path: impl Into<String>, source: impl Into<String>) -> Self {
        UnitFileChange {
            kind,
            path: path.into(),
            source: source.into(),
        }
    }
}

impl fmt::Display for UnitFileChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (path, source) = (&self.path, &self.source);
        match &self.kind {
            ChangeKind::Symlink => write!(f, "Created symlink '{path}' \u{2192} '{source}'."),
            ChangeKind::Unlink => write!(f, "Removed '{path}'."),
            ChangeKind::Masked => write!(f, "Unit {path} is masked, ignoring."),
            ChangeKind::MaskedByGenerator => write!(
                f,
                "Unit {path} is masked via a generator and cannot be unmasked."
            ),
            ChangeKind::Dangling => write!(
                f,
                "Unit {path} is an alias to a unit that is not present, ignoring."
            ),
            ChangeKind::DestinationNotPresent => write!(
                f,
                "Unit {source} is added as a dependency to a non-existent unit {path}."
            ),
            ChangeKind::AuxiliaryFailed => {
                write!(f, "Failed to enable auxiliary unit {path}, ignoring.")
            }
            ChangeKind::Other(kind) => write!(f, "{kind}: {path} {source}"),
        }
    }
}

/// A unit file's state, as `GetUnitFileState` (and `systemctl is-enabled`) reports it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UnitFileState {
    /// `enabled`: symlinked from a `.wants/`, `.requires/` or alias in `/etc` (or `~/.config`).
    Enabled,
    /// `enabled-runtime`: the same under `/run`, until the next reboot.
    EnabledRuntime,
    /// `linked`: made available through a symlink to a file outside the search path.
    Linked,
    /// `linked-runtime`: the same under `/run`.
    LinkedRuntime,
    /// `alias`: the name is an alias of another unit file.
    Alias,
    /// `masked`: linked to `/dev/null`; it cannot be started.
    Masked,
    /// `masked-runtime`: the same under `/run`.
    MaskedRuntime,
    /// `static`: no `[Install]` section; started as another unit's dependency or by
    /// activation, not meant to be enabled.
    Static,
    /// `disabled`: has an `[Install]` section but is not enabled.
    Disabled,
    /// `indirect`: not enabled itself, but names units in `Also=` (or has an alias not
    /// listed there) that may be.
    Indirect,
    /// `generated`: made by a generator (e.g. from `/etc/fstab`).
    Generated,
    /// `transient`: made at runtime over the bus (`systemd-run`).
    Transient,
    /// `bad`: the unit file is invalid.
    Bad,
    /// `not-found`: no unit file of that name (what `systemctl is-enabled` prints).
    NotFound,
    /// A state newer than this crate.
    Other(String),
}

impl UnitFileState {
    /// systemd's string for this state.
    pub fn as_str(&self) -> &str {
        match self {
            UnitFileState::Enabled => "enabled",
            UnitFileState::EnabledRuntime => "enabled-runtime",
            UnitFileState::Linked => "linked",
            UnitFileState::LinkedRuntime => "linked-runtime",
            UnitFileState::Alias => "alias",
            UnitFileState::Masked => "masked",
            UnitFileState::MaskedRuntime => "masked-runtime",
            UnitFileState::Static => "static",
            UnitFileState::Disabled => "disabled",
            UnitFileState::Indirect => "indirect",
            UnitFileState::Generated => "generated",
            UnitFileState::Transient => "transient",
            UnitFileState::Bad => "bad",
            UnitFileState::NotFound => "not-found",
            UnitFileState::Other(s) => s,
        }
    }

    /// What `systemctl is-enabled` answers with exit status 0: `enabled`,
    /// `enabled-runtime`, `static`, `alias`, `indirect` and `generated`.
    pub fn is_enabled(&self) -> bool {
        matches!(
            self,
            UnitFileState::Enabled
                | UnitFileState::EnabledRuntime
                | UnitFileState::Static
                | UnitFileState::Alias
                | UnitFileState::Indirect
                | UnitFileState::Generated
        )
    }

    /// `masked` or `masked-runtime`.
    pub fn is_masked(&self) -> bool {
        matches!(self, UnitFileState::Masked | UnitFileState::MaskedRuntime)
    }
}

impl FromStr for UnitFileState {
    type Err = Infallible;

    fn from_str(s: &str) -> Result<Self, Infallible> {
        Ok(match s {
            "enabled" => UnitFileState::Enabled,
            "enabled-runtime" => UnitFileState::EnabledRuntime,
            "linked" => UnitFileState::Linked,
            "linked-runtime" => UnitFileState::LinkedRuntime,
            "alias" => UnitFileState::Alias,
            "masked" => UnitFileState::Masked,
            "masked-runtime" => UnitFileState::MaskedRuntime,
            "static" => UnitFileState::Static,
            "disabled" => UnitFileState::Disabled,
            "indirect" => UnitFileState::Indirect,
            "generated" => UnitFileState::Generated,
            "transient" => UnitFileState::Transient,
            "bad" => UnitFileState::Bad,
            "not-found" => UnitFileState::NotFound,
            other => UnitFileState::Other(other.to_owned()),
        })
    }
}

impl fmt::Display for UnitFileState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why systemd refused a unit-file operation, read from its D-Bus error
/// ([`Error::UnitFileFailed`](crate::Error::UnitFileFailed)).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UnitFileProblem {
    /// There is no unit file of that name (`org.freedesktop.systemd1.NoSuchUnit`).
    NotFound,
    /// The unit is masked (`UnitMasked`): unmask it first.
    Masked,
    /// A file is in the way (`org.freedesktop.systemd1.UnitExists`): a symlink pointing
    /// elsewhere, or a regular file (use `force` to replace a symlink).
    Exists,
    /// The unit is transient or generated (`UnitGenerated`): it has no unit file to change.
    Generated,
    /// The file is already in the unit search path (`UnitBadPath`), e.g. `link` of a file
    /// under `/etc/systemd/system`.
    BadPath,
    /// An alias name or a linked unit file was given where the unit itself is needed
    /// (`UnitLinked`).
    Linked,
    /// The `[Install]` section is wrong (`BadUnitSetting`): an invalid specifier, alias or
    /// unit name in it.
    BadSetting,
    /// The configuration directory is read-only (`EROFS`).
    ReadOnly,
    /// Anything else systemd answered; the error's source says what.
    Other,
}

impl UnitFileProblem {
    /// The problem a D-Bus error name stands for.
    pub(crate) fn from_error_name(name: &str) -> Self {
        match name {
            "org.freedesktop.systemd1.NoSuchUnit" => UnitFileProblem::NotFound,
            "org.freedesktop.systemd1.UnitMasked" => UnitFileProblem::Masked,
            "org.freedesktop.systemd1.UnitExists" => UnitFileProblem::Exists,
            "org.freedesktop.systemd1.UnitGenerated" => UnitFileProblem::Generated,
            "org.freedesktop.systemd1.UnitBadPath" => UnitFileProblem::BadPath,
            "org.freedesktop.systemd1.UnitLinked" => UnitFileProblem::Linked,
            "org.freedesktop.systemd1.BadUnitSetting" => UnitFileProblem::BadSetting,
            "System.Error.EROFS" => UnitFileProblem::ReadOnly,
            _ => UnitFileProblem::Other,
        }
    }
}

impl fmt::Display for UnitFileProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UnitFileProblem::NotFound => "no such unit file",
            UnitFileProblem::Masked => "the unit is masked",
            UnitFileProblem::Exists => "a file is in the way",
            UnitFileProblem::Generated => "the unit is transient or generated",
            UnitFileProblem::BadPath => "the file is in the unit search path already",
            UnitFileProblem::Linked => "an alias or linked unit file was given",
            UnitFileProblem::BadSetting => "its [Install] section is invalid",
            UnitFileProblem::ReadOnly => "the configuration directory is read-only",
            UnitFileProblem::Other => "systemd refused it",
        })
    }
}

/// What a unit-file operation did ([`UnitFiles::run`](crate::UnitFiles::run)).
#[derive(Debug)]
#[non_exhaustive]
pub struct UnitFileOutcome {
    /// The operation.
    pub verb: UnitFileVerb,
    /// The changes systemd made or reported, in its order (empty when nothing needed to
    /// change).
    pub changes: Vec<UnitFileChange>,
    /// Whether the unit files have installation information (`[Install]` with `WantedBy=`,
    /// `RequiredBy=`, `Also=`, `Alias=`...), where the operation reports it (`enable`,
    /// `disable` on systemd 257 and later, `reenable`, `preset`); `Some(false)` means
    /// systemd had nothing to enable or disable: the unit is not meant to be.
    pub carries_install_info: Option<bool>,
    /// Whether the manager was reloaded afterwards (as `systemctl` does, unless turned off).
    pub reloaded: bool,
    /// With `--now`: the job for each unit (start, stop or try-restart), in input order.
    /// A unit-file change that succeeded stays reported here even when its job failed.
    pub jobs: Vec<crate::error::Result<JobOutcome>>,
    /// With `--now`: templates, which have no job of their own and were left alone (as
    /// `systemctl` skips them).
    pub skipped: Vec<String>,
}

impl UnitFileOutcome {
    /// Whether the jobs (with `--now`) all succeeded; `true` when there were none.
    pub fn jobs_succeeded(&self) -> bool {
        self.jobs.iter().all(Result::is_ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_round_trip() {
        for v in UnitFileVerb::ALL {
            assert_eq!(v.as_str().parse::<UnitFileVerb>().unwrap(), v);
        }
        for s in [
            "enabled",
            "enabled-runtime",
            "linked",
            "linked-runtime",
            "alias",
            "masked",
            "masked-runtime",
            "static",
            "disabled",
            "indirect",
            "generated",
            "transient",
            "bad",
            "not-found",
            "brand-new",
        ] {
            assert_eq!(s.parse::<UnitFileState>().unwrap().as_str(), s);
        }
        for s in [
            "symlink",
            "unlink",
            "masked",
            "masked by generator",
            "dangling",
            "destination not present",
            "auxiliary unit failed",
            "brand-new",
        ] {
            assert_eq!(s.parse::<ChangeKind>().unwrap().as_str(), s);
        }
    }

    #[test]
    fn changes_print_as_systemctl_prints_them() {
        let created = UnitFileChange::new(ChangeKind::Symlink, "/etc/a.wants/x", "/etc/x");
        assert_eq!(
            created.to_string(),
            "Created symlink '/etc/a.wants/x' \u{2192} '/etc/x'."
        );
        let removed = UnitFileChange::new(ChangeKind::Unlink, "/etc/a.wants/x", "");
        assert_eq!(removed.to_string(), "Removed '/etc/a.wants/x'.");
    }

    #[test]
    fn is_enabled_is_systemctl_s_exit_zero_set() {
        let zero: Vec<_> = [
            "enabled",
            "enabled-runtime",
            "static",
            "alias",
            "indirect",
            "generated",
        ]
        .iter()
        .map(|s| s.parse::<UnitFileState>().unwrap())
        .collect();
        assert!(zero.iter().all(UnitFileState::is_enabled));
        for s in [
            "disabled",
            "masked",
            "linked",
            "transient",
            "bad",
            "not-found",
        ] {
            assert!(!s.parse::<UnitFileState>().unwrap().is_enabled(), "{s}");
        }
    }
}

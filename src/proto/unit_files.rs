//! Typed calls on unit files: enable, disable, reenable, link, preset, mask, unmask, and the
//! unit-file state, each bounded by the timeout it is given.
//!
//! # Which method, on which manager
//! Checked against systemd 252, 257 and 262 (their bus policies and their managers):
//!
//! | verb | first choice | where it is missing or refused |
//! |---|---|---|
//! | enable | `EnableUnitFilesWithFlags(as, t)` | `EnableUnitFiles(as, b, b)` |
//! | disable | `DisableUnitFilesWithFlagsAndInstallInfo(as, t)` (257+) | `DisableUnitFilesWithFlags(as, t)`, then `DisableUnitFiles(as, b)` |
//! | reenable | `ReenableUnitFiles(as, b, b)` | |
//! | link | `LinkUnitFiles(as, b, b)` | |
//! | preset | `PresetUnitFiles(as, b, b)` | |
//! | mask | `MaskUnitFiles(as, b, b)` | |
//! | unmask | `UnmaskUnitFiles(as, b)` | |
//!
//! systemd 252's bus policy does not let callers that are not root send the `...WithFlags`
//! methods at all (the bus daemon refuses them before polkit is asked), so for them the
//! older methods are used; 257 and 262 allow them. A method found missing or refused is
//! not tried again on the same handle ([`Missing`]).

use std::cell::Cell;
use std::time::Duration;

use dbus::Message;
use dbus::arg::{Append, IterAppend};
use dbus::blocking::BlockingSender;

use crate::proto::{errors, manager_call, refused_by_bus_policy};
use crate::unit_file::{UnitFileChange, UnitFileState, UnitFileVerb};

/// `UNIT_FILE_RUNTIME`: under `/run`, until the next reboot.
const FLAG_RUNTIME: u64 = 1 << 0;
/// `UNIT_FILE_FORCE`: replace symlinks in the way.
const FLAG_FORCE: u64 = 1 << 1;

/// The options of a unit-file operation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct FileFlags {
    pub(crate) runtime: bool,
    pub(crate) force: bool,
}

impl FileFlags {
    fn bits(self) -> u64 {
        (if self.runtime { FLAG_RUNTIME } else { 0 }) | (if self.force { FLAG_FORCE } else { 0 })
    }
}

/// What a unit-file method answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Changed {
    /// Whether the unit files have install information (`[Install]`); `None` where the
    /// method does not say.
    pub(crate) carries_install_info: Option<bool>,
    pub(crate) changes: Vec<UnitFileChange>,
    /// The method that answered, e.g. `EnableUnitFilesWithFlags`.
    pub(crate) method: &'static str,
}

/// The `...WithFlags` methods a manager turned out not to have (or its bus policy refused),
/// learned once per handle.
#[derive(Debug, Default)]
pub(crate) struct Missing {
    bits: Cell<u8>,
}

impl Missing {
    fn has(&self, method: &'static str) -> bool {
        self.bits.get() & bit(method) != 0
    }

    fn mark(&self, method: &'static str) {
        log::debug!("{method} is not available here: using an older method from now on");
        self.bits.set(self.bits.get() | bit(method));
    }
}

fn bit(method: &str) -> u8 {
    match method {
        "EnableUnitFilesWithFlags" => 1,
        "DisableUnitFilesWithFlagsAndInstallInfo" => 2,
        "DisableUnitFilesWithFlags" => 4,
        _ => 0,
    }
}

/// One way of asking for a verb: the method and how its arguments are shaped.
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// `(as, t flags)`.
    Flags,
    /// `(as, b runtime, b force)`.
    RuntimeForce,
    /// `(as, b runtime)`.
    Runtime,
}

/// The methods for `verb`, in the order they are tried, with whether each answers with the
/// install information first (`(b, a(sss))`) or the changes only (`(a(sss))`).
fn methods(verb: UnitFileVerb) -> &'static [(&'static str, Shape, bool)] {
    use Shape::*;
    match verb {
        UnitFileVerb::Enable => &[
            ("EnableUnitFilesWithFlags", Flags, true),
            ("EnableUnitFiles", RuntimeForce, true),
        ],
        UnitFileVerb::Disable => &[
            ("DisableUnitFilesWithFlagsAndInstallInfo", Flags, true),
            ("DisableUnitFilesWithFlags", Flags, false),
            ("DisableUnitFiles", Runtime, false),
        ],
        UnitFileVerb::Reenable => &[("ReenableUnitFiles", RuntimeForce, true)],
        UnitFileVerb::Link => &[("LinkUnitFiles", RuntimeForce, false)],
        UnitFileVerb::Preset => &[("PresetUnitFiles", RuntimeForce, true)],
        UnitFileVerb::Mask => &[("MaskUnitFiles", RuntimeForce, false)],
        UnitFileVerb::Unmask => &[("UnmaskUnitFiles", Runtime, false)],
    }
}

/// The call of `method` with its arguments.
fn call_of(method: &'static str, shape: Shape, files: &[&str], flags: FileFlags) -> Message {
    let mut call = manager_call(method);
    let mut args = IterAppend::new(&mut call);
    files.append_by_ref(&mut args);
    match shape {
        Shape::Flags => flags.bits().append_by_ref(&mut args),
        Shape::RuntimeForce => {
            flags.runtime.append_by_ref(&mut args);
            flags.force.append_by_ref(&mut args);
        }
        Shape::Runtime => flags.runtime.append_by_ref(&mut args),
    }
    call
}

/// Changes unit files with the best method the manager has for `verb` (see the module docs).
///
/// # Errors
/// systemd's (or the bus daemon's) error reply, with the method that gave it; a reply of the
/// wrong shape as `org.freedesktop.DBus.Error.Failed`.
pub(crate) fn change(
    via: &impl BlockingSender,
    missing: &Missing,
    verb: UnitFileVerb,
    files: &[&str],
    flags: FileFlags,
    timeout: Duration,
) -> Result<Changed, (&'static str, dbus::Error)> {
    let candidates: Vec<_> = methods(verb)
        .iter()
        .filter(|(method, _, _)| !missing.has(method))
        .collect();
    let last = candidates.len().saturating_sub(1);
    for (n, &&(method, shape, with_info)) in candidates.iter().enumerate() {
        match via.send_with_reply_and_block(call_of(method, shape, files, flags), timeout) {
            Ok(reply) => return read_changed(&reply, method, with_info).map_err(|e| (method, e)),
            Err(e)
                if n < last
                    && (e.name() == Some(errors::UNKNOWN_METHOD) || refused_by_bus_policy(&e)) =>
            {
                missing.mark(method);
            }
            Err(e) => return Err((method, e)),
        }
    }
    Err((
        "UnitFiles",
        dbus::Error::new_custom(errors::FAILED, "no method left to try"),
    ))
}

/// Reads a unit-file method's reply: `(b, a(sss))` when `with_info`, else `(a(sss))`.
///
/// # Errors
/// A reply of the wrong shape as `org.freedesktop.DBus.Error.Failed`.
pub(crate) fn read_changed(
    reply: &Message,
    method: &'static str,
    with_info: bool,
) -> Result<Changed, dbus::Error> {
    type Raw = Vec<(String, String, String)>;
    let unexpected = |e: dbus::arg::TypeMismatchError| {
        dbus::Error::new_custom(
            errors::FAILED,
            &format!("unexpected reply to {method}: {e}"),
        )
    };
    let (carries_install_info, raw) = if with_info {
        let (info, raw): (bool, Raw) = reply.read2().map_err(unexpected)?;
        (Some(info), raw)
    } else {
        (None, reply.read1::<Raw>().map_err(unexpected)?)
    };
    let changes = raw
        .into_iter()
        .map(|(kind, path, source)| {
            let Ok(kind) = kind.parse();
            UnitFileChange::new(kind, path, source)
        })
        .collect();
    Ok(Changed {
        carries_install_info,
        changes,
        method,
    })
}

/// `GetUnitFileState(s)`: the unit file's state; [`UnitFileState::NotFound`] where there is
/// no such file (systemd answers `FileNotFound`), as `systemctl is-enabled` prints it.
///
/// # Errors
/// Any other error reply.
pub(crate) fn unit_file_state(
    via: &impl BlockingSender,
    unit: &str,
    timeout: Duration,
) -> Result<UnitFileState, dbus::Error> {
    let call = manager_call("GetUnitFileState").append1(unit);
    match via.send_with_reply_and_block(call, timeout) {
        Ok(reply) => {
            let state: String = reply.read1().map_err(|e| {
                dbus::Error::new_custom(
                    errors::FAILED,
                    &format!("unexpected reply to GetUnitFileState: {e}"),
                )
            })?;
            let Ok(state) = state.parse();
            Ok(state)
        }
        Err(e) if e.name() == Some(errors::FILE_NOT_FOUND) => Ok(UnitFileState::NotFound),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_carry_the_arguments_of_their_shape() {
        let flags = FileFlags {
            runtime: true,
            force: true,
        };
        let m = call_of(
            "EnableUnitFilesWithFlags",
            Shape::Flags,
            &["a.service"],
            flags,
        );
        let (files, bits): (Vec<String>, u64) = m.read2().unwrap();
        assert_eq!((files, bits), (vec!["a.service".to_owned()], 3));
        let m = call_of("EnableUnitFiles", Shape::RuntimeForce, &["a", "b"], flags);
        let (files, runtime, force): (Vec<String>, bool, bool) = m.read3().unwrap();
        assert_eq!(files.len(), 2);
        assert!(runtime && force);
        let m = call_of(
            "UnmaskUnitFiles",
            Shape::Runtime,
            &["a"],
            FileFlags::default(),
        );
        let (_, runtime): (Vec<String>, bool) = m.read2().unwrap();
        assert!(!runtime);
        assert!(m.read3::<Vec<String>, bool, bool>().is_err());
    }

    #[test]
    fn every_verb_has_a_method_and_only_the_flags_methods_are_learned_missing() {
        for verb in UnitFileVerb::ALL {
            let all = methods(verb);
            assert!(!all.is_empty(), "{verb}");
            // The last choice is never marked missing: its error is the answer.
            assert_eq!(bit(all[all.len() - 1].0), 0, "{verb}");
        }
    }
}

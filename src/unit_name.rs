//! Unit names: validation (before any bus traffic) and `systemctl`-style mangling.
//!
//! # Validation rules
//! These are systemd's own (`unit_name_is_valid`): a name is at most 255 bytes, ends in a
//! known suffix (`.service`, `.socket`, `.target`, `.mount`, `.automount`, `.swap`, `.timer`,
//! `.path`, `.slice`, `.scope`, `.device`), has a non-empty prefix made of ASCII letters,
//! digits and `:-_.\`, and may have one instance part after an `@`
//! (`getty@tty1.service`) if its type can be a template (service, socket, target, timer,
//! path). A template without an instance (`getty@.service`) cannot be given a job and is
//! refused too. Generated names are checked against the real manager's `LoadUnit`
//! (`tests/unit_names.rs`): it loads exactly the names [`check`] accepts, but for the empty
//! name, which on the bus means the caller's own unit and which the crate refuses.
//!
//! # Mangling rules
//! [`mangle`] turns what a person types into a unit name the way `systemctl` does:
//! - a valid name is kept as it is;
//! - an absolute path below `/dev/` or `/sys/` becomes a `.device` unit, any other absolute
//!   path a `.mount` unit, escaped as `systemd-escape --path` does (`/var/lib` →
//!   `var-lib.mount`, `/` → `-.mount`, `.` components dropped); a name of 256 bytes or more
//!   is shortened as systemd does, its first bytes, `_` and a hash of the whole name;
//! - anything else has each byte that is not allowed escaped as `\xNN` (and `/` turned into
//!   `-`), and gets `.service` appended unless it then is a valid unit name (`foo bar` →
//!   `foo\x20bar.service`, `.timer` → `.timer.service`), as `systemd-escape --mangle` does;
//! - a glob (`*`, `?`, `[`) is refused: this crate queues jobs for exact units only.
//!
//! # Differences from `systemd-escape`, by design
//! Checked on generated inputs against `systemd-escape` of systemd 252, 257 and 262
//! (`tests/unit_names.rs`), these are the only ones, each refused where systemd-escape makes
//! a name: a glob (systemd-escape escapes it; `systemctl` would match units with it); a path
//! with `..` components (systemd-escape falls back to escaping it as text, `/a/../b` →
//! `-a-..-b.service`, a service nobody means); a template without an instance (no job can
//! be queued for it, and the manager refuses to load it); an instance of a type without
//! templates (`a@b.mount`: systemd-escape does not check it, the manager refuses it).

use std::fmt;

use crate::error::{Error, Result};

/// The longest unit name systemd accepts, in bytes.
pub const MAX_UNIT_NAME_LEN: usize = 255;

/// The unit types (name suffixes) systemd knows.
pub const UNIT_SUFFIXES: [&str; 11] = [
    "service",
    "socket",
    "target",
    "device",
    "mount",
    "automount",
    "swap",
    "timer",
    "path",
    "slice",
    "scope",
];

/// The unit types that can be templates, and so have instances (systemd's
/// `unit_type_may_template`).
const TEMPLATE_TYPES: [&str; 5] = ["service", "socket", "target", "timer", "path"];

/// What is wrong with a unit name.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NameProblem {
    /// The name is empty.
    Empty,
    /// The name is longer than [`MAX_UNIT_NAME_LEN`] bytes.
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// The name has no `.suffix`.
    NoSuffix,
    /// The suffix is not a unit type systemd knows.
    UnknownSuffix(String),
    /// Nothing stands before the suffix or before the `@`.
    EmptyPrefix,
    /// A character systemd does not allow in unit names.
    BadCharacter {
        /// The character.
        ch: char,
        /// Its byte offset in the name.
        offset: usize,
    },
    /// A template (`foo@.service`) was given where an instance is needed.
    TemplateWithoutInstance,
    /// An instance (`name@instance.type`) of a unit type that has no templates: only
    /// services, sockets, targets, timers and paths do.
    NoInstances(String),
    /// A name given as a template (`name@.type`) is not one.
    NotATemplate,
    /// A glob pattern, which can match many units.
    Glob,
    /// A path with `..` components, which has no unit name.
    UnnormalizedPath,
    /// A path no file system holds: a component over 255 bytes, over 4095 bytes in all, or a
    /// relative path of `.` components only.
    InvalidPath,
}

impl fmt::Display for NameProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameProblem::Empty => f.write_str("the name is empty"),
            NameProblem::TooLong { len } => write!(
                f,
                "the name is {len} bytes long, the limit is {MAX_UNIT_NAME_LEN}"
            ),
            NameProblem::NoSuffix => f.write_str(
                "the name has no unit type suffix such as .service (try mangle() to add one)",
            ),
            NameProblem::UnknownSuffix(s) => write!(f, "'.{s}' is not a unit type systemd knows"),
            NameProblem::EmptyPrefix => f.write_str("nothing stands before the suffix or the '@'"),
            NameProblem::BadCharacter { ch, offset } => write!(
                f,
                "character {ch:?} at byte {offset} is not allowed (only ASCII letters, digits and \":-_.\\\", and one '@')"
            ),
            NameProblem::TemplateWithoutInstance => {
                f.write_str("a template needs an instance name after the '@'")
            }
            NameProblem::NoInstances(t) => {
                write!(
                    f,
                    "'.{t}' units have no templates, so no instance after an '@'"
                )
            }
            NameProblem::NotATemplate => f.write_str("the name is not a template (name@.type)"),
            NameProblem::Glob => f.write_str("glob patterns are not accepted, name one unit"),
            NameProblem::UnnormalizedPath => f.write_str("the path has '..' components"),
            NameProblem::InvalidPath => f.write_str(
                "the path has a component over 255 bytes, is over 4095 bytes, or names nothing",
            ),
        }
    }
}

fn is_valid_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b':' | b'-' | b'_' | b'.' | b'\\')
}

/// Checks `name` against systemd's rules for a unit that can be given a job (a plain unit or a
/// template instance).
///
/// # Errors
/// [`NameProblem`] says what is wrong.
pub fn check(name: &str) -> Result<(), NameProblem> {
    if name.is_empty() {
        return Err(NameProblem::Empty);
    }
    if name.len() > MAX_UNIT_NAME_LEN {
        return Err(NameProblem::TooLong { len: name.len() });
    }
    let Some(dot) = name.rfind('.') else {
        return Err(NameProblem::NoSuffix);
    };
    let suffix = &name[dot + 1..];
    if !UNIT_SUFFIXES.contains(&suffix) {
        return Err(NameProblem::UnknownSuffix(suffix.to_owned()));
    }
    let prefix = &name[..dot];
    if prefix.is_empty() {
        return Err(NameProblem::EmptyPrefix);
    }
    if let Some((offset, ch)) = prefix
        .char_indices()
        .find(|&(_, c)| c != '@' && !(c.is_ascii() && is_valid_char(c as u8)))
    {
        return Err(NameProblem::BadCharacter { ch, offset });
    }
    match prefix.find('@') {
        Some(0) => Err(NameProblem::EmptyPrefix),
        Some(_) if !TEMPLATE_TYPES.contains(&suffix) => {
            Err(NameProblem::NoInstances(suffix.to_owned()))
        }
        Some(at) if at + 1 == prefix.len() => Err(NameProblem::TemplateWithoutInstance),
        _ => Ok(()),
    }
}

/// Checks a unit name and turns a problem into [`Error::InvalidUnitName`].
pub(crate) fn validate(name: &str) -> Result<()> {
    check(name).map_err(|problem| Error::InvalidUnitName {
        name: name.to_owned(),
        problem,
    })
}

/// Checks what a unit-file operation takes: a unit name, a template (`app@.service`, which
/// `enable` instantiates with its `DefaultInstance=`), or an absolute path to a unit file
/// whose file name is one of those (`link`, and `enable` of a file outside the search path).
pub(crate) fn validate_file(arg: &str) -> Result<()> {
    let name = match arg.rsplit_once('/') {
        Some((_, name)) if arg.starts_with('/') => name,
        Some(_) => {
            return Err(Error::InvalidUnitName {
                name: arg.to_owned(),
                problem: NameProblem::InvalidPath,
            });
        }
        None => arg,
    };
    match check(name) {
        Ok(()) | Err(NameProblem::TemplateWithoutInstance) => Ok(()),
        Err(problem) => Err(Error::InvalidUnitName {
            name: arg.to_owned(),
            problem,
        }),
    }
}

/// The unit a unit-file argument names: the file name of a path, else the argument.
pub(crate) fn file_unit(arg: &str) -> &str {
    arg.rsplit_once('/').map_or(arg, |(_, name)| name)
}

/// Whether `name` is a template (`app@.service`), which has no job of its own.
pub(crate) fn is_template(name: &str) -> bool {
    check(name) == Err(NameProblem::TemplateWithoutInstance)
}

fn escape_byte(out: &mut String, b: u8) {
    out.push_str(&format!("\\x{b:02x}"));
}

/// Escapes a path the way `systemd-escape --path` does (without a suffix).
///
/// Repeated `/` and `.` components are dropped first (`/a//./b` is `/a/b`), then `/`
/// becomes `-`, the root becomes `-`, a leading `.` and every byte other than ASCII
/// letters, digits, `:`, `_` and `.` become `\xNN`.
///
/// ```
/// use systemd_jobs::unit_name::escape_path;
/// assert_eq!(escape_path("/var/lib").unwrap(), "var-lib");
/// assert_eq!(escape_path("/srv/./a b/").unwrap(), "srv-a\\x20b");
/// assert!(escape_path("/srv/../etc").is_err());
/// ```
///
/// # Errors
/// [`NameProblem::UnnormalizedPath`] for a path with `..` components;
/// [`NameProblem::InvalidPath`] for a component over 255 bytes or a path over 4095;
/// [`NameProblem::Empty`] for an empty path.
pub fn escape_path(path: &str) -> Result<String, NameProblem> {
    if path.is_empty() {
        return Err(NameProblem::Empty);
    }
    let parts: Vec<&str> = path
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    if path.len() > 4095 || parts.iter().any(|p| p.len() > 255) {
        return Err(NameProblem::InvalidPath);
    }
    if parts.contains(&"..") {
        return Err(NameProblem::UnnormalizedPath);
    }
    match (parts.is_empty(), path.starts_with('/')) {
        (true, true) => return Ok("-".to_owned()),
        (true, false) => return Err(NameProblem::InvalidPath),
        _ => {}
    }
    Ok(escape(&parts.join("/")))
}

/// Escapes any text for use in a unit name the way `systemd-escape TEXT` does: `/` becomes
/// `-`, a leading `.`, `-`, `\\` and every byte other than ASCII letters, digits, `:`, `_`
/// and `.` become `\\xNN`. The result is the part of a name before `@` or the suffix, or an
/// instance (see [`instance`]).
///
/// ```
/// use systemd_jobs::unit_name::escape;
/// assert_eq!(escape("db/main"), "db-main");
/// assert_eq!(escape("Hello, World-1"), "Hello\\x2c\\x20World\\x2d1");
/// ```
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, &b) in text.as_bytes().iter().enumerate() {
        match b {
            b'/' => out.push('-'),
            b'.' if i == 0 => escape_byte(&mut out, b),
            b'-' | b'\\' => escape_byte(&mut out, b),
            _ if is_valid_char(b) => out.push(b as char),
            _ => escape_byte(&mut out, b),
        }
    }
    out
}

/// The instance of `template` (`name@.type`) for any text, escaped as
/// `systemd-escape --template=TEMPLATE TEXT` does.
///
/// ```
/// use systemd_jobs::unit_name::instance;
/// assert_eq!(instance("backup@.service", "/srv/db 1").unwrap(), "backup@-srv-db\\x201.service");
/// assert!(instance("backup.service", "x").is_err());
/// ```
///
/// # Errors
/// [`Error::InvalidUnitName`]: `template` is not a valid template
/// ([`NameProblem::NotATemplate`] for a plain name or an instance), the text is empty, or
/// the instance is over [`MAX_UNIT_NAME_LEN`] bytes.
pub fn instance(template: &str, text: &str) -> Result<String> {
    let invalid = |name: &str, problem| Error::InvalidUnitName {
        name: name.to_owned(),
        problem,
    };
    match check(template) {
        Err(NameProblem::TemplateWithoutInstance) => {}
        Err(problem) => return Err(invalid(template, problem)),
        Ok(()) => return Err(invalid(template, NameProblem::NotATemplate)),
    }
    if text.is_empty() {
        return Err(invalid(text, NameProblem::Empty));
    }
    let Some((prefix, suffix)) = template.split_once("@.") else {
        return Err(invalid(template, NameProblem::NotATemplate));
    };
    let name = format!("{prefix}@{}.{suffix}", escape(text));
    check(&name).map_err(|problem| invalid(&name, problem))?;
    Ok(name)
}

/// Turns what a person would type into a unit name, as `systemctl` does (see the
/// [module docs](self) for the rules), and checks the result.
///
/// ```
/// use systemd_jobs::unit_name::mangle;
/// assert_eq!(mangle("nginx").unwrap(), "nginx.service");
/// assert_eq!(mangle("/var/lib").unwrap(), "var-lib.mount");
/// assert_eq!(mangle("/dev/sda1").unwrap(), "dev-sda1.device");
/// assert_eq!(mangle("foo bar").unwrap(), "foo\\x20bar.service");
/// assert!(mangle("ssh*").is_err());
/// ```
///
/// # Errors
/// [`Error::InvalidUnitName`] for a glob, an empty name, a template without instance, an
/// unnormalized path, or a result over [`MAX_UNIT_NAME_LEN`] bytes.
pub fn mangle(input: &str) -> Result<String> {
    mangle_inner(input, false).map_err(|problem| Error::InvalidUnitName {
        name: input.to_owned(),
        problem,
    })
}

/// Turns what a person types into what a unit-file operation (`enable`, `mask`...) takes,
/// as `systemctl` does for those: a path (anything with a `/`) stays a path to a unit file,
/// which must be absolute; a template (`app@`, `app@.service`) stays a template, which
/// `enable` instantiates with its `DefaultInstance=`; anything else is mangled as by
/// [`mangle`].
///
/// ```
/// use systemd_jobs::unit_name::mangle_file;
/// assert_eq!(mangle_file("nginx").unwrap(), "nginx.service");
/// assert_eq!(mangle_file("getty@").unwrap(), "getty@.service");
/// assert_eq!(mangle_file("/opt/app/app.service").unwrap(), "/opt/app/app.service");
/// assert!(mangle_file("app/app.service").is_err());
/// ```
///
/// # Errors
/// [`Error::InvalidUnitName`] for a relative path, a path or name whose file name is not a
/// unit name, a glob, or an empty name.
pub fn mangle_file(input: &str) -> Result<String> {
    if input.contains('/') {
        validate_file(input)?;
        return Ok(input.to_owned());
    }
    mangle_inner(input, true).map_err(|problem| Error::InvalidUnitName {
        name: input.to_owned(),
        problem,
    })
}

fn mangle_inner(input: &str, templates: bool) -> Result<String, NameProblem> {
    if input.is_empty() {
        return Err(NameProblem::Empty);
    }
    match check(input) {
        Ok(()) => return Ok(input.to_owned()),
        Err(NameProblem::TemplateWithoutInstance) if templates => return Ok(input.to_owned()),
        Err(p @ NameProblem::TemplateWithoutInstance) => return Err(p),
        Err(_) => {}
    }
    if input.contains(['*', '?', '[']) {
        return Err(NameProblem::Glob);
    }
    let mangled = if input.starts_with('/') {
        let suffix = if is_device_path(input) {
            "device"
        } else {
            "mount"
        };
        with_path_suffix(escape_path(input)?, suffix)
    } else {
        let mut out = String::with_capacity(input.len() + 8);
        for &b in input.as_bytes() {
            match b {
                b'/' => out.push('-'),
                b'@' => out.push('@'),
                _ if is_valid_char(b) => out.push(b as char),
                _ => escape_byte(&mut out, b),
            }
        }
        // As systemd: `.service` is added unless the text already names a unit (or a
        // template), so `.timer`, with nothing before its suffix, becomes `.timer.service`.
        let names_a_unit = matches!(
            check(&out),
            Ok(()) | Err(NameProblem::TemplateWithoutInstance | NameProblem::NoInstances(_))
        );
        if !names_a_unit {
            out.push_str(".service");
        }
        out
    };
    match check(&mangled) {
        Err(NameProblem::TemplateWithoutInstance) if templates => Ok(mangled),
        checked => checked.map(|()| mangled),
    }
}

/// The key systemd hashes long path unit names with (`LONG_UNIT_NAME_HASH_KEY`).
const LONG_NAME_HASH_KEY: [u8; 16] = [
    0xec, 0xf2, 0x37, 0xfb, 0x58, 0x32, 0x4a, 0x32, 0x84, 0x9f, 0x06, 0x9b, 0x0d, 0x21, 0xeb, 0x9a,
];

/// An escaped path with its unit type, as systemd names the unit (`unit_name_from_path`): a
/// name of [`MAX_UNIT_NAME_LEN`] bytes or more keeps its first bytes and ends in `_`, the
/// SipHash-2-4 of the whole name and its NUL (16 hex digits, little-endian) and the suffix, within the limit.
fn with_path_suffix(escaped: String, suffix: &str) -> String {
    let name = format!("{escaped}.{suffix}");
    if name.len() <= MAX_UNIT_NAME_LEN {
        return name;
    }
    #[allow(deprecated)] // std's SipHasher is SipHash-2-4, which systemd uses here.
    let mut hasher = std::hash::SipHasher::new_with_keys(
        u64::from_le_bytes(LONG_NAME_HASH_KEY[..8].try_into().expect("8 bytes")),
        u64::from_le_bytes(LONG_NAME_HASH_KEY[8..].try_into().expect("8 bytes")),
    );
    // systemd hashes the C string with its terminating NUL.
    std::hash::Hasher::write(&mut hasher, name.as_bytes());
    std::hash::Hasher::write(&mut hasher, &[0]);
    let hash: String = std::hash::Hasher::finish(&hasher)
        .to_le_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let keep = MAX_UNIT_NAME_LEN - suffix.len() - hash.len() - 2;
    // The escaped name is ASCII, so any byte count is a character boundary.
    format!("{}_{hash}.{suffix}", &name[..keep])
}

/// Whether an absolute path names a device, as systemd decides it: below `/dev/` or `/sys/`
/// once `.` components and repeated `/` are dropped (`/dev` itself is a mount point).
fn is_device_path(path: &str) -> bool {
    let mut parts = path.split('/').filter(|p| !p.is_empty() && *p != ".");
    matches!(parts.next(), Some("dev" | "sys")) && parts.next().is_some()
}

/// The unit type of a valid unit name: its suffix without the dot (`service`, `mount`, ...).
pub fn unit_type(name: &str) -> Option<&str> {
    name.rsplit_once('.')
        .map(|(_, s)| s)
        .filter(|s| UNIT_SUFFIXES.contains(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_and_instance_names() {
        for ok in [
            "a.service",
            "getty@tty1.service",
            "dev-sda1.device",
            "-.mount",
            "foo\\x20bar.service",
            "a:b_c-d.e.timer",
            "x@a@b.service",
        ] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn refuses_bad_names_with_the_reason() {
        assert_eq!(check(""), Err(NameProblem::Empty));
        assert_eq!(check(".service"), Err(NameProblem::EmptyPrefix));
        assert_eq!(check("foo"), Err(NameProblem::NoSuffix));
        assert_eq!(
            check("foo.bar"),
            Err(NameProblem::UnknownSuffix("bar".into()))
        );
        assert_eq!(
            check("foo@.service"),
            Err(NameProblem::TemplateWithoutInstance)
        );
        assert_eq!(check("@x.service"), Err(NameProblem::EmptyPrefix));
        assert_eq!(
            check("a b.service"),
            Err(NameProblem::BadCharacter { ch: ' ', offset: 1 })
        );
        assert_eq!(
            check("a/b.service"),
            Err(NameProblem::BadCharacter { ch: '/', offset: 1 })
        );
        assert_eq!(
            check("a\0.service"),
            Err(NameProblem::BadCharacter {
                ch: '\0',
                offset: 1
            })
        );
        assert_eq!(
            check("ü.service"),
            Err(NameProblem::BadCharacter {
                ch: 'ü', offset: 0
            })
        );
        let long = format!("{}.service", "a".repeat(250));
        assert_eq!(check(&long), Err(NameProblem::TooLong { len: 258 }));
        let max = format!("{}.service", "a".repeat(247));
        assert_eq!(check(&max), Ok(()));
    }

    #[test]
    fn unit_type_reads_the_suffix() {
        assert_eq!(unit_type("a.socket"), Some("socket"));
        assert_eq!(unit_type("a.nope"), None);
    }
}

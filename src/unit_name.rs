//! Unit names: validation (before any bus traffic) and `systemctl`-style mangling.
//!
//! # Validation rules
//! These are systemd's own (`unit_name_is_valid`): a name is at most 255 bytes, ends in a
//! known suffix (`.service`, `.socket`, `.target`, `.mount`, `.automount`, `.swap`, `.timer`,
//! `.path`, `.slice`, `.scope`, `.device`), has a non-empty prefix made of ASCII letters,
//! digits and `:-_.\`, and may have one instance part after an `@`
//! (`getty@tty1.service`). A template without an instance (`getty@.service`) cannot be given
//! a job and is refused too.
//!
//! # Mangling rules
//! [`mangle`] turns what a person types into a unit name the way `systemctl` does:
//! - a valid name is kept as it is;
//! - an absolute path under `/dev/` or `/sys/` becomes a `.device` unit, any other absolute
//!   path a `.mount` unit, escaped as `systemd-escape --path` does (`/var/lib` →
//!   `var-lib.mount`, `/` → `-.mount`);
//! - anything else has each byte that is not allowed escaped as `\xNN` (and `/` turned into
//!   `-`), and gets `.service` appended if it has no known suffix (`foo bar` →
//!   `foo\x20bar.service`), as `systemd-escape --mangle` does;
//! - a glob (`*`, `?`, `[`) is refused: this crate queues jobs for exact units only.

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
    /// A glob pattern, which can match many units.
    Glob,
    /// A path with `.` or `..` components, which has no unit name.
    UnnormalizedPath,
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
            NameProblem::Glob => f.write_str("glob patterns are not accepted, name one unit"),
            NameProblem::UnnormalizedPath => f.write_str("the path has '.' or '..' components"),
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

fn escape_byte(out: &mut String, b: u8) {
    out.push_str(&format!("\\x{b:02x}"));
}

/// Escapes a path the way `systemd-escape --path` does (without a suffix).
///
/// `/` becomes `-`, the root becomes `-`, a leading `.` and every byte other than ASCII
/// letters, digits, `:`, `_` and `.` become `\xNN`.
///
/// # Errors
/// [`NameProblem::UnnormalizedPath`] for a path with `.` or `..` components;
/// [`NameProblem::Empty`] for an empty path.
pub fn escape_path(path: &str) -> Result<String, NameProblem> {
    if path.is_empty() {
        return Err(NameProblem::Empty);
    }
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    if parts.iter().any(|p| *p == "." || *p == "..") {
        return Err(NameProblem::UnnormalizedPath);
    }
    if parts.is_empty() {
        return Ok("-".to_owned());
    }
    let joined = parts.join("/");
    let mut out = String::with_capacity(joined.len());
    for (i, &b) in joined.as_bytes().iter().enumerate() {
        match b {
            b'/' => out.push('-'),
            b'.' if i == 0 => escape_byte(&mut out, b),
            b'-' | b'\\' => escape_byte(&mut out, b),
            _ if is_valid_char(b) => out.push(b as char),
            _ => escape_byte(&mut out, b),
        }
    }
    Ok(out)
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
    mangle_inner(input).map_err(|problem| Error::InvalidUnitName {
        name: input.to_owned(),
        problem,
    })
}

fn mangle_inner(input: &str) -> Result<String, NameProblem> {
    if input.is_empty() {
        return Err(NameProblem::Empty);
    }
    match check(input) {
        Ok(()) => return Ok(input.to_owned()),
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
        format!("{}.{suffix}", escape_path(input)?)
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
        let has_suffix = out
            .rsplit_once('.')
            .is_some_and(|(_, s)| UNIT_SUFFIXES.contains(&s));
        if !has_suffix {
            out.push_str(".service");
        }
        out
    };
    check(&mangled)?;
    Ok(mangled)
}

fn is_device_path(path: &str) -> bool {
    let trimmed = path.trim_start_matches('/');
    ["dev/", "sys/"].iter().any(|p| trimmed.starts_with(p))
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

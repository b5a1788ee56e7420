//! What the journal holds of a unit's failed run: the value types an error carries
//! ([`RunJournal`], [`JournalLine`], [`JournalUnavailable`]). How they are read is in
//! `reader` (the `journalctl` command, where the manager is) and `export` (its output).
//!
//! **Which lines.** A run of a unit is one *invocation*: systemd gives the unit a fresh
//! 128-bit `InvocationID` each time it starts it. The journal stores that id with every line
//! the run's own processes wrote (`_SYSTEMD_INVOCATION_ID`, from the unit's cgroup) and with
//! the manager's own lines about the run (`INVOCATION_ID` for the system manager,
//! `USER_INVOCATION_ID` for a user manager). The lines shown are the last ones carrying the
//! failed run's id in one of those three fields: an earlier run of the same unit, in this boot
//! or an earlier one, has another id and never shows.

pub(crate) mod cycle;
pub(crate) mod export;
pub(crate) mod reader;

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Default of [`ManagerBuilder::journal_lines`](crate::ManagerBuilder::journal_lines): as
/// many lines as `systemctl status` shows.
pub const DEFAULT_JOURNAL_LINES: usize = 10;

/// The longest message kept, in bytes: a longer one is cut (at a character boundary) and
/// marked with [`JournalLine::cut_from`].
pub const MAX_MESSAGE_BYTES: usize = 4096;

/// A unit run's 128-bit invocation id (its `InvocationID` property), shown as 32 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InvocationId(pub [u8; 16]);

impl InvocationId {
    /// From the property's bytes; `None` unless there are exactly 16 and not all zero (a
    /// unit that never ran has an empty id).
    pub(crate) fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let id: [u8; 16] = bytes.try_into().ok()?;
        (id != [0; 16]).then_some(InvocationId(id))
    }
}

impl fmt::Display for InvocationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// A line's syslog priority (`PRIORITY=`), from [`Emergency`](Priority::Emergency) (0) to
/// [`Debug`](Priority::Debug) (7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Priority {
    /// 0, `emerg`
    Emergency,
    /// 1, `alert`
    Alert,
    /// 2, `crit`
    Critical,
    /// 3, `err`
    Error,
    /// 4, `warning`
    Warning,
    /// 5, `notice`
    Notice,
    /// 6, `info`
    Info,
    /// 7, `debug`
    Debug,
}

impl Priority {
    /// From the journal's digit; `None` for anything else.
    pub(crate) fn from_digit(value: &[u8]) -> Option<Self> {
        use Priority::*;
        Some(match value {
            b"0" => Emergency,
            b"1" => Alert,
            b"2" => Critical,
            b"3" => Error,
            b"4" => Warning,
            b"5" => Notice,
            b"6" => Info,
            b"7" => Debug,
            _ => return None,
        })
    }

    /// `err` and worse: what `systemctl status` highlights.
    pub fn is_error(self) -> bool {
        self <= Priority::Error
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Priority::*;
        f.write_str(match self {
            Emergency => "emerg",
            Alert => "alert",
            Critical => "crit",
            Error => "err",
            Warning => "warning",
            Notice => "notice",
            Info => "info",
            Debug => "debug",
        })
    }
}

/// One line of a failed run, as the journal stored it, made safe to print.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct JournalLine {
    /// When the journal received it (`__REALTIME_TIMESTAMP`).
    pub time: SystemTime,
    /// Its priority, when the line has one.
    pub priority: Option<Priority>,
    /// Which program wrote it (`SYSLOG_IDENTIFIER`, else the process name `_COMM`);
    /// `systemd` for the manager's own lines.
    pub identifier: Option<String>,
    /// Which process wrote it (`_PID`, else `SYSLOG_PID`), when the journal says.
    pub pid: Option<u32>,
    /// The message. Control characters (escape sequences, newlines, carriage returns...)
    /// are shown as `\x1b`-style escapes, invalid UTF-8 as U+FFFD, and it is cut after
    /// [`MAX_MESSAGE_BYTES`].
    pub message: String,
    /// The message's length in bytes, before it was cut, if it was cut.
    pub cut_from: Option<usize>,
}

impl JournalLine {
    /// The time as seconds and microseconds since the Unix epoch.
    fn unix_time(&self) -> Duration {
        self.time.duration_since(UNIX_EPOCH).unwrap_or_default()
    }
}

impl fmt::Display for JournalLine {
    /// As `systemctl status` shows a line, in UTC: `Dec 02 11:32:23 app[123]: message`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ", utc_timestamp(self.unix_time()))?;
        match (&self.identifier, self.pid) {
            (Some(id), Some(pid)) => write!(f, "{id}[{pid}]: ")?,
            (Some(id), None) => write!(f, "{id}: ")?,
            (None, Some(pid)) => write!(f, "[{pid}]: ")?,
            (None, None) => {}
        }
        f.write_str(&self.message)?;
        if let Some(len) = self.cut_from {
            write!(f, " [cut from {len} bytes]")?;
        }
        Ok(())
    }
}

/// `Mon DD HH:MM:SS` in UTC, as the journal's short format shows it.
fn utc_timestamp(since_epoch: Duration) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = since_epoch.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days, for days since 1970-01-01.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as usize;
    format!(
        "{} {day:02} {:02}:{:02}:{:02}",
        MONTHS[month - 1],
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// Why a failed run's journal lines could not be given: never an empty list that would look
/// like "the service wrote nothing".
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum JournalUnavailable {
    /// The unit has no invocation id to match its lines by (it never ran, or the manager
    /// unloaded it and forgot it).
    NoInvocationId,
    /// There is no journal where the manager is: no journald runs (or ever ran) there.
    NoJournal,
    /// The caller may not read the system journal: it is not root and not in the
    /// `systemd-journal` or `adm` group (what `journalctl` said).
    PermissionDenied(String),
    /// The journal can be read but holds no line of this run: rotated or vacuumed away, not
    /// stored (`Storage=none`), or dropped by journald's rate limit.
    NoLines,
    /// There is no `journalctl` where the manager is (locally, or on the remote host).
    NoJournalctl,
    /// Reading did not finish within the operation's deadline.
    TimedOut,
    /// `journalctl` (or ssh, for a remote host) failed; the last line it printed.
    Failed(String),
}

impl fmt::Display for JournalUnavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JournalUnavailable::NoInvocationId => {
                f.write_str("the unit has no invocation id to find its lines by")
            }
            JournalUnavailable::NoJournal => {
                f.write_str("there is no journal where the manager runs (no journald)")
            }
            JournalUnavailable::PermissionDenied(said) => write!(
                f,
                "not allowed to read the system journal (root or the systemd-journal or adm group is needed): {said}"
            ),
            JournalUnavailable::NoLines => f.write_str(
                "the journal holds no line of this run (rotated away, not stored, or rate-limited)",
            ),
            JournalUnavailable::NoJournalctl => {
                f.write_str("journalctl is not installed where the manager runs")
            }
            JournalUnavailable::TimedOut => {
                f.write_str("reading the journal did not finish before the deadline")
            }
            JournalUnavailable::Failed(said) => write!(f, "journalctl failed: {said}"),
        }
    }
}

/// The journal lines of a unit's failed run, carried by the errors that report one
/// ([`Error::run_journals`](crate::Error::run_journals)).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RunJournal {
    /// Not read: turned off ([`ManagerBuilder::journal_lines`](crate::ManagerBuilder::journal_lines)
    /// of 0, or failures not explained), or the error is not about a run that failed.
    #[default]
    NotRead,
    /// The run's last lines, oldest first (never empty).
    Lines {
        /// The run they belong to.
        invocation: InvocationId,
        /// The lines.
        lines: Box<[JournalLine]>,
    },
    /// The journal could not be read, and why.
    Unavailable(JournalUnavailable),
}

impl RunJournal {
    /// The lines, if there are any.
    pub fn lines(&self) -> &[JournalLine] {
        match self {
            RunJournal::Lines { lines, .. } => lines,
            _ => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_in_the_journal_s_short_format() {
        // 2026-12-02 11:32:23 UTC, 2000-02-29 23:59:59 UTC, the epoch.
        assert_eq!(
            utc_timestamp(Duration::from_secs(1_796_211_143)),
            "Dec 02 11:32:23"
        );
        assert_eq!(
            utc_timestamp(Duration::from_secs(951_868_799)),
            "Feb 29 23:59:59"
        );
        assert_eq!(utc_timestamp(Duration::ZERO), "Jan 01 00:00:00");
    }

    #[test]
    fn invocation_ids_need_sixteen_bytes_not_all_zero() {
        assert_eq!(InvocationId::from_bytes(&[]), None);
        assert_eq!(InvocationId::from_bytes(&[0; 16]), None);
        assert_eq!(InvocationId::from_bytes(&[1; 15]), None);
        let id = InvocationId::from_bytes(&[0xab; 16]).unwrap();
        assert_eq!(id.to_string(), "ab".repeat(16));
    }
}

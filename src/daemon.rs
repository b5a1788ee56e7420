//! What the manager's own operations report: a reload (`daemon-reload`) and a re-execution
//! (`daemon-reexec`).

use std::fmt;
use std::time::Duration;

/// A finished `daemon-reload` ([`Manager::daemon_reload`](crate::Manager::daemon_reload)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Reloaded {
    /// From the start of the operation until the manager had finished reloading.
    pub elapsed: Duration,
    /// The manager re-executed (`daemon-reexec`, someone else's) before it answered the
    /// reload: a re-execution loads every unit file anew, so what a reload was wanted for is
    /// done, but systemd never answered the reload itself.
    pub by_reexecution: bool,
}

impl fmt::Display for Reloaded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "reloaded ({} ms", self.elapsed.as_millis())?;
        if self.by_reexecution {
            f.write_str(", by a re-execution")?;
        }
        f.write_str(")")
    }
}

/// A finished `daemon-reexec` ([`Manager::daemon_reexec`](crate::Manager::daemon_reexec)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Reexecuted {
    /// From the start of the operation until the new manager answered.
    pub elapsed: Duration,
    /// The new manager's `Version` (a package upgrade re-executes into a new one).
    pub version: String,
}

impl fmt::Display for Reexecuted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "re-executed, systemd {} answers ({} ms)",
            self.version,
            self.elapsed.as_millis()
        )
    }
}

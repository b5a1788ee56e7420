//! One deadline for a whole operation: every method call timeout and every wait is cut from
//! what is left of it.

use std::time::{Duration, Instant};

/// The longest single wait handed to libdbus, which takes milliseconds as a C `int`.
/// Longer deadlines are waited for in slices of this length.
const MAX_SLICE: Duration = Duration::from_secs(24 * 3600);

/// A point in time by which an operation must end.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline {
    started: Instant,
    /// `None` when the timeout is so long that `Instant` cannot represent its end.
    at: Option<Instant>,
}

impl Deadline {
    /// A deadline `timeout` from now. A timeout too large for `Instant` never passes.
    pub(crate) fn after(timeout: Duration) -> Self {
        let started = Instant::now();
        Deadline {
            started,
            at: started.checked_add(timeout),
        }
    }

    /// Time left; zero once the deadline has passed.
    /// The whole time allowed, `None` if it does not fit an `Instant` (practically never).
    pub(crate) fn total(&self) -> Option<Duration> {
        self.at.map(|at| at - self.started)
    }

    pub(crate) fn remaining(&self) -> Duration {
        match self.at {
            Some(at) => at.saturating_duration_since(Instant::now()),
            None => Duration::MAX,
        }
    }

    pub(crate) fn expired(&self) -> bool {
        self.remaining().is_zero()
    }

    /// Time since the operation started.
    pub(crate) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// The next wait to hand to libdbus: what is left, rounded *up* to whole milliseconds (so a
    /// sub-millisecond rest still blocks instead of spinning) and capped at [`MAX_SLICE`].
    /// `None` once the deadline has passed.
    pub(crate) fn next_slice(&self) -> Option<Duration> {
        let left = self.remaining();
        if left.is_zero() {
            return None;
        }
        let capped = left.min(MAX_SLICE);
        let millis = capped.as_nanos().div_ceil(1_000_000);
        Some(Duration::from_millis(millis as u64))
    }

    /// The timeout for a method call: what is left, in whole milliseconds, at least 1 ms,
    /// capped at [`MAX_SLICE`] so it fits libdbus's C `int`.
    pub(crate) fn call_timeout(&self) -> Duration {
        self.next_slice().unwrap_or(Duration::from_millis(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_timeout_is_already_expired() {
        let d = Deadline::after(Duration::ZERO);
        assert!(d.expired());
        assert_eq!(d.next_slice(), None);
        assert_eq!(d.call_timeout(), Duration::from_millis(1));
    }

    #[test]
    fn huge_timeouts_do_not_overflow() {
        let d = Deadline::after(Duration::MAX);
        assert!(!d.expired());
        assert_eq!(d.next_slice(), Some(MAX_SLICE));
        let years = Deadline::after(Duration::from_secs(100 * 365 * 24 * 3600));
        assert_eq!(years.call_timeout(), MAX_SLICE);
        assert!(MAX_SLICE.as_millis() < i32::MAX as u128);
    }

    #[test]
    fn slices_round_up_to_whole_milliseconds() {
        let d = Deadline::after(Duration::from_micros(1500));
        let s = d.next_slice().unwrap();
        assert!(s >= Duration::from_millis(1) && s <= Duration::from_millis(2));
    }
}

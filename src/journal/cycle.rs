//! The ordering cycle of a transaction the manager refused, read from its own log lines:
//! systemd 252 to 257 log one line per job of the cycle (`Found ordering cycle on A/start`,
//! then `Found dependency on B/start`...), 258 and later one line (`Found ordering cycle:
//! A/start after B/start after C/start - after A`). Each line starts with the unit the
//! manager logged it for (`C.service: ...`).

/// The units of the last cycle the `messages` (oldest first) describe, in their order, each
/// once; empty when none does.
pub(crate) fn last_cycle(messages: &[String]) -> Vec<String> {
    let Some(start) = messages
        .iter()
        .rposition(|m| m.contains("Found ordering cycle"))
    else {
        return Vec::new();
    };
    let first = without_unit_prefix(&messages[start]);
    let mut jobs: Vec<&str> = Vec::new();
    if let Some(chain) = first.strip_prefix("Found ordering cycle: ") {
        // "A/start after B/start after C/start - after A"
        let chain = chain.split(" - after ").next().unwrap_or(chain);
        jobs.extend(chain.split(" after "));
    } else if let Some(job) = first.strip_prefix("Found ordering cycle on ") {
        jobs.push(job);
        jobs.extend(
            messages[start + 1..]
                .iter()
                .map(|m| without_unit_prefix(m))
                .map_while(|m| m.strip_prefix("Found dependency on ")),
        );
    }
    let mut units: Vec<String> = Vec::new();
    for job in jobs {
        // "unit/job-type"; a unit name holds no '/'.
        let unit = job.rsplit_once('/').map_or(job, |(u, _)| u).trim();
        if !unit.is_empty() && !units.iter().any(|u| u == unit) {
            units.push(unit.to_owned());
        }
    }
    units
}

/// A manager line without the `UNIT: ` its log functions put first.
fn without_unit_prefix(message: &str) -> &str {
    match message.split_once(": ") {
        Some((unit, rest)) if !unit.contains(' ') && unit.contains('.') => rest,
        _ => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &[&str]) -> Vec<String> {
        text.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn one_line_per_job_as_systemd_252_to_257_log_it() {
        let messages = lines(&[
            "Reloading.",
            "cycle0.service: Found ordering cycle on cycle1.service/start",
            "cycle0.service: Found dependency on cycle2.service/start",
            "cycle0.service: Found dependency on cycle0.service/start",
            "cycle0.service: Unable to break cycle starting with cycle0.service/start",
            "Requested transaction contains an unfixable cyclic ordering dependency: Transaction order is cyclic. See system logs for details.",
        ]);
        assert_eq!(
            last_cycle(&messages),
            ["cycle1.service", "cycle2.service", "cycle0.service"]
        );
    }

    #[test]
    fn one_line_for_the_cycle_as_systemd_258_and_later_log_it() {
        let messages = lines(&[
            "cycle2.service: Found ordering cycle: cycle0.service/start after cycle1.service/start after cycle2.service/start - after cycle0.service",
            "cycle2.service: Unable to break cycle starting with cycle2.service/start",
        ]);
        assert_eq!(
            last_cycle(&messages),
            ["cycle0.service", "cycle1.service", "cycle2.service"]
        );
    }

    #[test]
    fn the_last_cycle_counts_and_nothing_is_made_up() {
        let messages = lines(&[
            "a.service: Found ordering cycle on a.service/start",
            "a.service: Found dependency on b.service/start",
            "x.service: Found ordering cycle on x@1.service/start",
            "x.service: Found dependency on y.service/stop",
            "something else: Found dependency on z.service/start",
        ]);
        assert_eq!(last_cycle(&messages), ["x@1.service", "y.service"]);
        assert!(last_cycle(&lines(&["Reloading.", "a.service: Started."])).is_empty());
        assert!(last_cycle(&[]).is_empty());
        assert!(last_cycle(&lines(&["Found ordering cycle"])).is_empty());
    }
}

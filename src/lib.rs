//! Restart (start, stop, reload...) a systemd unit over D-Bus and block until *that* job is
//! finished, for synchronous programs.
//!
//! systemd answers `RestartUnit` at once with a job path; the job's outcome comes later as a
//! `JobRemoved` signal. systemd-jobs adds the match before the call, keeps the job path from
//! the reply, pumps the connection until the `JobRemoved` for that path arrives (never just any
//! job on the same unit) or the deadline passes, and reports the result as a typed value. No
//! async runtime, no threads: one blocking libdbus connection and a `poll` bounded by the
//! deadline.
//!
//! # Quick start: an installer's mount step
//! A configuration tool appends a line to `/etc/fstab`, has the manager reload (so that the
//! fstab generator writes the new `.mount` unit), then restarts `local-fs.target` and
//! `remote-fs.target` with mode `fail` and waits for both jobs, all under one deadline and
//! with no `systemctl` in the path. Without the reload, the restarts succeed and the new
//! line is silently not mounted.
//!
//! ```no_run
//! use std::io::Write;
//! use std::time::Duration;
//! use systemd_jobs::{JobMode, Manager, Verb};
//!
//! let mut fstab = std::fs::OpenOptions::new().append(true).open("/etc/fstab").unwrap();
//! writeln!(fstab, "tmpfs /srv/cache tmpfs defaults,size=64m 0 0").unwrap();
//!
//! let manager = Manager::system()?;
//! let results = manager
//!     .batch()
//!     .daemon_reload_first(true)
//!     .mode(JobMode::Fail)
//!     .add(Verb::Restart, "local-fs.target")
//!     .add(Verb::Restart, "remote-fs.target")
//!     .run(Duration::from_secs(90));
//! for result in results {
//!     println!("{}", result?); // local-fs.target: done (job 4242, 31 ms)
//! }
//! # Ok::<(), systemd_jobs::Error>(())
//! ```
//!
//! One job:
//!
//! ```no_run
//! use std::time::Duration;
//! use systemd_jobs::{JobMode, Manager};
//!
//! let manager = Manager::system()?;
//! let outcome = manager.restart("nginx.service", JobMode::Replace, Duration::from_secs(90))?;
//! println!("{}: {} after {:?}", outcome.unit, outcome.result, outcome.elapsed);
//! # Ok::<(), systemd_jobs::Error>(())
//! ```
//!
//! # The installer's whole flow
//! - **Reload and re-execute:** [`Manager::daemon_reload`] returns once the manager has
//!   finished reloading, under the operation's deadline (not a 25 s method-call default);
//!   jobs queued meanwhile keep their results; a re-execution before the reload is answered
//!   counts as the reload. [`Manager::daemon_reexec`] returns once the new manager answers.
//! - **Unit files:** [`Manager::unit_files`] enables, disables, reenables, links, presets,
//!   masks or unmasks ([`UnitFileVerb`]), with `runtime` and `force`, reloads afterwards as
//!   `systemctl` does, and with `now` runs the job under the same deadline
//!   ([`UnitFiles`]); it reports systemd's changes as typed values ([`UnitFileChange`],
//!   printed as `systemctl` prints them) and whether the unit files have install
//!   information. [`Manager::unit_file_state`] is `systemctl is-enabled`.
//! - **Clearing failures:** [`Manager::reset_failed`], [`Manager::reset_all_failed`].
//! - **Desired state, idempotently:** [`Manager::desired`] brings a unit to a wanted
//!   [`ActiveGoal`] and [`StartupGoal`], optionally reloading first; [`Desired::check`]
//!   reports the steps and touches nothing, [`Desired::apply`] takes them and reports
//!   changed or unchanged ([`Convergence`]), and a service that dies right after starting is
//!   a failure with its journal lines, never a change. This is a configuration tool's
//!   check-and-apply step, and Ansible's check mode and `changed`.
//!
//! ```no_run
//! use std::time::Duration;
//! use systemd_jobs::{ActiveGoal, Manager, StartupGoal, UnitFileVerb};
//!
//! let manager = Manager::system()?;
//! std::fs::write(
//!     "/etc/systemd/system/app.service",
//!     "[Service]\nExecStart=/usr/bin/app\n[Install]\nWantedBy=multi-user.target\n",
//! )
//! .unwrap();
//! // `systemctl daemon-reload && systemctl enable --now app`, as one desired state:
//! let done = manager
//!     .desired("app.service")
//!     .daemon_reload(true)
//!     .startup(StartupGoal::Enabled)
//!     .active(ActiveGoal::Running)
//!     .apply(Duration::from_secs(90))?;
//! println!("{done}"); // app.service: changed (daemon-reload, enable, daemon-reload, start)
//! // Or the unit-file operation itself, with what systemd changed:
//! let masked = manager
//!     .unit_files(UnitFileVerb::Mask, ["debug-shell.service"])
//!     .now(true)
//!     .run(Duration::from_secs(30))?;
//! for change in &masked.changes {
//!     println!("{change}"); // Created symlink '/etc/systemd/system/debug-shell.service' → '/dev/null'.
//! }
//! # Ok::<(), systemd_jobs::Error>(())
//! ```
//!
//! # Choosing a bus
//! - [`Manager::system`] ([`Bus::System`]): system services, via the system bus. Unprivileged
//!   callers are subject to polkit; with
//!   [`ManagerBuilder::allow_interactive_authorization`], polkit may ask them for a password
//!   (as `systemctl` does on a terminal) instead of refusing at once.
//! - [`Manager::user`] ([`Bus::User`]): the caller's `systemd --user`, via
//!   `DBUS_SESSION_BUS_ADDRESS` or `$XDG_RUNTIME_DIR/bus`.
//! - [`Bus::Address`]: a bus daemon at any address, e.g. `unix:path=/run/user/1000/bus`.
//! - [`Bus::PrivateSystem`], [`Bus::PrivateUser`], [`Bus::PrivateAddress`]: the manager's own
//!   socket, with no bus daemon (what `systemctl` uses). Works while the bus daemon is down;
//!   only the manager's user may connect.
//! - [`Bus::Remote`]: a manager on another machine, over ssh ([`Remote`], as `systemctl -H`).
//! - [`ManagerBuilder::wrap`]: a `dbus::blocking::Connection` you already have.
//!
//! A [`Manager`] is a long-lived handle. It holds match rules on the bus only while an
//! operation waits: each operation sends its two `AddMatch` calls in the same write as its job
//! call (one round trip) and removes them without waiting when it is done, so an idle handle
//! receives nothing however busy the bus is. For calls this crate does not make, use
//! [`Manager::caller`].
//!
//! # Layers
//! ```text
//! Manager, ManagerBuilder        the façade: options, and one Context
//! ops/                           enqueue, QueuedJob, Batch, follow, progress, completion,
//!                                dependency explanation, daemon (reload, reexec), unit
//!                                files, reset-failed, converge (desired state): each takes
//!                                the Context
//! session/                       the one owner of the connection: rules held while waited on,
//!                                the router (replies by serial, signal handlers, the inbox of
//!                                job results and systemd's owner), reconnecting, the pump
//! transport/                     Bus, handshake (bus, private socket), remote (ssh)
//! journal/                       a failed run's journal lines: values, the export decoder,
//!                                the reader where the manager is
//! proto/                         D-Bus names, typed calls (jobs, units, unit files), the
//!                                authorization flag
//! error, job, unit, unit_name,   values and errors; ffi: the only unsafe code
//! unit_file, desired, daemon,
//! deadline
//! ```
//! Data flows one way: call -> job path -> wait (the session's pump) -> outcome.
//!
//! # Beyond one job
//! - **Transactions:** jobs are queued with `EnqueueUnitJob`, so an outcome lists the other
//!   jobs systemd queued with it ([`JobOutcome::transaction`]), and a `dependency` result
//!   names the dependencies that failed and why ([`Error::JobFailed`]'s `dependencies`, see
//!   [`FailedDependency`]), however deep below.
//! - **Progress:** [`Batch::on_progress`] and [`Manager::run_with_progress`] report what the
//!   job's unit is doing while an operation waits ([`Progress`]: its state and the service's
//!   own status text), from the waiting thread.
//! - **Why it failed, in the service's own words:** the error of a failed run carries the last
//!   lines that run wrote to the journal, matched by its invocation id, or why they could not
//!   be read ([`RunJournal`], [`Error::run_journals`], [`ManagerBuilder::journal_lines`]),
//!   read with `journalctl` where the manager is, after a failure only.
//! - **Run to completion:** [`Manager::run_to_completion`] starts a unit and waits until it
//!   has stopped again, as `systemctl start --wait` does, reporting its `Result`, its main
//!   process's exit status and how long it ran ([`Completion`]).
//!
//! # Error handling
//! Every fallible function returns [`Error`], one `#[non_exhaustive]` enum whose variants name
//! the unit and job they concern and keep systemd's D-Bus error ([`BusError`]) as their source.
//! A result other than `done` or `skipped` is an error too:
//!
//! ```no_run
//! use std::time::Duration;
//! use systemd_jobs::{Error, JobMode, JobResult, Manager};
//!
//! let manager = Manager::system()?;
//! match manager.restart("app.service", JobMode::Replace, Duration::from_secs(30)) {
//!     Ok(outcome) => println!("{outcome}"),
//!     Err(Error::JobFailed { result: JobResult::Failed, reason, .. }) => {
//!         eprintln!("app.service failed: {reason:?}")
//!     }
//!     Err(Error::NoSuchUnit { unit, .. }) => eprintln!("{unit} is not installed"),
//!     Err(Error::Timeout { waited, .. }) => eprintln!("still running after {waited:?}"),
//!     Err(e) => eprintln!("{e}"),
//! }
//! # Ok::<(), systemd_jobs::Error>(())
//! ```
//!
//! [`Error::exit_status`] maps each error to the exit status `systemctl` would use.
//!
//! When a deadline passes, the operation returns [`Error::Timeout`] but, by default, the job
//! keeps running in systemd; [`ManagerBuilder::cancel_on_timeout`] cancels it instead.
//!
//! # Log levels
//! Through the [`log`] crate, target `systemd_jobs`:
//! - `debug`: connecting, match added/removed, each method call sent, each job path received,
//!   every `JobRemoved` seen (ours or ignored as not ours), cancel requests; when the manager
//!   re-executes: its bus name changing owner, a private socket reset and reconnected; each
//!   awaited job checked (after a re-execution, and every job check interval of a long wait),
//!   and results recovered from a unit's state or left unknown;
//! - `info`: the final result of each job;
//! - `warn`: only if libdbus could not be told the bus name this crate registered by hand
//!   (see [`Bus`]); nothing else. Outcomes are returned to the caller, who decides.
//!
//! # Guarantees
//! Each of these is shown by integration tests that run a real `systemd --user` manager
//! (see the README's "Guarantees" section for the test files):
//! - the result reported is the one for the job path our call returned, even when other jobs on
//!   the same unit finish first, and every requester of a merged job gets its result;
//! - nothing blocks past the deadline; a zero timeout fails before any bus traffic, and
//!   timeouts of many years do not overflow;
//! - a manager that dies, or a bus that goes away, ends the wait at once with an error (a
//!   manager after [`ManagerBuilder::reexec_grace`], 500 ms by default);
//! - a manager that re-executes (`daemon-reexec`) or reloads mid-wait does not change the
//!   result: the wait follows it to its new bus name or reconnects to its private socket,
//!   with every signal handler (progress, run to completion) carried over; a result lost in
//!   the re-execution, or dropped by a bus daemon, is found by the job check
//!   ([`ManagerBuilder::job_check_interval`]) and settled from the unit's state and marked
//!   [`ResultSource::Recovered`], or is [`Error::OutcomeUnknown`], never guessed;
//! - connecting is bounded by [`ManagerBuilder::connect_timeout`], over a bus (authentication,
//!   `Hello`) and to a private socket alike; [`Error::ConnectTimeout`] names the step;
//! - an idle handle holds no match rule on the bus, so the bus daemon queues nothing for it
//!   however many jobs other clients run, and a backlog (while a queued job is not waited on)
//!   drains in linear time;
//! - invalid unit names are refused before any bus traffic;
//! - with [`ManagerBuilder::allow_interactive_authorization`], exactly the calls that queue or
//!   cancel jobs carry the flag, and each still gets its own reply;
//! - a failed run's journal lines are that run's only, never an earlier run's; where they
//!   cannot be read the error says why; on success nothing is read (no call, no process);
//! - a hostile manager (malformed, empty, oversized, forged, duplicate or contradictory
//!   replies and signals, unknown error names, no reply, its name changing owner) gets a
//!   typed error or the right result within the deadline, never a panic; the decoders of
//!   peer data are fuzzed;
//! - `daemon_reload` returns only once the manager has finished reloading, also after
//!   more than 25 s, and never after its deadline (a manager whose reload never ends, or that
//!   is stopped); a re-execution before the reload is answered ends it with the true result;
//!   jobs waited on across a reload keep their results;
//! - unit-file operations leave the same symlinks on disk and report the same changes as
//!   `systemctl` on the same unit files (`WantedBy=`, `RequiredBy=`, `Alias=`, `Also=`,
//!   templates with `DefaultInstance=`, no `[Install]`), and `unit_file_state` says what
//!   `systemctl is-enabled` says, on systemd 252, 257 and 262, user and system managers;
//! - a desired state's check changes nothing, a second apply on a converged unit makes
//!   only reads, and a service that exits right after starting is a failure;
//! - [`unit_name`]'s functions give what `systemd-escape` gives on systemd 252, 257 and 262,
//!   and [`unit_name::check`] accepts exactly what the manager's `LoadUnit` loads, on
//!   generated input; the addresses the crate writes read back exactly through libdbus.

#![deny(missing_docs)]
#![deny(unsafe_code)]
#![warn(clippy::undocumented_unsafe_blocks)]

// Values and errors.
mod daemon;
mod deadline;
mod desired;
mod error;
mod job;
mod journal;
mod unit;
mod unit_file;
pub mod unit_name;
// The crate's only unsafe code: two C calls, each with its SAFETY comment.
#[allow(unsafe_code)]
mod ffi;
// D-Bus names and typed calls.
mod proto;
// Transports: bus, private socket, ssh.
mod transport;
// The session: the connection, its rules and handlers, reconnecting, the pump.
mod session;
// Operations: job handles, batches, follow, progress, completion.
mod ops;
// The façade.
mod manager;

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;

pub use daemon::{Reexecuted, Reloaded};
pub use desired::{ActiveGoal, Convergence, JobWait, RunEnd, StartupGoal, Step, UnitStatus};
pub use error::{BusError, ConnectStep, Error, RemoteProblem, Result};
pub use job::{
    FailedDependency, Job, JobMode, JobOutcome, JobResult, JobState, ResultSource, TransactionJob,
    Verb,
};
pub use journal::{
    DEFAULT_JOURNAL_LINES, InvocationId, JournalLine, JournalUnavailable, MAX_MESSAGE_BYTES,
    Priority, RunJournal,
};
pub use manager::{Manager, ManagerBuilder};
pub use ops::batch::Batch;
pub use ops::completion::{Completion, QueuedRun};
pub use ops::converge::{DEFAULT_ACTIVE_CHECK, Desired};
pub use ops::progress::Progress;
pub use ops::queued::QueuedJob;
pub use ops::unit_files::UnitFiles;
pub use ops::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_JOB_CHECK_INTERVAL, DEFAULT_REEXEC_GRACE};
pub use session::caller::Caller;
pub use transport::Bus;
pub use transport::remote::Remote;
pub use unit::{ExitStatus, FailureReason, StartLimit, UnitResult, UnitState};
pub use unit_file::{
    ChangeKind, UnitFileChange, UnitFileOutcome, UnitFileProblem, UnitFileState, UnitFileVerb,
};
pub use unit_name::NameProblem;

/// The README's code examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

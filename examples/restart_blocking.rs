//! `restart_blocking`: restart (or start, stop, reload...) systemd units and wait for each job;
//! reload or re-execute the manager, enable, disable or mask unit files, reset failed units
//! and read whether units are enabled, as `systemctl` does, under one deadline.
//!
//! Run `cargo run --example restart_blocking -- --help` for the options and exit statuses.
//! The command line is parsed by clap (derive): generated help, `--version`, a hint on a
//! mistyped option, and shell completions (`--completions bash`).

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser};
use clap_complete::Shell;
use systemd_jobs::{
    Bus, Error, Job, JobMode, Manager, Progress, Remote, RunJournal, UnitFileOutcome,
    UnitFileState, UnitFileVerb, Verb, unit_name,
};

/// What `--help` shows after the options.
const AFTER_HELP: &str = "\
Each UNIT gets one job; all are queued together and waited for under one deadline.
A name without a suffix gets .service; an absolute path becomes a .mount (or, under
/dev and /sys, a .device) unit, escaped as systemd-escape does. Globs are refused.
With a unit-file verb (enable, disable, reenable, link, preset, mask, unmask) a UNIT
may also be a template (app@) or an absolute path to a unit file (for link and enable).

VERBS (--verb):
    jobs:        start, stop, restart (default), reload, try-restart,
                 reload-or-restart, reload-or-try-restart
    unit files:  enable, disable, reenable, link, preset, mask, unmask: the change,
                 then a daemon-reload (unless --no-reload), then with --now the job
                 (start after enable and unmask, stop after disable and mask,
                 try-restart after reenable), all under --timeout
    manager:     daemon-reload (returns once the manager has finished reloading),
                 daemon-reexec (returns once the new manager answers), no UNIT
    state:       reset-failed [UNIT...] (no UNIT: every unit), is-enabled UNIT...
    jobs queued: cancel JOB_ID... (as systemctl cancel; the ids list-jobs shows)

OUTPUT:
    on a terminal, while waiting: one status line on stderr, redrawn in place and erased
                                before the results: the unit, its state, the service's own
                                status text, elapsed / timeout
    stdout, one line per unit:  UNIT: done (job ID, N ms)
                                N ms: from the call that queued the job to systemd's
                                JobRemoved for it (a --check-active grace not counted). A
                                job systemd finishes at once (merged into one that was
                                running, or a stop of a unit already on its way down) can
                                end sooner than the unit's own transition in the journal
    with --no-block:            UNIT: queued (job ID, JOB_PATH)
    with --wait:                UNIT: ran to completion, success (main process
                                exited with status 0, ran N ms)
    unit-file verbs, stderr:    each change as systemctl prints it: Created symlink
                                'LINK' \u{2192} 'FILE'.  Removed 'LINK'.  and systemctl's
                                notice for unit files without installation config
    daemon-reload:              daemon-reload: reloaded (N ms)
    daemon-reexec:              daemon-reexec: re-executed, systemd VERSION answers (N ms)
    is-enabled:                 one unit-file state per UNIT (enabled, disabled, static,
                                masked, not-found...)
    errors go to stderr, naming the unit and what systemd said; under an error about a
    failed run (result 'failed', a dependency that failed, --wait, --check-active), that
    run's last journal lines, indented as systemctl status shows them (time in UTC,
    process, message; on a terminal, priority err and worse in bold red), or why they
    could not be read. Only that run's lines: an earlier run of the unit never shows.

EXIT STATUS (as systemctl's; with several units, the highest):
  job verbs:
    0    every job finished done (or skipped)
    1    a job finished with another result (failed, canceled, timeout, dependency...)
         or, with --check-active, the unit was not active, or with --wait, a unit
         ended with a Result other than success (its exit status on stderr); or the
         transaction was refused for an ordering cycle (named on stderr), conflicting
         jobs or a shutdown under way
    2    usage error or invalid unit name
    3    job type not applicable (e.g. reload without ExecReload=)
    4    access denied, or the transaction refused as destructive (it would cancel
         a job the mode keeps, e.g. an irreversible one)
    5    no such unit
    6    unit masked or failed to load
    124  the deadline passed (with --wait: a unit was still running)
    125  bus or manager error
  unit-file verbs, daemon-reload, daemon-reexec, reset-failed, cancel (as systemctl's):
    0    done; 1 it failed (refused, no such unit file, access denied, bus error...);
    2    usage; 124 the deadline passed; with --now, a job's status as above
  is-enabled (as systemctl's): 0 some UNIT is enabled, enabled-runtime, static,
    alias, indirect or generated; 1 none is; 4 no UNIT has a unit file (as systemctl
    257 and later; 252's fails with 1 there)

ENVIRONMENT:
    RUST_LOG=debug     log match handling, calls, job paths and every JobRemoved seen
    NO_COLOR           no highlighting of journal lines, even on a terminal

EXAMPLES:
    restart_blocking nginx
    restart_blocking --user --timeout 2.5 backup.service sync.timer
    restart_blocking --verb reload-or-restart --mode fail app@1 app@2
    restart_blocking --private --no-block --verb stop /mnt/data
    restart_blocking --wait --timeout 600 db-migrate.service
    restart_blocking --daemon-reload --mode fail local-fs.target remote-fs.target
    restart_blocking --verb enable --now app.service
    restart_blocking --verb is-enabled app.service
    restart_blocking -H deploy@db1.example.com:2222 --lines 30 postgresql
    restart_blocking --completions bash > /etc/bash_completion.d/restart_blocking
";

/// restart_blocking: restart systemd units and wait until each job has finished.
#[derive(Parser, Debug)]
#[command(name = "restart_blocking", version, after_help = AFTER_HELP, max_term_width = 100)]
struct Options {
    /// A job (start, stop, restart, reload, try-restart, reload-or-restart,
    /// reload-or-try-restart), a unit-file verb (enable, disable, reenable, link, preset,
    /// mask, unmask), daemon-reload, daemon-reexec, reset-failed, is-enabled or cancel
    /// (UNIT: job ids) [default: restart; with --wait, start]
    #[arg(long, value_name = "VERB", value_parser = parse_action)]
    verb: Option<Action>,
    /// Job mode: replace, fail, isolate, flush, ignore-dependencies, ignore-requirements,
    /// replace-irreversibly, triggering, restart-dependencies
    #[arg(long, value_name = "MODE", default_value = "replace", value_parser = parse_mode)]
    mode: JobMode,
    /// Deadline for the whole run, connecting included, in seconds: a decimal number (1, 2.5,
    /// 1e-3) or inf; a value too large for the clock waits forever
    #[arg(long, value_name = "SECS", default_value = "90", value_parser = seconds)]
    timeout: Duration,
    /// The caller's user manager (via DBUS_SESSION_BUS_ADDRESS or $XDG_RUNTIME_DIR/bus)
    /// instead of the system manager
    #[arg(long)]
    user: bool,
    /// The manager on the bus at this D-Bus address, e.g. unix:path=/run/user/1000/bus
    #[arg(long, value_name = "ADDR")]
    address: Option<String>,
    /// The manager on another machine, over ssh (as systemctl -H; with --user, that user's
    /// manager); ssh must log in without asking
    #[arg(short = 'H', long, value_name = "[USER@]HOST[:PORT]", value_parser = parse_remote,
          conflicts_with_all = ["private", "address"])]
    host: Option<Remote>,
    /// Talk to the manager's private socket, no bus daemon: /run/systemd/private, with
    /// --user $XDG_RUNTIME_DIR/systemd/private, with --address that socket address
    #[arg(long)]
    private: bool,
    /// Queue the jobs and exit at once, printing each job
    #[arg(long)]
    no_block: bool,
    /// Start the units (--verb start or restart; the default becomes start) and wait until
    /// each has run to completion and stopped, as systemctl start --wait; exit 0 only if
    /// every one ended with Result=success
    #[arg(long, conflicts_with = "no_block")]
    wait: bool,
    /// Cancel jobs still running when the deadline passes [default: they keep running in
    /// systemd]
    #[arg(long)]
    cancel_on_timeout: bool,
    /// After a done start/restart, wait SECS (as for --timeout) and fail if the unit is not
    /// active [default: no check]
    #[arg(long, value_name = "SECS", value_parser = seconds)]
    check_active: Option<Duration>,
    /// Let polkit ask for a password when you may not change the unit outright, through
    /// your session's authentication agent (none is started for you); the time spent asking
    /// counts against --timeout, and the system bus gives up after 25 s [default: the flag
    /// is not set: systemd 257 and newer refuse at once (exit status 4); 252 still asks for
    /// unit jobs when an agent is registered for you]
    #[arg(long)]
    ask_password: bool,
    /// Reload the manager (daemon-reload) before the jobs, under the same --timeout: after
    /// writing unit files, or /etc/fstab
    #[arg(long)]
    daemon_reload: bool,
    /// With a unit-file verb: also start (enable, unmask), stop (disable, mask) or
    /// try-restart (reenable) the units and wait for the jobs
    #[arg(long)]
    now: bool,
    /// With a unit-file verb: change /run only, until the next reboot
    #[arg(long)]
    runtime: bool,
    /// With a unit-file verb: replace symlinks that are in the way
    #[arg(long)]
    force: bool,
    /// With a unit-file verb: no daemon-reload after the change
    #[arg(long)]
    no_reload: bool,
    /// How many journal lines of a failed run to show under its error; 0 shows none
    #[arg(long, value_name = "N", default_value_t = systemd_jobs::DEFAULT_JOURNAL_LINES)]
    lines: usize,
    /// Print a completion script for this shell and exit
    #[arg(long, value_name = "SHELL", exclusive = true)]
    completions: Option<Shell>,
    /// The units
    #[arg(value_name = "UNIT")]
    units: Vec<String>,
}

/// What `--verb` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Job(Verb),
    Files(UnitFileVerb),
    DaemonReload,
    DaemonReexec,
    ResetFailed,
    IsEnabled,
    /// `cancel JOB_ID...`: the UNIT arguments are job ids.
    Cancel,
}

impl Action {
    /// Whether it needs at least one UNIT, takes any number, or none.
    fn units(self) -> Units {
        match self {
            Action::Job(_) | Action::Files(_) | Action::IsEnabled | Action::Cancel => {
                Units::AtLeastOne
            }
            Action::ResetFailed => Units::Any,
            Action::DaemonReload | Action::DaemonReexec => Units::None,
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Units {
    AtLeastOne,
    Any,
    None,
}

fn parse_action(value: &str) -> Result<Action, String> {
    Ok(match value {
        "daemon-reload" => Action::DaemonReload,
        "daemon-reexec" => Action::DaemonReexec,
        "reset-failed" => Action::ResetFailed,
        "is-enabled" => Action::IsEnabled,
        "cancel" => Action::Cancel,
        v => match (v.parse::<Verb>(), v.parse::<UnitFileVerb>()) {
            (Ok(verb), _) => Action::Job(verb),
            (_, Ok(verb)) => Action::Files(verb),
            _ => {
                return Err(format!(
                    "unknown verb {v:?} (expected a job: start, stop, restart, reload, \
                     try-restart, reload-or-restart, reload-or-try-restart; a unit-file verb: \
                     enable, disable, reenable, link, preset, mask, unmask; or daemon-reload, \
                     daemon-reexec, reset-failed, is-enabled, cancel)"
                ));
            }
        },
    })
}

fn parse_mode(value: &str) -> Result<JobMode, String> {
    value.parse().map_err(|e: Error| e.to_string())
}

fn parse_remote(value: &str) -> Result<Remote, String> {
    value.parse().map_err(|e: Error| e.to_string())
}

/// A number of seconds: digits with an optional fraction and exponent (`2.5`, `1e-3`), or
/// `inf`; not negative, not NaN, no spaces or signs; too large means forever.
fn seconds(value: &str) -> Result<Duration, String> {
    let number = |s: &str| {
        let (mantissa, exponent) = s.split_once(['e', 'E']).unwrap_or((s, "0"));
        let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let digits = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
        let exponent = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
        digits(int)
            && digits(frac)
            && !(int.is_empty() && frac.is_empty())
            && !exponent.is_empty()
            && digits(exponent)
    };
    let secs: f64 = match value {
        "inf" => f64::INFINITY,
        v if number(v) => v
            .parse()
            .map_err(|_| format!("{value:?} is not a number of seconds"))?,
        _ => {
            return Err(format!(
                "{value:?} is not a number of seconds (such as 2.5 or inf)"
            ));
        }
    };
    Ok(Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX))
}

/// The rules clap's attributes cannot say.
fn check(o: &Options) -> Result<(), clap::Error> {
    let conflict = |msg: &str| Err(Options::command().error(ErrorKind::ArgumentConflict, msg));
    let action = o.action();
    if o.wait && !matches!(action, Action::Job(Verb::Start | Verb::Restart)) {
        return conflict("--wait works with --verb start or restart");
    }
    if o.completions.is_some() {
        return Ok(());
    }
    match (action.units(), o.units.is_empty()) {
        (Units::AtLeastOne, true) => {
            return Err(Options::command().error(
                ErrorKind::MissingRequiredArgument,
                "the following required arguments were not provided:\n  <UNIT>...",
            ));
        }
        (Units::None, false) => return conflict("daemon-reload and daemon-reexec take no UNIT"),
        _ => {}
    }
    let files = matches!(action, Action::Files(_));
    if !files && (o.now || o.runtime || o.force || o.no_reload) {
        return conflict("--now, --runtime, --force and --no-reload work with a unit-file verb");
    }
    if o.now
        && matches!(
            action,
            Action::Files(UnitFileVerb::Link | UnitFileVerb::Preset)
        )
    {
        return conflict("--now works with enable, disable, reenable, mask and unmask");
    }
    if o.daemon_reload && !matches!(action, Action::Job(_)) {
        return conflict("--daemon-reload works with a job verb");
    }
    if !matches!(action, Action::Job(_)) && (o.no_block || o.cancel_on_timeout) {
        return conflict("--no-block and --cancel-on-timeout work with a job verb");
    }
    Ok(())
}

impl Options {
    fn action(&self) -> Action {
        self.verb.unwrap_or(Action::Job(if self.wait {
            Verb::Start
        } else {
            Verb::Restart
        }))
    }
}

fn bus(o: &Options) -> Bus {
    if let Some(remote) = &o.host {
        return Bus::Remote(remote.clone().user_manager(o.user));
    }
    match (&o.address, o.private, o.user) {
        (Some(a), true, _) => Bus::PrivateAddress(a.clone()),
        (Some(a), false, _) => Bus::Address(a.clone()),
        (None, true, true) => Bus::PrivateUser,
        (None, true, false) => Bus::PrivateSystem,
        (None, false, true) => Bus::User,
        (None, false, false) => Bus::System,
    }
}

fn report(e: &Error) -> i32 {
    eprintln!("restart_blocking: {e}");
    let highlight = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    for (unit, journal) in e.run_journals() {
        let indent = if Some(unit) == e.unit() {
            "    "
        } else {
            eprintln!("    {unit}:");
            "        "
        };
        match journal {
            RunJournal::Lines { lines, .. } => {
                for line in lines {
                    match line.priority {
                        Some(p) if highlight && p.is_error() => {
                            eprintln!("{indent}\x1b[1;31m{line}\x1b[0m")
                        }
                        _ => eprintln!("{indent}{line}"),
                    }
                }
            }
            RunJournal::Unavailable(why) => eprintln!("{indent}(no journal lines: {why})"),
            _ => {}
        }
    }
    e.exit_status()
}

fn run(o: Options) -> i32 {
    let action = o.action();
    let mut status = 0;
    let mut units = Vec::new();
    for u in &o.units {
        // Unit-file verbs take templates and paths to unit files as well.
        let mangled = match action {
            Action::Files(_) | Action::IsEnabled if u.contains('/') && !u.starts_with('/') => {
                unit_name::mangle_file(&absolute(u))
            }
            Action::Files(_) | Action::IsEnabled => unit_name::mangle_file(u),
            Action::Cancel => match u.parse::<u32>() {
                Ok(_) => Ok(u.clone()),
                Err(_) => Err(Error::InvalidRequest(format!(
                    "cancel takes job ids (numbers, as `systemctl list-jobs` shows), not {u:?}"
                ))),
            },
            _ => unit_name::mangle(u),
        };
        match mangled {
            Ok(name) => units.push(name),
            Err(e) => status = status.max(report(&e)),
        }
    }
    if status != 0 {
        return status;
    }
    // --timeout covers the whole run: connecting, then the rest with what is left.
    let started = Instant::now();
    let manager = match Manager::builder()
        .bus(bus(&o))
        .cancel_on_timeout(o.cancel_on_timeout)
        .check_active(o.check_active)
        .allow_interactive_authorization(o.ask_password)
        .connect_timeout(o.timeout)
        .journal_lines(o.lines)
        .connect()
    {
        Ok(m) => m,
        Err(e) if matches!(action, Action::Job(_)) => return report(&e),
        Err(e) => return as_systemctl(action, &e),
    };
    let left = o.timeout.saturating_sub(started.elapsed());
    match action {
        Action::Job(verb) => run_jobs(&o, &manager, verb, &units, started, left),
        Action::Files(verb) => run_unit_files(&o, &manager, verb, units, left),
        Action::DaemonReload => match manager.daemon_reload(left) {
            Ok(done) => {
                println!("daemon-reload: {done}");
                0
            }
            Err(e) => as_systemctl(action, &e),
        },
        Action::DaemonReexec => match manager.daemon_reexec(left) {
            Ok(done) => {
                println!("daemon-reexec: {done}");
                0
            }
            Err(e) => as_systemctl(action, &e),
        },
        Action::ResetFailed if units.is_empty() => manager
            .reset_all_failed(left)
            .map_or_else(|e| as_systemctl(action, &e), |()| 0),
        Action::ResetFailed => {
            let deadline = started + o.timeout;
            units.iter().fold(0, |status, unit| {
                let left = deadline.saturating_duration_since(Instant::now());
                match manager.reset_failed(unit, left) {
                    Ok(()) => status,
                    Err(e) => status.max(as_systemctl(action, &e)),
                }
            })
        }
        Action::IsEnabled => is_enabled(&manager, &units, started + o.timeout),
        Action::Cancel => {
            let deadline = started + o.timeout;
            units.iter().fold(0, |status, id| {
                let left = deadline.saturating_duration_since(Instant::now());
                let job = Job::from_path(format!("/org/freedesktop/systemd1/job/{id}"));
                match manager.cancel(&job, left) {
                    Ok(()) => status,
                    Err(e) => status.max(as_systemctl(action, &e)),
                }
            })
        }
    }
}

/// A relative path to a unit file made absolute, as systemctl does for link.
fn absolute(path: &str) -> String {
    std::env::current_dir()
        .map(|d| d.join(path).display().to_string())
        .unwrap_or_else(|_| path.to_owned())
}

/// Reports `e` as the error of a unit-file verb, daemon-reload, daemon-reexec or
/// reset-failed, and returns systemctl's exit status for those: 1 for any failure, but 2
/// for usage and 124 (this example's) for the deadline.
fn as_systemctl(action: Action, e: &Error) -> i32 {
    let status = report(e);
    match (action, status) {
        (Action::Job(_), status) => status,
        (_, 2 | 124) => status,
        _ => 1,
    }
}

/// `systemctl is-enabled`: each unit's state on stdout; 0 if some unit is enabled (or
/// static, alias, indirect, generated), 4 if none has a unit file, else 1.
fn is_enabled(manager: &Manager, units: &[String], deadline: Instant) -> i32 {
    let (mut enabled, mut found, mut failed) = (false, false, false);
    for unit in units {
        let left = deadline.saturating_duration_since(Instant::now());
        match manager.unit_file_state(unit, left) {
            Ok(state) => {
                println!("{state}");
                enabled |= state.is_enabled();
                found |= state != UnitFileState::NotFound;
            }
            Err(e) => {
                report(&e);
                failed = true;
            }
        }
    }
    match (enabled, found, failed) {
        (true, _, _) => 0,
        (false, false, false) => 4,
        _ => 1,
    }
}

/// A unit-file verb: the changes on stderr as systemctl prints them, then with --now each
/// job's line (or error) as for jobs.
fn run_unit_files(
    o: &Options,
    manager: &Manager,
    verb: UnitFileVerb,
    units: Vec<String>,
    left: Duration,
) -> i32 {
    let action = Action::Files(verb);
    let outcome: UnitFileOutcome = match manager
        .unit_files(verb, units)
        .runtime(o.runtime)
        .force(o.force)
        .reload(!o.no_reload)
        .now(o.now)
        .mode(o.mode)
        .run(left)
    {
        Ok(outcome) => outcome,
        Err(e) => return as_systemctl(action, &e),
    };
    for change in &outcome.changes {
        eprintln!("{change}");
    }
    if outcome.carries_install_info == Some(false)
        && matches!(
            verb,
            UnitFileVerb::Enable | UnitFileVerb::Disable | UnitFileVerb::Reenable
        )
    {
        eprintln!("{NO_INSTALL_INFO}");
    }
    for template in &outcome.skipped {
        eprintln!("Template unit is not supported by {verb} --now, skipping: {template}");
    }
    let mut status = 0;
    for job in outcome.jobs {
        match job {
            Ok(outcome) => println!("{outcome}"),
            Err(e) => status = status.max(report(&e)),
        }
    }
    status
}

/// What systemctl prints for unit files that have nothing to enable.
const NO_INSTALL_INFO: &str = "\
The unit files have no installation config (WantedBy=, RequiredBy=, UpheldBy=,
Also=, or Alias= settings in the [Install] section, and DefaultInstance= for
template units). This means they are not meant to be enabled or disabled using systemctl.
 
Possible reasons for having these kinds of units are:
\u{2022} A unit may be statically enabled by being symlinked from another unit's
  .wants/, .requires/, or .upholds/ directory.
\u{2022} A unit's purpose may be to act as a helper for some other unit which has
  a requirement dependency on it.
\u{2022} A unit may be started when needed via activation (socket, path, timer,
  D-Bus, udev, scripted systemctl call, ...).
\u{2022} In case of template units, the unit is meant to be enabled with some
  instance name specified.";

/// The job verbs: every unit's job queued together and waited for (or not, --no-block).
fn run_jobs(
    o: &Options,
    manager: &Manager,
    verb: Verb,
    units: &[String],
    started: Instant,
    left: Duration,
) -> i32 {
    let mut status = 0;
    if o.no_block {
        let mut left = left;
        if o.daemon_reload {
            let deadline = Instant::now() + left;
            if let Err(e) = manager.daemon_reload(left) {
                return report(&e);
            }
            left = deadline.saturating_duration_since(Instant::now());
        }
        for unit in units {
            match manager.enqueue(verb, unit, o.mode, left) {
                Ok(job) => println!(
                    "{unit}: queued (job {}, {})",
                    job.job().id(),
                    job.job().path()
                ),
                Err(e) => status = status.max(report(&e)),
            }
        }
        return status;
    }
    let mut batch = units
        .iter()
        .fold(manager.batch().mode(o.mode), |b, u| b.add(verb, u.as_str()))
        .daemon_reload_first(o.daemon_reload);
    let mut line = StatusLine::on_stderr(started, o.timeout);
    if o.wait {
        for result in batch.run_to_completion(left) {
            match result {
                Ok(completion) => println!("{completion}"),
                Err(e) => status = status.max(report(&e)),
            }
        }
        return status;
    }
    if let Some(line) = line.as_mut() {
        batch = batch.on_progress(StatusLine::EVERY, |p| line.draw(p));
    }
    let results = batch.run(left);
    if let Some(line) = line.as_mut() {
        line.clear();
    }
    // A reload that failed fails every unit alike: said once.
    if o.daemon_reload
        && let Some(Err(e)) = results.first()
        && e.unit() == Some("daemon-reload")
    {
        return report(e);
    }
    for result in results {
        match result {
            Ok(outcome) => println!("{outcome}"),
            Err(e) => status = status.max(report(&e)),
        }
    }
    status
}

/// The status line on a terminal while jobs run: redrawn in place on stderr, erased before the
/// results are printed. Two escape sequences (`\r` and erase-line) and the terminal's width
/// are all it needs, so no terminal crate is pulled in for it.
struct StatusLine {
    frame: usize,
    width: usize,
    drawn: bool,
    /// When the run began, and its whole `--timeout` (connecting included).
    started: Instant,
    timeout: Duration,
}

impl StatusLine {
    /// How often the line is redrawn while nothing changes (the spinner and elapsed time).
    const EVERY: Duration = Duration::from_millis(200);
    const ERASE: &str = "\r\x1b[2K";

    /// A status line if stderr is a terminal.
    fn on_stderr(started: Instant, timeout: Duration) -> Option<StatusLine> {
        std::io::stderr().is_terminal().then(|| StatusLine {
            frame: 0,
            width: terminal_width(),
            drawn: false,
            started,
            timeout,
        })
    }

    fn draw(&mut self, p: &Progress) {
        const SPINNER: [char; 4] = ['|', '/', '-', '\\'];
        self.frame += 1;
        let text = format!(
            "{} {p} [{} / {}]",
            SPINNER[self.frame % SPINNER.len()],
            human(self.started.elapsed()),
            human(self.timeout)
        );
        let shown: String = text.chars().take(self.width.saturating_sub(1)).collect();
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "{}{shown}", Self::ERASE);
        let _ = err.flush();
        self.drawn = true;
    }

    fn clear(&mut self) {
        if std::mem::take(&mut self.drawn) {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "{}", Self::ERASE);
            let _ = err.flush();
        }
    }
}

/// Seconds as systemd shows them: `5s`, `1min 30s`.
fn human(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 60, s % 60) {
        (0, s) => format!("{s}s"),
        (m, 0) => format!("{m}min"),
        (m, s) => format!("{m}min {s}s"),
    }
}

/// Columns of the terminal on stderr (`TIOCGWINSZ`), else `$COLUMNS`, else 80.
fn terminal_width() -> usize {
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize into the struct it is given.
    let ok = unsafe { libc::ioctl(libc::STDERR_FILENO, libc::TIOCGWINSZ, &mut size) } == 0;
    if ok && size.ws_col > 0 {
        return usize::from(size.ws_col);
    }
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(80)
}

fn main() -> ExitCode {
    env_logger::init();
    let o = Options::parse();
    if let Err(e) = check(&o) {
        e.exit();
    }
    if let Some(shell) = o.completions {
        let mut command = Options::command();
        clap_complete::generate(
            shell,
            &mut command,
            "restart_blocking",
            &mut std::io::stdout(),
        );
        return ExitCode::SUCCESS;
    }
    ExitCode::from(run(o) as u8)
}

//! `restart_blocking`: restart (or start, stop, reload...) systemd units and wait for each job.
//!
//! Run `cargo run --example restart_blocking -- --help` for the options and exit statuses.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use systemd_jobs::{Bus, Error, JobMode, Manager, Progress, Remote, Verb, unit_name};

const HELP: &str = "\
restart_blocking: restart systemd units and wait until each job has finished.

USAGE:
    restart_blocking [OPTIONS] UNIT...

Each UNIT gets one job; all are queued together and waited for under one deadline.
A name without a suffix gets .service; an absolute path becomes a .mount (or, under
/dev and /sys, a .device) unit, escaped as systemd-escape does. Globs are refused.

OPTIONS:
    --verb VERB        start, stop, restart, reload, try-restart, reload-or-restart,
                       reload-or-try-restart     [default: restart; with --wait, start]
    --mode MODE        job mode: replace, fail, isolate, flush, ignore-dependencies,
                       ignore-requirements, replace-irreversibly, triggering,
                       restart-dependencies                           [default: replace]
    --timeout SECS     deadline for the whole run, connecting included,
                       fractions allowed                              [default: 90]
    --user             the caller's user manager (via DBUS_SESSION_BUS_ADDRESS or
                       $XDG_RUNTIME_DIR/bus) instead of the system manager
    --address ADDR     the manager on the bus at this D-Bus address,
                       e.g. unix:path=/run/user/1000/bus
    -H, --host [USER@]HOST[:PORT]
                       the manager on another machine, over ssh (as systemctl -H; with
                       --user, that user's manager); ssh must log in without asking
    --private          talk to the manager's private socket, no bus daemon:
                       /run/systemd/private, with --user $XDG_RUNTIME_DIR/systemd/private,
                       with --address that socket address
    --no-block         queue the jobs and exit at once, printing each job
    --wait             start the units (--verb start or restart; the default becomes
                       start) and wait until each has run to completion and stopped,
                       as systemctl start --wait; exit 0 only if every one ended with
                       Result=success
    --cancel-on-timeout
                       cancel jobs still running when the deadline passes
                       [default: they keep running in systemd]
    --check-active SECS
                       after a done start/restart, wait SECS (fractions allowed) and fail
                       if the unit is not active                       [default: no check]
    --ask-password     let polkit ask for a password when you may not change the unit
                       outright, through your session's authentication agent (none is
                       started for you); the time spent asking counts against --timeout,
                       and the system bus gives up after 25 s
                       [default: the flag is not set: systemd 257 and newer refuse at
                       once (exit status 4); 252 still asks for unit jobs when an agent
                       is registered for you]
    -h, --help         print this help

OUTPUT:
    on a terminal, while waiting: one status line on stderr, redrawn in place and erased
                                before the results: the unit, its state, the service's own
                                status text, elapsed / timeout
    stdout, one line per unit:  UNIT: done (job ID, N ms)
    with --no-block:            UNIT: queued (job ID, JOB_PATH)
    with --wait:                UNIT: ran to completion, success (main process
                                exited with status 0, ran N ms)
    errors go to stderr, naming the unit and what systemd said.

EXIT STATUS (as systemctl's; with several units, the highest):
    0    every job finished done (or skipped)
    1    a job finished with another result (failed, canceled, timeout, dependency...)
         or, with --check-active, the unit was not active, or with --wait, a unit
         ended with a Result other than success (its exit status on stderr)
    2    usage error or invalid unit name
    3    job type not applicable (e.g. reload without ExecReload=)
    4    access denied, or transaction refused by systemd
    5    no such unit
    6    unit masked or failed to load
    124  the deadline passed (with --wait: a unit was still running)
    125  bus or manager error

ENVIRONMENT:
    RUST_LOG=debug     log match handling, calls, job paths and every JobRemoved seen

EXAMPLES:
    restart_blocking nginx
    restart_blocking --user --timeout 2.5 backup.service sync.timer
    restart_blocking --verb reload-or-restart --mode fail app@1 app@2
    restart_blocking --private --no-block --verb stop /mnt/data
    restart_blocking --wait --timeout 600 db-migrate.service
    restart_blocking -H deploy@db1.example.com:2222 postgresql
";

struct Options {
    verb: Option<Verb>,
    mode: JobMode,
    timeout: Duration,
    user: bool,
    address: Option<String>,
    host: Option<Remote>,
    private: bool,
    no_block: bool,
    wait: bool,
    cancel_on_timeout: bool,
    check_active: Option<Duration>,
    ask_password: bool,
    units: Vec<String>,
}

fn seconds(flag: &str, value: &str) -> Result<Duration, String> {
    let secs: f64 = value
        .parse()
        .map_err(|_| format!("{flag}: {value:?} is not a number of seconds"))?;
    if secs.is_nan() || secs < 0.0 {
        return Err(format!("{flag}: {value:?} must be zero or more seconds"));
    }
    Ok(Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX))
}

fn parse(args: impl Iterator<Item = String>) -> Result<Option<Options>, String> {
    let mut o = Options {
        verb: None,
        mode: JobMode::Replace,
        timeout: Duration::from_secs(90),
        user: false,
        address: None,
        host: None,
        private: false,
        no_block: false,
        wait: false,
        cancel_on_timeout: false,
        check_active: None,
        ask_password: false,
        units: Vec::new(),
    };
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--verb" => o.verb = Some(value()?.parse().map_err(|e: Error| e.to_string())?),
            "--mode" => o.mode = value()?.parse().map_err(|e: Error| e.to_string())?,
            "--timeout" => o.timeout = seconds("--timeout", &value()?)?,
            "--check-active" => o.check_active = Some(seconds("--check-active", &value()?)?),
            "--address" => o.address = Some(value()?),
            "-H" | "--host" => o.host = Some(value()?.parse().map_err(|e: Error| e.to_string())?),
            "--user" => o.user = true,
            "--private" => o.private = true,
            "--no-block" => o.no_block = true,
            "--wait" => o.wait = true,
            "--cancel-on-timeout" => o.cancel_on_timeout = true,
            "--ask-password" => o.ask_password = true,
            "--" => o.units.extend(args.by_ref()),
            f if f.starts_with('-') && f.len() > 1 => return Err(format!("unknown option {f}")),
            _ => o.units.push(arg),
        }
    }
    if o.units.is_empty() {
        return Err("no unit given".to_owned());
    }
    if o.host.is_some() && (o.private || o.address.is_some()) {
        return Err("--host goes over ssh to a bus: not with --private or --address".to_owned());
    }
    if o.wait && o.no_block {
        return Err("--wait and --no-block exclude each other".to_owned());
    }
    if o.wait && !matches!(o.verb, None | Some(Verb::Start | Verb::Restart)) {
        return Err("--wait works with --verb start or restart".to_owned());
    }
    Ok(Some(o))
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
    e.exit_status()
}

fn run(o: Options) -> i32 {
    let mut status = 0;
    let mut units = Vec::new();
    for u in &o.units {
        match unit_name::mangle(u) {
            Ok(name) => units.push(name),
            Err(e) => status = status.max(report(&e)),
        }
    }
    if status != 0 {
        return status;
    }
    // --timeout covers the whole run: connecting, then the jobs with what is left.
    let started = Instant::now();
    let manager = match Manager::builder()
        .bus(bus(&o))
        .cancel_on_timeout(o.cancel_on_timeout)
        .check_active(o.check_active)
        .allow_interactive_authorization(o.ask_password)
        .connect_timeout(o.timeout)
        .connect()
    {
        Ok(m) => m,
        Err(e) => return report(&e),
    };
    let left = o.timeout.saturating_sub(started.elapsed());
    let verb = o
        .verb
        .unwrap_or(if o.wait { Verb::Start } else { Verb::Restart });
    if o.no_block {
        for unit in &units {
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
        .fold(manager.batch().mode(o.mode), |b, u| b.add(verb, u.as_str()));
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
    let status = match parse(std::env::args().skip(1)) {
        Ok(Some(o)) => run(o),
        Ok(None) => {
            print!("{HELP}");
            0
        }
        Err(e) => {
            eprintln!("restart_blocking: {e}\nTry 'restart_blocking --help'.");
            2
        }
    };
    ExitCode::from(status as u8)
}

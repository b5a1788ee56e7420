//! A fake, hostile manager: a peer on a private bus daemon of its own that owns
//! `org.freedesktop.systemd1` and answers a restart with malformed replies, wrong-typed,
//! empty, oversized, duplicate and contradictory `JobRemoved`s, bogus job paths, unknown
//! error names, no reply at all, signals from an impostor, and a name that changes owner.
//! Each case: a typed error or the right result, within the deadline, and no panic.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use dbus::blocking::Connection;
use dbus::channel::{Channel, MatchingReceiver, Sender};
use dbus::message::MatchRule;
use dbus::{Message, Path};
use systemd_jobs::{Bus, Error, JobMode, JobResult, Manager};

const NAME: &str = "org.freedesktop.systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
const OBJECT: &str = "/org/freedesktop/systemd1";
const JOB: &str = "/org/freedesktop/systemd1/job/7";
/// The deadline of every restart here; a case must end before it plus this slack.
const DEADLINE: Duration = Duration::from_secs(2);
const SLACK: Duration = Duration::from_millis(700);

/// A private bus daemon (session configuration) on a socket in a fresh directory.
struct BusDaemon {
    child: Child,
    dir: PathBuf,
    address: String,
}

impl BusDaemon {
    fn start() -> Result<BusDaemon, String> {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "systemd-jobs-hostile-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let address = format!("unix:path={}/bus", dir.display());
        let child = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--nopidfile"])
            .arg(format!("--address={address}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("dbus-daemon: {e}"))?;
        let daemon = BusDaemon {
            child,
            dir,
            address,
        };
        // Listening once a connection is accepted (the socket file comes before listen()).
        let started = Instant::now();
        while Channel::open_private(&daemon.address).is_err() {
            if started.elapsed() > Duration::from_secs(10) {
                return Err("dbus-daemon did not listen within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(daemon)
    }

    fn connect(&self) -> Connection {
        let mut channel = Channel::open_private(&self.address).expect("connect to the bus");
        channel.register().expect("Hello");
        Connection::from(channel)
    }
}

impl Drop for BusDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// How the fake answers a method call to it (after the common ones: `Subscribe`, and
/// `Properties.Get`, answered with an error).
type Answer = dyn Fn(&Message, &Connection) + Send + Sync;

/// The fake manager: a thread with its own connection that owns the manager's name.
struct Fake {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Fake {
    fn start(bus: &BusDaemon, answer: Arc<Answer>) -> Fake {
        let conn = bus.connect();
        conn.request_name(NAME, false, true, false)
            .expect("own org.freedesktop.systemd1");
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            conn.start_receive(
                MatchRule::new_method_call(),
                Box::new(move |msg, conn| {
                    match msg.member().as_deref() {
                        Some("Subscribe") | Some("Unsubscribe") => {
                            let _ = conn.send(msg.method_return());
                        }
                        Some("Get") | Some("GetAll") => {
                            let _ = conn.send(msg.error(
                                &"org.freedesktop.DBus.Error.UnknownProperty".into(),
                                c"a fake has no properties",
                            ));
                        }
                        _ => answer(&msg, conn),
                    }
                    true
                }),
            );
            while !stopping.load(Ordering::Relaxed) {
                let _ = conn.process(Duration::from_millis(20));
            }
        });
        Fake {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A well-formed `EnqueueUnitJob` reply for job 7.
fn job_reply(call: &Message) -> Message {
    let none: Vec<(u32, Path<'static>, String, Path<'static>, String)> = Vec::new();
    call.method_return()
        .append3(7u32, Path::from(JOB), "a.service")
        .append3(
            Path::from("/org/freedesktop/systemd1/unit/a_2eservice"),
            "restart",
            none,
        )
}

fn job_removed(id: u32, job: &str, unit: &str, result: &str) -> Message {
    Message::new_signal(OBJECT, MANAGER, "JobRemoved")
        .unwrap()
        .append3(id, Path::from(job), unit)
        .append1(result)
}

fn signal(member: &str) -> Message {
    Message::new_signal(OBJECT, MANAGER, member).unwrap()
}

/// Runs one restart of `a.service` against a fake answering `EnqueueUnitJob` with
/// `answer`; returns what the restart gave, after checking it ended within the deadline.
fn restart_against(
    answer: impl Fn(&Message, &Connection) + Send + Sync + 'static,
) -> Option<Result<systemd_jobs::JobOutcome, Error>> {
    let bus = match BusDaemon::start() {
        Ok(bus) => bus,
        Err(why) => {
            common::missing_prerequisite(&why);
            return None;
        }
    };
    let _fake = Fake::start(&bus, Arc::new(answer));
    let m = manager_on(&bus);
    let started = Instant::now();
    let got = m.restart("a.service", JobMode::Replace, DEADLINE);
    let took = started.elapsed();
    eprintln!("after {took:?}: {got:?}");
    assert!(took < DEADLINE + SLACK, "took {took:?}: {got:?}");
    Some(got)
}

/// A client of the fake, reading no journal (there is none for a fake).
fn manager_on(bus: &BusDaemon) -> Manager {
    Manager::builder()
        .bus(Bus::Address(bus.address.clone()))
        .journal_lines(0)
        .connect()
        .expect("connect to the fake")
}

fn enqueue(msg: &Message) -> bool {
    msg.member().as_deref() == Some("EnqueueUnitJob")
}

#[test]
fn malformed_replies_are_typed_errors_at_once() {
    type Reply = Box<dyn Fn(&Message) -> Message + Send + Sync>;
    let cases: Vec<(&str, Reply)> = vec![
        ("an empty reply", Box::new(|m| m.method_return())),
        (
            "wrong types",
            Box::new(|m| m.method_return().append3("seven", 7u32, true)),
        ),
        (
            "missing arguments",
            Box::new(|m| m.method_return().append2(7u32, Path::from(JOB))),
        ),
        (
            "extra arguments",
            Box::new(|m| job_reply(m).append1("more")),
        ),
    ];
    for (what, reply) in cases {
        let Some(got) = restart_against(move |m, c| {
            let _ = c.send(reply(m));
        }) else {
            return;
        };
        match got {
            Err(Error::Bus { .. }) => {}
            // Extra arguments are ignored, the job path still read: waited for to the end.
            Err(Error::Timeout { .. }) if what == "extra arguments" => {}
            other => panic!("{what}: {other:?}"),
        }
    }
}

#[test]
fn unknown_error_names_and_no_reply_are_typed() {
    let Some(got) = restart_against(|m, c| {
        let _ = c.send(m.error(&"com.example.Weird.Thing".into(), c"something odd"));
    }) else {
        return;
    };
    match got {
        Err(e @ Error::Bus { .. }) => {
            let text = e.to_string();
            assert!(text.contains("com.example.Weird.Thing"), "{text}");
            assert!(text.contains("something odd"), "{text}");
        }
        other => panic!("{other:?}"),
    }
    // No reply at all: the deadline, typed.
    let Some(got) = restart_against(|_, _| {}) else {
        return;
    };
    assert!(matches!(got, Err(Error::Timeout { .. })), "{got:?}");
}

/// Garbage first (wrong types, empty, other jobs of the same unit, a huge unit name, a
/// bogus path), then the job's own `done` and a contradicting `failed`: only the job's own
/// first `JobRemoved` counts.
#[test]
fn only_the_job_s_own_job_removed_counts() {
    let Some(got) = restart_against(|m, c| {
        if !enqueue(m) {
            return;
        }
        let _ = c.send(job_reply(m));
        let huge = "x".repeat(1 << 20);
        let garbage = [
            signal("JobRemoved"),
            signal("JobRemoved").append1("done"),
            signal("JobRemoved")
                .append3(7u32, JOB, "a.service")
                .append1("done"),
            signal("JobRemoved").append3("7", Path::from(JOB), "a.service"),
            job_removed(8, "/org/freedesktop/systemd1/job/8", "a.service", "done"),
            job_removed(7, "/org/freedesktop/systemd1/job/77", "a.service", "done"),
            job_removed(7, "/", &huge, &huge),
            signal("JobNew").append1(true),
        ];
        for g in garbage {
            let _ = c.send(g);
        }
        for _ in 0..2000 {
            let _ = c.send(job_removed(
                9,
                "/org/freedesktop/systemd1/job/9",
                "a.service",
                "failed",
            ));
        }
        let _ = c.send(job_removed(7, JOB, "a.service", "done"));
        let _ = c.send(job_removed(7, JOB, "a.service", "failed"));
    }) else {
        return;
    };
    let outcome = got.expect("the job's own done");
    assert_eq!(outcome.result, JobResult::Done);
}

/// A message of a type D-Bus does not define (5), sent to the waiting client through the
/// bus daemon, then the job's `done`: `done`. (The daemon drops such a message; the `dbus`
/// crate would panic on it in `Message::msg_type`.)
#[test]
fn a_message_of_an_unknown_type_is_ignored() {
    let Some(got) = restart_against(|m, c| {
        if !enqueue(m) {
            return;
        }
        let _ = c.send(job_reply(m));
        let mut bytes = Vec::new();
        let mut odd = signal("JobNew").append1("odd");
        odd.set_serial(1);
        odd.marshal(|b| {
            bytes.extend_from_slice(b);
            Ok::<(), ()>(())
        })
        .unwrap();
        bytes[1] = 5;
        let mut odd = Message::demarshal(&bytes).expect("libdbus reads type 5");
        odd.set_destination(m.sender().map(|s| s.into_static()));
        let _ = c.send(odd);
        let _ = c.send(job_removed(7, JOB, "a.service", "done"));
    }) else {
        return;
    };
    assert_eq!(got.expect("done").result, JobResult::Done);
}

/// A result string of a megabyte for the job: an unknown result, a failure, typed.
#[test]
fn an_oversized_result_is_a_typed_failure() {
    let Some(got) = restart_against(|m, c| {
        if enqueue(m) {
            let _ = c.send(job_reply(m));
            let _ = c.send(job_removed(7, JOB, "a.service", &"r".repeat(1 << 20)));
        }
    }) else {
        return;
    };
    match got {
        Err(Error::JobFailed {
            result: JobResult::Other(r),
            ..
        }) => assert_eq!(r.len(), 1 << 20),
        other => panic!("{other:?}"),
    }
}

/// A bogus job path in the reply: a typed error at once, never "done" and no wait.
#[test]
fn a_bogus_job_path_is_a_typed_error_at_once() {
    let Some(got) = restart_against(|m, c| {
        if enqueue(m) {
            let none: Vec<(u32, Path<'static>, String, Path<'static>, String)> = Vec::new();
            let _ = c.send(
                m.method_return()
                    .append3(0u32, Path::from("/"), "")
                    .append3(Path::from("/"), "", none),
            );
            let _ = c.send(job_removed(7, JOB, "a.service", "done"));
        }
    }) else {
        return;
    };
    match got {
        Err(e @ Error::Bus { .. }) => {
            assert!(e.to_string().contains("\"/\" is not a job's"), "{e}")
        }
        other => panic!("{other:?}"),
    }
}

/// An impostor (another connection, not the name's owner) sends the job's `done`; the
/// owner then sends `failed`: the owner's counts.
#[test]
fn job_removed_from_an_impostor_does_not_count() {
    let bus = match BusDaemon::start() {
        Ok(bus) => bus,
        Err(why) => return common::missing_prerequisite(&why),
    };
    let impostor = Arc::new(std::sync::Mutex::new(bus.connect()));
    let sends = impostor.clone();
    let _fake = Fake::start(
        &bus,
        Arc::new(move |m: &Message, c: &Connection| {
            if enqueue(m) {
                let _ = c.send(job_reply(m));
                let _ = sends
                    .lock()
                    .unwrap()
                    .send(job_removed(7, JOB, "a.service", "done"));
                std::thread::sleep(Duration::from_millis(200));
                let _ = c.send(job_removed(7, JOB, "a.service", "failed"));
            }
        }),
    );
    let m = manager_on(&bus);
    let got = m.restart("a.service", JobMode::Replace, DEADLINE);
    assert!(
        matches!(
            got,
            Err(Error::JobFailed {
                result: JobResult::Failed,
                ..
            })
        ),
        "{got:?}"
    );
}

/// The manager's name changes owner after the reply: the wait ends with a typed error
/// within the deadline, never a result from the new owner's unrelated signals.
#[test]
fn a_name_that_changes_owner_ends_the_wait_typed() {
    let bus = match BusDaemon::start() {
        Ok(bus) => bus,
        Err(why) => return common::missing_prerequisite(&why),
    };
    let second = bus.connect();
    let flapped = Arc::new(AtomicBool::new(false));
    let flag = flapped.clone();
    let fake = Fake::start(
        &bus,
        Arc::new(move |m: &Message, c: &Connection| {
            if enqueue(m) {
                let _ = c.send(job_reply(m));
                let _ = c.release_name(NAME);
                flag.store(true, Ordering::Relaxed);
            }
        }),
    );
    let m = manager_on(&bus);
    let taker = std::thread::spawn(move || {
        while !flapped.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(5));
        }
        second.request_name(NAME, false, true, false).unwrap();
        // The new owner's "done" for the same path is not the old owner's job.
        second
            .send(job_removed(7, JOB, "a.service", "done"))
            .unwrap();
        std::thread::sleep(Duration::from_secs(3));
    });
    let started = Instant::now();
    let got = m.restart("a.service", JobMode::Replace, DEADLINE);
    eprintln!("after {:?}: {got:?}", started.elapsed());
    assert!(started.elapsed() < DEADLINE + SLACK, "{got:?}");
    assert!(
        matches!(
            got,
            Err(Error::ManagerGone { .. } | Error::OutcomeUnknown { .. } | Error::Timeout { .. })
        ),
        "{got:?}"
    );
    drop(fake);
    taker.join().unwrap();
}

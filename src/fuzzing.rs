//! Entry points for the fuzz targets in `.ci/fuzz` (feature `fuzzing`; not part of the API).
//! Each feeds arbitrary bytes to a decoder of peer data and checks what the crate promises
//! afterwards, panicking where a promise breaks: the fuzzer reports that as a crash.

use dbus::Message;

use crate::job::{JobResult, Verb};
use crate::journal::export::Decoder;
use crate::journal::{JournalLine, MAX_MESSAGE_BYTES};
use crate::ops::follow::Seen;
use crate::proto::calls::{read_enqueued, read_enqueued_many, read_per_verb};
use crate::proto::{BUS_NAME, SYSTEMD_NAME};
use crate::session::inbox::Request;
use crate::session::router::Router;

/// The job path the fuzzed inbox waits on.
pub const OUR_JOB: &str = "/org/freedesktop/systemd1/job/7";
/// The unique name the fuzzed inbox knows as the manager's owner.
pub const OWNER: &str = ":1.1";
/// The most entries the fuzzed journal decoder keeps.
const MAX_ENTRIES: usize = 8;

/// `journalctl --output=export` output, fed in pieces whose sizes come from the input:
/// at most [`MAX_ENTRIES`] entries, each message at most [`MAX_MESSAGE_BYTES`] before it is
/// made safe, with no control character after; then the run filter over them, and the
/// ordering-cycle reader over their messages.
pub fn journal_export(data: &[u8]) {
    let Some((&piece, data)) = data.split_first() else {
        return;
    };
    let mut decoder = Decoder::new(MAX_ENTRIES);
    for chunk in data.chunks(usize::from(piece).max(1)) {
        decoder.feed(chunk);
    }
    let entries = decoder.finish();
    assert!(entries.len() <= MAX_ENTRIES, "{} entries", entries.len());
    let kept = crate::journal::reader::of_run(
        entries.clone(),
        b"0123456789abcdef0123456789abcdef",
        b"app.service",
    );
    assert!(kept.len() <= entries.len());
    let mut messages = Vec::new();
    for entry in entries {
        let line: JournalLine = entry.into_line();
        messages.push(line.message.clone());
        // Made safe: every byte at most four (`\xNN`), plus the cut mark.
        assert!(
            line.message.len() <= 4 * MAX_MESSAGE_BYTES + 64,
            "{}",
            line.message.len()
        );
        assert!(
            !line.message.chars().any(char::is_control),
            "{:?}",
            line.message
        );
        for text in [&line.identifier].into_iter().flatten() {
            assert!(!text.chars().any(char::is_control), "{text:?}");
        }
        let _ = line.to_string();
    }
    // The ordering cycle read from the manager's lines: only units those lines name.
    for unit in crate::journal::cycle::last_cycle(&messages) {
        assert!(!unit.is_empty());
        assert!(
            messages.iter().any(|m| m.contains(&unit)),
            "{unit:?} made up"
        );
    }
}

/// The session's router (replies, signal handlers, the inbox) fed `messages`, waiting for
/// [`OUR_JOB`], for the reply to serial 1 and with a handler following a unit's
/// `PropertiesChanged`. What it may have learnt: the result of [`OUR_JOB`] if one of the
/// messages is a well-formed `JobRemoved` for it, sent by an owner of the manager's name;
/// and it keeps no more than it waits for.
fn check_router(messages: &[Message]) {
    let mut router = Router::new(false);
    router.inbox.answered_by(OWNER);
    router.inbox.watch(
        OUR_JOB,
        Request {
            unit: "a.service".into(),
            verb: Verb::Restart,
            queued_at_usec: 0,
        },
    );
    router.await_reply(1);
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Seen::default()));
    let into = seen.clone();
    router.add_handler(
        dbus::message::MatchRule::new_signal(
            "org.freedesktop.DBus.Properties",
            "PropertiesChanged",
        ),
        Box::new(move |msg: &Message| into.lock().expect("one thread").on_signal(msg)),
    );
    let mut owners = vec![OWNER.to_owned()];
    let mut allowed: Vec<JobResult> = Vec::new();
    for msg in messages {
        // Owners announced by the bus daemon, and results sent by any owner so far.
        if msg.sender().as_deref() == Some(BUS_NAME)
            && let Ok((name, _, new)) = msg.read3::<&str, &str, &str>()
            && name == SYSTEMD_NAME
            && !new.is_empty()
        {
            owners.push(new.to_owned());
        }
        if let Ok((_, path, _, result)) = msg.read4::<u32, dbus::Path, &str, &str>()
            && &*path == OUR_JOB
            && msg
                .sender()
                .is_some_and(|s| owners.iter().any(|o| **o == *s))
        {
            allowed.push(result.parse().unwrap_or_else(|e| match e {}));
        }
        if let Ok(copy) = msg.duplicate() {
            let _ = router.dispatch(copy);
        }
        if let Some(result) = router.inbox.result_of(OUR_JOB) {
            assert!(
                allowed.contains(&result),
                "{result:?} from none of {messages:?}"
            );
        }
    }
    assert_eq!(router.inbox.watched_len(), 1, "the inbox grew");
    assert_eq!(router.sizes(), (1, 1), "the router grew");
}

/// Every reply reader over `msg` (`EnqueueUnitJob`, `EnqueueUnitJobMany`, the per-verb
/// methods): an error or job paths that are jobs', never a panic.
fn check_replies(msg: &Message) {
    for queued in [read_enqueued(msg), read_per_verb(msg, Verb::Restart)]
        .into_iter()
        .flatten()
    {
        assert!(
            queued
                .job
                .path()
                .starts_with("/org/freedesktop/systemd1/job/")
        );
    }
    for job in read_enqueued_many(msg)
        .map(|(jobs, _)| jobs)
        .unwrap_or_default()
    {
        assert!(job.job.path().starts_with("/org/freedesktop/systemd1/job/"));
    }
}

/// Bytes as a stream of marshalled D-Bus messages (libdbus's own `dbus_message_demarshal`
/// reads them; the fuzzer learns the format from the corpus), fed to the inbox and to the
/// reply readers.
pub fn peer_bytes(mut data: &[u8]) {
    let mut messages = Vec::new();
    while let Ok(needed) = Message::demarshal_bytes_needed(data) {
        if needed == 0 || needed > data.len() {
            break;
        }
        // Types D-Bus does not define (byte 1 of the header) are left out: the `dbus` crate
        // panics on them (`Message::msg_type`); the bus daemon drops them before they reach
        // a client (`tests/hostile.rs`).
        if (1..=4).contains(&data[1])
            && let Ok(msg) = Message::demarshal(&data[..needed])
        {
            messages.push(msg);
        }
        data = &data[needed..];
    }
    for msg in &messages {
        check_replies(msg);
    }
    check_router(&messages);
}

/// Bytes as a little program that builds well-formed messages with the wrong parts: each
/// message takes a kind, a sender, a path, an interface, a member and up to five arguments
/// of a type the input picks (right and wrong ones, huge strings and arrays among them).
pub fn peer_signals(data: &[u8]) {
    let mut input = data.iter().copied();
    let mut next = || input.next();
    let mut messages = Vec::new();
    while let Some(kind) = next() {
        let pick = |b: Option<u8>, of: &[&'static str]| of[usize::from(b.unwrap_or(0)) % of.len()];
        let path = pick(
            next(),
            &[
                "/org/freedesktop/systemd1",
                "/org/freedesktop/DBus",
                "/",
                OUR_JOB,
            ],
        );
        let iface = pick(
            next(),
            &[
                "org.freedesktop.systemd1.Manager",
                "org.freedesktop.DBus",
                "org.example.X",
            ],
        );
        let member = pick(
            next(),
            &["JobRemoved", "NameOwnerChanged", "JobNew", "Reloading"],
        );
        let sender = pick(next(), &[OWNER, ":1.2", BUS_NAME, SYSTEMD_NAME]);
        let mut msg = if kind % 2 == 0 {
            Message::new_signal(path, iface, member).expect("valid names")
        } else {
            let mut call =
                Message::new_method_call(SYSTEMD_NAME, path, iface, member).expect("valid names");
            // A reply names its call's serial, which libdbus requires to be set.
            call.set_serial(1);
            call.method_return()
        };
        msg.set_sender(Some(sender.into()));
        for _ in 0..(next().unwrap_or(0) % 6) {
            msg = match next().unwrap_or(0) % 13 {
                0 => msg.append1(u32::from(next().unwrap_or(7))),
                1 => msg.append1(dbus::Path::from(OUR_JOB)),
                2 => msg.append1(dbus::Path::from("/org/freedesktop/systemd1/job/8")),
                3 => msg.append1(pick(next(), &["done", "failed", "canceled", "", "x"])),
                4 => msg.append1(SYSTEMD_NAME),
                5 => msg.append1(pick(next(), &[OWNER, ":1.2", ""])),
                6 => msg.append1("x".repeat(usize::from(next().unwrap_or(0)) << 10)),
                7 => msg.append1(vec![0u32; usize::from(next().unwrap_or(0)) << 8]),
                8 => msg.append1(true),
                9 => msg.append1(-1i64),
                10 => msg.append1(vec![
                    (
                        7u32,
                        dbus::Path::from(pick(
                            next(),
                            &[OUR_JOB, "/", "/org/freedesktop/systemd1/job/x"]
                        )),
                        String::from("a.service"),
                        dbus::Path::from("/org/freedesktop/systemd1/unit/a"),
                        String::from("restart"),
                    );
                    usize::from(next().unwrap_or(0) % 4)
                ]),
                11 => msg.append1(dbus::Path::from("/org/freedesktop/systemd1/unit/a")),
                _ => {
                    // Properties with systemd's names, of the right type or not.
                    let mut props = dbus::arg::PropMap::new();
                    let name = pick(
                        next(),
                        &["ActiveState", "Result", "ExecMainCode", "StatusText"],
                    );
                    let value: Box<dyn dbus::arg::RefArg> = match next().unwrap_or(0) % 3 {
                        0 => Box::new(String::from("failed")),
                        1 => Box::new(7i32),
                        _ => Box::new(vec![1u8; usize::from(next().unwrap_or(0)) << 8]),
                    };
                    props.insert(name.to_owned(), dbus::arg::Variant(value));
                    msg.append1(props)
                }
            };
        }
        messages.push(msg);
    }
    for msg in &messages {
        check_replies(msg);
    }
    check_router(&messages);
}

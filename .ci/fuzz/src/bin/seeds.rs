//! Writes the seed corpus of `peer_bytes`: real marshalled messages (right and wrong
//! `JobRemoved`s, a change of owner, replies to `EnqueueUnitJob` and `RestartUnit`), one
//! stream per file, into the directory given.

use dbus::{Message, Path};
use systemd_jobs::fuzzing::{OUR_JOB, OWNER};

const MANAGER: &str = "org.freedesktop.systemd1.Manager";

fn marshal(msgs: &[Message]) -> Vec<u8> {
    let mut out = Vec::new();
    for (serial, msg) in msgs.iter().enumerate() {
        let mut msg = msg.duplicate().expect("duplicate");
        msg.set_serial(serial as u32 + 1);
        msg.marshal(|b| {
            out.extend_from_slice(b);
            Ok::<(), ()>(())
        })
        .expect("marshal");
    }
    out
}

fn removed(sender: &str, path: &str, result: &str) -> Message {
    let mut m = Message::new_signal("/org/freedesktop/systemd1", MANAGER, "JobRemoved")
        .unwrap()
        .append3(7u32, Path::from(path), "a.service")
        .append1(result);
    m.set_sender(Some(sender.into()));
    m
}

fn main() {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).expect("a directory"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut call = Message::new_method_call(
        "org.freedesktop.systemd1",
        "/org/freedesktop/systemd1",
        MANAGER,
        "EnqueueUnitJob",
    )
    .unwrap();
    // A reply names its call's serial, which libdbus requires to be set.
    call.set_serial(1);
    let none: Vec<(u32, Path<'static>, String, Path<'static>, String)> = Vec::new();
    let mut owner = Message::new_signal(
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus",
        "NameOwnerChanged",
    )
    .unwrap()
    .append3("org.freedesktop.systemd1", OWNER, ":1.9");
    owner.set_sender(Some("org.freedesktop.DBus".into()));
    let streams: Vec<(&str, Vec<Message>)> = vec![
        ("done", vec![removed(OWNER, OUR_JOB, "done")]),
        (
            "impostor",
            vec![
                removed(":1.2", OUR_JOB, "done"),
                removed(OWNER, OUR_JOB, "failed"),
            ],
        ),
        (
            "other-job",
            vec![removed(OWNER, "/org/freedesktop/systemd1/job/8", "done")],
        ),
        (
            "new-owner",
            vec![owner, removed(":1.9", OUR_JOB, "canceled")],
        ),
        (
            "enqueue-reply",
            vec![
                call.method_return()
                    .append3(7u32, Path::from(OUR_JOB), "a.service")
                    .append3(
                        Path::from("/org/freedesktop/systemd1/unit/a"),
                        "restart",
                        none,
                    ),
            ],
        ),
        (
            "restart-reply",
            vec![call.method_return().append1(Path::from(OUR_JOB))],
        ),
    ];
    for (name, msgs) in streams {
        std::fs::write(dir.join(name), marshal(&msgs)).unwrap();
    }
}

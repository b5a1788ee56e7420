//! `systemd_job`: an Ansible module (a binary module, as Ansible runs one) that brings systemd
//! units to a desired state through this crate and tells the true result: the job's own
//! result, a service that dies right after starting, the failed dependency, the journal
//! lines of the failed run, and one deadline over the whole task.
//!
//! Ansible runs it as `systemd_job ARGS_FILE`; it prints one JSON object on stdout and exits
//! 1 when the task failed. Its documentation, in Ansible's format, is
//! `examples/ansible/library/systemd_job.yml`; the README shows how to build and install it.

#![forbid(unsafe_code)]

mod args;
mod json;
mod report;
mod task;

use json::Object;

fn main() {
    let (result, failed) = match std::env::args_os().nth(1) {
        None => fail(
            "no arguments file: systemd_job is an Ansible module, run by Ansible as \
             `systemd_job ARGS_FILE` (a JSON object of its options)"
                .to_owned(),
        ),
        Some(path) => match std::fs::read_to_string(&path) {
            Err(e) => fail(format!(
                "cannot read the arguments file {}: {e}",
                path.to_string_lossy()
            )),
            Ok(text) => match args::parse(&text) {
                Err(msg) => fail(msg),
                Ok(args) => report::result(&args, &task::run(&args)),
            },
        },
    };
    println!("{}", json::Json::Object(result));
    std::process::exit(i32::from(failed));
}

fn fail(msg: String) -> (Object, bool) {
    let mut o = Object::new();
    o.set("changed", false).set("failed", true).set("msg", msg);
    (o, true)
}

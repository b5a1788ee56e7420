//! Typed calls on the manager and its jobs, each bounded by the timeout it is given.

use std::time::Duration;

use dbus::Message;
use dbus::blocking::stdintf::org_freedesktop_dbus::Properties;
use dbus::blocking::{BlockingSender, Proxy};

use crate::error::BusError;
use crate::job::{Job, JobMode, JobState, TransactionJob, Verb};
use crate::proto::{JOB_IFACE, SYSTEMD_NAME, errors, manager_call};

/// One job as systemd lists it, `(uosos)`: id, job path, unit, unit path, job type.
type JobEntry = (
    u32,
    dbus::Path<'static>,
    String,
    dbus::Path<'static>,
    String,
);

/// A job systemd accepted, as its reply said.
#[derive(Debug)]
pub(crate) struct Queued {
    pub(crate) job: Job,
    /// The other jobs of the transaction (empty where the call cannot list them).
    pub(crate) transaction: Vec<TransactionJob>,
    /// Who answered: on a bus, the unique name that owns `org.freedesktop.systemd1` now.
    pub(crate) answered_by: Option<String>,
}

/// `EnqueueUnitJob(s name, s job_type, s job_mode)`: the job and the other jobs of its
/// transaction.
///
/// # Errors
/// systemd's (or the bus daemon's) error reply; a reply of the wrong shape as
/// `org.freedesktop.DBus.Error.Failed`.
pub(crate) fn enqueue_unit_job(
    via: &impl BlockingSender,
    unit: &str,
    verb: Verb,
    mode: JobMode,
    timeout: Duration,
) -> Result<Queued, dbus::Error> {
    let call = manager_call("EnqueueUnitJob").append3(unit, verb.as_str(), mode.as_str());
    let reply = via.send_with_reply_and_block(call, timeout)?;
    read_enqueued(&reply)
}

/// Reads `EnqueueUnitJob`'s reply `(uosos a(uosos))`.
///
/// # Errors
/// A reply of the wrong shape, or whose job paths are not jobs', as
/// `org.freedesktop.DBus.Error.Failed`.
pub(crate) fn read_enqueued(reply: &Message) -> Result<Queued, dbus::Error> {
    let (id, path, _, _, _, affected): (
        u32,
        dbus::Path<'static>,
        String,
        dbus::Path<'static>,
        String,
        Vec<JobEntry>,
    ) = reply.read_all().map_err(|e| {
        dbus::Error::new_custom(
            errors::FAILED,
            &format!("unexpected reply to EnqueueUnitJob: {e}"),
        )
    })?;
    let transaction = affected
        .into_iter()
        .map(|(id, path, unit, _, job_type)| {
            Ok(TransactionJob {
                job: job_at("EnqueueUnitJob", Some(id), &path)?,
                unit,
                job_type,
            })
        })
        .collect::<Result<_, dbus::Error>>()?;
    Ok(Queued {
        job: job_at("EnqueueUnitJob", Some(id), &path)?,
        transaction,
        answered_by: reply.sender().map(|s| s.to_string()),
    })
}

/// A job of a named unit, from `EnqueueUnitJobMany`'s reply.
#[derive(Debug)]
pub(crate) struct UnitJob {
    pub(crate) job: Job,
    /// The unit's name as systemd knows it (an alias given is answered with its unit's id).
    pub(crate) unit: String,
    pub(crate) unit_path: String,
}

/// `EnqueueUnitJobMany(as units, s job_type, s job_mode, t flags)` (systemd 262 and later):
/// one transaction with a `verb` job for every unit of `units`, so ordering dependencies
/// between them hold whatever their order, and systemd accepts or refuses them as a whole.
/// The reply lists the jobs of the named units (in no particular order); `flags` must be 0.
///
/// # Errors
/// As [`enqueue_unit_job`]; `UnknownMethod` on managers without it.
pub(crate) fn enqueue_unit_job_many(
    via: &impl BlockingSender,
    units: &[&str],
    verb: Verb,
    mode: JobMode,
    timeout: Duration,
) -> Result<(Vec<UnitJob>, Option<String>), dbus::Error> {
    let call = manager_call("EnqueueUnitJobMany")
        .append3(units, verb.as_str(), mode.as_str())
        .append1(0u64);
    let reply = via.send_with_reply_and_block(call, timeout)?;
    read_enqueued_many(&reply)
}

/// Reads `EnqueueUnitJobMany`'s reply `(a(uosos))`, with who answered.
///
/// # Errors
/// As [`read_enqueued`].
pub(crate) fn read_enqueued_many(
    reply: &Message,
) -> Result<(Vec<UnitJob>, Option<String>), dbus::Error> {
    let jobs: Vec<JobEntry> = reply
        .read1()
        .map_err(|e| unexpected("EnqueueUnitJobMany", e))?;
    let jobs = jobs
        .into_iter()
        .map(|(id, path, unit, unit_path, _)| {
            Ok(UnitJob {
                job: job_at("EnqueueUnitJobMany", Some(id), &path)?,
                unit,
                unit_path: unit_path.to_string(),
            })
        })
        .collect::<Result<_, dbus::Error>>()?;
    Ok((jobs, reply.sender().map(|s| s.to_string())))
}

/// `GetUnit(s name)`: the object path of a loaded unit.
///
/// # Errors
/// systemd's error reply (`NoSuchUnit` for a unit not loaded).
pub(crate) fn get_unit(
    via: &impl BlockingSender,
    unit: &str,
    timeout: Duration,
) -> Result<dbus::Path<'static>, dbus::Error> {
    unit_path_by(via, "GetUnit", unit, timeout)
}

/// A unit's object path from `method` (`GetUnit`, `LoadUnit`).
fn unit_path_by(
    via: &impl BlockingSender,
    method: &str,
    unit: &str,
    timeout: Duration,
) -> Result<dbus::Path<'static>, dbus::Error> {
    let reply = via.send_with_reply_and_block(manager_call(method).append1(unit), timeout)?;
    reply.read1().map_err(|e| unexpected(method, e))
}

/// The verb's own method (`RestartUnit(s name, s mode)`, ...): the job only.
///
/// # Errors
/// As [`enqueue_unit_job`].
pub(crate) fn per_verb(
    via: &impl BlockingSender,
    unit: &str,
    verb: Verb,
    mode: JobMode,
    timeout: Duration,
) -> Result<Queued, dbus::Error> {
    let call = manager_call(verb.method()).append2(unit, mode.as_str());
    let reply = via.send_with_reply_and_block(call, timeout)?;
    read_per_verb(&reply, verb)
}

/// Reads the reply `(o)` of the verb's own method.
///
/// # Errors
/// As [`read_enqueued`].
pub(crate) fn read_per_verb(reply: &Message, verb: Verb) -> Result<Queued, dbus::Error> {
    let path: dbus::Path<'static> = reply.read1().map_err(|e| unexpected(verb.method(), e))?;
    Ok(Queued {
        job: job_at(verb.method(), None, &path)?,
        transaction: Vec::new(),
        answered_by: reply.sender().map(|s| s.to_string()),
    })
}

/// `LoadUnit(s name)`: the unit's object path, loading it if systemd had unloaded it.
///
/// # Errors
/// systemd's error reply (`NoSuchUnit`, ...).
pub(crate) fn load_unit(
    via: &impl BlockingSender,
    unit: &str,
    timeout: Duration,
) -> Result<dbus::Path<'static>, dbus::Error> {
    unit_path_by(via, "LoadUnit", unit, timeout)
}

/// `ListUnitsByPatterns([], [pattern])`: the names of the loaded units that match a glob
/// (`app@*.service`, the instances of a template).
///
/// # Errors
/// systemd's error reply; a reply of the wrong shape as `org.freedesktop.DBus.Error.Failed`.
pub(crate) fn units_matching(
    via: &impl BlockingSender,
    pattern: &str,
    timeout: Duration,
) -> Result<Vec<String>, dbus::Error> {
    type Listed = (
        String,
        String,
        String,
        String,
        String,
        String,
        dbus::Path<'static>,
        u32,
        String,
        dbus::Path<'static>,
    );
    let no_states: &[&str] = &[];
    let call = manager_call("ListUnitsByPatterns").append2(no_states, &[pattern][..]);
    let reply = via.send_with_reply_and_block(call, timeout)?;
    let units: Vec<Listed> = reply
        .read1()
        .map_err(|e| unexpected("ListUnitsByPatterns", e))?;
    Ok(units.into_iter().map(|u| u.0).collect())
}

/// `GetJob(u id)`: whether the manager still has the job.
///
/// # Errors
/// Any error but `NoSuchJob`.
pub(crate) fn job_exists(
    via: &impl BlockingSender,
    job: &Job,
    timeout: Duration,
) -> Result<bool, BusError> {
    match via.send_with_reply_and_block(manager_call("GetJob").append1(job.id()), timeout) {
        Ok(_) => Ok(true),
        Err(e) if e.name() == Some(errors::NO_SUCH_JOB) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Sends `signal` to the main process of `unit` (`KillUnit(unit, "main", signal)`).
///
/// # Errors
/// What systemd answered: `NoSuchUnit`, a refusal for callers that may not, ...
pub(crate) fn kill_main_process(
    via: &impl BlockingSender,
    unit: &str,
    signal: i32,
    timeout: Duration,
) -> Result<(), BusError> {
    let call = manager_call("KillUnit").append3(unit, "main", signal);
    via.send_with_reply_and_block(call, timeout)?;
    Ok(())
}

/// A queued job's `State` as its job object tells it: [`JobState::Running`] or
/// [`JobState::Waiting`].
///
/// # Errors
/// The error of the property read (e.g. `UnknownObject` once the job is gone).
pub(crate) fn job_state(
    via: &impl BlockingSender,
    job: &Job,
    timeout: Duration,
) -> Result<JobState, dbus::Error> {
    let path = dbus::Path::new(job.path()).map_err(|e| {
        dbus::Error::new_custom(
            "org.freedesktop.DBus.Error.InvalidArgs",
            &format!("{} is not a job object path: {e}", job.path()),
        )
    })?;
    let state: String = Proxy::new(SYSTEMD_NAME, path, timeout, via).get(JOB_IFACE, "State")?;
    Ok(if state == "running" {
        JobState::Running
    } else {
        JobState::Waiting
    })
}

/// `Cancel()` on a job object.
///
/// # Errors
/// `InvalidArgs` for a job whose path is not an object path (a [`Job`] made by the caller).
pub(crate) fn cancel(job: &Job) -> Result<Message, dbus::Error> {
    Message::new_method_call(SYSTEMD_NAME, job.path(), JOB_IFACE, "Cancel").map_err(|e| {
        dbus::Error::new_custom(
            "org.freedesktop.DBus.Error.InvalidArgs",
            &format!("{} is not a job object path: {e}", job.path()),
        )
    })
}

/// The job at `path` (with the `id` the reply gave, if it gives one) from `call`'s reply, if
/// `path` is a job's: systemd's are `/org/freedesktop/systemd1/job/ID`. Any other path
/// would be waited for in vain.
fn job_at(call: &str, id: Option<u32>, path: &str) -> Result<Job, dbus::Error> {
    let number = path.strip_prefix("/org/freedesktop/systemd1/job/");
    if number.is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())) {
        Ok(id.map_or_else(|| Job::from_path(path), |id| Job::new(id, path)))
    } else {
        Err(dbus::Error::new_custom(
            errors::FAILED,
            &format!("unexpected reply to {call}: {path:?} is not a job's object path"),
        ))
    }
}

fn unexpected(call: &str, e: dbus::arg::TypeMismatchError) -> dbus::Error {
    dbus::Error::new_custom(errors::FAILED, &format!("unexpected reply to {call}: {e}"))
}

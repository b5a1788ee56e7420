//! The `systemd_job` Ansible module against `ansible.builtin.systemd_service`, side by side:
//! real `ansible-playbook` (ansible-core from Debian's packages) against an inventory of
//! containers booted from the suite's roots (systemd 252, 257 and the newest), reached over
//! real ssh, each module running on every host against its system manager. Each test is a
//! row of the README's table: the same play, both modules, the truth asserted.

mod common;

use std::path::PathBuf;
use std::sync::Mutex;

use common::container::Root;
use common::fleet::{Fleet, Host, Play};

const ROOTS: [Root; 3] = [Root::Host, Root::Debian("trixie"), Root::Debian("sid")];

/// One fleet at a time: each is three containers, and the timing rows must not share two
/// cores with another fleet's boot.
static ONE_FLEET: Mutex<()> = Mutex::new(());

macro_rules! fleet {
    () => {{
        let guard = ONE_FLEET.lock().unwrap_or_else(|e| e.into_inner());
        match Fleet::boot(&ROOTS) {
            Ok(f) => (guard, f),
            Err(why) => {
                common::missing_prerequisite(&why);
                return;
            }
        }
    }};
}

/// Writes `contents` at `path` inside the host's container.
fn write(host: &Host, path: &str, contents: &str) {
    let full = PathBuf::from(format!("/proc/{}/root{path}", host.container.pid1()));
    std::fs::create_dir_all(full.parent().unwrap()).unwrap();
    std::fs::write(full, contents).unwrap();
}

/// A play on the fleet of two tasks, each with `ignore_errors`: `ours` running `ours` (a
/// module and its arguments, `systemd_job: {...}`), then `theirs` running `theirs`.
fn side_by_side(ours: &str, theirs: &str) -> String {
    format!(
        "- hosts: fleet\n  gather_facts: false\n  tasks:\n\
         \x20   - name: ours\n      {ours}\n      ignore_errors: true\n\
         \x20   - name: theirs\n      {theirs}\n      ignore_errors: true\n"
    )
}

/// Every host's result of `task`.
fn on_every_host<'p>(
    fleet: &Fleet,
    play: &'p Play,
    task: &str,
) -> Vec<(&'p common::fleet::TaskResult, String)> {
    fleet
        .hosts
        .iter()
        .map(|h| (play.result(&h.name, task), h.name.clone()))
        .collect()
}

fn lines(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|l| l.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// A restart with a configuration typo: both fail; ours names the reason (the job's result,
/// the unit's) and carries the line the service's own check wrote, in `msg` and `journal`.
#[test]
fn a_config_typo_fails_both_and_ours_shows_the_line() {
    let (_one, fleet) = fleet!();
    let check = "#!/bin/sh\ngrep -qx 'port = [0-9]*' /run/app/app.conf && exit 0\n\
                 echo \"app.conf: line 1: port: '$(sed -n 's/^port = //p' /run/app/app.conf)' is not a number\" >&2\nexit 78\n";
    for h in &fleet.hosts {
        write(h, "/run/app/check", check);
        write(h, "/run/app/app.conf", "port = 80a\n");
    }
    fleet.install(&[(
        "app.service",
        "[Service]\nExecStartPre=/bin/sh /run/app/check\nExecStart=/bin/sleep infinity\n",
    )]);
    let play = fleet.play(
        &side_by_side(
            "systemd_job: {name: app.service, state: restarted}",
            "ansible.builtin.systemd_service: {name: app.service, state: restarted}",
        ),
        &[],
    );
    for (ours, host) in on_every_host(&fleet, &play, "ours") {
        assert!(
            ours.failed(),
            "{host}: ours did not fail: {:?}",
            ours.result
        );
        let unit = ours.unit();
        assert_eq!(unit["reason"]["kind"], "job_failed", "{host}: {unit}");
        assert_eq!(unit["reason"]["job_result"], "failed", "{host}: {unit}");
        assert!(
            ours.msg().contains("'80a' is not a number"),
            "{host}: {}",
            ours.msg()
        );
        assert!(
            lines(&unit["journal"])
                .iter()
                .any(|l| l.contains("'80a' is not a number")),
            "{host}: {unit}"
        );
        assert!(unit["job_id"].as_u64().is_some(), "{host}: {unit}");
    }
    for (theirs, host) in on_every_host(&fleet, &play, "theirs") {
        assert!(
            theirs.failed(),
            "{host}: theirs did not fail: {:?}",
            theirs.result
        );
        assert!(
            !theirs.msg().contains("is not a number"),
            "{host}: {}",
            theirs.msg()
        );
    }
}

/// A `Type=simple` service that exits right after starting: systemd_service reports
/// `changed`, ours fails after its active check with the unit's state and its last line.
#[test]
fn a_simple_service_that_exits_at_once_fails_ours_not_theirs() {
    let (_one, fleet) = fleet!();
    fleet.install(&[(
        "api.service",
        "[Service]\nType=simple\nExecStart=/bin/sh -c 'echo \"listen tcp :8080: bind: address already in use\" >&2; exit 1'\n",
    )]);
    let play = fleet.play(
        &side_by_side(
            "systemd_job: {name: api.service, state: started}",
            "ansible.builtin.systemd_service: {name: api.service, state: started}",
        ),
        &[],
    );
    for (ours, host) in on_every_host(&fleet, &play, "ours") {
        assert!(ours.failed(), "{host}: {:?}", ours.result);
        assert_eq!(
            ours.unit()["reason"]["kind"],
            "not_active",
            "{host}: {}",
            ours.unit()
        );
        assert_eq!(ours.unit()["reason"]["active_state"], "failed", "{host}");
        assert!(
            ours.msg().contains("address already in use"),
            "{host}: {}",
            ours.msg()
        );
    }
    for (theirs, host) in on_every_host(&fleet, &play, "theirs") {
        assert!(
            !theirs.failed() && theirs.changed(),
            "{host}: {:?}",
            theirs.result
        );
    }
}

/// A dependency that fails: ours names it, with its own reason and line; systemd_service's
/// message does not.
#[test]
fn a_failing_dependency_is_named_by_ours() {
    let (_one, fleet) = fleet!();
    fleet.install(&[
        (
            "db.service",
            "[Service]\nType=oneshot\nExecStart=/bin/sh -c 'echo \"db: cannot open /var/lib/db: No such file or directory\" >&2; exit 1'\n",
        ),
        (
            "web.service",
            "[Unit]\nRequires=db.service\nAfter=db.service\n[Service]\nExecStart=/bin/sleep infinity\n",
        ),
    ]);
    let play = fleet.play(
        &side_by_side(
            "systemd_job: {name: web.service, state: started}",
            "ansible.builtin.systemd_service: {name: web.service, state: started}",
        ),
        &[],
    );
    for (ours, host) in on_every_host(&fleet, &play, "ours") {
        let unit = ours.unit();
        assert!(ours.failed(), "{host}: {unit}");
        assert_eq!(unit["reason"]["job_result"], "dependency", "{host}: {unit}");
        let dep = &unit["failed_dependencies"][0];
        assert_eq!(dep["unit"], "db.service", "{host}: {unit}");
        assert_eq!(
            dep["unit_result"], "a process exited with an error code",
            "{host}: {unit}"
        );
        assert!(
            lines(&dep["journal"])
                .iter()
                .any(|l| l.contains("cannot open /var/lib/db")),
            "{host}: {unit}"
        );
        assert!(ours.msg().contains("db.service"), "{host}: {}", ours.msg());
    }
    for (theirs, host) in on_every_host(&fleet, &play, "theirs") {
        assert!(theirs.failed(), "{host}: {:?}", theirs.result);
        assert!(
            !theirs.msg().contains("db.service"),
            "{host}: {}",
            theirs.msg()
        );
    }
}

/// A unit stuck in `activating` (it never reports ready): with `timeout: 5` ours fails after
/// 5 s and says it timed out; systemd_service has no deadline and waits for systemd's own
/// `TimeoutStartSec=` (20 s here; 90 s by default).
#[test]
fn a_unit_stuck_activating_fails_ours_at_its_timeout() {
    let (_one, fleet) = fleet!();
    let stuck = "[Service]\nType=notify\nExecStart=/bin/sleep infinity\nTimeoutStartSec=20\n";
    fleet.install(&[("stuck-a.service", stuck), ("stuck-b.service", stuck)]);
    let play = fleet.play(
        &side_by_side(
            "systemd_job: {name: stuck-a.service, state: started, timeout: 5}",
            "ansible.builtin.systemd_service: {name: stuck-b.service, state: started}",
        ),
        &[],
    );
    for (ours, host) in on_every_host(&fleet, &play, "ours") {
        assert!(ours.failed(), "{host}: {:?}", ours.result);
        assert_eq!(
            ours.unit()["reason"]["kind"],
            "timeout",
            "{host}: {}",
            ours.unit()
        );
        // The module's own time, from its start to its answer: the deadline, and no more.
        let took = ours.result["elapsed_ms"].as_u64().unwrap();
        assert!(
            (5000..5700).contains(&took),
            "{host}: the module took {took} ms"
        );
        // The task's time on the controller: the module's 5 s, plus ssh and the copy.
        assert!(
            ours.seconds < 9.0,
            "{host}: the task took {} s",
            ours.seconds
        );
    }
    for (theirs, host) in on_every_host(&fleet, &play, "theirs") {
        assert!(theirs.failed(), "{host}: {:?}", theirs.result);
        assert!(
            theirs.seconds >= 19.0,
            "{host}: theirs returned after {} s",
            theirs.seconds
        );
    }
}

fn file_and_active(h: &Host, unit: &str) -> (String, String) {
    (
        h.container.unit_property(unit, "UnitFileState"),
        h.container.unit_property(unit, "ActiveState"),
    )
}

/// Check mode changes nothing and says what would change, as systemd_service does; the real
/// run changes; a second run is unchanged, both.
#[test]
fn check_mode_then_a_second_run_change_nothing_both() {
    let (_one, fleet) = fleet!();
    let unit = "[Service]\nExecStart=/bin/sleep infinity\n[Install]\nWantedBy=multi-user.target\n";
    for h in &fleet.hosts {
        write(h, "/etc/systemd/system/fresh-a.service", unit);
        write(h, "/etc/systemd/system/fresh-b.service", unit);
        h.container.run(None, &["systemctl", "daemon-reload"]);
    }
    let book = "- hosts: fleet\n  gather_facts: false\n  tasks:\n\
         \x20   - name: ours\n      systemd_job: {name: fresh-a.service, state: started, enabled: true}\n\
         \x20   - name: theirs\n      ansible.builtin.systemd_service: {name: fresh-b.service, state: started, enabled: true}\n";
    let check = fleet.play(book, &["--check", "--diff"]);
    assert_eq!(check.code, 0, "{}", check.output);
    for name in ["ours", "theirs"] {
        for (r, host) in on_every_host(&fleet, &check, name) {
            assert!(
                r.changed() && !r.failed(),
                "{host} {name} in check mode: {:?}",
                r.result
            );
        }
    }
    for (ours, host) in on_every_host(&fleet, &check, "ours") {
        let steps: Vec<String> = lines(&ours.unit()["steps"]);
        assert_eq!(steps, ["enable", "daemon-reload", "start"], "{host}");
        let diff = &ours.result["diff"][0];
        assert!(
            diff["after"].as_str().unwrap().contains("active: active"),
            "{host}: {diff}"
        );
    }
    for h in &fleet.hosts {
        for u in ["fresh-a.service", "fresh-b.service"] {
            assert_eq!(
                file_and_active(h, u),
                ("disabled".to_owned(), "inactive".to_owned()),
                "{}: {u} after check mode",
                h.name
            );
        }
    }
    let first = fleet.play(book, &[]);
    assert_eq!(first.code, 0, "{}", first.output);
    let second = fleet.play(book, &[]);
    assert_eq!(second.code, 0, "{}", second.output);
    for name in ["ours", "theirs"] {
        for (r, host) in on_every_host(&fleet, &first, name) {
            assert!(r.changed(), "{host} {name}, first run: {:?}", r.result);
        }
        for (r, host) in on_every_host(&fleet, &second, name) {
            assert!(!r.changed(), "{host} {name}, second run: {:?}", r.result);
        }
    }
    for h in &fleet.hosts {
        assert_eq!(
            file_and_active(h, "fresh-a.service"),
            file_and_active(h, "fresh-b.service")
        );
        assert_eq!(
            file_and_active(h, "fresh-a.service"),
            ("enabled".to_owned(), "active".to_owned()),
            "{}",
            h.name
        );
    }
}

/// The symlinks under `/etc/systemd/system` that point at `unit`, with its name replaced by
/// `as_name`, sorted: what enable or mask left on disk.
fn links_to(h: &Host, unit: &str, as_name: &str) -> Vec<String> {
    let (_, out, _) = h.container.run(
        None,
        &["sh", "-c", &format!("cd /etc/systemd/system && find . -type l -printf '%p -> %l\\n' | grep '{unit}' | sort")],
    );
    out.lines().map(|l| l.replace(unit, as_name)).collect()
}

/// `enabled`, `masked` (with `daemon_reload`) and `reset_failed`: ours leaves the same state
/// on disk and in the manager as systemd_service (and, for reset-failed, which it lacks, as
/// `systemctl reset-failed`), step after step, on two copies of the same unit.
#[test]
fn enabled_masked_reset_failed_leave_what_systemd_service_leaves() {
    let (_one, fleet) = fleet!();
    let unit = "[Unit]\nDescription=copy\n[Service]\nExecStart=/bin/sh -c 'exit 3'\n\
                [Install]\nWantedBy=multi-user.target\nAlias=alias-NAME.service\n";
    for h in &fleet.hosts {
        for n in ["pair-a", "pair-b"] {
            // In /run: a mask goes in /etc, where a unit file is in its way (the next row).
            write(
                h,
                &format!("/run/systemd/system/{n}.service"),
                &unit.replace("NAME", n),
            );
        }
    }
    let steps: [(&str, &str); 6] = [
        (
            "enabled: true, daemon_reload: true",
            "enabled: true, daemon_reload: true",
        ),
        ("enabled: false", "enabled: false"),
        ("masked: true", "masked: true"),
        ("masked: false", "masked: false"),
        (
            "enabled: true, state: started",
            "enabled: true, state: started",
        ),
        ("reset_failed: true", "RESET"),
    ];
    for (i, (ours, theirs)) in steps.iter().enumerate() {
        let theirs_task = if *theirs == "RESET" {
            "ansible.builtin.command: systemctl reset-failed pair-b.service".to_owned()
        } else {
            format!("ansible.builtin.systemd_service: {{name: pair-b.service, {theirs}}}")
        };
        let play = fleet.play(
            &side_by_side(
                &format!("systemd_job: {{name: pair-a.service, {ours}}}"),
                &theirs_task,
            ),
            &[],
        );
        for h in &fleet.hosts {
            let a = play.result(&h.name, "ours");
            let b = play.result(&h.name, "theirs");
            // The start of a service that exits at once: ours fails (the row above), theirs
            // says changed; the state they leave is compared all the same.
            if !ours.contains("state") {
                assert_eq!(
                    (a.failed(), a.changed()),
                    (b.failed(), b.changed()),
                    "step {i} ({ours}) on {}: ours {:?}, theirs {:?}; links {:?}",
                    h.name,
                    a.msg(),
                    b.msg(),
                    links_to(h, "pair-a", "pair-X")
                );
            }
            assert_eq!(
                links_to(h, "pair-a", "pair-X"),
                links_to(h, "pair-b", "pair-X"),
                "step {i} ({ours}) on {}",
                h.name
            );
            let (fa, aa) = file_and_active(h, "pair-a.service");
            let (fb, ab) = file_and_active(h, "pair-b.service");
            assert_eq!((fa, aa), (fb, ab), "step {i} ({ours}) on {}", h.name);
        }
    }
}

/// A mask of a unit whose file is in `/etc/systemd/system`, where the mask's link would go:
/// systemctl refuses (the file is in the way), and systemd_service ignores that refusal for a
/// unit it found, reporting `changed` for a unit left unmasked. Ours fails and names the file.
#[test]
fn a_mask_refused_by_systemd_fails_ours_and_changes_theirs() {
    let (_one, fleet) = fleet!();
    let unit = "[Service]\nExecStart=/bin/sleep infinity\n";
    for h in &fleet.hosts {
        for n in ["local-a", "local-b"] {
            write(h, &format!("/etc/systemd/system/{n}.service"), unit);
        }
        h.container.run(None, &["systemctl", "daemon-reload"]);
    }
    let play = fleet.play(
        &side_by_side(
            "systemd_job: {name: local-a.service, masked: true}",
            "ansible.builtin.systemd_service: {name: local-b.service, masked: true}",
        ),
        &[],
    );
    for h in &fleet.hosts {
        let ours = play.result(&h.name, "ours");
        assert!(
            ours.failed() && !ours.changed(),
            "{}: {:?}",
            h.name,
            ours.result
        );
        assert_eq!(ours.unit()["reason"]["kind"], "unit_file_failed");
        assert_eq!(
            ours.unit()["reason"]["bus_error"],
            "org.freedesktop.systemd1.UnitExists"
        );
        assert!(
            ours.msg().contains("/etc/systemd/system/local-a.service"),
            "{}",
            ours.msg()
        );
        let theirs = play.result(&h.name, "theirs");
        assert!(
            !theirs.failed() && theirs.changed(),
            "{}: {:?}",
            h.name,
            theirs.result
        );
        for u in ["local-a.service", "local-b.service"] {
            assert_ne!(
                h.container.unit_property(u, "UnitFileState"),
                "masked",
                "{}: {u}",
                h.name
            );
        }
        let (code, _, err) = h
            .container
            .run(None, &["systemctl", "mask", "local-b.service"]);
        assert_ne!(code, 0, "{}: systemctl mask succeeded", h.name);
        assert!(err.contains("already exists"), "{}: {err}", h.name);
    }
}

/// The manager re-executes on a host while the task waits for its job (another client's
/// `systemctl daemon-reexec`, 1.5 s into a 3 s start): ours reports the job's true result
/// after the manager is back, and the unit is active; systemd_service fails the task ("D-Bus
/// connection terminated") for a restart that went on and ended well.
#[test]
fn a_daemon_reexec_during_the_task_gives_the_true_result() {
    let (_one, fleet) = fleet!();
    let slow = "[Service]\nExecStartPre=/bin/sleep 3\nExecStart=/bin/sleep infinity\n";
    fleet.install(&[("slow-a.service", slow), ("slow-b.service", slow)]);
    let reexec_soon = "ansible.builtin.shell: sleep 1.5 && systemctl daemon-reexec\n      async: 30\n      poll: 0";
    let play = fleet.play(
        &format!(
            "- hosts: fleet\n  gather_facts: false\n  tasks:\n\
             \x20   - name: reexec soon (ours)\n      {reexec_soon}\n\
             \x20   - name: ours\n      systemd_job: {{name: slow-a.service, state: restarted, timeout: 30}}\n      ignore_errors: true\n\
             \x20   - name: reexec soon (theirs)\n      {reexec_soon}\n\
             \x20   - name: theirs\n      ansible.builtin.systemd_service: {{name: slow-b.service, state: restarted}}\n      ignore_errors: true\n"
        ),
        &[],
    );
    for (ours, host) in on_every_host(&fleet, &play, "ours") {
        assert!(!ours.failed(), "{host}: {:?}", ours.result);
        assert_eq!(ours.unit()["job_result"], "done", "{host}: {}", ours.unit());
        assert!(
            ours.seconds >= 3.0,
            "{host}: returned after {} s",
            ours.seconds
        );
    }
    for h in &fleet.hosts {
        assert_eq!(
            h.container.unit_property("slow-a.service", "ActiveState"),
            "active"
        );
        let (_, reexecs, _) = h.container.run(
            None,
            &[
                "sh",
                "-c",
                "journalctl -b -o cat _PID=1 | grep -c '^Reexecuting'",
            ],
        );
        assert!(
            reexecs.trim().parse::<u32>().unwrap_or(0) >= 2,
            "{}: re-executions: {reexecs}",
            h.name
        );
    }
    // systemctl's wait ends with the connection the re-execution closed: systemd_service
    // fails the task, though the restart it asked for goes on and ends well.
    for (theirs, host) in on_every_host(&fleet, &play, "theirs") {
        assert!(theirs.failed(), "{host}: {:?}", theirs.result);
        assert!(
            theirs.msg().contains("terminated"),
            "{host}: {}",
            theirs.msg()
        );
        let h = fleet.host(&host);
        let started = std::time::Instant::now();
        while h.container.unit_property("slow-b.service", "ActiveState") != "active" {
            assert!(
                started.elapsed().as_secs() < 10,
                "{host}: slow-b.service never became active"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

/// The options systemd_service lacks, over real ssh: `wait` (run to completion), `no_block`
/// (queued, not waited for), `scope: user` against root's user manager (found at
/// `/run/user/0/bus` though the ssh session sets no `XDG_RUNTIME_DIR`), `daemon_reexec`.
#[test]
fn wait_no_block_user_scope_and_reexec() {
    let (_one, fleet) = fleet!();
    fleet.install(&[
        (
            "migrate.service",
            "[Service]\nType=oneshot\nExecStart=/bin/sh -c 'sleep 2; echo migrated'\n",
        ),
        (
            "later.service",
            "[Service]\nExecStartPre=/bin/sleep 3\nExecStart=/bin/sleep infinity\n",
        ),
    ]);
    for h in &fleet.hosts {
        write(
            h,
            "/etc/systemd/user/hello.service",
            "[Service]\nExecStart=/bin/sleep infinity\n",
        );
        // user@0.service opens a PAM session: the container's /etc starts empty, so its
        // PAM service is written here (pam_systemd sets XDG_RUNTIME_DIR).
        write(
            h,
            "/etc/pam.d/systemd-user",
            "auth required pam_permit.so\naccount required pam_permit.so\n\
             session required pam_permit.so\nsession required pam_systemd.so\n",
        );
        let (code, _, err) = h
            .container
            .run(None, &["systemctl", "start", "user@0.service"]);
        assert_eq!(code, 0, "{}: user@0.service: {err}", h.name);
    }
    let play = fleet.play(
        "- hosts: fleet\n  gather_facts: false\n  tasks:\n\
         \x20   - name: wait\n      systemd_job: {name: migrate.service, state: started, wait: true}\n\
         \x20   - name: no_block\n      systemd_job: {name: later.service, state: started, no_block: true}\n\
         \x20   - name: user\n      systemd_job: {name: hello.service, state: started, scope: user, daemon_reload: true}\n\
         \x20   - name: reexec\n      systemd_job: {daemon_reexec: true}\n",
        &[],
    );
    assert_eq!(play.code, 0, "{}", play.output);
    for h in &fleet.hosts {
        let wait = play.result(&h.name, "wait");
        let run = &wait.unit()["run"];
        assert_eq!(
            run["main_process"],
            "main process exited with status 0",
            "{}: {}",
            h.name,
            wait.unit()
        );
        assert!(
            run["ran_for_ms"].as_u64().unwrap() >= 2000,
            "{}: {run}",
            h.name
        );
        let queued = play.result(&h.name, "no_block");
        assert!(
            queued.unit()["queued"][0]["job_id"].as_u64().is_some(),
            "{}: {}",
            h.name,
            queued.unit()
        );
        assert!(
            queued.result["elapsed_ms"].as_u64().unwrap() < 1500,
            "{}",
            h.name
        );
        let user = play.result(&h.name, "user");
        assert!(user.changed(), "{}: {:?}", h.name, user.result);
        assert_eq!(user.unit()["job_result"], "done");
        let (_, active, _) = h.container.run(
            None,
            &[
                "sh",
                "-c",
                "XDG_RUNTIME_DIR=/run/user/0 systemctl --user is-active hello.service",
            ],
        );
        assert_eq!(active.trim(), "active", "{}", h.name);
        let reexec = play.result(&h.name, "reexec");
        assert_eq!(
            reexec.result["manager_steps"][0], "daemon-reexec",
            "{}",
            h.name
        );
    }
}

/// `no_log`: Ansible hides a `no_log` task's result on the controller, and the module keeps
/// the services' own output out of it in the first place: run as Ansible runs it (an
/// arguments file with `_ansible_no_log`), a failure names its reason but carries no
/// journal line. Also: arguments that are not the module's are refused by name.
#[test]
fn no_log_keeps_the_service_s_output_out_of_the_result() {
    let c = container!(Root::Host);
    let library = match common::fleet::module_library() {
        Ok(l) => l,
        Err(why) => {
            common::missing_prerequisite(&why);
            return;
        }
    };
    let root = format!("/proc/{}/root", c.pid1());
    std::fs::copy(
        library.join("systemd_job"),
        format!("{root}/run/systemd_job"),
    )
    .unwrap();
    c.install(&[(
        "token.service",
        "[Service]\nType=oneshot\nExecStart=/bin/sh -c 'echo \"token s3cr3t-t0ken rejected\" >&2; exit 4'\n",
    )]);
    let run = |args: &str| {
        std::fs::write(format!("{root}/run/args.json"), args).unwrap();
        let (code, out, stderr) = c.run(None, &["/run/systemd_job", "/run/args.json"]);
        let v: serde_json::Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out} {stderr}"));
        (code, v)
    };
    let (code, shown) = run(r#"{"name": "token.service", "state": "started"}"#);
    assert_eq!(code, 1);
    assert!(shown.to_string().contains("s3cr3t-t0ken"), "{shown}");
    let (code, hidden) =
        run(r#"{"name": "token.service", "state": "started", "_ansible_no_log": true}"#);
    assert_eq!(code, 1);
    assert_eq!(hidden["failed"], true);
    assert_eq!(
        hidden["units"][0]["reason"]["kind"], "job_failed",
        "{hidden}"
    );
    assert!(!hidden.to_string().contains("s3cr3t-t0ken"), "{hidden}");
    let (code, refused) = run(r#"{"name": "token.service", "state": "started", "colour": "red"}"#);
    assert_eq!(code, 1);
    assert!(
        refused["msg"]
            .as_str()
            .unwrap()
            .contains("Unsupported parameters for (systemd_job) module: colour")
    );
    let (code, garbage) = run("{\"name\": \"tok");
    assert_eq!(code, 1);
    assert!(
        garbage["msg"].as_str().unwrap().contains("not valid JSON"),
        "{garbage}"
    );
}

/// The module's documentation (`examples/ansible/systemd_job.yml`, beside the binary) is
/// what `ansible-doc` reads, and names exactly the options and aliases the module takes.
#[test]
fn the_documentation_names_the_options_the_module_takes() {
    let library = match common::fleet::module_library() {
        Ok(l) => l,
        Err(why) => {
            common::missing_prerequisite(&why);
            return;
        }
    };
    let out = std::process::Command::new("ansible-doc")
        .args(["-j", "-M"])
        .arg(&library)
        .arg("systemd_job")
        .output();
    let out = match out {
        Ok(out) => out,
        Err(e) => {
            common::missing_prerequisite(&format!("ansible-doc: {e} (install ansible-core)"));
            return;
        }
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let options = doc["systemd_job"]["doc"]["options"].as_object().unwrap();
    let mut documented: Vec<String> = Vec::new();
    for (name, option) in options {
        documented.push(name.clone());
        documented.extend(
            option["aliases"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a.as_str().map(str::to_owned)),
        );
    }
    documented.sort();
    let dir = std::env::temp_dir().join(format!("sj-doc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("args.json"), r#"{"no_such_option": 1}"#).unwrap();
    let out = std::process::Command::new(library.join("systemd_job"))
        .arg(dir.join("args.json"))
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let msg = v["msg"].as_str().unwrap();
    let list = msg
        .split("Supported parameters include: ")
        .nth(1)
        .unwrap()
        .trim_end_matches('.');
    let mut taken: Vec<String> = list.split(", ").map(str::to_owned).collect();
    taken.sort();
    assert_eq!(documented, taken);
    assert!(
        doc["systemd_job"]["examples"]
            .as_str()
            .unwrap()
            .contains("systemd_job:")
    );
    assert!(doc["systemd_job"]["return"]["units"].is_object());
}

/// The README's rolling restart (`examples/ansible/rolling_restart.yml`: `serial: 2`,
/// `max_fail_percentage: 0`, a handler restarting the service) with a configuration typo
/// the service dies of right after starting: with systemd_job the first batch fails and the
/// rollout stops there, the last host keeps its old configuration and its running service;
/// the same playbook with systemd_service reports every restart `changed` and takes the whole
/// fleet down.
#[test]
fn a_rolling_restart_stops_at_the_first_batch_that_fails() {
    let (_one, fleet) = fleet!();
    let run = "#!/bin/sh\ngrep -qx 'port = [0-9]*' /etc/app/app.conf || \
               { echo \"app.conf: port: '$(sed -n 's/^port = //p' /etc/app/app.conf)' is not a number\" >&2; exit 1; }\n\
               exec sleep infinity\n";
    for h in &fleet.hosts {
        write(h, "/run/app/run", run);
        write(h, "/etc/app/app.conf", "port = 8080\n");
    }
    fleet.install(&[("app.service", "[Service]\nExecStart=/bin/sh /run/app/run\n")]);
    for h in &fleet.hosts {
        let (code, _, err) = h
            .container
            .run(None, &["systemctl", "start", "app.service"]);
        assert_eq!(code, 0, "{err}");
    }
    let example = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples/ansible/rolling_restart.yml"),
    )
    .unwrap()
    .replace("hosts: web", "hosts: fleet");
    let ours = fleet.play(&example, &["-e", "app_port=80a"]);
    assert_ne!(ours.code, 0, "{}", ours.output);
    let (first, last) = fleet.hosts.split_at(2);
    for h in first {
        let r = ours.result(&h.name, "Restart app");
        assert!(r.failed(), "{}: {:?}", h.name, r.result);
        assert!(
            r.msg().contains("'80a' is not a number"),
            "{}: {}",
            h.name,
            r.msg()
        );
    }
    for h in last {
        assert!(
            !ours.results.iter().any(|r| r.host == h.name),
            "{}: the rollout went on past the failed batch",
            h.name
        );
        assert_eq!(
            h.container.unit_property("app.service", "ActiveState"),
            "active"
        );
    }
    // The same rollout with systemd_service, from the same start.
    for h in &fleet.hosts {
        write(h, "/etc/app/app.conf", "port = 8080\n");
        let (code, _, err) = h
            .container
            .run(None, &["systemctl", "restart", "app.service"]);
        assert_eq!(code, 0, "{err}");
    }
    let theirs = fleet.play(
        &example
            .replace("systemd_job:", "ansible.builtin.systemd_service:")
            .replace("        timeout: 60\n        check_active: 1\n", ""),
        &["-e", "app_port=80a"],
    );
    assert_eq!(theirs.code, 0, "{}", theirs.output);
    for h in &fleet.hosts {
        let r = theirs.result(&h.name, "Restart app");
        assert!(r.changed() && !r.failed(), "{}: {:?}", h.name, r.result);
        assert_eq!(
            h.container.unit_property("app.service", "ActiveState"),
            "failed",
            "{}",
            h.name
        );
    }
}

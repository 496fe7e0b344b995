//! Any component can die: apps keep running, God comes back by itself, a dead spawner is
//! replaced without orphans or duplicates, and state survives — counted in /proc.

use crate::harness::{Zpm, poll, status, zpm_processes};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

pub(crate) fn sigkill(pid: u32) {
    kill(Pid::from_raw(pid.cast_signed()), Signal::SIGKILL).unwrap();
}

/// Three instances of an app that keeps writing output, each with the test's marker.
fn start_talkers(zpm: &Zpm) -> Vec<(u64, u64)> {
    let script = zpm.script(
        "talk.sh",
        "#!/bin/sh\nwhile true; do echo \"tick $ZPM_ID\"; sleep 0.05; done\n",
    );
    zpm.ok(&[
        "start",
        &script.display().to_string(),
        "--name",
        "talk",
        "-i",
        "3",
        "--",
        &zpm.marker,
    ]);
    zpm.wait_marked(3);
    ids_and_pids(&zpm.ls())
}

fn ids_and_pids(rows: &[serde_json::Value]) -> Vec<(u64, u64)> {
    rows.iter()
        .map(|r| (r["id"].as_u64().unwrap(), r["pid"].as_u64().unwrap_or(0)))
        .collect()
}

pub(crate) fn the_god(zpm: &Zpm) -> u32 {
    poll("exactly one God", || {
        match zpm_processes(zpm.home(), &["daemon"])[..] {
            [god] => Some(god),
            _ => None,
        }
    })
}

/// Waits, without any CLI call, until a God other than `old` runs and listens.
pub(crate) fn wait_new_god(zpm: &Zpm, old: u32) -> u32 {
    let socket = zpm.path("rpc.sock");
    poll("God relaunched by the spawner", || {
        let gods = zpm_processes(zpm.home(), &["daemon"]);
        let listening = std::os::unix::net::UnixStream::connect(&socket).is_ok();
        match gods[..] {
            [god] if god != old && listening => Some(god),
            _ => None,
        }
    })
}

#[test]
fn god_sigkill_keeps_the_same_apps_and_pids_and_comes_back_alone() {
    let zpm = Zpm::new();
    let before = start_talkers(&zpm);
    let marked = zpm.marked();
    let god = the_god(&zpm);
    sigkill(god);
    wait_new_god(&zpm, god);
    let rows = zpm.wait_ls("apps adopted online", |rows| {
        rows.len() == 3 && rows.iter().all(|r| status(r) == "online")
    });
    assert_eq!(ids_and_pids(&rows), before, "same ids, same pids");
    assert!(
        rows.iter().all(|r| r["restarts"] == 0),
        "nothing restarted: {rows:?}"
    );
    assert_eq!(zpm.marked(), marked, "no app started twice");
}

#[test]
fn god_killed_twenty_times_leaves_exactly_one_of_everything() {
    let zpm = Zpm::new();
    let before = start_talkers(&zpm);
    let marked = zpm.marked();
    for _ in 0..20 {
        let god = the_god(&zpm);
        sigkill(god);
        wait_new_god(&zpm, god);
    }
    // A SIGKILLed God releases its lock a moment before /proc shows it gone: poll.
    poll("exactly one God and one spawner", || {
        let gods = zpm_processes(zpm.home(), &["daemon"]).len();
        let spawners = zpm_processes(zpm.home(), &["agent", "spawner"]).len();
        (gods == 1 && spawners == 1).then_some(())
    });
    let rows = zpm.wait_ls("apps online", |rows| {
        rows.len() == 3 && rows.iter().all(|r| status(r) == "online")
    });
    assert_eq!(ids_and_pids(&rows), before);
    assert_eq!(zpm.marked(), marked);
}

/// The spawner's hello is accepted and every app is online again: the God is healthy.
fn wait_converged(zpm: &Zpm, pids: &[(u64, u64)]) {
    poll("spawner connected", || {
        let agents = zpm.json(&["agents"]);
        let spawner = agents.as_array()?.iter().find(|a| a["role"] == "spawner")?;
        (spawner["connected"] == true).then_some(())
    });
    let rows = zpm.wait_ls("apps adopted online", |rows| {
        rows.len() == 3 && rows.iter().all(|r| status(r) == "online")
    });
    assert_eq!(ids_and_pids(&rows), pids, "same ids, same pids");
}

#[test]
fn god_killed_five_times_after_convergence_is_back_quickly_every_time() {
    let zpm = Zpm::new();
    let before = start_talkers(&zpm);
    let mut took = Vec::new();
    for _ in 0..5 {
        wait_converged(&zpm, &before);
        let god = the_god(&zpm);
        sigkill(god);
        let killed = std::time::Instant::now();
        // No CLI call until the new God runs and listens: only the spawner relaunches it.
        let new = wait_new_god(&zpm, god);
        took.push(killed.elapsed());
        assert_ne!(new, god);
    }
    eprintln!("God relaunch (pid + listening socket) after each kill: {took:?}");
    // The bench measures the real numbers (`zpm-bench crash`, ~tens of ms); this only
    // catches a backoff that grows with each kill, on however loaded a machine.
    assert!(
        took.iter().all(|t| *t < std::time::Duration::from_secs(1)),
        "relaunch times: {took:?}"
    );
    wait_converged(&zpm, &before);
    assert_eq!(zpm_processes(zpm.home(), &["daemon"]).len(), 1);
    assert_eq!(zpm_processes(zpm.home(), &["agent", "spawner"]).len(), 1);
}

#[test]
fn spawner_sigkill_replaces_apps_without_orphans_or_duplicates() {
    let zpm = Zpm::new();
    let before = start_talkers(&zpm);
    let old_pids: Vec<u64> = before.iter().map(|(_, pid)| *pid).collect();
    let spawner = zpm_processes(zpm.home(), &["agent", "spawner"]);
    assert_eq!(spawner.len(), 1);
    sigkill(spawner[0]);
    let rows = zpm.wait_ls("apps back online with new pids", |rows| {
        rows.len() == 3
            && rows.iter().all(|r| {
                status(r) == "online" && r["pid"].as_u64().is_some_and(|p| !old_pids.contains(&p))
            })
    });
    let ids: Vec<u64> = rows.iter().map(|r| r["id"].as_u64().unwrap()).collect();
    assert_eq!(
        ids,
        before.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        "same ids"
    );
    let live = zpm.wait_marked(3);
    assert!(
        live.iter().all(|p| !old_pids.contains(&u64::from(*p))),
        "an old app survived as an orphan"
    );
    assert_eq!(zpm_processes(zpm.home(), &["agent", "spawner"]).len(), 1);
    assert!(
        rows.iter().all(|r| r["restarts"] == 1),
        "the replacement counts as a restart: {rows:?}"
    );
}

#[test]
fn corrupt_state_is_kept_aside_reported_and_apps_are_adopted() {
    let zpm = Zpm::new();
    let before = start_talkers(&zpm);
    std::fs::write(
        zpm.path("state.json"),
        b"{\"version\": 1, \"apps\": [{\"id\": ",
    )
    .unwrap();
    let god = the_god(&zpm);
    sigkill(god);
    wait_new_god(&zpm, god);
    let out = zpm.cmd().args(["ping"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning") && stderr.contains("corrupt"),
        "the user is told: {stderr}"
    );
    let aside: Vec<_> = std::fs::read_dir(zpm.home())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("state.json.corrupt-")
        })
        .collect();
    assert_eq!(aside.len(), 1, "the corrupt file is kept");
    assert_eq!(
        std::fs::read(aside[0].path()).unwrap(),
        b"{\"version\": 1, \"apps\": [{\"id\": "
    );
    let rows = zpm.wait_ls("apps adopted from the spawner", |rows| {
        rows.len() == 3 && rows.iter().all(|r| status(r) == "online")
    });
    assert_eq!(
        ids_and_pids(&rows),
        before,
        "nothing lost: the spawner's report rebuilt the table"
    );
    zpm.wait_marked(3);
}

#[test]
fn save_kill_resurrect_round_trip_never_duplicates() {
    let zpm = Zpm::new();
    let script = zpm.script("sleepy.sh", "#!/bin/sh\nwhile true; do sleep 1; done\n");
    let script = script.display().to_string();
    zpm.ok(&[
        "start",
        &script,
        "--name",
        "web",
        "-i",
        "2",
        "--env-var",
        "PORT=8080",
        "--",
        &zpm.marker,
    ]);
    zpm.ok(&[
        "start",
        &script,
        "--name",
        "job",
        "--namespace",
        "batch",
        "--",
        &zpm.marker,
    ]);
    zpm.ok(&["start", &script, "--name", "off", "--", &zpm.marker]);
    zpm.ok(&["stop", "off"]);
    zpm.wait_marked(3);
    assert!(zpm.ok(&["save"]).contains("saved 2 app(s)"));
    zpm.ok(&["kill"]);
    assert!(zpm.marked().is_empty(), "kill leaves nothing running");
    assert!(zpm.ls().is_empty(), "after kill, a new daemon starts empty");
    zpm.ok(&["resurrect"]);
    zpm.wait_marked(3);
    let rows = zpm.ls();
    let mut names: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap(),
                r["namespace"].as_str().unwrap(),
            )
        })
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        vec![("job", "batch"), ("web", "default"), ("web", "default")]
    );
    let described = zpm.json(&["describe", "web"]);
    assert_eq!(described[0]["spec"]["env"]["PORT"], "8080");
    zpm.ok(&["resurrect"]);
    assert_eq!(
        zpm.ls().len(),
        3,
        "resurrect never starts an app that is already running"
    );
    zpm.wait_marked(3);
}

#[test]
fn startup_prints_a_unit_that_resurrects() {
    let zpm = Zpm::new();
    let unit = zpm.ok(&["startup"]);
    assert!(
        unit.contains("[Service]") && unit.contains(" resurrect\n"),
        "{unit}"
    );
    assert!(
        unit.contains(&format!("Environment=ZPM_HOME={}", zpm.home().display())),
        "{unit}"
    );
    assert!(unit.contains("WantedBy=multi-user.target"));
}

#[test]
fn a_silent_agent_is_marked_down_and_back_up() {
    let zpm = Zpm::new();
    let connected = |zpm: &Zpm| -> Option<bool> {
        let agents = zpm.json(&["agents"]);
        agents.as_array()?.iter().find(|a| a["role"] == "spawner")?["connected"].as_bool()
    };
    poll("spawner connected", || connected(&zpm).filter(|c| *c));
    let spawner = zpm_processes(zpm.home(), &["agent", "spawner"])[0];
    let pid = Pid::from_raw(spawner.cast_signed());
    // Alive (its lock held) but silent: only the missing heartbeats can tell.
    kill(pid, Signal::SIGSTOP).unwrap();
    let down = std::panic::catch_unwind(|| {
        poll("spawner marked down", || connected(&zpm).filter(|c| !*c))
    });
    kill(pid, Signal::SIGCONT).unwrap();
    assert!(down.is_ok(), "a stopped spawner was never marked down");
    poll("spawner back up", || connected(&zpm).filter(|c| *c));
}

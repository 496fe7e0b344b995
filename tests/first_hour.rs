//! What a PM2 user runs into in the first hour: `start` of an existing app, several targets
//! per verb, restart of an errored app, scale-down order, an empty `save`, delete/SIGKILL
//! of an app stuck stopping, and `NODE_APP_INSTANCE`.

use crate::harness::{DEADLINE, Zpm, poll, status};
use serde_json::Value;
use std::time::{Duration, Instant};

fn sleeper(zpm: &Zpm) -> String {
    let script = zpm.script("sleeper.sh", "#!/bin/sh\nwhile true; do sleep 1; done\n");
    script.display().to_string()
}

/// Starts the sleeper as `name` (short kill timeout) and returns its `start --json` row.
fn start_named(zpm: &Zpm, script: &str, name: &str, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["start", script, "--name", name, "--kill-timeout", "300"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--", &zpm.marker]);
    zpm.json(&args).as_array().unwrap().clone()
}

fn pid(row: &Value) -> u32 {
    u32::try_from(row["pid"].as_u64().unwrap()).unwrap()
}

fn names(rows: &[Value]) -> Vec<String> {
    let mut names: Vec<String> = rows
        .iter()
        .map(|r| format!("{}/{}", r["name"].as_str().unwrap(), r["instance"]))
        .collect();
    names.sort();
    names
}

#[test]
fn start_of_an_existing_app_starts_it_again() {
    let zpm = Zpm::new();
    let script = sleeper(&zpm);
    let first = start_named(&zpm, &script, "s2", &[]);
    let id = first[0]["id"].to_string();
    zpm.wait_marked(1);
    zpm.ok(&["stop", "s2"]);
    zpm.wait_marked(0);

    // By name: a stopped app starts again, as PM2's start of a known name does.
    let started = zpm.json(&["start", "s2"]);
    let row = &started[0];
    assert_eq!((status(row), row["restarts"].as_u64()), ("online", Some(1)));
    assert_eq!(zpm.wait_marked(1), vec![pid(row)]);

    // By id, while online: restarted (a new process).
    let again = zpm.json(&["start", &id]);
    assert_eq!(again[0]["restarts"], 2);
    assert_ne!(pid(&again[0]), pid(row));
    assert_eq!(zpm.wait_marked(1), vec![pid(&again[0])]);

    // Options that shape a new app are refused rather than silently ignored.
    let err = zpm.fails(&["start", "s2", "-i", "3"]);
    assert!(
        err.contains("\"s2\" names an existing app") && err.contains("--instances"),
        "{err}"
    );
    assert_eq!(zpm.ls()[0]["restarts"], 2, "a refused start does nothing");

    // Several targets are existing apps, never several scripts.
    let err = zpm.fails(&["start", "s2", &script]);
    assert!(
        err.contains("several targets must all be existing apps"),
        "{err}"
    );

    // Neither a file, an app, nor a command: one clear error, `zpm:` once.
    let err = zpm.fails(&["start", "no-such-app-or-command-zpm"]);
    assert_eq!(
        err.trim(),
        r#"zpm: "no-such-app-or-command-zpm" is not a file, an ecosystem file, an app, or a command on PATH"#
    );
}

#[test]
fn start_of_a_stopped_app_after_the_spawner_was_replaced() {
    let zpm = Zpm::new();
    let script = sleeper(&zpm);
    start_named(&zpm, &script, "idle", &[]);
    zpm.ok(&["stop", "idle"]);
    zpm.wait_marked(0);
    let spawner = crate::harness::zpm_processes(zpm.home(), &["agent", "spawner"]);
    assert_eq!(spawner.len(), 1);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(spawner[0].cast_signed()),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    // Connected means its hello was handled: God knows what it does not hold.
    poll("a new spawner connected", || {
        let agents = zpm.json(&["agents"]);
        agents
            .as_array()?
            .iter()
            .any(|a| a["connected"] == true && a["pid"] != spawner[0])
            .then_some(())
    });

    // The new spawner holds no supervisor for the stopped app: God spawns it anew.
    let started = zpm.json(&["start", "idle"]);
    assert_eq!(status(&started[0]), "online", "{started}");
    assert_eq!(started[0]["restarts"], 1);
    assert_eq!(zpm.wait_marked(1), vec![pid(&started[0])]);
}

#[test]
fn verbs_take_several_targets_resolved_before_acting() {
    let zpm = Zpm::new();
    let script = sleeper(&zpm);
    start_named(&zpm, &script, "api", &["-i", "2"]);
    start_named(&zpm, &script, "worker", &[]);
    let other = start_named(&zpm, &script, "other", &[]);
    zpm.wait_marked(4);

    let described = zpm.json(&["describe", "worker", "api"]);
    let described: Vec<&str> = described
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["info"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(described, vec!["worker", "api", "api"]);

    // One unknown target: nothing is done, and the error names it.
    let err = zpm.fails(&["stop", "api", "nosuch", "worker"]);
    assert!(
        err.contains("\"nosuch\"") && err.contains("nothing was done"),
        "{err}"
    );
    assert!(zpm.ls().iter().all(|r| status(r) == "online"));

    // Duplicates (by name and by id) act once.
    let api0 = zpm.ls()[0]["id"].to_string();
    let stopped = zpm.json(&["stop", "api", "worker", &api0]);
    assert_eq!(
        names(stopped.as_array().unwrap()),
        vec!["api/0", "api/1", "worker/0"]
    );
    assert!(
        stopped
            .as_array()
            .unwrap()
            .iter()
            .all(|r| status(r) == "stopped")
    );
    assert_eq!(zpm.wait_marked(1), vec![pid(&other[0])]);

    let restarted = zpm.json(&["restart", "worker", "api"]);
    assert_eq!(restarted.as_array().unwrap().len(), 3);
    zpm.wait_marked(4);

    let other_id = other[0]["id"].to_string();
    zpm.ok(&["delete", "api", "worker", &other_id]);
    assert!(zpm.ls().is_empty());
    zpm.wait_marked(0);
}

#[test]
fn restart_of_an_errored_app_replies_with_the_new_run() {
    let zpm = Zpm::new();
    let flag = zpm.path("fail");
    std::fs::write(&flag, "").unwrap();
    let script = zpm.script(
        "flaky.sh",
        &format!(
            "#!/bin/sh\n[ -e '{}' ] && exit 1\nwhile true; do sleep 1; done\n",
            flag.display()
        ),
    );
    let script = script.display().to_string();
    start_named(&zpm, &script, "flaky", &["--max-restarts", "0"]);
    let rows = zpm.wait_ls("errored", |rows| status(&rows[0]) == "errored");
    let before = rows[0]["restarts"].as_u64().unwrap();

    std::fs::remove_file(&flag).unwrap();
    let restarted = zpm.json(&["restart", "flaky"]);
    let row = &restarted[0];
    assert_eq!(status(row), "online", "the reply is the new run: {row}");
    assert_eq!(row["restarts"].as_u64(), Some(before + 1));
    assert_eq!(zpm.wait_marked(1), vec![pid(row)]);
}

#[test]
fn scale_down_removes_errored_and_stopped_instances_first() {
    let zpm = Zpm::new();
    // Instance 2 exits at once and, with --max-restarts 0, ends errored.
    let script = zpm.script(
        "picky.sh",
        "#!/bin/sh\n[ \"$ZPM_INSTANCE\" = 2 ] && exit 1\nwhile true; do sleep 1; done\n",
    );
    let script = script.display().to_string();
    start_named(&zpm, &script, "pool", &["-i", "4", "--max-restarts", "0"]);
    let rows = zpm.wait_ls("instance 2 errored", |rows| {
        rows.iter()
            .any(|r| r["instance"] == 2 && status(r) == "errored")
    });
    let id_of = |instance: u64| {
        rows.iter()
            .find(|r| r["instance"] == instance)
            .map(|r| r["id"].to_string())
            .unwrap()
    };
    zpm.ok(&["stop", &id_of(1)]);
    zpm.wait_marked(2);

    let scaled = zpm.json(&["scale", "pool", "2"]);
    assert_eq!(names(scaled.as_array().unwrap()), vec!["pool/0", "pool/3"]);
    let pids: Vec<u32> = scaled.as_array().unwrap().iter().map(pid).collect();
    let mut alive = zpm.wait_marked(2);
    alive.sort_unstable();
    let mut pids = pids;
    pids.sort_unstable();
    assert_eq!(alive, pids, "the healthy instances kept running");

    let scaled = zpm.json(&["scale", "pool", "1"]);
    assert_eq!(names(scaled.as_array().unwrap()), vec!["pool/0"]);
    zpm.wait_marked(1);
}

#[test]
fn save_refuses_an_empty_dump_unless_forced() {
    let zpm = Zpm::new();
    let script = sleeper(&zpm);
    start_named(&zpm, &script, "kept", &[]);
    let saved = zpm.json(&["save"]);
    assert_eq!(saved["apps"], 1);
    let path = saved["path"].as_str().unwrap().to_owned();
    let dump = std::fs::read_to_string(&path).unwrap();
    assert!(dump.contains("\"kept\""), "{dump}");

    zpm.ok(&["kill"]);
    let err = zpm.fails(&["save"]);
    assert!(
        err.contains("no app is running") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        dump,
        "the dump is untouched"
    );

    let forced = zpm.json(&["save", "--force"]);
    assert_eq!(
        (forced["apps"].as_u64(), forced["path"].as_str()),
        (Some(0), Some(path.as_str()))
    );
}

/// `zpm stop NAME` running in the background, for an app that ignores SIGTERM.
fn background_stop(zpm: &Zpm, name: &str) -> std::process::Child {
    std::process::Command::new(assert_cmd::cargo::cargo_bin("zpm"))
        .args(["stop", name, "--json"])
        .env("ZPM_HOME", zpm.home())
        .current_dir(zpm.home())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

fn wait_stopping(zpm: &Zpm, name: &str) -> Instant {
    zpm.wait_ls("stopping", |rows| {
        rows.iter()
            .any(|r| r["name"] == name && status(r) == "stopping")
    });
    Instant::now()
}

fn finished(mut child: std::process::Child) -> std::process::Output {
    poll("background stop to finish", || child.try_wait().unwrap());
    child.wait_with_output().unwrap()
}

#[test]
fn delete_and_sigkill_act_at_once_on_an_app_stuck_stopping() {
    let zpm = Zpm::new();
    let script = zpm.script(
        "stubborn.sh",
        "#!/bin/sh\ntrap '' TERM\nwhile true; do sleep 0.1; done\n",
    );
    let script = script.display().to_string();
    for name in ["deleted", "killed"] {
        zpm.ok(&[
            "start",
            &script,
            "--name",
            name,
            "--kill-timeout",
            "60s",
            "--",
            &zpm.marker,
        ]);
    }
    zpm.wait_marked(2);
    let quick = Duration::from_secs(15);
    assert!(quick < Duration::from_secs(60) && quick <= DEADLINE);

    let stop = background_stop(&zpm, "deleted");
    let since = wait_stopping(&zpm, "deleted");
    let deleted = zpm.json(&["delete", "deleted"]);
    assert_eq!(deleted[0]["name"], "deleted");
    assert!(
        since.elapsed() < quick,
        "delete waited {:?}",
        since.elapsed()
    );
    assert!(zpm.ls().iter().all(|r| r["name"] != "deleted"));
    zpm.wait_marked(1);
    assert!(finished(stop).status.success());

    let stop = background_stop(&zpm, "killed");
    let since = wait_stopping(&zpm, "killed");
    zpm.ok(&["signal", "SIGKILL", "killed"]);
    let rows = zpm.wait_ls("killed stopped", |rows| {
        rows.iter()
            .any(|r| r["name"] == "killed" && status(r) == "stopped")
    });
    assert!(
        since.elapsed() < quick,
        "SIGKILL waited {:?}",
        since.elapsed()
    );
    assert_eq!(rows[0]["signal"], "SIGKILL");
    zpm.wait_marked(0);
    let out = finished(stop);
    assert!(out.status.success());
    let reply: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status(&reply[0]), "stopped");
}

#[test]
fn node_app_instance_is_set_for_every_instance() {
    let zpm = Zpm::new();
    let script = zpm.script(
        "inst.sh",
        "#!/bin/sh\necho \"$NODE_APP_INSTANCE $ZPM_INSTANCE\" > \"inst-$ZPM_INSTANCE.txt\"\nwhile true; do sleep 1; done\n",
    );
    let script = script.display().to_string();
    start_named(&zpm, &script, "inst", &["-i", "3"]);
    for i in 0..3 {
        let line = poll(&format!("instance {i} output"), || {
            std::fs::read_to_string(zpm.path(&format!("inst-{i}.txt")))
                .ok()
                .filter(|s| s.ends_with('\n'))
        });
        assert_eq!(line.trim(), format!("{i} {i}"));
    }
}

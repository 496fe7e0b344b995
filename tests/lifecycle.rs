//! The verbs PM2 users know, on every target form.

use crate::harness::{Zpm, status};
use serde_json::Value;

fn sleeper(zpm: &Zpm) -> String {
    let script = zpm.script("sleeper.sh", "#!/bin/sh\nwhile true; do sleep 1; done\n");
    script.display().to_string()
}

fn by_name<'a>(rows: &'a [Value], name: &str) -> Vec<&'a Value> {
    rows.iter().filter(|r| r["name"] == name).collect()
}

#[test]
fn start_stop_restart_delete_by_name_and_id() {
    let zpm = Zpm::new();
    let script = sleeper(&zpm);
    let started = zpm.json(&["start", &script, "--name", "web", "--", &zpm.marker]);
    let row = &started[0];
    assert_eq!((row["name"].as_str(), status(row)), (Some("web"), "online"));
    let pid = row["pid"].as_u64().unwrap() as u32;
    assert_eq!(zpm.wait_marked(1), vec![pid], "ls pid is the real process");
    let id = row["id"].as_u64().unwrap().to_string();

    let stopped = zpm.json(&["stop", "web"]);
    assert_eq!(status(&stopped[0]), "stopped");
    assert!(stopped[0]["pid"].is_null());
    zpm.wait_marked(0);

    let restarted = zpm.json(&["restart", &id]);
    assert_eq!(status(&restarted[0]), "online");
    assert_eq!(restarted[0]["restarts"], 1);
    let new_pid = zpm.wait_marked(1)[0];
    assert_ne!(new_pid, pid);
    assert_eq!(restarted[0]["pid"].as_u64(), Some(u64::from(new_pid)));

    let rows = zpm.ls();
    let row = &rows[0];
    for key in [
        "id",
        "name",
        "namespace",
        "host",
        "pid",
        "status",
        "restarts",
        "uptime_ms",
        "exit_code",
        "signal",
        "cpu",
        "memory",
    ] {
        assert!(row.get(key).is_some(), "ls --json lacks {key}: {row}");
    }
    assert!(row["uptime_ms"].is_u64());

    zpm.ok(&["delete", "web"]);
    assert!(zpm.ls().is_empty());
    zpm.wait_marked(0);
}

#[test]
fn targets_namespace_and_all_and_unknown() {
    let zpm = Zpm::new();
    let script = sleeper(&zpm);
    zpm.ok(&[
        "start",
        &script,
        "--name",
        "a",
        "--namespace",
        "blue",
        "--",
        &zpm.marker,
    ]);
    zpm.ok(&[
        "start",
        &script,
        "--name",
        "b",
        "--namespace",
        "blue",
        "--",
        &zpm.marker,
    ]);
    zpm.ok(&[
        "start",
        &script,
        "--name",
        "c",
        "--namespace",
        "green",
        "--",
        &zpm.marker,
    ]);
    zpm.wait_marked(3);
    let stopped = zpm.json(&["stop", "blue"]);
    assert_eq!(stopped.as_array().unwrap().len(), 2);
    zpm.wait_marked(1);
    let err = zpm.fails(&["restart", "nosuchapp"]);
    assert!(err.contains("no app matches \"nosuchapp\""), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one-line error: {err}");
    let err = zpm.fails(&["stop", "42"]);
    assert!(err.contains("\"42\""), "{err}");
    zpm.ok(&["restart", "all"]);
    zpm.wait_marked(3);
    zpm.ok(&["del", "all"]);
    zpm.wait_marked(0);
    assert!(zpm.ls().is_empty());
}

#[test]
fn instances_scale_describe_signal_and_env() {
    let zpm = Zpm::new();
    let script = zpm.script(
        "env.sh",
        "#!/bin/sh\necho \"$ZPM_ID $ZPM_NAME $ZPM_INSTANCE $GREETING\" > \"out-$ZPM_INSTANCE.txt\"\ntrap 'echo usr1 >> \"out-$ZPM_INSTANCE.txt\"' USR1\nwhile true; do sleep 0.1; done\n",
    );
    let script = script.display().to_string();
    zpm.ok(&[
        "start",
        &script,
        "--name",
        "env",
        "-i",
        "2",
        "--env-var",
        "GREETING=hi there",
        "--env-var",
        "API_TOKEN=s3cret",
        "--",
        &zpm.marker,
    ]);
    zpm.wait_marked(2);
    let first = crate::harness::poll("instance 0 output", || {
        std::fs::read_to_string(zpm.path("out-0.txt"))
            .ok()
            .filter(|s| s.ends_with('\n'))
    });
    assert_eq!(first.trim(), "0 env 0 hi there");

    let described = zpm.json(&["describe", "env"]);
    let spec = &described[0]["spec"];
    assert_eq!(spec["env"]["GREETING"], "hi there");
    assert_eq!(spec["env"]["API_TOKEN"], "****", "secrets are masked");
    assert!(
        spec["env"].get("PATH").is_none(),
        "inherited env is not shown"
    );
    let text = zpm.ok(&["describe", "0"]);
    assert!(
        text.contains("hi there") && !text.contains("s3cret"),
        "{text}"
    );

    zpm.ok(&["signal", "SIGUSR1", "env"]);
    crate::harness::poll("USR1 handled by both", || {
        let both = (0..2).all(|i| {
            std::fs::read_to_string(zpm.path(&format!("out-{i}.txt")))
                .is_ok_and(|s| s.contains("usr1"))
        });
        both.then_some(())
    });

    let scaled = zpm.json(&["scale", "env", "4"]);
    assert_eq!(scaled.as_array().unwrap().len(), 4);
    zpm.wait_marked(4);
    let rows = zpm.ls();
    let instances: Vec<u64> = by_name(&rows, "env")
        .iter()
        .map(|r| r["instance"].as_u64().unwrap())
        .collect();
    assert_eq!(instances, vec![0, 1, 2, 3]);
    zpm.ok(&["scale", "env", "1"]);
    zpm.wait_marked(1);
    assert_eq!(zpm.ls().len(), 1);
}

#[test]
fn ping_agents_and_duplicate_names() {
    let zpm = Zpm::new();
    assert_eq!(zpm.ok(&["ping"]), "pong\n");
    let pong = zpm.json(&["ping"]);
    assert!(pong["pid"].as_u64().unwrap() > 1);
    assert!(pong["uptime_ms"].is_u64());
    assert!(pong["version"].is_string());
    let agents = crate::harness::poll("spawner registered", || {
        let agents = zpm.json(&["agents"]);
        let found = agents
            .as_array()?
            .iter()
            .any(|a| a["role"] == "spawner" && a["connected"] == true);
        found.then_some(agents)
    });
    let spawner = &agents.as_array().unwrap()[0];
    for key in ["role", "host", "pid", "version", "connected"] {
        assert!(spawner.get(key).is_some(), "agents --json lacks {key}");
    }
    let script = sleeper(&zpm);
    zpm.ok(&["start", &script, "--name", "once", "--", &zpm.marker]);
    let err = zpm.fails(&["start", &script, "--name", "once"]);
    assert!(err.contains("already exists"), "{err}");
    zpm.wait_marked(1);
}

#[test]
fn kill_leaves_nothing_running() {
    let zpm = Zpm::new();
    let script = sleeper(&zpm);
    zpm.ok(&["start", &script, "-i", "3", "--", &zpm.marker]);
    zpm.wait_marked(3);
    assert_eq!(
        crate::harness::zpm_processes(zpm.home(), &["daemon"]).len(),
        1
    );
    assert_eq!(zpm.ok(&["kill"]), "zpm: daemon killed\n");
    assert!(zpm.marked().is_empty(), "apps left after kill");
    assert!(crate::harness::zpm_processes(zpm.home(), &["daemon"]).is_empty());
    assert!(crate::harness::zpm_processes(zpm.home(), &["agent", "spawner"]).is_empty());
    assert_eq!(zpm.ok(&["kill"]), "zpm: no daemon running\n");
}

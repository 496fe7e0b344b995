//! Every local agent role runs as its own process, is listed by `zpm agents`, and comes
//! back alone when killed; `zpm events` shows the bus; `zpm config` explains itself.

use crate::harness::{DEADLINE, Zpm, poll, zpm_processes};
use serde_json::Value;
use std::io::BufRead as _;
use std::time::{Duration, Instant};

const ROLES: [&str; 3] = ["logs", "metrics", "spawner"];

/// `zpm agents --json` once every role is connected and has reported its memory.
fn agents_up(zpm: &Zpm) -> Vec<Value> {
    poll("every agent connected, with its memory", || {
        let agents = zpm.json(&["agents"]);
        let agents = agents.as_array()?.clone();
        let roles: Vec<&str> = agents.iter().filter_map(|a| a["role"].as_str()).collect();
        let ready = roles == ROLES
            && agents
                .iter()
                .all(|a| a["connected"] == true && a["memory"].as_u64().is_some_and(|m| m > 0));
        ready.then_some(agents)
    })
}

fn pid_of(agents: &[Value], role: &str) -> u64 {
    agents
        .iter()
        .find(|a| a["role"] == role)
        .and_then(|a| a["pid"].as_u64())
        .unwrap()
}

#[test]
fn each_agent_killed_alone_comes_back_and_nothing_else_restarts() {
    let zpm = Zpm::new();
    zpm.start_idle("steady");
    let before = agents_up(&zpm);
    for role in ROLES {
        assert_eq!(
            zpm_processes(zpm.home(), &["agent", role]),
            [u32::try_from(pid_of(&before, role)).unwrap()],
            "one {role} process, the one God lists"
        );
    }
    let app_pid = zpm.ls()[0]["pid"].as_u64().unwrap();
    for role in ["logs", "metrics", "spawner"] {
        let now = agents_up(&zpm);
        let old = pid_of(&now, role);
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(i32::try_from(old).unwrap()),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        let after = poll(&format!("a new {role} agent"), || {
            let agents = agents_up(&zpm);
            (pid_of(&agents, role) != old).then_some(agents)
        });
        for other in ROLES.iter().filter(|r| **r != role) {
            assert_eq!(
                pid_of(&after, other),
                pid_of(&now, other),
                "{other} must not restart when {role} dies"
            );
        }
        let rows = zpm.wait_ls("the app online", |rows| {
            rows.first().is_some_and(|r| r["status"] == "online")
        });
        if role == "spawner" {
            // A new spawner replaces the apps of the dead one (restart count kept).
            assert_ne!(rows[0]["pid"].as_u64().unwrap(), app_pid);
        } else {
            assert_eq!(
                rows[0]["pid"].as_u64().unwrap(),
                app_pid,
                "{role} death touched the app"
            );
            assert_eq!(rows[0]["restarts"], 0);
        }
    }
}

#[test]
fn agents_table_shows_every_role_with_pid_uptime_and_memory() {
    let zpm = Zpm::new();
    let agents = agents_up(&zpm);
    let table = zpm.ok(&["agents"]);
    for role in ROLES {
        let pid = pid_of(&agents, role).to_string();
        let line = table
            .lines()
            .find(|l| l.contains(&format!(" {role} ")))
            .unwrap_or_else(|| panic!("no {role} row in\n{table}"));
        assert!(line.contains(&pid), "{line}");
        assert!(line.contains("mb"), "memory shown: {line}");
    }
    assert!(
        table.contains("uptime") && table.contains("memory"),
        "{table}"
    );
}

#[test]
fn events_prints_a_process_event_for_a_restart() {
    let zpm = Zpm::new();
    zpm.start_idle("ev");
    let (mut events, lines) = follow(&zpm, &["events", "process:", "--json"]);
    // The subscription is in place once a restart shows up; restart until one does.
    let deadline = Instant::now() + DEADLINE;
    let restart = loop {
        assert!(Instant::now() < deadline, "no process:event for a restart");
        zpm.ok(&["restart", "ev"]);
        let seen = lines
            .recv_timeout(Duration::from_secs(2))
            .ok()
            .map(|l| serde_json::from_str::<Value>(&l).unwrap());
        if let Some(event) = seen.filter(|e| e["data"]["event"] == "restart") {
            break event;
        }
    };
    let _ = events.kill();
    let _ = events.wait();
    assert_eq!(restart["topic"], "process:event");
    assert_eq!(restart["source"], "spawner");
    assert_eq!(restart["data"]["name"], "ev");
    assert!(restart["seq"].as_u64().is_some() && restart["at"].as_u64().unwrap() > 0);
}

#[test]
fn config_shows_defaults_and_a_bad_file_names_its_key() {
    let zpm = Zpm::new();
    let shown = zpm.ok(&["config"]);
    assert!(
        shown.contains("retain = 30") && shown.contains("interval = \"1s\""),
        "{shown}"
    );
    assert!(shown.contains("# prometheus: unset (off)"), "{shown}");
    std::fs::write(
        zpm.path("config.toml"),
        "[logs]\nmax_size = \"10M\"\nretian = 3\n",
    )
    .unwrap();
    for args in [&["config"][..], &["ping"][..]] {
        let error = zpm.fails(args);
        assert!(
            error.contains("retian") && error.contains("config.toml"),
            "{args:?}: {error}"
        );
    }
    assert!(
        zpm_processes(zpm.home(), &["daemon"]).is_empty(),
        "no daemon with a bad config"
    );
    std::fs::write(zpm.path("config.toml"), "[logs]\nmax_size = \"10M\"\n").unwrap();
    let json = zpm.json(&["config"]);
    assert_eq!(json["logs"]["max_size"], "10.0 MiB");
}

/// Runs `zpm ARGS` with its stdout read line by line on a thread.
fn follow(zpm: &Zpm, args: &[&str]) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("zpm"))
        .args(args)
        .env("ZPM_HOME", zpm.home())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (lines_tx, lines) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if lines_tx.send(line).is_err() {
                return;
            }
        }
    });
    (child, lines)
}

#[test]
fn events_shows_log_lines_as_text() {
    let zpm = Zpm::new();
    let (mut events, lines) = follow(&zpm, &["events", "log:", "--json"]);
    zpm.start_script(
        "talk",
        "#!/bin/sh\n# $1 marks us\nwhile true; do echo 'said it'; sleep 0.2; done\n",
    );
    let deadline = Instant::now() + DEADLINE;
    let event = loop {
        assert!(Instant::now() < deadline, "no log:out event");
        let Ok(line) = lines.recv_timeout(Duration::from_secs(1)) else {
            continue;
        };
        let event: Value = serde_json::from_str(&line).unwrap();
        if event["topic"] == "log:out"
            && event["data"]["data"]
                .as_str()
                .is_some_and(|d| !d.is_empty())
        {
            break event;
        }
    };
    let _ = events.kill();
    let _ = events.wait();
    assert_eq!(event["source"], "logs");
    assert_eq!(event["data"]["name"], "talk");
    assert!(
        event["data"]["data"]
            .as_str()
            .unwrap()
            .starts_with("said it\n"),
        "{event}"
    );
}

/// Says `agent.hello` as a third-party agent would, with `role`, on a connection of its own.
fn hello_as(zpm: &Zpm, role: &str) -> Result<zpm_proto::Pong, zpm_rpc::RpcError> {
    use zpm_proto::commands::Hello;
    use zpm_proto::method::agent;
    use zpm_proto::{AgentHello, PROTOCOL_VERSION};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let options = zpm_rpc::ClientOptions {
            version: PROTOCOL_VERSION,
            ..zpm_rpc::ClientOptions::default()
        };
        let endpoint = format!("ipc://{}", zpm.path("rpc.sock").display());
        let client = zpm_rpc::Client::with_options(&endpoint, options);
        let hello = Hello {
            agent: AgentHello {
                role: role.to_owned(),
                host: "elsewhere".into(),
                pid: std::process::id(),
                version: "test".into(),
                protocol: PROTOCOL_VERSION,
            },
            holding: Vec::new(),
        };
        match client
            .call_method::<agent::Hello>(&hello, Duration::from_secs(30))
            .await
        {
            Ok(pong) => Ok(pong),
            Err(zpm_rpc::CallError::Remote(e)) => Err(e),
            Err(e) => panic!("agent.hello as {role:?}: {e}"),
        }
    })
}

#[test]
fn god_lists_a_third_party_role_and_refuses_a_bad_role_name() {
    let zpm = Zpm::new();
    agents_up(&zpm);
    hello_as(&zpm, "py-watcher").expect("a role God does not know is welcome");
    let long = "r".repeat(33);
    for bad in [
        "",
        "Py-Watcher",
        "two words",
        "red\u{1b}[31m",
        "a/b",
        long.as_str(),
    ] {
        let error = hello_as(&zpm, bad).expect_err("a bad role name is refused");
        assert_eq!(
            error.code,
            zpm_rpc::ErrorCode::BadParams,
            "{bad:?}: {error}"
        );
        assert!(
            error.message.contains("invalid agent role")
                && error.message.contains("1 to 32 characters of a-z, 0-9"),
            "{bad:?}: {}",
            error.message
        );
    }
    let agents = zpm.json(&["agents"]);
    let mut roles: Vec<&str> = agents
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["role"].as_str())
        .collect();
    roles.sort_unstable();
    assert_eq!(
        roles,
        ["logs", "metrics", "py-watcher", "spawner"],
        "{agents}"
    );
    // God launches and keeps only its own roles: no process is ever started for this one.
    assert!(zpm_processes(zpm.home(), &["agent", "py-watcher"]).is_empty());
}

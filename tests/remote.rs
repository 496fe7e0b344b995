//! zpm across hosts on one machine: a God listening on loopback TCP with a key, driven by
//! CLIs of other homes through the keyed tunnel (`--connect`, `ZPM_CONNECT`).

use crate::harness::{Zpm, poll, status};
use assert_cmd::Command;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A loopback port nobody listens on now.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A God home listening on loopback TCP (config.toml), with its key in a separate file.
pub struct ListeningGod {
    pub zpm: Zpm,
    pub endpoint: String,
    pub key: PathBuf,
}

impl ListeningGod {
    pub fn start() -> Self {
        let zpm = Zpm::new();
        let key = zpm.path("fleet.key");
        zpm.ok(&["keygen", "--out", key.to_str().unwrap()]);
        let endpoint = format!("tcp://127.0.0.1:{}", free_port());
        let config = format!(
            "listen = \"{endpoint}\"\nkey_file = \"{}\"\n",
            key.display()
        );
        std::fs::write(zpm.path("config.toml"), config).unwrap();
        let pong = zpm.json(&["ping"]);
        assert_eq!(pong["listening"], endpoint.as_str(), "{pong}");
        Self { zpm, endpoint, key }
    }

    /// `zpm` in another (empty) home, aimed at this God by flags.
    pub fn remote_cmd(&self, other_home: &Path) -> Command {
        let mut cmd = Command::cargo_bin("zpm").unwrap();
        cmd.env("ZPM_HOME", other_home)
            .env_remove("ZPM_CONNECT")
            .env_remove("ZPM_KEY_FILE")
            .args(["--connect", &self.endpoint, "--key-file"])
            .arg(&self.key)
            .timeout(Duration::from_secs(60));
        cmd
    }

    pub fn tcp_counters(&self) -> Value {
        self.zpm.json(&["ping"])["guards"]["tcp"].clone()
    }
}

fn ok_stdout(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn err_stderr(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(!out.status.success(), "{cmd:?} should have failed");
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn tcp_without_a_key_is_refused_with_the_fix() {
    let zpm = Zpm::new();
    let err = zpm.fails(&["daemon", "--listen", "tcp://127.0.0.1:1"]);
    assert!(
        err.contains("without a key") && err.contains("zpm keygen"),
        "{err}"
    );
    std::fs::write(zpm.path("config.toml"), "listen = \"tcp://127.0.0.1:1\"\n").unwrap();
    let err = zpm.fails(&["ping"]);
    assert!(
        err.contains("without a key") && err.contains("--key-file"),
        "{err}"
    );
    let err = zpm.fails(&["daemon", "--listen", "127.0.0.1:1"]);
    assert!(err.contains("tcp://HOST:PORT"), "{err}");
    // A key readable by others is refused, naming the file and the fix.
    let key = zpm.path("k");
    zpm.ok(&["keygen", "--out", key.to_str().unwrap()]);
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o640)).unwrap();
    let err = zpm.fails(&[
        "daemon",
        "--listen",
        "tcp://127.0.0.1:1",
        "--key-file",
        key.to_str().unwrap(),
    ]);
    assert!(
        err.contains("chmod 600") && err.contains(key.to_str().unwrap()),
        "{err}"
    );
    assert!(!zpm.path("god.lock").exists() || zpm_host::holder(&zpm.path("god.lock")).is_none());
}

#[test]
fn a_remote_cli_drives_god_through_the_tunnel() {
    let god = ListeningGod::start();
    let other = tempfile::tempdir().unwrap();
    let app = god
        .zpm
        .script("remote-app.sh", "#!/bin/sh\nwhile true; do sleep 1; done\n");
    ok_stdout(god.remote_cmd(other.path()).args([
        "start",
        app.to_str().unwrap(),
        "--name",
        "far",
        "--",
        &god.zpm.marker,
    ]));
    let rows: Value = serde_json::from_str(&ok_stdout(
        god.remote_cmd(other.path()).args(["ls", "--json"]),
    ))
    .unwrap();
    assert_eq!(rows[0]["name"], "far", "{rows}");
    assert_eq!(status(&rows[0]), "online", "{rows}");
    // God's own CLI sees what the remote one did.
    god.zpm
        .wait_ls("far online locally", |rows| status(&rows[0]) == "online");
    ok_stdout(god.remote_cmd(other.path()).args(["stop", "far"]));
    god.zpm
        .wait_ls("far stopped", |rows| status(&rows[0]) == "stopped");
    // The same through the environment variables.
    let out = ok_stdout(
        Command::cargo_bin("zpm")
            .unwrap()
            .env("ZPM_HOME", other.path())
            .env("ZPM_CONNECT", &god.endpoint)
            .env("ZPM_KEY_FILE", &god.key)
            .args(["ls", "--json"]),
    );
    assert!(out.contains("\"far\""), "{out}");
    // Nothing was started in the other home: no daemon, no socket.
    assert!(!other.path().join("rpc.sock").exists());
    let counters = god.tcp_counters();
    assert!(counters["connections"].as_u64().unwrap() >= 4, "{counters}");
    assert_eq!(counters["handshakes_failed"], 0, "{counters}");
}

#[test]
fn a_wrong_key_is_refused_at_once_and_counted() {
    let god = ListeningGod::start();
    let other = tempfile::tempdir().unwrap();
    let wrong = other.path().join("wrong.key");
    god.zpm.ok(&["keygen", "--out", wrong.to_str().unwrap()]);
    let started = Instant::now();
    let err = err_stderr(
        Command::cargo_bin("zpm")
            .unwrap()
            .env("ZPM_HOME", other.path())
            .args(["--connect", &god.endpoint, "--key-file"])
            .arg(&wrong)
            .args(["ls"])
            .timeout(Duration::from_secs(30)),
    );
    assert!(err.contains("different key"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    poll("the failed handshake counted", || {
        (god.tcp_counters()["handshakes_failed"].as_u64() >= Some(1)).then_some(())
    });
    // Without any key at all, the CLI says what to give.
    let err = err_stderr(
        Command::cargo_bin("zpm")
            .unwrap()
            .env("ZPM_HOME", other.path())
            .env_remove("ZPM_KEY_FILE")
            .args(["--connect", &god.endpoint, "ls"]),
    );
    assert!(err.contains("--key-file"), "{err}");
}

#[test]
fn a_remote_kill_stops_god() {
    let god = ListeningGod::start();
    let other = tempfile::tempdir().unwrap();
    let pid = god.zpm.json(&["ping"])["pid"].as_u64().unwrap();
    let out = ok_stdout(god.remote_cmd(other.path()).arg("kill"));
    assert!(out.contains("daemon killed"), "{out}");
    let pid = u32::try_from(pid).unwrap();
    poll("God gone", || (!zpm_host::procfs::alive(pid)).then_some(()));
}

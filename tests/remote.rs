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
    let app = god.zpm.script("remote-app.sh", IDLE);
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

/// A second "host" on this machine: its own home, joined to `god` by a foreground
/// `zpm agent all --connect … --host NAME` (ended by its home's guard).
pub struct SecondHost {
    pub zpm: Zpm,
    pub standin: std::process::Child,
}

impl SecondHost {
    pub fn join(god: &ListeningGod, name: &str) -> Self {
        Self::join_at(god, &god.endpoint, name)
    }

    /// Joins `god` dialling `endpoint` (e.g. a proxy in front of it).
    pub fn join_at(god: &ListeningGod, endpoint: &str, name: &str) -> Self {
        let zpm = Zpm::new();
        let log = std::fs::File::create(zpm.path("standin.out")).unwrap();
        let standin = std::process::Command::new(assert_cmd::cargo::cargo_bin("zpm"))
            .env("ZPM_HOME", zpm.home())
            .args(["agent", "all", "--connect", endpoint, "--key-file"])
            .arg(&god.key)
            .args(["--host", name])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        poll(&format!("host {name}'s three agents connected"), || {
            let agents = god.zpm.json(&["agents"]);
            let up = agents
                .as_array()
                .unwrap()
                .iter()
                .filter(|a| a["host"] == name && a["connected"] == true)
                .count();
            (up == 3).then_some(())
        });
        Self { zpm, standin }
    }

    fn signal(&self, signal: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(self.standin.id().cast_signed());
        nix::sys::signal::kill(pid, signal).unwrap();
    }
}

impl Drop for SecondHost {
    fn drop(&mut self) {
        let _ = self.standin.kill();
        let _ = self.standin.wait();
    }
}

impl ListeningGod {
    /// Starts script `body` as app `name` on `host`, marked for the guard.
    fn start_on(&self, host: &str, name: &str, body: &str) {
        let app = self.zpm.script(&format!("{name}.sh"), body);
        let marker = self.zpm.marker.clone();
        self.zpm.ok(&[
            "start",
            app.to_str().unwrap(),
            "--name",
            name,
            "--host",
            host,
            "--",
            &marker,
        ]);
    }
}

const IDLE: &str = "#!/bin/sh\nwhile true; do sleep 1; done\n";

fn row<'a>(rows: &'a [Value], name: &str) -> &'a Value {
    rows.iter().find(|r| r["name"] == name).unwrap()
}

#[test]
fn apps_placed_on_a_second_host_work_like_local_ones() {
    let god = ListeningGod::start();
    let h2 = SecondHost::join(&god, "h2");
    god.start_on(
        "h2",
        "far",
        "#!/bin/sh\ni=0\nwhile true; do i=$((i+1)); echo \"line $i\"; sleep 0.02; done\n",
    );
    let rows = god
        .zpm
        .wait_ls("far online on h2 with cpu and memory", |rows| {
            let far = row(rows, "far");
            status(far) == "online" && far["host"] == "h2" && far["memory"].as_u64() > Some(0)
        });
    let first_pid = row(&rows, "far")["pid"].as_u64().unwrap();
    // Its output is written by h2's logs agent, into h2's home.
    let log = h2.zpm.path("logs/far-out.log");
    poll("h2's log file has lines", || {
        std::fs::read_to_string(&log)
            .ok()
            .filter(|t| t.contains("line 3\n"))
    });
    assert!(!god.zpm.path("logs/far-out.log").exists());
    // kill -9 of the app: h2's spawner restarts it, God sees it online again.
    let killed = nix::unistd::Pid::from_raw(i32::try_from(first_pid).unwrap());
    nix::sys::signal::kill(killed, nix::sys::signal::Signal::SIGKILL).unwrap();
    let rows = god.zpm.wait_ls("far back online", |rows| {
        let far = row(rows, "far");
        status(far) == "online" && far["pid"].as_u64() != Some(first_pid) && far["restarts"] == 1
    });
    let pid = row(&rows, "far")["pid"].clone();
    // Partition: h2 silent (its stand-in stopped) → unknown; back → the same process.
    h2.signal(nix::sys::signal::Signal::SIGSTOP);
    god.zpm.wait_ls("far unknown while h2 is cut off", |rows| {
        status(row(rows, "far")) == "unknown"
    });
    let agents = god.zpm.ok(&["agents"]);
    let h2_line = agents.lines().find(|l| l.starts_with("host h2:")).unwrap();
    assert!(h2_line.ends_with("DOWN"), "{agents}");
    let before = std::fs::read_to_string(&log).unwrap().lines().count();
    poll("far keeps writing while cut off", || {
        (std::fs::read_to_string(&log).unwrap().lines().count() > before + 20).then_some(())
    });
    h2.signal(nix::sys::signal::Signal::SIGCONT);
    god.zpm.wait_ls("far online again, same pid", |rows| {
        let far = row(rows, "far");
        status(far) == "online" && far["pid"] == pid
    });
    // Lines are contiguous across the kill and the partition: nothing lost.
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.starts_with("line 1\n"),
        "{}",
        &text[..text.len().min(200)]
    );
    // Live lines come over God's bus: follow for a moment, then stop the follower.
    let followed = god
        .zpm
        .cmd()
        .args(["logs", "far", "--lines", "0", "--raw"])
        .timeout(Duration::from_secs(3))
        .output()
        .unwrap();
    let live = String::from_utf8_lossy(&followed.stdout);
    assert!(
        live.lines().filter(|l| l.starts_with("line ")).count() >= 10,
        "{live}"
    );
    // History comes from h2's logs agent, through God: here and from a remote CLI.
    let shown = god
        .zpm
        .ok(&["logs", "far", "--lines", "5", "--nostream", "--raw"]);
    assert_eq!(
        shown.lines().filter(|l| l.starts_with("line ")).count(),
        5,
        "{shown}"
    );
    let elsewhere = tempfile::tempdir().unwrap();
    let shown = ok_stdout(god.remote_cmd(elsewhere.path()).args([
        "logs",
        "far",
        "--lines",
        "3",
        "--nostream",
        "--raw",
    ]));
    assert_eq!(
        shown.lines().filter(|l| l.starts_with("line ")).count(),
        3,
        "{shown}"
    );
    // Every verb reaches h2's spawner.
    let described = god.zpm.json(&["describe", "far"]);
    assert_eq!(described[0]["info"]["host"], "h2", "{described}");
    god.zpm.ok(&["stop", "far"]);
    god.zpm
        .wait_ls("far stopped", |rows| status(row(rows, "far")) == "stopped");
    let flushed = god.zpm.ok(&["flush", "far"]);
    assert!(flushed.contains("far-out.log"), "{flushed}");
    assert_eq!(std::fs::metadata(&log).unwrap().len(), 0);
    god.zpm.ok(&["reload-logs"]);
    god.zpm.ok(&["restart", "far"]);
    god.zpm
        .wait_ls("far restarted", |rows| status(row(rows, "far")) == "online");
    god.zpm.ok(&["delete", "far"]);
    poll("far's process gone from h2", || {
        god.zpm.marked().is_empty().then_some(())
    });
}

#[test]
fn instances_spread_over_hosts_and_unknown_hosts_are_refused() {
    let god = ListeningGod::start();
    let _h2 = SecondHost::join(&god, "h2");
    let here = god.zpm.json(&["ping"]);
    let app = god.zpm.script("idle.sh", IDLE);
    let marker = god.zpm.marker.clone();
    let god_host = god
        .zpm
        .json(&["agents"])
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["host"] != "h2")
        .map(|a| a["host"].as_str().unwrap().to_owned())
        .unwrap();
    let hosts = format!("{god_host},h2");
    god.zpm.ok(&[
        "start",
        app.to_str().unwrap(),
        "--name",
        "spread",
        "-i",
        "3",
        "--host",
        &hosts,
        "--",
        &marker,
    ]);
    let rows = god.zpm.wait_ls("3 instances online", |rows| {
        rows.iter().filter(|r| status(r) == "online").count() == 3
    });
    let placed: Vec<&str> = rows.iter().map(|r| r["host"].as_str().unwrap()).collect();
    assert_eq!(
        placed,
        [god_host.as_str(), "h2", god_host.as_str()],
        "{rows:?}"
    );
    assert_eq!(god.zpm.marked().len(), 3);
    let err = god.zpm.fails(&[
        "start",
        app.to_str().unwrap(),
        "--name",
        "lost",
        "--host",
        "h9",
    ]);
    assert!(err.contains("no host named \"h9\""), "{err}");
    let err = god.zpm.fails(&[
        "start",
        app.to_str().unwrap(),
        "--name",
        "bad",
        "--host",
        "a b",
    ]);
    assert!(err.contains("invalid host name"), "{err}");
    assert_eq!(god.zpm.json(&["ping"])["pid"], here["pid"]);
}

#[test]
fn a_second_machine_claiming_the_same_host_name_is_refused() {
    let god = ListeningGod::start();
    let _h2 = SecondHost::join(&god, "h2");
    let other = Zpm::new();
    let out = other
        .cmd()
        .args(["agent", "all", "--connect", &god.endpoint, "--key-file"])
        .arg(&god.key)
        .args(["--host", "h2"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("already has a live") && err.contains("h2"),
        "{err}"
    );
    assert!(!other.path("remote.toml").exists());
}

/// Replaces the key file at `path` with a new key, keeping it private, in one rename.
fn new_key_at(zpm: &Zpm, path: &Path) {
    let fresh = path.with_extension("new");
    zpm.ok(&["keygen", "--out", fresh.to_str().unwrap()]);
    std::fs::rename(&fresh, path).unwrap();
}

fn hang_up(pid: u32) {
    let pid = nix::unistd::Pid::from_raw(pid.cast_signed());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
}

#[test]
fn the_key_rotates_without_stopping_apps() {
    let god = ListeningGod::start();
    let h2 = SecondHost::join(&god, "h2");
    god.start_on("h2", "far", IDLE);
    let rows = god
        .zpm
        .wait_ls("far online", |rows| status(row(rows, "far")) == "online");
    let pid = row(&rows, "far")["pid"].clone();
    let old = std::fs::read(&god.key).unwrap();
    // Both sides read the same file here; on real hosts, each its own copy.
    new_key_at(&god.zpm, &god.key);
    let god_pid = god.zpm.json(&["ping"])["pid"].as_u64().unwrap();
    hang_up(u32::try_from(god_pid).unwrap());
    hang_up(h2.standin.id());
    // New connections need the new key; the old one is refused.
    let other = tempfile::tempdir().unwrap();
    poll("God takes the new key", || {
        god.remote_cmd(other.path())
            .arg("ping")
            .output()
            .unwrap()
            .status
            .success()
            .then_some(())
    });
    let old_key = other.path().join("old.key");
    std::fs::write(&old_key, &old).unwrap();
    std::fs::set_permissions(
        &old_key,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let err = err_stderr(
        Command::cargo_bin("zpm")
            .unwrap()
            .env("ZPM_HOME", other.path())
            .args(["--connect", &god.endpoint, "--key-file"])
            .arg(&old_key)
            .arg("ls"),
    );
    assert!(err.contains("different key"), "{err}");
    // h2 reconnects with the new key after its connections are cut (stalled past the
    // tunnel's silence limit): the same app, never restarted.
    h2.signal(nix::sys::signal::Signal::SIGSTOP);
    god.zpm
        .wait_ls("far unknown", |rows| status(row(rows, "far")) == "unknown");
    poll("h2's tunnel connections cut", || {
        (god.tcp_counters()["timeouts"].as_u64() >= Some(1)).then_some(())
    });
    h2.signal(nix::sys::signal::Signal::SIGCONT);
    let rows = god.zpm.wait_ls("far back, same pid", |rows| {
        let far = row(rows, "far");
        status(far) == "online" && far["pid"] == pid && far["restarts"] == 0
    });
    assert_eq!(row(&rows, "far")["host"], "h2");
    assert_eq!(
        god.tcp_counters()["handshakes_failed"],
        1,
        "only the old key's attempt"
    );
}

#[test]
fn logs_ask_checks_what_it_carries_and_zpm_tunnel_wants_a_private_directory() {
    use zpm_proto::LogsAsk;
    use zpm_proto::method::logs;
    let god = ListeningGod::start();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = {
        let _in = rt.enter();
        zpm_rpc::Client::new(&format!("ipc://{}", god.zpm.path("rpc.sock").display()))
    };
    let ask = |host: &str, method: &str| {
        let ask = LogsAsk {
            host: host.to_owned(),
            method: method.to_owned(),
            params: zpm_rpc::Value::Map(vec![]),
        };
        let reply = rt.block_on(client.call_method::<logs::Ask>(&ask, Duration::from_secs(20)));
        match reply {
            Err(zpm_rpc::CallError::Remote(e)) => e,
            other => panic!("{host}/{method}: expected an error, got {other:?}"),
        }
    };
    let here = god.zpm.json(&["ping"])["host"].as_str().unwrap().to_owned();
    let e = ask(&here, "logs.fetch");
    assert_eq!(e.code, zpm_rpc::ErrorCode::BadParams, "{e}");
    let e = ask("a b", "logs.tail");
    assert!(e.message.contains("invalid host name"), "{e}");
    let e = ask("nowhere", "logs.tail");
    assert_eq!(e.code, zpm_rpc::ErrorCode::Unavailable, "{e}");
    // The logs agent's own checks apply to what God carries: `{}` is no TailRequest.
    let e = ask(&here, "logs.tail");
    assert_eq!(e.code, zpm_rpc::ErrorCode::BadParams, "{e}");
    // A world-readable directory for `zpm tunnel --local` is refused before anything.
    let shared = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        shared.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let other = tempfile::tempdir().unwrap();
    let err = err_stderr(
        god.remote_cmd(other.path())
            .args(["tunnel", "--local"])
            .arg(shared.path()),
    );
    assert!(
        err.contains("not private") && err.contains("chmod 700"),
        "{err}"
    );
    assert!(!shared.path().join("rpc.sock").exists());
    assert_eq!(god.zpm.json(&["ping"])["host"], here.as_str());
}

#[test]
fn a_remote_app_over_its_memory_limit_is_restarted_by_its_hosts_metrics_agent() {
    let god = ListeningGod::start();
    let _h2 = SecondHost::join(&god, "h2");
    let hog = god.zpm.script(
        "hog.py",
        "import time\nheld = b'x' * (48 << 20)\nwhile True:\n    time.sleep(1)\n",
    );
    let marker = god.zpm.marker.clone();
    god.zpm.ok(&[
        "start",
        hog.to_str().unwrap(),
        "--name",
        "hog",
        "--host",
        "h2",
        "--max-memory-restart",
        "16M",
        "--",
        &marker,
    ]);
    god.zpm.wait_ls("hog restarted for its memory", |rows| {
        row(rows, "hog")["restarts"].as_u64() >= Some(1)
    });
    let described = god.zpm.json(&["describe", "hog"]);
    assert_eq!(described[0]["info"]["host"], "h2", "{described}");
    let reason = &described[0]["restarts"][0]["reason"];
    assert_eq!(reason["kind"], "max_memory", "{described}");
    assert_eq!(reason["limit"], 16 << 20);
}

/// A TCP proxy to `upstream` that holds every chunk `delay` before passing it on, each
/// way: a distant God, seen from this machine. Runs until the runtime is dropped.
fn delaying_proxy(
    rt: &tokio::runtime::Runtime,
    upstream: std::net::SocketAddr,
    delay: Duration,
) -> std::net::SocketAddr {
    async fn pass(
        mut from: tokio::net::tcp::OwnedReadHalf,
        mut to: tokio::net::tcp::OwnedWriteHalf,
        delay: Duration,
    ) {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n) = from.read(&mut buf).await {
            if n == 0 {
                break;
            }
            tokio::time::sleep(delay).await;
            if to.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = to.shutdown().await;
    }
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = tokio::net::TcpStream::connect(upstream).await else {
                continue;
            };
            let (client_in, client_out) = client.into_split();
            let (server_in, server_out) = server.into_split();
            tokio::spawn(pass(client_in, server_out, delay));
            tokio::spawn(pass(server_in, client_out, delay));
        }
    });
    addr
}

#[test]
fn a_god_100_ms_away_is_driven_and_joined() {
    let god = ListeningGod::start();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let upstream = god
        .endpoint
        .strip_prefix("tcp://")
        .unwrap()
        .parse()
        .unwrap();
    // 50 ms each way: every exchange costs a 100 ms round trip.
    let far = delaying_proxy(&rt, upstream, Duration::from_millis(50));
    let far = ListeningGod {
        endpoint: format!("tcp://{far}"),
        key: god.key.clone(),
        zpm: Zpm::new(),
    };
    let other = tempfile::tempdir().unwrap();
    let pong: Value = serde_json::from_str(&ok_stdout(
        far.remote_cmd(other.path()).args(["ping", "--json"]),
    ))
    .unwrap();
    assert_eq!(pong["pid"], god.zpm.json(&["ping"])["pid"]);
    // A host joins through it, and an app placed there runs.
    let h2 = SecondHost::join_at(&god, &far.endpoint, "h2");
    god.start_on("h2", "far", IDLE);
    god.zpm.wait_ls("far online on the distant host", |rows| {
        status(row(rows, "far")) == "online"
    });
    drop(h2);
}

#[test]
fn zpm_kill_ends_a_joined_hosts_agents_and_its_stand_in() {
    let god = ListeningGod::start();
    let mut h2 = SecondHost::join(&god, "h2");
    god.start_on("h2", "far", IDLE);
    god.zpm
        .wait_ls("far online", |rows| status(row(rows, "far")) == "online");
    god.zpm.ok(&["kill"]);
    let exited = poll("h2's stand-in exits", || h2.standin.try_wait().unwrap());
    assert!(exited.success(), "{exited:?}");
    poll("no agent of h2 left, none relaunched", || {
        crate::harness::zpm_processes(h2.zpm.home(), &["agent"])
            .is_empty()
            .then_some(())
    });
    assert!(god.zpm.marked().is_empty(), "far still runs");
    assert!(
        !h2.zpm.path("remote.toml").exists(),
        "h2's home is local again"
    );
}

//! Real zpm processes for the multi-host benchmarks: a God listening on loopback TCP with
//! a key (the real `zpm` binary in a temporary home), and a second "host" on this machine
//! (`zpm agent all --connect … --host NAME` in a home of its own). Everything started here
//! is stopped on drop: `zpm kill`, then SIGKILL by pid of whatever of the home is left.

use anyhow::{Context as _, bail};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use zpm_agents::remote::RemoteGod;
use zpm_proto::method::{agent, app, god};
use zpm_proto::{AgentInfo, PROTOCOL_VERSION, Pong, ProcessInfo};
use zpm_rpc::{Client, ClientOptions, NoParams};

const CALL: Duration = Duration::from_secs(10);
const SETUP: Duration = Duration::from_secs(60);

/// The `zpm` binary: `--zpm`, or next to this executable.
pub fn zpm_exe(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    let exe = match given {
        Some(exe) => exe.to_owned(),
        None => std::env::current_exe()
            .context("locating zpm-bench")?
            .with_file_name("zpm"),
    };
    anyhow::ensure!(
        exe.is_file(),
        "no zpm binary at {} (build it or pass --zpm)",
        exe.display()
    );
    Ok(exe)
}

/// A loopback port nobody listens on now.
pub(crate) fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// Runs `command` to completion within `limit` (killed after it); fails unless it succeeds.
pub fn run(command: &mut Command, limit: Duration) -> anyhow::Result<std::process::Output> {
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {command:?}"))?;
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let output = match rx.recv_timeout(limit) {
        Ok(output) => output.with_context(|| format!("waiting for {command:?}"))?,
        Err(_) => {
            sigkill(pid);
            bail!("{command:?} did not finish within {limit:?}; killed");
        }
    };
    if !output.status.success() {
        bail!(
            "{command:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(output)
}

pub fn signal(pid: u32, signal: nix::sys::signal::Signal) -> anyhow::Result<()> {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid.cast_signed()), signal)
        .with_context(|| format!("sending {signal} to {pid}"))
}

fn sigkill(pid: u32) {
    let _ = signal(pid, nix::sys::signal::Signal::SIGKILL);
}

/// Live processes started for `home`: `ZPM_HOME=home` in their environment (zpm's daemons
/// and agents, and the apps they started, which inherit the CLI's environment).
pub fn processes_of(home: &Path) -> Vec<u32> {
    let want = format!("ZPM_HOME={}", home.display());
    let me = std::process::id();
    zpm_host::procfs::all_stats()
        .unwrap_or_default()
        .into_iter()
        .filter(|s| s.alive() && s.pid != me)
        .map(|s| s.pid)
        .filter(|pid| {
            let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            environ.split(|b| *b == 0).any(|e| e == want.as_bytes())
        })
        .collect()
}

/// SIGKILLs every process of `home` until none is left (a spawner killed after God would
/// relaunch it meanwhile, so go round again). Returns how many were killed.
pub fn kill_leftovers(home: &Path) -> usize {
    let mut killed = 0;
    for _ in 0..50 {
        let left = processes_of(home);
        if left.is_empty() {
            break;
        }
        for pid in left {
            sigkill(pid);
            killed += 1;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    killed
}

/// An rpc client of God's own ipc endpoint (or a tunnel end), reconnecting quickly.
pub fn client(endpoint: &str) -> Client {
    let options = ClientOptions {
        version: PROTOCOL_VERSION,
        max_backoff: Duration::from_millis(5),
        ..ClientOptions::default()
    };
    Client::with_options(endpoint, options)
}

pub async fn ping(client: &Client) -> anyhow::Result<Pong> {
    client
        .call_method::<god::Ping>(&NoParams {}, CALL)
        .await
        .context("calling ping")
}

pub async fn list(client: &Client) -> anyhow::Result<Vec<ProcessInfo>> {
    client
        .call_method::<app::List>(&None, CALL)
        .await
        .context("calling app.list")
}

pub async fn agents(client: &Client) -> anyhow::Result<Vec<AgentInfo>> {
    client
        .call_method::<agent::List>(&NoParams {}, CALL)
        .await
        .context("calling agents.list")
}

/// Polls `probe` (async) until it yields, at most `limit`, sleeping `every` in between.
pub async fn poll<T, F, Fut>(
    what: &str,
    limit: Duration,
    every: Duration,
    mut probe: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(found) = probe().await? {
            return Ok(found);
        }
        if Instant::now() >= deadline {
            bail!("timed out after {limit:?} waiting for {what}");
        }
        tokio::time::sleep(every).await;
    }
}

/// A God in a temporary home, listening on `tcp://127.0.0.1:PORT` with a fresh key.
pub struct GodHome {
    exe: PathBuf,
    pub home: tempfile::TempDir,
    /// `tcp://127.0.0.1:PORT`.
    pub endpoint: String,
    pub key_file: PathBuf,
    pub key: zpm_tunnel::Key,
    pub pid: u32,
    /// God's own host name (its local agents').
    pub host: String,
}

impl GodHome {
    /// `zpm keygen`, `listen` + `key_file` in config.toml, then `zpm ping` starts God.
    /// Blocking (runs the CLI).
    pub fn start(exe: &Path) -> anyhow::Result<Self> {
        let home = tempfile::Builder::new()
            .prefix("zbg")
            .tempdir()
            .context("creating God's ZPM_HOME")?;
        let key_file = home.path().join("fleet.key");
        let endpoint = format!("tcp://127.0.0.1:{}", free_port()?);
        let mut god = Self {
            exe: exe.to_owned(),
            endpoint,
            key_file,
            key: zpm_tunnel::Key::from_bytes([0; 32]),
            pid: 0,
            host: String::new(),
            home,
        };
        let key_arg = god.key_file.display().to_string();
        run(&mut god.cmd(&["keygen", "--out", &key_arg]), SETUP)?;
        god.key = zpm_tunnel::Key::load(&god.key_file).context("loading the fresh key")?;
        let config = format!(
            "listen = \"{}\"\nkey_file = \"{}\"\n",
            god.endpoint,
            god.key_file.display()
        );
        std::fs::write(god.home.path().join("config.toml"), config)
            .context("writing config.toml")?;
        let out = run(&mut god.cmd(&["ping", "--json"]), SETUP)?;
        let pong: serde_json::Value =
            serde_json::from_slice(&out.stdout).context("zpm ping --json output")?;
        anyhow::ensure!(
            pong["listening"] == god.endpoint.as_str(),
            "God is not listening on {}: {pong}",
            god.endpoint
        );
        god.pid = pong["pid"]
            .as_u64()
            .and_then(|p| u32::try_from(p).ok())
            .context("God's pid in ping")?;
        pong["host"]
            .as_str()
            .unwrap_or_default()
            .clone_into(&mut god.host);
        Ok(god)
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.exe);
        command
            .args(args)
            .env("ZPM_HOME", self.home.path())
            .env_remove("ZPM_CONNECT")
            .env_remove("ZPM_KEY_FILE")
            .current_dir(self.home.path());
        command
    }

    /// `ipc://HOME/rpc.sock`.
    pub fn rpc_endpoint(&self) -> String {
        format!("ipc://{}/rpc.sock", self.home.path().display())
    }

    /// `ipc://HOME/bus.sock`.
    pub fn bus_endpoint(&self) -> String {
        format!("ipc://{}/bus.sock", self.home.path().display())
    }

    /// God as another host sees it: its TCP address and key.
    pub fn remote(&self) -> anyhow::Result<RemoteGod> {
        RemoteGod::new(&self.endpoint, self.key.clone()).context("God's tcp address")
    }

    /// Waits until God's own three agents are connected.
    pub async fn wait_local_agents(&self, client: &Client) -> anyhow::Result<()> {
        wait_host_agents(client, &self.host, "God's own agents").await
    }

    /// `zpm kill` (bounded), then SIGKILL whatever of this home is left. Blocking.
    /// Returns how many processes had to be SIGKILLed.
    pub fn stop(&self) -> usize {
        if let Err(e) = run(&mut self.cmd(&["kill"]), Duration::from_secs(120)) {
            eprintln!("  zpm kill: {e:#}");
        }
        kill_leftovers(self.home.path())
    }
}

impl Drop for GodHome {
    fn drop(&mut self) {
        // Idempotent: after a stop nothing of the home is left and `zpm kill` finds no God.
        if !processes_of(self.home.path()).is_empty() {
            self.stop();
        }
    }
}

/// A second host on this machine: `zpm agent all --connect … --host NAME` in a home of
/// its own, in the foreground (the stand-in), as `tests/remote.rs` does.
pub struct SecondHost {
    pub home: tempfile::TempDir,
    pub name: String,
    pub standin: Child,
}

impl SecondHost {
    /// Starts the stand-in and waits until God lists the host's three agents connected.
    pub async fn join(
        exe: &Path,
        god: &GodHome,
        name: &str,
        client: &Client,
    ) -> anyhow::Result<Self> {
        let home = tempfile::Builder::new()
            .prefix("zbh")
            .tempdir()
            .context("creating the second host's ZPM_HOME")?;
        let log = std::fs::File::create(home.path().join("standin.out"))
            .context("creating the stand-in's log")?;
        let standin = Command::new(exe)
            .env("ZPM_HOME", home.path())
            .env_remove("ZPM_CONNECT")
            .env_remove("ZPM_KEY_FILE")
            .args(["agent", "all", "--connect", &god.endpoint, "--key-file"])
            .arg(&god.key_file)
            .args(["--host", name])
            .stdin(Stdio::null())
            .stdout(log.try_clone().context("stand-in log")?)
            .stderr(log)
            .spawn()
            .context("starting the stand-in")?;
        let host = Self {
            home,
            name: name.to_owned(),
            standin,
        };
        wait_host_agents(
            client,
            name,
            &format!("host {name}'s three agents connected"),
        )
        .await?;
        Ok(host)
    }

    pub fn pid(&self) -> u32 {
        self.standin.id()
    }

    /// Waits for the stand-in to exit (after God's `zpm kill` ordered its agents out), then
    /// SIGTERM / SIGKILL whatever of this home is left. Blocking.
    pub fn stop(&mut self) -> usize {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if self.standin.try_wait().ok().flatten().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if self.standin.try_wait().ok().flatten().is_none() {
            let _ = signal(self.pid(), nix::sys::signal::Signal::SIGCONT);
            let _ = signal(self.pid(), nix::sys::signal::Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline && self.standin.try_wait().ok().flatten().is_none() {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.standin.kill();
            let _ = self.standin.wait();
        }
        kill_leftovers(self.home.path())
    }
}

impl Drop for SecondHost {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Waits until `host`'s three agents (spawner, logs, metrics) are connected to God.
async fn wait_host_agents(client: &Client, host: &str, what: &str) -> anyhow::Result<()> {
    poll(what, SETUP, Duration::from_millis(20), || async {
        let up = agents(client)
            .await?
            .iter()
            .filter(|a| a.host == host && a.connected)
            .count();
        Ok((up >= 3).then_some(()))
    })
    .await
}

//! Driving zpm: the real binary in a temporary ZPM_HOME, plus an in-process rpc client
//! where a CLI process per poll would measure the CLI instead of the daemon.

use super::procfs::{CPU_WINDOW, cpu_percent, fd_count, pss_mb, rss_mb, zombie_children};
use super::timing::{median_ms, poll, stdout, timed};
use super::{Figure, Settings, figure};
use anyhow::Context as _;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use zpm_proto::method::{agent, app, god};
use zpm_proto::{ProcessInfo, ProcessStatus};
use zpm_rpc::{Client, Method, NoParams};

const LIMIT: Duration = Duration::from_secs(60);

#[derive(Serialize, Debug, Default)]
pub struct Churn {
    pub restarts: u64,
    pub seconds: f64,
    pub rss_before_mb: f64,
    pub rss_after_mb: f64,
    pub god_fds_before: usize,
    pub god_fds_after: usize,
    pub spawner_fds_before: usize,
    pub spawner_fds_after: usize,
    pub zombies: usize,
}

pub struct ZpmFigures {
    pub figures: Vec<Figure>,
    pub churn: Churn,
}

pub struct Zpm {
    exe: PathBuf,
    pub home: tempfile::TempDir,
    runtime: tokio::runtime::Runtime,
}

impl Drop for Zpm {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill"]).output();
    }
}

/// An absolute path for `name`, found on PATH.
pub fn which(name: &str) -> anyhow::Result<PathBuf> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .with_context(|| format!("{name} not found on PATH"))
}

/// An ecosystem file of `n` apps running `sleep 1000` (usable by zpm and PM2).
pub fn sleepers_file(dir: &Path, n: usize) -> anyhow::Result<PathBuf> {
    let sleep = which("sleep")?;
    let apps: Vec<serde_json::Value> = (0..n)
        .map(|i| serde_json::json!({"name": format!("app{i}"), "script": sleep, "args": "1000", "interpreter": "none"}))
        .collect();
    let path = dir.join(format!("eco{n}.json"));
    std::fs::write(&path, serde_json::json!({ "apps": apps }).to_string())
        .context("writing ecosystem file")?;
    Ok(path)
}

impl Zpm {
    pub fn new(settings: &Settings) -> anyhow::Result<Self> {
        let exe = crate::remote::homes::zpm_exe(settings.tools.zpm.as_deref())?;
        let home = tempfile::Builder::new()
            .prefix("zb")
            .tempdir()
            .context("creating ZPM_HOME")?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("runtime")?;
        Ok(Self { exe, home, runtime })
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.exe);
        command
            .args(args)
            .env("ZPM_HOME", self.home.path())
            .current_dir(self.home.path());
        command
    }

    pub fn call<M: Method<Params = NoParams>>(&self, client: &Client) -> anyhow::Result<M::Output> {
        self.runtime
            .block_on(client.call_method::<M>(&NoParams {}, Duration::from_secs(10)))
            .with_context(|| format!("calling {}", M::NAME))
    }

    pub fn list(&self, client: &Client) -> anyhow::Result<Vec<ProcessInfo>> {
        self.runtime
            .block_on(client.call_method::<app::List>(&None, Duration::from_secs(10)))
            .context("calling app.list")
    }

    pub fn client(&self) -> Client {
        let _guard = self.runtime.enter();
        // Reconnect quickly after a God kill, so the crash numbers are God's, not ours.
        let options = zpm_rpc::ClientOptions {
            version: zpm_proto::PROTOCOL_VERSION,
            max_backoff: Duration::from_millis(5),
            ..zpm_rpc::ClientOptions::default()
        };
        Client::with_options(
            &format!("ipc://{}/rpc.sock", self.home.path().display()),
            options,
        )
    }

    /// God's and the spawner's pids, once the spawner has registered.
    pub fn pids(&self, client: &Client) -> anyhow::Result<(u32, u32)> {
        let god = self.call::<god::Ping>(client)?.pid;
        let spawner = poll("spawner registered", LIMIT, || {
            let agents = self.call::<agent::List>(client)?;
            Ok(agents
                .iter()
                .find(|a| a.role == "spawner" && a.connected)
                .map(|a| a.pid))
        })?;
        Ok((god, spawner))
    }

    /// God's and every local agent's pid (role, pid), once all three roles registered.
    pub fn daemons(&self, client: &Client) -> anyhow::Result<Vec<(String, u32)>> {
        let god = self.call::<god::Ping>(client)?.pid;
        let agents = poll("every agent registered", LIMIT, || {
            let agents = self.call::<agent::List>(client)?;
            let up: Vec<(String, u32)> = agents
                .into_iter()
                .filter(|a| a.connected)
                .map(|a| (a.role, a.pid))
                .collect();
            Ok((up.len() >= 3).then_some(up))
        })?;
        Ok(std::iter::once(("god".to_owned(), god))
            .chain(agents)
            .collect())
    }
}

fn sum_mb(pids: &[u32], of: fn(u32) -> f64) -> f64 {
    pids.iter().map(|pid| of(*pid)).sum()
}

fn all_online(rows: &[ProcessInfo], n: usize) -> bool {
    rows.len() == n && rows.iter().all(|r| r.status == ProcessStatus::Online)
}

pub fn measure(settings: &Settings) -> anyhow::Result<ZpmFigures> {
    let zpm = Zpm::new(settings)?;
    timed(&mut zpm.cmd(&["ping"]))?;
    let client = zpm.client();
    let (god, spawner) = zpm.pids(&client)?;
    let daemons = zpm.daemons(&client)?;
    let all: Vec<u32> = daemons.iter().map(|(_, pid)| *pid).collect();
    let metrics_agent: Vec<u32> = daemons
        .iter()
        .filter(|(role, _)| role == "metrics")
        .map(|(_, pid)| *pid)
        .collect();
    let mut figures = vec![
        figure(
            "RSS idle, daemon processes",
            "MB",
            sum_mb(&all, rss_mb),
            "≤ 16 MB (God + spawner + logs + metrics)",
        ),
        figure(
            "PSS idle, daemon processes",
            "MB",
            sum_mb(&all, pss_mb),
            "(shared code counted once)",
        ),
    ];

    let pings = (0..50)
        .map(|_| timed(&mut zpm.cmd(&["ping"])))
        .collect::<anyhow::Result<Vec<_>>>()?;
    figures.push(figure(
        "ping (CLI wall time)",
        "ms",
        median_ms(pings),
        "≤ 5 ms",
    ));

    let eco50 = sleepers_file(zpm.home.path(), 50)?;
    timed(&mut zpm.cmd(&["start", &eco50.display().to_string()]))?;
    poll("50 online", LIMIT, || {
        Ok(all_online(&zpm.list(&client)?, 50).then_some(()))
    })?;
    let lists = (0..30)
        .map(|_| timed(&mut zpm.cmd(&["ls", "--json"])))
        .collect::<anyhow::Result<Vec<_>>>()?;
    figures.push(figure(
        "ls --json, 50 apps",
        "ms",
        median_ms(lists),
        "≤ 10 ms",
    ));
    figures.push(figure(
        "RSS with 50 apps, daemon processes",
        "MB",
        sum_mb(&all, rss_mb),
        "(God + spawner + logs + metrics)",
    ));
    figures.push(figure(
        "metrics agent cpu, 50 apps sampled at 1 s",
        "% core",
        cpu_percent(&metrics_agent, CPU_WINDOW),
        "≤ 1 % (circusd-stats 5.9 %)",
    ));
    figures.push(figure(
        "daemon processes cpu, 50 idle apps",
        "% core",
        cpu_percent(&all, CPU_WINDOW),
        "(all of zpm's processes)",
    ));
    timed(&mut zpm.cmd(&["delete", "all"]))?;

    let eco100 = sleepers_file(zpm.home.path(), 100)?;
    let started = Instant::now();
    stdout(&mut zpm.cmd(&["start", "--json", &eco100.display().to_string()]))?;
    poll("100 online", LIMIT, || {
        Ok(all_online(&zpm.list(&client)?, 100).then_some(()))
    })?;
    figures.push(figure(
        "start 100 apps until all online",
        "ms",
        started.elapsed().as_secs_f64() * 1000.0,
        "≤ 300 ms",
    ));
    let deleted = timed(&mut zpm.cmd(&["delete", "all"]))?;
    figures.push(figure(
        "delete all (100 apps)",
        "ms",
        deleted.as_secs_f64() * 1000.0,
        "≤ 300 ms",
    ));

    figures.push(figure(
        "kill -9 → new pid online",
        "ms",
        crash_to_online(&zpm, &client)?,
        "≤ 10 ms",
    ));
    let churn = churn(&zpm, &client, (god, spawner), settings.churn_restarts)?;
    Ok(ZpmFigures { figures, churn })
}

/// Median over 20 kills of: SIGKILL the app → `app.list` shows a new pid online.
fn crash_to_online(zpm: &Zpm, client: &Client) -> anyhow::Result<f64> {
    let sleep = which("sleep")?.display().to_string();
    stdout(&mut zpm.cmd(&[
        "start",
        &sleep,
        "--name",
        "victim",
        "--min-uptime",
        "0",
        "--",
        "1000",
    ]))?;
    let mut samples = Vec::new();
    for _ in 0..20 {
        let pid = poll("victim online", LIMIT, || {
            Ok(zpm
                .list(client)?
                .first()
                .filter(|r| r.status == ProcessStatus::Online)
                .and_then(|r| r.pid))
        })?;
        let started = Instant::now();
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid.cast_signed()),
            nix::sys::signal::Signal::SIGKILL,
        )
        .context("kill -9 the victim")?;
        loop {
            let rows = zpm.list(client)?;
            if rows.first().is_some_and(|r| {
                r.status == ProcessStatus::Online && r.pid.is_some_and(|p| p != pid)
            }) {
                break;
            }
            anyhow::ensure!(started.elapsed() < LIMIT, "victim never came back");
        }
        samples.push(started.elapsed());
    }
    timed(&mut zpm.cmd(&["delete", "victim"]))?;
    Ok(median_ms(samples))
}

fn restarts(zpm: &Zpm, client: &Client) -> anyhow::Result<u64> {
    Ok(zpm
        .list(client)?
        .first()
        .map_or(0, |r| u64::from(r.restarts)))
}

/// A crash-looping app restarted `n` times: memory, fds and zombies before and after.
fn churn(zpm: &Zpm, client: &Client, (god, spawner): (u32, u32), n: u64) -> anyhow::Result<Churn> {
    let falsy = which("false")?.display().to_string();
    let args = [
        "start",
        falsy.as_str(),
        "--name",
        "churn",
        "--min-uptime",
        "0",
        "--max-restarts",
        "4000000000",
    ];
    stdout(&mut zpm.cmd(&args))?;
    let warm = 200;
    poll("warm-up restarts", LIMIT, || {
        Ok((restarts(zpm, client)? >= warm).then_some(()))
    })?;
    let mut churn = Churn {
        rss_before_mb: rss_mb(god) + rss_mb(spawner),
        god_fds_before: fd_count(god),
        spawner_fds_before: fd_count(spawner),
        ..Churn::default()
    };
    let started = Instant::now();
    let first = restarts(zpm, client)?;
    poll("churn restarts", Duration::from_secs(600), || {
        std::thread::sleep(Duration::from_millis(100));
        Ok((restarts(zpm, client)? >= first + n).then_some(()))
    })?;
    churn.seconds = started.elapsed().as_secs_f64();
    churn.restarts = restarts(zpm, client)? - first;
    timed(&mut zpm.cmd(&["stop", "churn"]))?;
    churn.rss_after_mb = rss_mb(god) + rss_mb(spawner);
    churn.god_fds_after = fd_count(god);
    churn.spawner_fds_after = fd_count(spawner);
    churn.zombies = zombie_children(spawner);
    Ok(churn)
}

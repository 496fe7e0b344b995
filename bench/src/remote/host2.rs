//! An app on a second host, as God's host sees it: kill -9 of the app → `app.list` on God
//! shows it online with a new pid; and the second host's stand-in stalled (SIGSTOP) for a
//! while → from SIGCONT until God shows the app online again, same pid.

use super::homes::{GodHome, SecondHost, list, poll, run, signal};
use anyhow::Context as _;
use nix::sys::signal::Signal;
use serde::Serialize;
use std::time::{Duration, Instant};
use zpm_proto::{ProcessInfo, ProcessStatus};
use zpm_rpc::Client;

pub const TARGET_KILL_MS: f64 = 20.0;
pub const TARGET_STALL_MS: f64 = 2000.0;
const APP: &str = "victim";
const LIMIT: Duration = Duration::from_secs(60);

#[derive(Serialize)]
pub struct Kills {
    pub count: usize,
    pub samples_ms: Vec<f64>,
    pub p50_ms: f64,
    pub max_ms: f64,
    pub target_ms: f64,
    pub meets_target: bool,
}

#[derive(Serialize)]
pub struct Stall {
    /// SIGSTOP → God shows the app `unknown` (its host down).
    pub unknown_after_ms: Option<f64>,
    /// SIGCONT → God shows the app `online` again.
    pub back_ms: f64,
    /// The same process before and after (nothing restarted).
    pub same_pid: bool,
}

#[derive(Serialize)]
pub struct Stalls {
    pub note: &'static str,
    pub stopped_s: f64,
    pub runs: Vec<Stall>,
    pub p50_ms: f64,
    pub max_ms: f64,
    pub target_ms: f64,
    pub meets_target: bool,
}

fn victim(rows: &[ProcessInfo], host: &str) -> Option<ProcessInfo> {
    rows.iter()
        .find(|r| r.name == APP && r.host == host)
        .cloned()
}

fn online_pid(rows: &[ProcessInfo], host: &str) -> Option<u32> {
    victim(rows, host)
        .filter(|r| r.status == ProcessStatus::Online)
        .and_then(|r| r.pid)
}

fn p50_max(samples: &[f64]) -> (f64, f64) {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let p50 = sorted
        .get(sorted.len().saturating_sub(1) / 2)
        .copied()
        .unwrap_or(0.0);
    (p50, sorted.last().copied().unwrap_or(0.0))
}

/// Starts `sleep 1000` as the victim on `h2`, through God's CLI.
pub fn start_victim(god: &GodHome, h2: &SecondHost) -> anyhow::Result<()> {
    let sleep = crate::lifecycle::zpm::which("sleep")?.display().to_string();
    let args = [
        "start",
        sleep.as_str(),
        "--name",
        APP,
        "--host",
        h2.name.as_str(),
        "--min-uptime",
        "0",
        "--",
        "1000",
    ];
    run(&mut god.cmd(&args), LIMIT).map(drop)
}

async fn wait_online(client: &Client, host: &str) -> anyhow::Result<u32> {
    poll(
        "the victim online",
        LIMIT,
        Duration::from_millis(2),
        || async { Ok(online_pid(&list(client).await?, host)) },
    )
    .await
}

/// kill -9 the victim `n` times; each time, how long until God lists it online again
/// with a new pid (polling `app.list` on God's ipc socket in a tight loop).
pub async fn kills(client: &Client, h2: &SecondHost, n: usize) -> anyhow::Result<Kills> {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let pid = wait_online(client, &h2.name).await?;
        let started = Instant::now();
        signal(pid, Signal::SIGKILL).context("kill -9 the victim")?;
        loop {
            let rows = list(client).await?;
            if online_pid(&rows, &h2.name).is_some_and(|p| p != pid) {
                break;
            }
            anyhow::ensure!(started.elapsed() < LIMIT, "the victim never came back");
        }
        samples.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    let (p50_ms, max_ms) = p50_max(&samples);
    Ok(Kills {
        count: n,
        samples_ms: samples,
        p50_ms,
        max_ms,
        target_ms: TARGET_KILL_MS,
        meets_target: p50_ms <= TARGET_KILL_MS,
    })
}

/// SIGSTOP the stand-in for `stopped`, SIGCONT; `n` times.
pub async fn stalls(
    client: &Client,
    h2: &SecondHost,
    n: usize,
    stopped: Duration,
) -> anyhow::Result<Stalls> {
    let mut runs = Vec::with_capacity(n);
    for i in 0..n {
        eprintln!(
            "remote: stall {} of {n}: SIGSTOP the stand-in for {:.0} s…",
            i + 1,
            stopped.as_secs_f64()
        );
        runs.push(stall(client, h2, stopped).await?);
    }
    let backs: Vec<f64> = runs.iter().map(|r| r.back_ms).collect();
    let (p50_ms, max_ms) = p50_max(&backs);
    Ok(Stalls {
        note: "SIGSTOP of the second host's stand-in (the process carrying its tunnel): a \
               stall, not a network partition",
        stopped_s: stopped.as_secs_f64(),
        meets_target: max_ms <= TARGET_STALL_MS && runs.iter().all(|r| r.same_pid),
        runs,
        p50_ms,
        max_ms,
        target_ms: TARGET_STALL_MS,
    })
}

async fn stall(client: &Client, h2: &SecondHost, stopped: Duration) -> anyhow::Result<Stall> {
    let pid = wait_online(client, &h2.name).await?;
    signal(h2.pid(), Signal::SIGSTOP)?;
    let stopped_at = Instant::now();
    let mut unknown_after_ms = None;
    while stopped_at.elapsed() < stopped {
        if unknown_after_ms.is_none() {
            let rows = list(client).await?;
            if victim(&rows, &h2.name).is_some_and(|r| r.status == ProcessStatus::Unknown) {
                unknown_after_ms = Some(stopped_at.elapsed().as_secs_f64() * 1000.0);
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    signal(h2.pid(), Signal::SIGCONT)?;
    let resumed = Instant::now();
    let back = loop {
        let rows = list(client).await?;
        if let Some(now) = online_pid(&rows, &h2.name) {
            break now;
        }
        anyhow::ensure!(
            resumed.elapsed() < LIMIT,
            "the victim was not online again within {LIMIT:?} of SIGCONT"
        );
    };
    Ok(Stall {
        unknown_after_ms,
        back_ms: resumed.elapsed().as_secs_f64() * 1000.0,
        same_pid: back == pid,
    })
}

//! The metrics agent process: joins God, then every `[metrics] interval` samples the apps
//! God lists, reports to God (which keeps the latest per app for `ls` and publishes
//! `metrics`), asks God to restart an app over its `max_memory_restart`, and serves
//! Prometheus text when `[metrics] prometheus` is set.

use super::{AppLabel, RestartDebounce, Sampler, render, serve};
use crate::agent;
use crate::link::Holdings;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use zpm_host::config::Config;
use zpm_host::home::Home;
use zpm_proto::commands::MemoryRestart;
use zpm_proto::method::{agent as agent_m, app, god};
use zpm_proto::metrics::MetricsReport;
use zpm_proto::{ProcessInfo, Role};
use zpm_rpc::{Client, NoParams};

#[derive(Debug, Clone)]
pub struct MetricsOptions {
    pub home: Home,
    pub host: String,
}

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error(transparent)]
    Lock(#[from] zpm_host::LockError),
    #[error(transparent)]
    Config(#[from] zpm_host::config::ConfigError),
    #[error("cannot serve Prometheus: {0}")]
    Serve(#[from] super::ServeError),
}

/// Samples with the same pid after which an unanswered memory restart is asked again.
const RETRY_MEMORY_RESTART_AFTER: u32 = 5;

/// What a Prometheus scrape renders: the latest sample and what God said around it.
#[derive(Default)]
struct Snapshot {
    report: Option<MetricsReport>,
    apps: Vec<AppLabel>,
    own: Vec<(String, u32, u64)>,
    bus_dropped: u64,
}

type Shared = Arc<Mutex<Snapshot>>;

/// Runs the metrics agent until God orders it to exit.
pub async fn run(options: MetricsOptions) -> Result<(), MetricsError> {
    let config = Config::load(&options.home.config_file())?;
    let mut joined = agent::join(
        &options.home,
        Role::Metrics,
        &options.host,
        Holdings::default(),
    )?;
    let snapshot = Shared::default();
    let _prometheus = match config.metrics.prometheus {
        Some(addr) => {
            let shared = Arc::clone(&snapshot);
            let (task, bound) = serve(addr, move || scrape(&shared)).await?;
            tracing::info!(%bound, "serving Prometheus /metrics");
            Some(AbortOnDrop(task))
        }
        None => None,
    };
    let prometheus = config.metrics.prometheus.is_some();
    let sampling = AbortOnDrop(tokio::spawn(sample_forever(
        Arc::clone(&joined.client),
        options.host.clone(),
        config.metrics.interval,
        prometheus.then_some(snapshot),
    )));
    agent::until_exit(
        &options.home,
        &mut joined.pushes,
        &joined.interest,
        |push| {
            tracing::warn!(method = %push.method, "unexpected push");
        },
    )
    .await;
    drop(sampling);
    tracing::info!("metrics agent exiting");
    Ok(())
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn scrape(shared: &Shared) -> String {
    let snapshot = shared.lock().unwrap_or_else(PoisonError::into_inner);
    match &snapshot.report {
        Some(report) => render(report, &snapshot.apps, &snapshot.own, snapshot.bus_dropped),
        None => String::new(),
    }
}

/// Samples this host's apps every `interval` and reports them to God.
async fn sample_forever(
    client: Arc<Client>,
    host: String,
    interval: Duration,
    prometheus: Option<Shared>,
) {
    let mut sampler = Sampler::new();
    let mut debounce = RestartDebounce::new(RETRY_MEMORY_RESTART_AFTER);
    // Only this host's apps: the pids of other hosts' mean nothing here.
    let mine = zpm_proto::commands::ListFilter { host: Some(host) };
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        ticks.tick().await;
        // God down: nothing to report to, and no list of apps. Try again next tick.
        let Ok(rows) = client
            .call_method::<app::List>(&Some(mine.clone()), interval)
            .await
        else {
            continue;
        };
        let pids: Vec<(u32, u32)> = rows.iter().filter_map(|r| Some((r.id, r.pid?))).collect();
        // One walk of /proc: a few ms of blocking reads, kept off the async workers' path.
        let report = tokio::task::block_in_place(|| sampler.sample(&pids));
        restart_over_limit(&client, &mut debounce, &report, &rows);
        if let Err(e) = client.notify_method::<agent_m::Metrics>(&report) {
            tracing::debug!(error = %e, "metrics report dropped (queue full)");
        }
        if let Some(shared) = &prometheus {
            let own = own_processes(&client, interval).await;
            let bus_dropped = own.1;
            let mut snapshot = shared.lock().unwrap_or_else(PoisonError::into_inner);
            *snapshot = Snapshot {
                apps: rows.iter().map(label).collect(),
                report: Some(report),
                own: own.0,
                bus_dropped,
            };
        }
    }
}

/// Asks God (without waiting for the restart) to restart every app over its limit.
fn restart_over_limit(
    client: &Arc<Client>,
    debounce: &mut RestartDebounce,
    report: &MetricsReport,
    rows: &[ProcessInfo],
) {
    let limits: HashMap<u32, u64> = rows
        .iter()
        .filter_map(|r| Some((r.id, r.max_memory_restart?)))
        .collect();
    for (id, memory) in debounce.check(&report.apps, &limits) {
        let client = Arc::clone(client);
        tokio::spawn(async move {
            let asked = MemoryRestart { id, memory };
            let timeout = Duration::from_secs(60);
            if let Err(e) = client
                .call_method::<agent_m::MemoryRestart>(&asked, timeout)
                .await
            {
                tracing::warn!(id, memory, error = %e, "memory restart refused");
            }
        });
    }
}

fn label(row: &ProcessInfo) -> AppLabel {
    AppLabel {
        id: row.id,
        name: row.name.clone(),
        namespace: row.namespace.clone(),
        status: serde_json::to_value(row.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        restarts: row.restarts,
        uptime_ms: row.uptime_ms.unwrap_or(0),
    }
}

/// zpm's own processes on this host with their resident memory, and the bus's drops.
async fn own_processes(client: &Client, timeout: Duration) -> (Vec<(String, u32, u64)>, u64) {
    let mut own = Vec::new();
    let mut dropped = 0;
    if let Ok(pong) = client.call_method::<god::Ping>(&NoParams {}, timeout).await {
        dropped = pong.bus_dropped;
        own.push((
            "god".to_owned(),
            pong.pid,
            zpm_host::procfs::rss_bytes(pong.pid).unwrap_or(0),
        ));
    }
    if let Ok(agents) = client
        .call_method::<agent_m::List>(&NoParams {}, timeout)
        .await
    {
        for a in agents.into_iter().filter(|a| a.connected) {
            let rss = zpm_host::procfs::rss_bytes(a.pid).unwrap_or(0);
            own.push((a.role, a.pid, rss));
        }
    }
    (own, dropped)
}

//! zpm-rpc: sequential round-trip latency with one client, and throughput with several
//! clients each keeping many calls in flight. Server and clients share this process and
//! its tokio runtime.

use crate::report::{Table, micros, rate, thousands, verdict};
use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tempfile::TempDir;
use zpm_rpc::{Client, NoParams, RpcError, Server};

zpm_rpc::methods! {
    /// The benchmark's own method: the smallest request and reply.
    Ping = "ping" (NoParams) -> String;
}

const CALL_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Throughput calls made before the measured window opens.
const THROUGHPUT_WARMUP: Duration = Duration::from_millis(500);
const TARGET_P50_IPC_US: f64 = 60.0;
const TARGET_REQ_PER_S: f64 = 100_000.0;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Transport {
    Ipc,
    Tcp,
    Both,
}

#[derive(Args)]
pub struct Settings {
    /// Which transport(s) to measure.
    #[arg(long, value_enum, default_value_t = Transport::Both)]
    transport: Transport,
    /// Sequential calls made before the round-trip measurement.
    #[arg(long, default_value_t = 2_000)]
    warmup_calls: u64,
    /// Sequential calls measured for round-trip latency.
    #[arg(long, default_value_t = 20_000)]
    calls: u64,
    /// Clients in the throughput run.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Calls each throughput client keeps in flight.
    #[arg(long, default_value_t = 32)]
    in_flight: usize,
    /// Length of the measured throughput window, in seconds.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
}

#[derive(Serialize)]
pub struct Results {
    pub runs: Vec<TransportRun>,
}

#[derive(Serialize)]
pub struct TransportRun {
    pub transport: &'static str,
    pub endpoint: String,
    pub round_trip: Latency,
    pub throughput: Throughput,
}

#[derive(Serialize)]
pub struct Latency {
    pub warmup_calls: u64,
    pub calls: u64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub mean_us: f64,
    pub min_us: f64,
    pub max_us: f64,
    /// Only set over ipc, where the target applies.
    pub target_p50_us: Option<f64>,
    pub meets_target: Option<bool>,
}

#[derive(Serialize)]
pub struct Throughput {
    pub clients: usize,
    pub in_flight_per_client: usize,
    pub seconds: f64,
    pub requests: u64,
    pub errors: u64,
    pub req_per_s: f64,
    pub target_req_per_s: f64,
    pub meets_target: bool,
}

pub async fn run(settings: &Settings) -> anyhow::Result<Results> {
    let transports: &[&'static str] = match settings.transport {
        Transport::Ipc => &["ipc"],
        Transport::Tcp => &["tcp"],
        Transport::Both => &["ipc", "tcp"],
    };
    let mut runs = Vec::new();
    for transport in transports {
        eprintln!("rpc: measuring over {transport}…");
        runs.push(run_transport(transport, settings).await?);
    }
    Ok(Results { runs })
}

async fn run_transport(
    transport: &'static str,
    settings: &Settings,
) -> anyhow::Result<TransportRun> {
    let dir = tempfile::tempdir().context("creating a temporary directory for the ipc socket")?;
    let server = start_server(transport, &dir).await?;
    let endpoint = server
        .endpoints()
        .first()
        .context("the rpc server reported no bound endpoint")?
        .clone();
    let round_trip = round_trip(&endpoint, transport, settings).await?;
    let throughput = throughput(&endpoint, settings).await?;
    Ok(TransportRun {
        transport,
        endpoint,
        round_trip,
        throughput,
    })
}

async fn start_server(transport: &str, dir: &TempDir) -> anyhow::Result<Server> {
    let endpoint = match transport {
        "ipc" => format!("ipc://{}", dir.path().join("rpc.sock").display()),
        _ => "tcp://127.0.0.1:0".to_owned(),
    };
    Server::builder()
        .handle::<Ping, _, _>(|_, _| async { Ok::<_, RpcError>("pong".to_owned()) })
        .bind(&[&endpoint])
        .await
        .with_context(|| format!("binding the rpc server on {endpoint}"))
}

async fn connected_client(endpoint: &str) -> anyhow::Result<Client> {
    let client = Client::new(endpoint);
    if !client.wait_connected(CONNECT_TIMEOUT).await {
        bail!("rpc client could not connect to {endpoint} within {CONNECT_TIMEOUT:?}");
    }
    Ok(client)
}

async fn ping(client: &Client) -> anyhow::Result<()> {
    client
        .call_method::<Ping>(&NoParams {}, CALL_TIMEOUT)
        .await
        .context("calling ping")?;
    Ok(())
}

async fn round_trip(
    endpoint: &str,
    transport: &str,
    settings: &Settings,
) -> anyhow::Result<Latency> {
    let client = connected_client(endpoint).await?;
    for _ in 0..settings.warmup_calls {
        ping(&client).await?;
    }
    let mut nanos = Vec::with_capacity(settings.calls as usize);
    for _ in 0..settings.calls {
        let started = Instant::now();
        ping(&client).await?;
        nanos.push(started.elapsed().as_nanos() as u64);
    }
    let target = (transport == "ipc").then_some(TARGET_P50_IPC_US);
    Ok(latency(nanos, settings.warmup_calls, target))
}

pub fn latency(mut nanos: Vec<u64>, warmup_calls: u64, target_p50_us: Option<f64>) -> Latency {
    nanos.sort_unstable();
    let us = |n: u64| n as f64 / 1000.0;
    let at = |q: f64| {
        let index = ((nanos.len() as f64 * q).ceil() as usize).saturating_sub(1);
        nanos.get(index).copied().map_or(0.0, us)
    };
    let mean = if nanos.is_empty() {
        0.0
    } else {
        us(nanos.iter().sum::<u64>()) / nanos.len() as f64
    };
    let p50_us = at(0.50);
    Latency {
        warmup_calls,
        calls: nanos.len() as u64,
        p50_us,
        p99_us: at(0.99),
        mean_us: mean,
        min_us: nanos.first().copied().map_or(0.0, us),
        max_us: nanos.last().copied().map_or(0.0, us),
        target_p50_us,
        meets_target: target_p50_us.map(|target| p50_us <= target),
    }
}

/// Shared between the throughput callers.
#[derive(Default)]
struct Counters {
    stop: AtomicBool,
    done: AtomicU64,
    errors: AtomicU64,
}

async fn throughput(endpoint: &str, settings: &Settings) -> anyhow::Result<Throughput> {
    let counters = Arc::new(Counters::default());
    let mut callers = Vec::new();
    let mut clients = Vec::new();
    for _ in 0..settings.clients {
        let client = Arc::new(connected_client(endpoint).await?);
        for _ in 0..settings.in_flight {
            callers.push(tokio::spawn(call_until_stopped(
                Arc::clone(&client),
                Arc::clone(&counters),
            )));
        }
        clients.push(client);
    }
    // Sleeping here only times the measured window; the callers run flat out meanwhile.
    tokio::time::sleep(THROUGHPUT_WARMUP).await;
    let (start_count, started) = (counters.done.load(Ordering::Relaxed), Instant::now());
    tokio::time::sleep(Duration::from_secs_f64(settings.seconds)).await;
    let (end_count, elapsed) = (counters.done.load(Ordering::Relaxed), started.elapsed());
    counters.stop.store(true, Ordering::Relaxed);
    for caller in callers {
        caller.await.context("a throughput caller task failed")?;
    }
    drop(clients);
    let requests = end_count - start_count;
    let req_per_s = requests as f64 / elapsed.as_secs_f64();
    Ok(Throughput {
        clients: settings.clients,
        in_flight_per_client: settings.in_flight,
        seconds: elapsed.as_secs_f64(),
        requests,
        errors: counters.errors.load(Ordering::Relaxed),
        req_per_s,
        target_req_per_s: TARGET_REQ_PER_S,
        meets_target: req_per_s >= TARGET_REQ_PER_S,
    })
}

async fn call_until_stopped(client: Arc<Client>, counters: Arc<Counters>) {
    while !counters.stop.load(Ordering::Relaxed) {
        match client.call_method::<Ping>(&NoParams {}, CALL_TIMEOUT).await {
            Ok(_) => counters.done.fetch_add(1, Ordering::Relaxed),
            Err(_) => counters.errors.fetch_add(1, Ordering::Relaxed),
        };
    }
}

pub fn print(results: &Results) {
    let mut table = Table::new(
        "zpm-rpc (server and clients in one process)",
        &["transport", "measure", "value", "target", "status"],
    );
    for run in &results.runs {
        let rt = &run.round_trip;
        let target = rt
            .target_p50_us
            .map_or_else(|| "-".to_owned(), |t| format!("<= {}", micros(t)));
        let status = rt.meets_target.map_or_else(|| "-".to_owned(), verdict);
        let calls = thousands(rt.calls);
        table.row(vec![
            run.transport.into(),
            format!("round trip p50 ({calls} calls)"),
            micros(rt.p50_us),
            target,
            status,
        ]);
        table.row(vec![
            run.transport.into(),
            "round trip p99".into(),
            micros(rt.p99_us),
            "-".into(),
            "-".into(),
        ]);
        table.row(vec![
            run.transport.into(),
            "round trip mean".into(),
            micros(rt.mean_us),
            "-".into(),
            "-".into(),
        ]);
        let tp = &run.throughput;
        let label = format!(
            "throughput {} clients x {} in flight",
            tp.clients, tp.in_flight_per_client
        );
        table.row(vec![
            run.transport.into(),
            label,
            rate(tp.req_per_s),
            format!(">= {}", rate(tp.target_req_per_s)),
            verdict(tp.meets_target),
        ]);
        let detail = format!(
            "{} calls in {:.2} s, {} errors",
            thousands(tp.requests),
            tp.seconds,
            tp.errors
        );
        table.row(vec![
            run.transport.into(),
            "  measured".into(),
            detail,
            "-".into(),
            "-".into(),
        ]);
    }
    table.print();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_the_right_samples() {
        let nanos: Vec<u64> = (1..=100).map(|n| n * 1000).collect();
        let latency = latency(nanos, 0, Some(60.0));
        assert!((latency.p50_us - 50.0).abs() < f64::EPSILON);
        assert!((latency.p99_us - 99.0).abs() < f64::EPSILON);
        assert!((latency.mean_us - 50.5).abs() < 1e-9);
        assert_eq!(latency.meets_target, Some(true));
    }
}

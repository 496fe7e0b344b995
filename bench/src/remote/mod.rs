//! `zpm-bench remote`: zpm across hosts on one machine, through the keyed tunnel on
//! loopback TCP — rpc round trips and bus delivery against the same over ipc, an app on a
//! second host killed (-9) until God sees it back, and the second host stalled.

mod bus;
pub mod homes;
mod host2;
mod rpc;

use crate::report::{Table, micros, rate, thousands, verdict};
use homes::{GodHome, SecondHost, client, zpm_exe};
use serde::Serialize;
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Settings {
    /// The zpm binary to measure (default: `zpm` next to this executable).
    #[arg(long)]
    pub zpm: Option<PathBuf>,
    /// `ping`s before measuring, per transport.
    #[arg(long, default_value_t = 1_000)]
    pub warmup_calls: u64,
    /// `ping`s measured per transport (in alternating blocks of 1000).
    #[arg(long, default_value_t = 10_000)]
    pub calls: u64,
    /// Events published per bus run (one over ipc, one through the tunnel).
    #[arg(long, default_value_t = 1_000_000)]
    pub events: u64,
    /// The subscriber's credit window; the publisher stays within half of it.
    #[arg(long, default_value_t = 4096)]
    pub credit: u32,
    /// kill -9s of the app on the second host.
    #[arg(long, default_value_t = 20)]
    pub kills: usize,
    /// Stalls of the second host.
    #[arg(long, default_value_t = 3)]
    pub stalls: usize,
    /// How long each stall lasts, in seconds.
    #[arg(long, default_value_t = 10.0)]
    pub stall_seconds: f64,
    /// Print one JSON object instead of tables.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
pub struct Results {
    pub god_endpoint: String,
    pub rpc_ipc: crate::rpc::Latency,
    pub rpc_tunnel: crate::rpc::Latency,
    pub bus_event_bytes: usize,
    pub bus_credit: u32,
    pub bus_ipc: crate::bus::Delivery,
    pub bus_tunnel: crate::bus::Delivery,
    pub kill: host2::Kills,
    pub stall: host2::Stalls,
    /// God's tunnel counters (`zpm ping --json` guards.tcp) at the end.
    pub tcp_counters: std::collections::BTreeMap<String, u64>,
    /// Processes SIGKILLed after `zpm kill` (0: everything exited when told).
    pub leftovers_killed: usize,
}

pub async fn run(settings: &Settings) -> anyhow::Result<Results> {
    let exe = zpm_exe(settings.zpm.as_deref())?;
    eprintln!("remote: starting God on loopback TCP with a key…");
    let god = GodHome::start(&exe)?;
    let rpc = client(&god.rpc_endpoint());
    god.wait_local_agents(&rpc).await?;

    eprintln!("remote: ping over ipc and through the tunnel…");
    let latency = rpc::measure(&god, settings.warmup_calls, settings.calls).await?;
    let buses = bus::measure(settings.events, settings.credit).await?;

    eprintln!("remote: joining host h2 and starting an app on it…");
    let mut h2 = SecondHost::join(&exe, &god, "h2", &rpc).await?;
    host2::start_victim(&god, &h2)?;
    eprintln!(
        "remote: kill -9 of the app on h2, {} times…",
        settings.kills
    );
    let kill = host2::kills(&rpc, &h2, settings.kills).await?;
    let stopped = Duration::from_secs_f64(settings.stall_seconds);
    let stall = host2::stalls(&rpc, &h2, settings.stalls, stopped).await?;

    let pong = homes::ping(&rpc).await?;
    let tcp_counters = pong.guards.get("tcp").cloned().unwrap_or_default();
    drop(rpc);
    eprintln!("remote: stopping everything…");
    let leftovers_killed = tokio::task::block_in_place(|| god.stop() + h2.stop());
    Ok(Results {
        god_endpoint: god.endpoint.clone(),
        rpc_ipc: latency.ipc,
        rpc_tunnel: latency.tunnel,
        bus_event_bytes: buses.event_bytes,
        bus_credit: settings.credit,
        bus_ipc: buses.ipc,
        bus_tunnel: buses.tunnel,
        kill,
        stall,
        tcp_counters,
        leftovers_killed,
    })
}

fn ratio(tunnel: f64, ipc: f64) -> String {
    if ipc > 0.0 {
        format!("{:.2}×", tunnel / ipc)
    } else {
        "-".into()
    }
}

pub fn print(results: &Results) {
    print_transports(results);
    println!();
    print_second_host(results);
}

fn print_transports(r: &Results) {
    let mut table = Table::new(
        format!(
            "zpm-bench remote: God on {} with a key; \"tunnel\" = another host's view \
             (rpc/bus via the keyed tunnel's local end)",
            r.god_endpoint
        ),
        &[
            "measure",
            "ipc",
            "tunnel",
            "tunnel / ipc",
            "target",
            "status",
        ],
    );
    let (ipc, tunnel) = (&r.rpc_ipc, &r.rpc_tunnel);
    table.row(vec![
        format!(
            "ping round trip p50 ({} calls each)",
            thousands(tunnel.calls)
        ),
        micros(ipc.p50_us),
        micros(tunnel.p50_us),
        ratio(tunnel.p50_us, ipc.p50_us),
        format!("tunnel <= {}", micros(rpc::TARGET_TUNNEL_P50_US)),
        verdict(tunnel.p50_us <= rpc::TARGET_TUNNEL_P50_US),
    ]);
    table.row(vec![
        "ping round trip p99".into(),
        micros(ipc.p99_us),
        micros(tunnel.p99_us),
        ratio(tunnel.p99_us, ipc.p99_us),
        "-".into(),
        "-".into(),
    ]);
    let (bi, bt) = (&r.bus_ipc, &r.bus_tunnel);
    table.row(vec![
        format!(
            "bus 1→1 delivered ({} events of {} B, credit {})",
            thousands(bt.events_published),
            r.bus_event_bytes,
            r.bus_credit
        ),
        rate(bi.events_per_s),
        rate(bt.events_per_s),
        ratio(bt.events_per_s, bi.events_per_s),
        format!("tunnel >= {}", rate(bus::TARGET_TUNNEL_EVENTS_PER_S)),
        verdict(bt.events_per_s >= bus::TARGET_TUNNEL_EVENTS_PER_S),
    ]);
    let lost = |d: &crate::bus::Delivery| {
        format!(
            "{} ({} gaps, {} reported dropped)",
            thousands(d.loss),
            thousands(d.gaps),
            thousands(d.dropped_reported)
        )
    };
    table.row(vec![
        "bus loss (published - received)".into(),
        lost(bi),
        lost(bt),
        "-".into(),
        "0".into(),
        verdict(bi.loss == 0 && bt.loss == 0),
    ]);
    table.print();
}

fn print_second_host(r: &Results) {
    let k = &r.kill;
    let mut table = Table::new(
        "app on host h2 (its own ZPM_HOME, `zpm agent all --connect … --host h2`), seen from God's host",
        &["measure", "value", "target", "status"],
    );
    table.row(vec![
        format!("kill -9 → online, new pid: p50 of {}", k.count),
        format!("{:.1} ms", k.p50_ms),
        format!("<= {:.0} ms", k.target_ms),
        verdict(k.meets_target),
    ]);
    table.row(vec![
        "  max".into(),
        format!("{:.1} ms", k.max_ms),
        format!("<= {:.0} ms", k.target_ms),
        verdict(k.max_ms <= k.target_ms),
    ]);
    let s = &r.stall;
    for (n, run) in s.runs.iter().enumerate() {
        let unknown = run
            .unknown_after_ms
            .map_or_else(|| "never".to_owned(), |ms| format!("{ms:.0} ms"));
        table.row(vec![
            format!(
                "stall #{}: SIGCONT → online (h2 stopped {:.0} s; `unknown` after {unknown})",
                n + 1,
                s.stopped_s
            ),
            format!("{:.1} ms", run.back_ms),
            format!("<= {:.0} ms, same pid", s.target_ms),
            verdict(run.back_ms <= s.target_ms && run.same_pid),
        ]);
    }
    table.print();
    println!("note: {}", s.note);
    let counters: Vec<String> = r
        .tcp_counters
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(name, n)| format!("{name} {n}"))
        .collect();
    println!("God's tunnel counters: {}", counters.join(", "));
    println!(
        "processes left after `zpm kill` and SIGKILLed: {}",
        r.leftovers_killed
    );
}

/// Runs on a multi-thread runtime (`block_in_place` for the blocking teardown).
pub async fn run_and_print(settings: &Settings) -> anyhow::Result<()> {
    let results = run(settings).await?;
    crate::report::emit(&results, settings.json, print)
}

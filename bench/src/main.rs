//! zpm-bench: measures zpm-rpc round trips and throughput, and zpm-bus delivery, loss and
//! memory under a stalled subscriber (in this one process, over ipc in a temporary
//! directory or loopback tcp); and the real `zpm` binary's app lifecycle and crash
//! recovery, side by side with PM2 when it is installed; and zpm across hosts: the keyed
//! tunnel on loopback TCP, an app on a second host, and a simulated fleet; and cluster
//! mode with a zero-downtime reload under load, beside PM2's.

mod apply;
mod bus;
mod depends;
mod fleet;
mod lifecycle;
mod reload;
mod remote;
mod report;
mod rpc;
mod rss;
mod watch;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use serde::Serialize;

#[derive(Parser)]
#[command(name = "zpm-bench", about = "Benchmarks for zpm's rpc and event bus")]
struct Cli {
    /// Tokio worker threads shared by servers, clients, publisher and subscribers.
    #[arg(long, global = true, default_value_t = 2)]
    workers: usize,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Round-trip latency and throughput of zpm-rpc.
    Rpc(RpcArgs),
    /// Delivery rate, loss and stalled-subscriber memory of zpm-bus.
    Bus(BusArgs),
    /// rpc, then bus.
    All(AllArgs),
    /// The real zpm binary vs PM2: CLI latency, start/delete 100 apps, kill -9 → online, RSS, churn.
    Lifecycle(LifecycleArgs),
    /// SIGKILL God, then the spawner, with apps running (and PM2's daemon, for comparison).
    Crash(LifecycleArgs),
    /// The log path: `seq` as the app → every byte on disk, a 10M-line flood, `logs --lines`.
    Logs(LifecycleArgs),
    /// Multi-host: rpc and bus through the keyed tunnel vs ipc, an app on a second host
    /// killed and stalled, as God sees it.
    Remote(remote::Settings),
    /// A simulated fleet of fake spawner hosts (10, 50, 100 × 100 apps): God's memory,
    /// `zpm ls --json`, and its event relay at saturation.
    Fleet(fleet::Settings),
    /// Cluster mode and zero-downtime reload, zpm vs PM2: a Node HTTP server with `-i 4`
    /// started until all are ready, then reloaded under continuous load (failed requests,
    /// requests/s, every pid replaced); and zpm with a Python server on `--listen`.
    Reload(reload::Settings),
    /// `depends_on`: a 4-level chain of 20 apps ready in 100 ms each, started until all are
    /// ready (the critical path, not the sum), beside the same apps unordered and PM2.
    Depends(depends::Settings),
    /// `zpm apply` of an unchanged 50-app ecosystem file, end to end, beside PM2's
    /// `startOrReload` of the same file.
    Apply(apply::Settings),
    /// File watching: idle CPU of watching 10,000 files, and write → restart begun, zpm
    /// beside PM2.
    Watch(watch::Settings),
}

#[derive(Args)]
struct LifecycleArgs {
    #[command(flatten)]
    settings: lifecycle::Settings,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

/// Runs the scenarios that drive real processes (they bring their own runtime).
fn run_processes(command: &Command) -> Option<anyhow::Result<()>> {
    let (args, crash) = match command {
        Command::Lifecycle(args) => (args, false),
        Command::Crash(args) => (args, true),
        Command::Logs(args) => return Some(run_logs(args)),
        Command::Reload(settings) => return Some(reload::run_and_print(settings)),
        Command::Depends(settings) => return Some(depends::run_and_print(settings)),
        Command::Apply(settings) => return Some(apply::run_and_print(settings)),
        Command::Watch(settings) => return Some(watch::run_and_print(settings)),
        _ => return None,
    };
    Some((|| {
        if crash {
            let results = lifecycle::crash::run(&args.settings)?;
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&results).context("encoding JSON")?
                );
            } else {
                lifecycle::crash::print(&results);
            }
        } else {
            let results = lifecycle::run(&args.settings)?;
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&results).context("encoding JSON")?
                );
            } else {
                lifecycle::print(&results);
            }
        }
        Ok(())
    })())
}

fn run_logs(args: &LifecycleArgs) -> anyhow::Result<()> {
    let results = lifecycle::logs::run(&args.settings)?;
    if args.json {
        let text = serde_json::to_string_pretty(&results).context("encoding JSON")?;
        println!("{text}");
    } else {
        lifecycle::print_figures("logs", results.pm2_version.as_deref(), &results.figures);
    }
    Ok(())
}

#[derive(Args)]
struct RpcArgs {
    #[command(flatten)]
    rpc: rpc::Settings,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct BusArgs {
    #[command(flatten)]
    bus: bus::Settings,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct AllArgs {
    #[command(flatten)]
    rpc: rpc::Settings,
    #[command(flatten)]
    bus: bus::Settings,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

/// Everything measured in one run; `--json` prints this.
#[derive(Serialize)]
struct Report {
    workers: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    rpc: Option<rpc::Results>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bus: Option<bus::Results>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(outcome) = run_processes(&cli.command) {
        return outcome;
    }
    let workers = cli.workers.max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .context("building the tokio runtime")?;
    match &cli.command {
        Command::Remote(settings) => return runtime.block_on(remote::run_and_print(settings)),
        Command::Fleet(settings) => return runtime.block_on(fleet::run_and_print(settings)),
        _ => {}
    }
    let (report, json) = runtime.block_on(run(cli.command, workers))?;
    if json {
        let text = serde_json::to_string_pretty(&report).context("encoding the results as JSON")?;
        println!("{text}");
    } else {
        print(&report);
    }
    Ok(())
}

async fn run(command: Command, workers: usize) -> anyhow::Result<(Report, bool)> {
    let mut report = Report {
        workers,
        rpc: None,
        bus: None,
    };
    let json = match command {
        Command::Rpc(args) => {
            report.rpc = Some(rpc::run(&args.rpc).await?);
            args.json
        }
        Command::Bus(args) => {
            report.bus = Some(bus::run(&args.bus).await?);
            args.json
        }
        Command::All(args) => {
            report.rpc = Some(rpc::run(&args.rpc).await?);
            report.bus = Some(bus::run(&args.bus).await?);
            args.json
        }
        Command::Lifecycle(_)
        | Command::Crash(_)
        | Command::Logs(_)
        | Command::Remote(_)
        | Command::Fleet(_)
        | Command::Reload(_)
        | Command::Depends(_)
        | Command::Apply(_)
        | Command::Watch(_) => {
            unreachable!("run on their own")
        }
    };
    Ok((report, json))
}

fn print(report: &Report) {
    println!(
        "zpm-bench: everything in this one process on a multi-thread tokio runtime with {} worker(s)\n",
        report.workers
    );
    if let Some(rpc) = &report.rpc {
        rpc::print(rpc);
        println!();
    }
    if let Some(bus) = &report.bus {
        bus::print(bus);
        println!();
    }
}

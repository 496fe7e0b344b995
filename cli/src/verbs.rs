//! What each CLI verb does: one or two rpc calls to God, then output.

use crate::cli::{Command, StartArgs, TargetArgs};
use crate::connect::{client, ensure_daemon, god_listening};
use crate::ecosystem::{StartOptions, resolve_start};
use crate::output::{agents_table, describe_table, print_json, print_line, process_table};
use anyhow::{Context as _, bail};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::time::Duration;
use zpm_proto::commands::{AppDescription, Scale, SignalApps, StartApps, Target};
use zpm_proto::home::Home;
use zpm_proto::validate;
use zpm_proto::{AgentInfo, ProcessInfo};
use zpm_rpc::{CallError, Client, NoParams};

/// Long enough for God to stop slow apps (kill_timeout) before it answers.
const VERB_TIMEOUT: Duration = Duration::from_secs(60);

async fn call<P: Serialize + ?Sized, R: DeserializeOwned>(
    client: &Client,
    method: &str,
    params: &P,
) -> anyhow::Result<R> {
    match client.call(method, params, VERB_TIMEOUT).await {
        Ok(result) => Ok(result),
        Err(CallError::Remote(e)) => bail!("{}", e.message),
        Err(e) => Err(e).with_context(|| format!("calling {method}")),
    }
}

pub async fn run(command: Command, home: &Home) -> anyhow::Result<()> {
    match command {
        Command::Start(args) => start(home, *args).await,
        Command::Stop(t) => lifecycle(home, "app.stop", t).await,
        Command::Restart(t) => lifecycle(home, "app.restart", t).await,
        Command::Delete(t) => lifecycle(home, "app.delete", t).await,
        Command::Ls(a) => list(home, a.json).await,
        Command::Describe(t) => describe(home, t).await,
        Command::Signal {
            signal,
            target,
            json,
        } => {
            let signal = validate::signal_name("signal", &signal)?;
            let (client, _) = ensure_daemon(home).await?;
            let rows: Vec<ProcessInfo> =
                call(&client, "app.signal", &SignalApps { target, signal }).await?;
            show_after(&client, &rows, json).await
        }
        Command::Scale {
            name,
            instances,
            json,
        } => {
            validate::scale(&name, instances)?;
            let (client, _) = ensure_daemon(home).await?;
            let rows: Vec<ProcessInfo> =
                call(&client, "app.scale", &Scale { name, instances }).await?;
            show_after(&client, &rows, json).await
        }
        Command::Ping(a) => {
            let (_, pong) = ensure_daemon(home).await?;
            if a.json {
                print_json(&pong)
            } else {
                print_line("pong")
            }
        }
        Command::Kill => kill(home).await,
        Command::Save => {
            let (client, _) = ensure_daemon(home).await?;
            let saved: serde_json::Value = call(&client, "god.save", &NoParams {}).await?;
            print_line(&format!(
                "zpm: saved {} app(s) to {}",
                saved["apps"],
                saved["path"].as_str().unwrap_or("?")
            ))
        }
        Command::Resurrect(a) => {
            let (client, _) = ensure_daemon(home).await?;
            let rows: Vec<ProcessInfo> = call(&client, "god.resurrect", &NoParams {}).await?;
            show_after(&client, &rows, a.json).await
        }
        Command::Startup { install } => crate::startup::run(home, install),
        Command::Agents(a) => {
            let (client, _) = ensure_daemon(home).await?;
            let agents: Vec<AgentInfo> = call(&client, "agents.list", &NoParams {}).await?;
            if a.json {
                print_json(&agents)
            } else {
                print_line(&agents_table(&agents))
            }
        }
        Command::Version(_)
        | Command::Completions { .. }
        | Command::Daemon
        | Command::Agent { .. } => {
            unreachable!("handled before a runtime is built")
        }
    }
}

/// After a verb: JSON of the rows it touched, or the whole table as PM2 shows it.
async fn show_after(client: &Client, rows: &[ProcessInfo], json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(rows);
    }
    let all: Vec<ProcessInfo> = call(client, "app.list", &NoParams {}).await?;
    print_line(&process_table(&all))
}

fn start_options(args: &StartArgs) -> anyhow::Result<StartOptions> {
    let instances = match args.instances.as_deref() {
        None => None,
        Some("max" | "-1" | "0") => {
            Some(std::thread::available_parallelism().map_or(1, |n| n.get() as u32))
        }
        Some(n) => Some(
            n.parse::<u32>()
                .with_context(|| format!("--instances {n:?} is not a number or `max`"))?,
        ),
    };
    Ok(StartOptions {
        name: args.name.clone(),
        instances,
        cwd: args.cwd.clone(),
        namespace: args.namespace.clone(),
        no_autorestart: args.no_autorestart,
        max_restarts: args.max_restarts,
        min_uptime_ms: args.min_uptime,
        restart_delay_ms: args.restart_delay,
        kill_timeout_ms: args.kill_timeout,
        exp_backoff_restart_delay_ms: args.exp_backoff_restart_delay,
        interpreter: args.interpreter.clone(),
        env_vars: args.env_vars.clone(),
        env_files: args.env_files.clone(),
        env_name: args.env_name.clone(),
        args: args.args.clone(),
    })
}

async fn start(home: &Home, args: StartArgs) -> anyhow::Result<()> {
    let options = start_options(&args)?;
    let cli_env: BTreeMap<String, String> = std::env::vars().collect();
    let cwd = std::env::current_dir().context("reading the current directory")?;
    let resolved = resolve_start(&args.target, &options, &cli_env, &cwd)?;
    for warning in &resolved.warnings {
        eprintln!("zpm: warning: {warning}");
    }
    let (client, _) = ensure_daemon(home).await?;
    let rows: Vec<ProcessInfo> = call(
        &client,
        "app.start",
        &StartApps {
            apps: resolved.apps,
        },
    )
    .await?;
    show_after(&client, &rows, args.json).await
}

async fn lifecycle(home: &Home, method: &str, t: TargetArgs) -> anyhow::Result<()> {
    let (client, _) = ensure_daemon(home).await?;
    let rows: Vec<ProcessInfo> = call(&client, method, &Target { target: t.target }).await?;
    show_after(&client, &rows, t.json).await
}

async fn list(home: &Home, json: bool) -> anyhow::Result<()> {
    let (client, _) = ensure_daemon(home).await?;
    let rows: Vec<ProcessInfo> = call(&client, "app.list", &NoParams {}).await?;
    if json {
        print_json(&rows)
    } else {
        print_line(&process_table(&rows))
    }
}

async fn describe(home: &Home, t: TargetArgs) -> anyhow::Result<()> {
    let (client, _) = ensure_daemon(home).await?;
    let apps: Vec<AppDescription> =
        call(&client, "app.describe", &Target { target: t.target }).await?;
    if t.json {
        return print_json(&apps);
    }
    for app in &apps {
        print_line(&describe_table(app))?;
    }
    Ok(())
}

/// Orders God to stop everything and exit, then waits until its process is gone.
async fn kill(home: &Home) -> anyhow::Result<()> {
    if !god_listening(home) {
        return print_line("zpm: no daemon running");
    }
    let client = client(home);
    let pong: zpm_proto::Pong = call(&client, "ping", &NoParams {}).await?;
    match client
        .call::<_, zpm_proto::Pong>("god.kill", &NoParams {}, VERB_TIMEOUT)
        .await
    {
        Ok(_) | Err(CallError::ConnectionLost { .. }) => {}
        Err(e) => return Err(e).context("asking the daemon to exit"),
    }
    wait_gone(pong.pid, Duration::from_secs(15)).await?;
    print_line("zpm: daemon killed")
}

async fn wait_gone(pid: u32, limit: Duration) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + limit;
    let pid = nix::unistd::Pid::from_raw(pid.cast_signed());
    while nix::sys::signal::kill(pid, None).is_ok() && !is_zombie(pid) {
        if tokio::time::Instant::now() >= deadline {
            bail!("the daemon (pid {pid}) did not exit within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

/// A daemon whose parent (e.g. a container init) never reaps it lingers as a zombie.
fn is_zombie(pid: nix::unistd::Pid) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

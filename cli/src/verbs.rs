//! What each CLI verb does: one or two rpc calls to God, then output.

use crate::cli::{
    Command, LogArgs, ReloadArgs, RerunArgs, RestartArgs, SaveArgs, ServingArgs, StartArgs,
    TargetArgs, WatchArgs,
};
use crate::connect::{client, ensure_daemon, god_listening};
use crate::describe::describe_table;
use crate::ecosystem::{
    LogDraft, ServingDraft, StartOptions, WatchDraft, is_ecosystem_file, resolve_start,
};
use crate::output::{agents_table, print_json, print_line, process_table};
use anyhow::{Context as _, bail};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;
use zpm_host::home::Home;
use zpm_proto::commands::{
    MsgApps, ReloadApps, SaveParams, Scale, SendLine, SignalApps, StartApps, Target,
};
use zpm_proto::method::{agent, app, god};
use zpm_proto::validate;
use zpm_proto::{AppSpec, ProcessInfo};
use zpm_rpc::{CallError, Client, ErrorCode, Method, NoParams};

/// Long enough for God to stop slow apps (kill_timeout) before it answers.
pub(crate) const VERB_TIMEOUT: Duration = Duration::from_secs(60);

pub(crate) async fn call<M: Method>(
    client: &Client,
    params: &M::Params,
) -> anyhow::Result<M::Output> {
    call_within::<M>(client, params, VERB_TIMEOUT).await
}

/// [`call`] with its own deadline, for a verb that may take longer than God's usual ones.
pub(crate) async fn call_within<M: Method>(
    client: &Client,
    params: &M::Params,
    timeout: Duration,
) -> anyhow::Result<M::Output> {
    match client.call_method::<M>(params, timeout).await {
        Ok(result) => Ok(result),
        Err(CallError::Remote(e)) => bail!("{}", e.message),
        Err(e) => Err(e).with_context(|| format!("calling {}", M::NAME)),
    }
}

/// Runs a verb against the God whose endpoints are in `home` (for a `remote` God, a
/// directory of tunnel ends).
pub async fn run(command: Command, home: &Home, remote: bool) -> anyhow::Result<()> {
    match command {
        Command::Start(args) => start(home, *args).await,
        Command::Stop(t) => lifecycle::<app::Stop>(home, t).await,
        Command::Restart(a) => restart(home, a).await,
        Command::Delete(t) => lifecycle::<app::Delete>(home, t).await,
        Command::Reset(t) => lifecycle::<app::Reset>(home, t).await,
        Command::Watch(t) => watch(home, t, true).await,
        Command::Unwatch(t) => watch(home, t, false).await,
        Command::Reload(args) => reload(home, args).await,
        Command::Apply(args) => crate::apply::run(home, args).await,
        Command::Msg {
            target,
            message,
            json,
        } => touch::<app::Msg>(home, &msg_request(target, message)?, json).await,
        Command::Send {
            target,
            words,
            json,
        } => touch::<app::Send>(home, &send_request(target, &words), json).await,
        Command::Ls(a) => list(home, a.json).await,
        Command::Describe(t) => describe(home, t).await,
        Command::Logs(args) => crate::logs::run(home, args, remote).await,
        Command::Flush(args) => crate::logs::flush(home, args, remote).await,
        Command::ReloadLogs(a) => crate::logs::reload(home, a.json, remote).await,
        Command::Signal {
            signal,
            target,
            json,
        } => {
            let signal = validate::signal_name("signal", &signal)?;
            let (client, _) = ensure_daemon(home).await?;
            let params = SignalApps {
                targets: Target::new(target),
                signal,
            };
            let rows = call::<app::Signal>(&client, &params).await?;
            show_after(&client, &rows, json).await
        }
        Command::Scale {
            name,
            instances,
            json,
        } => {
            validate::scale(&name, instances)?;
            let (client, _) = ensure_daemon(home).await?;
            let rows = call::<app::Scale>(&client, &Scale { name, instances }).await?;
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
        Command::Kill => kill(home, remote).await,
        Command::Save(a) => save(home, a).await,
        Command::Resurrect(a) => {
            let (client, _) = ensure_daemon(home).await?;
            let rows = call::<god::Resurrect>(&client, &NoParams {}).await?;
            show_after(&client, &rows, a.json).await
        }
        Command::Events { prefixes, json } => crate::events::run(home, prefixes, json).await,
        Command::Monit => crate::monit::run(home).await,
        Command::Startup { install } => crate::startup::run(home, install),
        Command::Agents(a) => {
            let (client, _) = ensure_daemon(home).await?;
            let agents = call::<agent::List>(&client, &NoParams {}).await?;
            if a.json {
                return print_json(&agents);
            }
            let hosts = call::<agent::Hosts>(&client, &NoParams {}).await?;
            print_line(&agents_table(&agents))?;
            for host in &hosts {
                // A host none of whose agents is connected is down: its numbers are old.
                let up = agents.iter().any(|a| a.host == host.host && a.connected);
                let line = crate::output::host_line(host);
                print_line(&if up { line } else { format!("{line} — DOWN") })?;
            }
            Ok(())
        }
        Command::Version(_)
        | Command::Config(_)
        | Command::Keygen { .. }
        | Command::Completions { .. }
        | Command::Daemon { .. }
        | Command::Tunnel { .. }
        | Command::Agent { .. } => {
            unreachable!("handled before a runtime is built")
        }
    }
}

/// A verb that is one call answered by the rows it touched.
async fn touch<M>(home: &Home, params: &M::Params, json: bool) -> anyhow::Result<()>
where
    M: Method<Output = Vec<ProcessInfo>>,
{
    let (client, _) = ensure_daemon(home).await?;
    let rows = call::<M>(&client, params).await?;
    show_after(&client, &rows, json).await
}

/// After a verb: JSON of the rows it touched, or the whole table as PM2 shows it.
pub(crate) async fn show_after(
    client: &Client,
    rows: &[ProcessInfo],
    json: bool,
) -> anyhow::Result<()> {
    if json {
        return print_json(rows);
    }
    let all = call::<app::List>(client, &None).await?;
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
        max_memory_restart: args.max_memory_restart,
        hosts: args.hosts.clone(),
        exp_backoff_restart_delay_ms: args.exp_backoff_restart_delay,
        interpreter: args.interpreter.clone(),
        env_vars: args.env_vars.clone(),
        env_files: args.env_files.clone(),
        env_name: args.env_name.clone(),
        args: args.args.clone(),
        logs: log_options(&args.logs),
        serving: serving_options(&args.serving),
        watch: watch_options(&args.watch),
    })
}

fn watch_options(args: &WatchArgs) -> WatchDraft {
    WatchDraft {
        enabled: args.watch.as_ref().map(|_| true),
        paths: args.watch.clone().unwrap_or_default(),
        ignore: (!args.ignore_watch.is_empty()).then(|| args.ignore_watch.clone()),
        delay_ms: args.watch_delay,
    }
}

fn serving_options(args: &ServingArgs) -> ServingDraft {
    ServingDraft {
        listen: args.listen.clone(),
        exec_mode: args.exec_mode,
        wait_ready: args.wait_ready.then_some(true),
        listen_timeout_ms: args.listen_timeout,
        ready_strict: args.ready_strict.then_some(true),
        ready_http: args.ready_http.clone(),
        ready_tcp: args.ready_tcp.clone(),
        ready_cmd: args.ready_cmd.clone(),
        ready_log: args.ready_log.clone(),
        watchdog_ms: args.watchdog_sec,
        health_http: args.health_http.clone(),
        health_tcp: args.health_tcp.clone(),
        health_cmd: args.health_cmd.clone(),
        health_interval_ms: args.health_interval,
        health_timeout_ms: args.health_timeout,
        health_retries: args.health_retries,
        instance_var: args.instance_var.clone(),
        increment_var: args.increment_var.clone(),
        cron_restart: args.cron_restart.clone(),
    }
}

fn log_options(args: &LogArgs) -> LogDraft {
    LogDraft {
        out_file: args.output.clone(),
        error_file: args.error.clone(),
        log_file: args.log.clone(),
        merge_logs: args.merge_logs.then_some(true),
        date_format: args.log_date_format.clone(),
        time: args.time.then_some(true),
        format: args.log_type,
        ..LogDraft::default()
    }
}

/// `zpm start TARGET…`, in PM2's order: an existing file is a script or ecosystem file;
/// else targets naming existing apps (asked of God) start those again; else a single
/// target is a command on PATH or a shell string.
async fn start(home: &Home, args: StartArgs) -> anyhow::Result<()> {
    let cwd = std::env::current_dir().context("reading the current directory")?;
    if let [target] = args.target.as_slice()
        && is_existing_file(target, &cwd, args.cwd.as_deref())
    {
        return start_new(home, target, &args, &cwd).await;
    }
    if args.target.len() > 1
        && let Some(file) = args
            .target
            .iter()
            .find(|t| is_existing_file(t, &cwd, args.cwd.as_deref()))
    {
        bail!(
            "zpm start takes one script, command or ecosystem file ({file:?}); several targets \
             must all be existing apps"
        );
    }
    let (client, _) = ensure_daemon(home).await?;
    if let Some(rows) = start_existing(&client, &args).await? {
        return show_after(&client, &rows, args.json).await;
    }
    match args.target.as_slice() {
        [target] => start_new(home, target, &args, &cwd).await,
        _ => bail!("zpm start takes one script, command or ecosystem file"),
    }
}

/// A file where `zpm start` looks for scripts: the current directory, then `--cwd`.
fn is_existing_file(target: &str, cwd: &Path, app_cwd: Option<&Path>) -> bool {
    cwd.join(target).is_file() || app_cwd.is_some_and(|dir| cwd.join(dir).join(target).is_file())
}

/// Starts the targets again if God knows them all (PM2 runs its restart for an existing
/// name or id). `None`: the single target names no app, so it is something new to run.
async fn start_existing(
    client: &Client,
    args: &StartArgs,
) -> anyhow::Result<Option<Vec<ProcessInfo>>> {
    let targets = Target::new(args.target.clone());
    let known = client
        .call_method::<app::Describe>(&targets, VERB_TIMEOUT)
        .await;
    match known {
        Ok(_) => {}
        Err(CallError::Remote(e)) if e.code == ErrorCode::NotFound && args.target.len() == 1 => {
            return Ok(None);
        }
        Err(CallError::Remote(e)) => bail!("{}", e.message),
        Err(e) => return Err(e).context(format!("calling {}", app::Describe::NAME)),
    }
    let given = new_app_options(args);
    if !given.is_empty() {
        let names: Vec<String> = args.target.iter().map(|t| format!("{t:?}")).collect();
        bail!(
            "{} names an existing app, which zpm start starts again as it is; new-app options \
             ({}) are refused (zpm delete it first to start it with new options)",
            names.join(", "),
            given.join(", ")
        );
    }
    let targets = rerun_target(client, args.target.clone(), args.rerun).await?;
    call::<app::Restart>(client, &targets).await.map(Some)
}

/// `zpm restart TARGET… [--with-deps] [--update-env]`.
async fn restart(home: &Home, args: RestartArgs) -> anyhow::Result<()> {
    let (client, _) = ensure_daemon(home).await?;
    let targets = rerun_target(&client, args.targets.target, args.env).await?;
    let rows = call::<app::Restart>(&client, &targets).await?;
    show_after(&client, &rows, args.targets.json).await
}

/// The targets of a restart, with `--with-deps` and, for `--update-env`, every target
/// app's environment read again.
async fn rerun_target(
    client: &Client,
    names: Vec<String>,
    rerun: RerunArgs,
) -> anyhow::Result<Target> {
    let mut targets = Target::new(names);
    targets.with_deps = rerun.with_deps;
    if rerun.update_env {
        targets.update_env = crate::update_env::env_updates(client, &targets).await?;
    }
    Ok(targets)
}

/// The options of `args` that shape a new app, which an existing app cannot take.
fn new_app_options(args: &StartArgs) -> Vec<&'static str> {
    [
        (args.name.is_some(), "--name"),
        (args.instances.is_some(), "--instances"),
        (args.cwd.is_some(), "--cwd"),
        (args.namespace.is_some(), "--namespace"),
        (args.no_autorestart, "--no-autorestart"),
        (args.max_restarts.is_some(), "--max-restarts"),
        (args.min_uptime.is_some(), "--min-uptime"),
        (args.restart_delay.is_some(), "--restart-delay"),
        (args.kill_timeout.is_some(), "--kill-timeout"),
        (args.max_memory_restart.is_some(), "--max-memory-restart"),
        (!args.hosts.is_empty(), "--host"),
        (
            args.exp_backoff_restart_delay.is_some(),
            "--exp-backoff-restart-delay",
        ),
        (args.interpreter.is_some(), "--interpreter"),
        (!args.env_vars.is_empty(), "--env-var"),
        (args.env_name.is_some(), "--env"),
        (args.logs.output.is_some(), "--output"),
        (args.logs.error.is_some(), "--error"),
        (args.logs.log.is_some(), "--log"),
        (args.logs.merge_logs, "--merge-logs"),
        (args.logs.time, "--time"),
        (args.logs.log_date_format.is_some(), "--log-date-format"),
        (args.logs.log_type.is_some(), "--log-type"),
        (!args.serving.listen.is_empty(), "--listen"),
        (args.serving.exec_mode.is_some(), "--exec-mode"),
        (args.serving.wait_ready, "--wait-ready"),
        (args.serving.listen_timeout.is_some(), "--listen-timeout"),
        (args.serving.ready_strict, "--ready-strict"),
        (args.serving.ready_http.is_some(), "--ready-http"),
        (args.serving.ready_tcp.is_some(), "--ready-tcp"),
        (args.serving.ready_cmd.is_some(), "--ready-cmd"),
        (args.serving.ready_log.is_some(), "--ready-log"),
        (args.serving.watchdog_sec.is_some(), "--watchdog-sec"),
        (args.serving.health_http.is_some(), "--health-http"),
        (args.serving.health_tcp.is_some(), "--health-tcp"),
        (args.serving.health_cmd.is_some(), "--health-cmd"),
        (args.serving.health_interval.is_some(), "--health-interval"),
        (args.serving.health_timeout.is_some(), "--health-timeout"),
        (args.serving.health_retries.is_some(), "--health-retries"),
        (args.serving.instance_var.is_some(), "--instance-var"),
        (args.serving.increment_var.is_some(), "--increment-var"),
        (args.serving.cron_restart.is_some(), "--cron-restart"),
        (args.watch.watch.is_some(), "--watch"),
        (!args.watch.ignore_watch.is_empty(), "--ignore-watch"),
        (args.watch.watch_delay.is_some(), "--watch-delay"),
        (!args.args.is_empty(), "arguments after --"),
    ]
    .into_iter()
    .filter_map(|(given, flag)| given.then_some(flag))
    .collect()
}

/// Starts a new app from a script, command or ecosystem file.
async fn start_new(home: &Home, target: &str, args: &StartArgs, cwd: &Path) -> anyhow::Result<()> {
    let options = start_options(args)?;
    let apps = StartApps {
        apps: resolve_new(target, &options, cwd)?,
    };
    let (client, _) = ensure_daemon(home).await?;
    let rows = call::<app::Start>(&client, &apps).await?;
    show_after(&client, &rows, args.json).await
}

/// The apps `zpm start TARGET` runs, resolved and checked on this machine; warnings are
/// printed on stderr. `zpm reload FILE` reads its file with this too.
pub(crate) fn resolve_new(
    target: &str,
    options: &StartOptions,
    cwd: &Path,
) -> anyhow::Result<Vec<AppSpec>> {
    let cli_env: BTreeMap<String, String> = std::env::vars().collect();
    let resolved = resolve_start(target, options, &cli_env, cwd)?;
    for warning in &resolved.warnings {
        eprintln!("zpm: warning: {warning}");
    }
    Ok(resolved.apps)
}

/// `zpm reload TARGET…` or `zpm reload FILE`: the file is read exactly as `zpm start FILE`
/// reads it and its apps sent whole; God decides which changed.
async fn reload(home: &Home, args: ReloadArgs) -> anyhow::Result<()> {
    let cwd = std::env::current_dir().context("reading the current directory")?;
    let mut params = reload_request(&args, &cwd, resolve_new)?;
    let (client, _) = ensure_daemon(home).await?;
    // A file's apps are read afresh anyway.
    if args.update_env && params.apps.is_empty() {
        params.targets.update_env =
            crate::update_env::env_updates(&client, &params.targets).await?;
    }
    let timeout = if params.apps.is_empty() {
        let running = call::<app::Describe>(&client, &params.targets).await?;
        reload_timeout(running.iter().map(|app| (&app.spec, 1)), params.parallel)
    } else {
        reload_timeout(
            params.apps.iter().map(|spec| (spec, spec.instances)),
            params.parallel,
        )
    };
    let rows = call_within::<app::Reload>(&client, &params, timeout).await?;
    show_after(&client, &rows, args.json).await
}

/// `app.reload`'s params: one ecosystem file → its apps (read by `read_file`, given the
/// file and `--env`), no targets; else the targets.
fn reload_request(
    args: &ReloadArgs,
    cwd: &Path,
    read_file: impl FnOnce(&str, &StartOptions, &Path) -> anyhow::Result<Vec<AppSpec>>,
) -> anyhow::Result<ReloadApps> {
    if let [target] = args.target.as_slice()
        && is_ecosystem_file(target, cwd)
    {
        let options = StartOptions {
            env_name: args.env_name.clone(),
            ..StartOptions::default()
        };
        return Ok(ReloadApps {
            targets: Target::default(),
            parallel: args.parallel,
            apps: read_file(target, &options, cwd)?,
        });
    }
    if let Some(file) = args.target.iter().find(|t| is_ecosystem_file(t, cwd)) {
        bail!(
            "zpm reload takes one ecosystem file ({file:?}) on its own, or app ids, names and \
             namespaces"
        );
    }
    if let Some(name) = &args.env_name {
        bail!(
            "--env {name} selects the env_{name} block of an ecosystem file: zpm reload FILE \
             --env {name}"
        );
    }
    Ok(ReloadApps {
        targets: Target::new(args.target.clone()),
        parallel: args.parallel,
        apps: Vec::new(),
    })
}

/// Room per replaced instance beyond its ready timeout and its old run's kill_timeout.
const RELOAD_MARGIN: Duration = Duration::from_secs(10);

/// How long to wait for `app.reload`: every app's instances replaced `parallel` at a time,
/// one app after another, each replacement up to its ready timeout plus the old run's
/// kill_timeout plus [`RELOAD_MARGIN`]; never less than [`VERB_TIMEOUT`]. `instances` are
/// (spec, instances) pairs; pairs of the same app add up.
pub(crate) fn reload_timeout<'a>(
    instances: impl IntoIterator<Item = (&'a AppSpec, u32)>,
    parallel: u32,
) -> Duration {
    let mut apps: BTreeMap<(&str, &str), (&AppSpec, u32)> = BTreeMap::new();
    for (spec, count) in instances {
        let entry = apps
            .entry((spec.namespace.as_str(), spec.name.as_str()))
            .or_insert((spec, 0));
        entry.1 = entry.1.saturating_add(count);
    }
    let margin = u64::try_from(RELOAD_MARGIN.as_millis()).unwrap_or(u64::MAX);
    let ms = apps
        .values()
        .map(|(spec, count)| {
            let rounds = u64::from(count.div_ceil(parallel.max(1)));
            let ready = if spec.ready.gated() {
                spec.ready.timeout_ms
            } else {
                0
            };
            let each = ready
                .saturating_add(spec.kill_timeout_ms)
                .saturating_add(margin);
            rounds.saturating_mul(each)
        })
        .fold(0, u64::saturating_add);
    Duration::from_millis(ms).max(VERB_TIMEOUT)
}

/// `app.msg`'s params: the JSON checked here, sent as written.
fn msg_request(target: String, message: String) -> anyhow::Result<MsgApps> {
    if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(&message) {
        let shown: String = message.chars().take(200).collect();
        let more = if shown.len() < message.len() {
            "…"
        } else {
            ""
        };
        bail!(
            "the message is not valid JSON: {e}: {shown:?}{more} (quote it for the shell, e.g. \
             zpm msg api '{{\"cache\": \"flush\"}}')"
        );
    }
    Ok(MsgApps {
        targets: Target::new(vec![target]),
        json: message,
    })
}

/// `app.send`'s params: the words joined by one space, as `pm2 send` does.
fn send_request(target: String, words: &[String]) -> SendLine {
    SendLine {
        targets: Target::new(vec![target]),
        line: words.join(" "),
    }
}

async fn lifecycle<M>(home: &Home, t: TargetArgs) -> anyhow::Result<()>
where
    M: Method<Params = Target, Output = Vec<ProcessInfo>>,
{
    let (client, _) = ensure_daemon(home).await?;
    let rows = call::<M>(&client, &Target::new(t.target)).await?;
    show_after(&client, &rows, t.json).await
}

/// `zpm watch` / `zpm unwatch`.
async fn watch(home: &Home, t: TargetArgs, enabled: bool) -> anyhow::Result<()> {
    let (client, _) = ensure_daemon(home).await?;
    let params = zpm_proto::commands::WatchApps {
        targets: Target::new(t.target),
        enabled,
    };
    let rows = call::<app::Watch>(&client, &params).await?;
    show_after(&client, &rows, t.json).await
}

async fn list(home: &Home, json: bool) -> anyhow::Result<()> {
    let (client, _) = ensure_daemon(home).await?;
    let rows = call::<app::List>(&client, &None).await?;
    if json {
        print_json(&rows)
    } else {
        print_line(&process_table(&rows))
    }
}

async fn describe(home: &Home, t: TargetArgs) -> anyhow::Result<()> {
    let (client, _) = ensure_daemon(home).await?;
    let apps = call::<app::Describe>(&client, &Target::new(t.target)).await?;
    if t.json {
        return print_json(&apps);
    }
    for app in &apps {
        print_line(&describe_table(app))?;
    }
    Ok(())
}

/// Writes the dump; God refuses an empty one unless `--force`.
async fn save(home: &Home, args: SaveArgs) -> anyhow::Result<()> {
    let (client, _) = ensure_daemon(home).await?;
    let params = SaveParams { force: args.force };
    let saved = call::<god::Save>(&client, &Some(params)).await?;
    if args.json {
        return print_json(&saved);
    }
    print_line(&format!(
        "zpm: saved {} app(s) to {}",
        saved.apps, saved.path
    ))
}

/// Orders God to stop everything and exit, then waits until its process is gone (a
/// `remote` one: until it no longer answers).
async fn kill(home: &Home, remote: bool) -> anyhow::Result<()> {
    if !god_listening(home) {
        return print_line("zpm: no daemon running");
    }
    let client = client(home);
    let pong = call::<god::Ping>(&client, &NoParams {}).await?;
    match client
        .call_method::<god::Kill>(&NoParams {}, VERB_TIMEOUT)
        .await
    {
        Ok(_) | Err(CallError::ConnectionLost { .. }) => {}
        Err(e) => return Err(e).context("asking the daemon to exit"),
    }
    if remote {
        wait_silent(&client, Duration::from_secs(15)).await?;
    } else {
        wait_gone(pong.pid, Duration::from_secs(15)).await?;
    }
    print_line("zpm: daemon killed")
}

async fn wait_silent(client: &Client, limit: Duration) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let ping = client.call_method::<god::Ping>(&NoParams {}, Duration::from_millis(200));
        if ping.await.is_err() {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("the remote daemon still answers {limit:?} after it was told to exit");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_gone(pid: u32, limit: Duration) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + limit;
    while zpm_host::procfs::alive(pid) {
        if tokio::time::Instant::now() >= deadline {
            bail!("the daemon (pid {pid}) did not exit within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;
    use zpm_proto::ready::ExecMode;

    fn start_args(words: &[&str]) -> StartArgs {
        let cli = crate::cli::Cli::try_parse_from(["zpm", "start"].iter().chain(words)).unwrap();
        match cli.command {
            Command::Start(args) => *args,
            other => panic!("not start: {other:?}"),
        }
    }

    #[test]
    fn log_options_shape_a_new_app() {
        let args = start_args(&["api", "--time", "-o", "o.log", "--log"]);
        assert_eq!(args.logs.log.as_deref(), Some(""), "--log without a file");
        assert_eq!(new_app_options(&args), ["--output", "--log", "--time"]);
        let logs = log_options(&args.logs);
        assert_eq!(
            (logs.out_file.as_deref(), logs.time),
            (Some("o.log"), Some(true))
        );
        let args = start_args(&["api", "--log=all.log", "--log-type", "json", "--merge-logs"]);
        assert_eq!(args.logs.log.as_deref(), Some("all.log"));
        assert_eq!(
            new_app_options(&args),
            ["--log", "--merge-logs", "--log-type"]
        );
        assert!(new_app_options(&start_args(&["api"])).is_empty());
    }

    #[test]
    fn serving_flags_shape_a_new_app() {
        let args = start_args(&[
            "server.js",
            "--listen",
            "8000",
            "--listen=unix:app.sock",
            "--exec-mode",
            "cluster_mode",
            "--wait-ready",
            "--listen-timeout",
            "5s",
            "--ready-strict",
            "--ready-http",
            "http://127.0.0.1:8000/health",
            "--ready-tcp",
            "8000",
            "--ready-cmd",
            "curl -fs localhost:8000",
            "--ready-log",
            "^listening",
            "--watchdog-sec",
            "1.5",
            "--instance-var",
            "INSTANCE_ID",
            "--increment-var",
            "PORT",
        ]);
        assert_eq!(
            new_app_options(&args),
            [
                "--listen",
                "--exec-mode",
                "--wait-ready",
                "--listen-timeout",
                "--ready-strict",
                "--ready-http",
                "--ready-tcp",
                "--ready-cmd",
                "--ready-log",
                "--watchdog-sec",
                "--instance-var",
                "--increment-var"
            ]
        );
        let serving = start_options(&args).unwrap().serving;
        assert_eq!(serving.listen, ["8000", "unix:app.sock"]);
        assert_eq!(serving.exec_mode, Some(ExecMode::Cluster));
        assert_eq!(
            (serving.wait_ready, serving.ready_strict),
            (Some(true), Some(true))
        );
        assert_eq!(
            (serving.listen_timeout_ms, serving.watchdog_ms),
            (Some(5000), Some(1500))
        );
        assert_eq!(
            serving.ready_http.as_deref(),
            Some("http://127.0.0.1:8000/health")
        );
        assert_eq!(
            (serving.ready_tcp.as_deref(), serving.ready_log.as_deref()),
            (Some("8000"), Some("^listening"))
        );
        assert_eq!(
            serving.ready_cmd.as_deref(),
            Some("curl -fs localhost:8000")
        );
        assert_eq!(
            (
                serving.instance_var.as_deref(),
                serving.increment_var.as_deref()
            ),
            (Some("INSTANCE_ID"), Some("PORT"))
        );
        let plain = start_options(&start_args(&["server.js"])).unwrap().serving;
        assert!(plain.listen.is_empty() && plain.exec_mode.is_none());
        assert_eq!((plain.wait_ready, plain.ready_strict), (None, None));
        assert_eq!(
            start_options(&start_args(&["s.js", "--watchdog-sec", "500ms"]))
                .unwrap()
                .serving
                .watchdog_ms,
            Some(500)
        );
    }

    #[test]
    fn health_flags_shape_a_new_app() {
        let args = start_args(&[
            "server.js",
            "--health-http",
            "http://127.0.0.1:8000/health",
            "--health-tcp",
            "db:5432",
            "--health-cmd",
            "pg_isready",
            "--health-interval",
            "30s",
            "--health-timeout",
            "1500",
            "--health-retries",
            "5",
        ]);
        assert_eq!(
            new_app_options(&args),
            [
                "--health-http",
                "--health-tcp",
                "--health-cmd",
                "--health-interval",
                "--health-timeout",
                "--health-retries"
            ]
        );
        let serving = start_options(&args).unwrap().serving;
        assert_eq!(
            (
                serving.health_http.as_deref(),
                serving.health_tcp.as_deref(),
                serving.health_cmd.as_deref()
            ),
            (
                Some("http://127.0.0.1:8000/health"),
                Some("db:5432"),
                Some("pg_isready")
            )
        );
        assert_eq!(
            (
                serving.health_interval_ms,
                serving.health_timeout_ms,
                serving.health_retries
            ),
            (Some(30_000), Some(1500), Some(5))
        );
        let plain = start_options(&start_args(&["server.js"])).unwrap().serving;
        assert_eq!(
            (
                plain.health_http,
                plain.health_interval_ms,
                plain.health_retries
            ),
            (None, None, None)
        );
    }

    fn parse_error(words: &[&str]) -> String {
        let error = crate::cli::Cli::try_parse_from(["zpm"].iter().chain(words)).unwrap_err();
        error.to_string()
    }

    #[test]
    fn bad_serving_flags_say_why() {
        for (words, expected) in [
            (
                &["start", "s.js", "--exec-mode", "threads"][..],
                r#"invalid value 'threads' for '--exec-mode <MODE>': "threads" is not an exec mode: `fork` or `cluster`"#,
            ),
            (
                &["start", "s.js", "--listen-timeout", "soon"],
                r#"invalid value 'soon' for '--listen-timeout <MS>': invalid duration "soon""#,
            ),
            (
                &["start", "s.js", "--watchdog-sec=-1"],
                "invalid value '-1' for '--watchdog-sec <SECONDS>'",
            ),
            (
                &["start", "s.js", "--health-interval", "often"],
                r#"invalid value 'often' for '--health-interval <MS>': invalid duration "often""#,
            ),
            (
                &["start", "s.js", "--health-retries", "three"],
                "invalid value 'three' for '--health-retries <N>'",
            ),
            (
                &["start", "s.js", "--health-tcp", ""],
                "a value is required for '--health-tcp <PORT|HOST:PORT>' but none was supplied",
            ),
            (
                &["start", "s.js", "--ready-log", ""],
                "a value is required for '--ready-log <REGEX>' but none was supplied",
            ),
            (
                &["start", "s.js", "--listen", ""],
                "a value is required for '--listen <ADDR>' but none was supplied",
            ),
            (
                &["reload", "api", "--parallel", "0"],
                "invalid value '0' for '--parallel <N>': 0 is not in 1..=1024",
            ),
            (
                &["send", "api"],
                "the following required arguments were not provided",
            ),
        ] {
            let error = parse_error(words);
            assert!(error.contains(expected), "{words:?}: {error}");
        }
    }

    fn command(words: &[&str]) -> Command {
        crate::cli::Cli::try_parse_from(["zpm"].iter().chain(words))
            .unwrap()
            .command
    }

    fn reload_args(words: &[&str]) -> ReloadArgs {
        match command(&[&["reload"], words].concat()) {
            Command::Reload(args) => args,
            other => panic!("not reload: {other:?}"),
        }
    }

    fn no_file(_: &str, _: &StartOptions, _: &Path) -> anyhow::Result<Vec<AppSpec>> {
        panic!("no ecosystem file here")
    }

    #[test]
    fn reload_sends_targets_and_parallel() {
        let dir = tempfile::tempdir().unwrap();
        let params = reload_request(&reload_args(&["api"]), dir.path(), no_file).unwrap();
        assert_eq!(
            serde_json::to_value(&params).unwrap(),
            serde_json::json!({"target": "api", "parallel": 1})
        );
        let args = reload_args(&["api", "3", "web", "--parallel", "2"]);
        let params = reload_request(&args, dir.path(), no_file).unwrap();
        assert_eq!(
            serde_json::to_value(&params).unwrap(),
            serde_json::json!({"targets": ["api", "3", "web"], "parallel": 2})
        );
        let args = reload_args(&["api", "--env", "production"]);
        let error = reload_request(&args, dir.path(), no_file).unwrap_err();
        assert_eq!(
            error.to_string(),
            "--env production selects the env_production block of an ecosystem file: zpm \
             reload FILE --env production"
        );
    }

    #[test]
    fn reload_of_an_ecosystem_file_sends_its_apps_as_start_reads_them() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        std::fs::write(dir.join("server.js"), "").unwrap();
        std::fs::write(
            dir.join("ecosystem.json"),
            r#"{"apps": [{"name": "web", "script": "server.js", "instances": 2,
                "exec_mode": "cluster", "env": {"MODE": "dev"}, "env_production": {"MODE": "prod"}},
               {"name": "api", "script": "server.js", "listen": 8000, "wait_ready": true}]}"#,
        )
        .unwrap();
        let args = reload_args(&["ecosystem.json", "--env", "production", "--parallel", "2"]);
        let params = reload_request(&args, dir, resolve_new).unwrap();
        assert_eq!(params.targets, Target::default());
        assert_eq!(params.parallel, 2);
        let cli_env = std::env::vars().collect();
        let options = StartOptions {
            env_name: Some("production".into()),
            ..StartOptions::default()
        };
        let started = resolve_start("ecosystem.json", &options, &cli_env, dir).unwrap();
        assert_eq!(params.apps, started.apps, "the apps zpm start would start");
        assert_eq!(params.apps[0].env["MODE"], "prod");
        assert_eq!(params.apps[0].exec_mode, ExecMode::Cluster);
        assert_eq!(params.apps[1].listen, ["8000"]);
        let wire = serde_json::to_value(&params).unwrap();
        assert!(wire.get("target").is_none() && wire.get("targets").is_none());
        let error = reload_request(&reload_args(&["ecosystem.json", "api"]), dir, resolve_new);
        assert_eq!(
            error.unwrap_err().to_string(),
            "zpm reload takes one ecosystem file (\"ecosystem.json\") on its own, or app ids, \
             names and namespaces"
        );
        std::fs::write(
            dir.join("bad.json"),
            r#"{"apps": [{"name": "w", "script": "server.js", "listen": "abc"}]}"#,
        )
        .unwrap();
        let error = reload_request(&reload_args(&["bad.json"]), dir, resolve_new).unwrap_err();
        assert!(
            format!("{error:#}").starts_with(r#"bad.json: app "w": invalid listen address "abc""#),
            "{error:#}"
        );
    }

    #[test]
    fn reload_waits_for_every_replacement() {
        let mut spec = AppSpec::new("api", vec!["/bin/true".into()], "/");
        assert_eq!(reload_timeout([(&spec, 4)], 1), VERB_TIMEOUT, "the floor");
        spec.ready.wait_ready = true;
        spec.ready.timeout_ms = 20_000;
        spec.kill_timeout_ms = 5_000;
        // 35 s per replacement, 4 rounds one at a time; 2 rounds two at a time.
        assert_eq!(reload_timeout([(&spec, 4)], 1), Duration::from_secs(140));
        assert_eq!(reload_timeout([(&spec, 4)], 2), Duration::from_secs(70));
        let one = [(&spec, 1), (&spec, 1), (&spec, 1), (&spec, 1)];
        assert_eq!(
            reload_timeout(one, 1),
            Duration::from_secs(140),
            "described instances of one app add up"
        );
        let mut other = AppSpec::new("web", vec!["/bin/true".into()], "/");
        other.kill_timeout_ms = 30_000;
        assert_eq!(
            reload_timeout([(&spec, 1), (&other, 1)], 1),
            Duration::from_secs(35 + 40),
            "apps one after another; no gate: kill_timeout and the margin only"
        );
    }

    #[test]
    fn msg_checks_the_json_and_sends_it_as_written() {
        let params = msg_request("api".into(), r#"{ "cache" : "flush" }"#.into()).unwrap();
        assert_eq!(
            serde_json::to_value(&params).unwrap(),
            serde_json::json!({"target": "api", "json": r#"{ "cache" : "flush" }"#})
        );
        let error = msg_request("api".into(), "{cache: flush}".into()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the message is not valid JSON: key must be a string at line 1 column 2: \
             \"{cache: flush}\" (quote it for the shell, e.g. zpm msg api '{\"cache\": \"flush\"}')"
        );
        let long = format!("[{}", "1,".repeat(300));
        let error = msg_request("api".into(), long).unwrap_err().to_string();
        assert!(error.contains("1,1\"…"), "{error}");
        match command(&["msg", "3", "-1", "--json"]) {
            Command::Msg {
                target,
                message,
                json,
            } => assert_eq!((target.as_str(), message.as_str(), json), ("3", "-1", true)),
            other => panic!("not msg: {other:?}"),
        }
    }

    #[test]
    fn send_joins_the_words_with_one_space() {
        let Command::Send {
            target,
            words,
            json,
        } = command(&["send", "--json", "api", "reload", "-v", "--all"])
        else {
            panic!("not send")
        };
        assert!(json);
        assert_eq!(words, ["reload", "-v", "--all"]);
        let params = send_request(target, &words);
        assert_eq!(
            serde_json::to_value(&params).unwrap(),
            serde_json::json!({"target": "api", "line": "reload -v --all"})
        );
        let Command::Send { words, json, .. } = command(&["send", "api", "a  b", "c"]) else {
            panic!("not send")
        };
        assert!(!json);
        assert_eq!(send_request("api".into(), &words).line, "a  b c");
    }
}

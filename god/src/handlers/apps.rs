//! The app lifecycle the CLI drives. Each verb pushes commands to the spawner and waits
//! (with a deadline) until the spawner's reports show the result, like PM2's verbs do.

use super::bad_params;
use crate::order;
use crate::persist::Desired;
use crate::state::God;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use zpm_bus::now_ms;
use zpm_proto::commands::{
    AppDescription, MemoryRestart, ProcCommand, Scale, SignalApps, SpawnCommand, StartApps, Target,
};
use zpm_proto::method::{agent, proc};
use zpm_proto::validate;
use zpm_proto::{AppSpec, Pong, ProcessInfo, ProcessStatus, RestartReason, Role};
use zpm_rpc::{Ctx, ErrorCode, Method, NoParams, PeerId, RpcError};

const SPAWNER_WAIT: Duration = Duration::from_secs(10);
const LAUNCH_WAIT: Duration = Duration::from_secs(10);

fn is_down(status: Option<ProcessStatus>) -> bool {
    status.is_none_or(|s| matches!(s, ProcessStatus::Stopped | ProcessStatus::Errored))
}

/// Long enough for the slowest app among `ids` to be stopped the hard way.
fn stop_wait(god: &God, ids: &[u32]) -> Duration {
    let table = god.table();
    let slowest = ids
        .iter()
        .filter_map(|id| table.get(*id))
        .map(|p| p.spec.kill_timeout_ms)
        .max()
        .unwrap_or(0);
    Duration::from_millis(slowest) + Duration::from_secs(5)
}

/// The spawner each of `ids` is commanded through: its host's (waiting for each host's,
/// bounded). Ids God no longer has are left out.
pub(super) async fn route(god: &God, ids: &[u32]) -> Result<HashMap<u32, PeerId>, RpcError> {
    let mut by_host: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    {
        let table = god.table();
        for &id in ids {
            if let Some(p) = table.get(id) {
                by_host.entry(p.host.clone()).or_default().push(id);
            }
        }
    }
    let mut route = HashMap::new();
    for (host, ids) in by_host {
        let peer = god.spawner(&host, SPAWNER_WAIT).await?;
        route.extend(ids.into_iter().map(|id| (id, peer.clone())));
    }
    Ok(route)
}

/// Waits for the spawner of every host `apps` name (God's own if none): a host that never
/// joined, or stays down, is an error before anything is added.
async fn check_hosts(god: &God, apps: &[AppSpec]) -> Result<(), RpcError> {
    let mut hosts: Vec<String> = apps
        .iter()
        .flat_map(|spec| (0..spec.instances.max(1)).map(|i| spec.host_of(i, &god.host)))
        .collect();
    hosts.sort();
    hosts.dedup();
    for host in hosts {
        god.spawner(&host, SPAWNER_WAIT).await?;
    }
    Ok(())
}

async fn push_to<M: Method>(
    ctx: &Ctx,
    route: &HashMap<u32, PeerId>,
    id: u32,
    params: &M::Params,
) -> Result<(), RpcError> {
    match route.get(&id) {
        Some(peer) => Ok(ctx.pusher.push_method::<M>(peer, params).await?),
        None => Ok(()),
    }
}

async fn push_each<M: Method<Params = ProcCommand>>(
    ctx: &Ctx,
    route: &HashMap<u32, PeerId>,
    ids: &[u32],
) -> Result<(), RpcError> {
    for &id in ids {
        push_to::<M>(ctx, route, id, &ProcCommand { id }).await?;
    }
    Ok(())
}

pub(super) fn rows(god: &God, ids: &[u32]) -> Vec<ProcessInfo> {
    god.table().rows(Some(ids), now_ms())
}

/// Adds `count` instances of `spec` and spawns each on its host; [`check_hosts`] first.
pub(super) async fn spawn_instances(
    god: &God,
    ctx: &Ctx,
    spec: &AppSpec,
    first: u32,
    count: u32,
) -> Result<Vec<u32>, RpcError> {
    let ids = god.table().add(spec, &god.host, first, count);
    spawn_ids(god, ctx, &ids).await?;
    Ok(ids)
}

/// Spawns `ids` (in the table, not yet running) on their hosts.
pub(super) async fn spawn_ids(god: &God, ctx: &Ctx, ids: &[u32]) -> Result<(), RpcError> {
    let route = route(god, ids).await?;
    let commands: Vec<SpawnCommand> = {
        let table = god.table();
        ids.iter()
            .filter_map(|id| table.get(*id))
            .map(|p| SpawnCommand {
                id: p.id,
                instance: p.instance,
                spec: p.spec.clone(),
                restarts: 0,
            })
            .collect()
    };
    for command in &commands {
        push_to::<proc::Spawn>(ctx, &route, command.id, command).await?;
    }
    god.changed();
    Ok(())
}

/// How long `ids` may take to be launched and ready: [`LAUNCH_WAIT`] past the longest
/// readiness timeout among them.
fn launch_wait(god: &God, ids: &[u32]) -> Duration {
    let table = god.table();
    let ready = ids
        .iter()
        .filter_map(|id| table.get(*id))
        .map(|p| p.spec.ready.timeout_ms)
        .max()
        .unwrap_or(0);
    LAUNCH_WAIT + Duration::from_millis(ready)
}

pub(super) async fn wait_launched(god: &God, ids: &[u32]) -> Result<(), RpcError> {
    god.wait_table(launch_wait(god, ids), "start", |t| {
        ids.iter()
            .all(|id| t.status(*id) != Some(ProcessStatus::Launching))
    })
    .await
}

fn check_names_free(god: &God, apps: &[AppSpec]) -> Result<(), RpcError> {
    let table = god.table();
    let mut seen = HashSet::new();
    for spec in apps {
        let key = (spec.name.as_str(), spec.namespace.as_str());
        if table.name_taken(&spec.name, &spec.namespace) || !seen.insert(key) {
            return Err(RpcError::new(
                ErrorCode::Conflict,
                format!(
                    "an app named {:?} already exists in namespace {:?}; restart or delete it",
                    spec.name, spec.namespace
                ),
            ));
        }
    }
    Ok(())
}

pub async fn start(
    god: Arc<God>,
    params: StartApps,
    ctx: Ctx,
) -> Result<Vec<ProcessInfo>, RpcError> {
    validate::start_apps(&params.apps).map_err(bad_params)?;
    check_names_free(&god, &params.apps)?;
    start_specs(&god, &ctx, &params.apps).await
}

/// Adds every instance of `apps`, spawns each app once its dependencies are met (apps
/// without any at once), persists, and waits until none is `launching`. A dependency that
/// fails or times out fails the whole start: nothing is left started.
pub(super) async fn start_specs(
    god: &God,
    ctx: &Ctx,
    apps: &[AppSpec],
) -> Result<Vec<ProcessInfo>, RpcError> {
    check_hosts(god, apps).await?;
    order::check_start(&god.table(), apps)?;
    let groups = super::deps::add_waiting(god, apps);
    god.persist().await;
    let ids: Vec<u32> = groups.iter().flat_map(|(_, ids)| ids.clone()).collect();
    let outcomes = futures::future::join_all(
        groups
            .iter()
            .map(|(spec, ids)| super::deps::launch_when_ready(god, ctx, spec, ids)),
    )
    .await;
    god.persist().await;
    let mut blocked = Vec::new();
    for outcome in outcomes {
        match outcome {
            Ok(()) => {}
            Err(super::deps::Blocked::Dependency(why)) => blocked.push(why),
            Err(super::deps::Blocked::Rpc(e)) => return Err(e),
        }
    }
    if !blocked.is_empty() {
        if let Err(e) = delete_ids(god, ctx, &ids).await {
            tracing::warn!(error = %e, "removing a start blocked by a dependency");
        }
        return Err(RpcError::new(
            ErrorCode::Failed,
            format!("{}; nothing was started", blocked.join("; ")),
        ));
    }
    refuse_half_started(god, ctx, &ids).await?;
    Ok(rows(god, &ids))
}

/// An instance that could not be launched (a socket it cannot bind, not ready in time
/// with `ready_strict`, a crash loop before it was ever ready) fails the whole start:
/// every instance just added is deleted, so nothing is half-started and the same start
/// can be tried again once fixed. The message names where its output went.
async fn refuse_half_started(god: &God, ctx: &Ctx, ids: &[u32]) -> Result<(), RpcError> {
    let failures: Vec<String> = {
        let table = god.table();
        ids.iter()
            .filter_map(|id| table.get(*id))
            .filter_map(|p| {
                let why = match (&p.report.error, p.report.status) {
                    (Some(error), _) => error.clone(),
                    // Gated: `start` waited while it was `launching`, so errored now means
                    // it never got ready. An ungated app was online first (PM2's rule:
                    // the start succeeded, the app crashed).
                    (None, ProcessStatus::Errored) if p.spec.ready.gated() => format!(
                        "it crashed {} before it was ready (last exit: {})",
                        match p.report.restarts {
                            0 => "once".to_owned(),
                            n => format!("{} times in a row", n + 1),
                        },
                        p.report.signal.clone().unwrap_or_else(|| {
                            p.report
                                .exit_code
                                .map_or("unknown".into(), |c| format!("code {c}"))
                        })
                    ),
                    (None, _) => return None,
                };
                let logs = god.log_target(p);
                Some(format!(
                    "{} instance {} (id {}): {why} (its output: {}, {})",
                    p.spec.name, p.instance, p.id, logs.out_file, logs.error_file
                ))
            })
            .collect()
    };
    if failures.is_empty() {
        return Ok(());
    }
    if let Err(e) = delete_ids(god, ctx, ids).await {
        tracing::warn!(error = %e, "removing a failed start");
    }
    Err(RpcError::new(
        ErrorCode::Failed,
        format!("{}; nothing was started", failures.join("; ")),
    ))
}

pub async fn stop(god: Arc<God>, params: Target, ctx: Ctx) -> Result<Vec<ProcessInfo>, RpcError> {
    let ids = god.table().resolve_all(&params.names())?;
    god.table().set_desired(&ids, Desired::Stopped);
    god.persist().await;
    stop_ids(&god, &ctx, &ids).await?;
    Ok(rows(&god, &ids))
}

async fn stop_ids(god: &God, ctx: &Ctx, ids: &[u32]) -> Result<(), RpcError> {
    if ids.is_empty() {
        return Ok(());
    }
    god.table().stop_waiting(ids);
    let route = route(god, ids).await?;
    let waves = order::stop_waves(&god.table(), ids);
    for wave in &waves {
        push_each::<proc::Stop>(ctx, &route, wave).await?;
        god.wait_table(stop_wait(god, wave), "stop", |t| {
            wave.iter().all(|id| is_down(t.status(*id)))
        })
        .await?;
    }
    Ok(())
}

pub async fn restart(
    god: Arc<God>,
    params: Target,
    ctx: Ctx,
) -> Result<Vec<ProcessInfo>, RpcError> {
    let mut ids = god.table().resolve_all(&params.names())?;
    let failed = order::failed_dependencies(&god.table(), &ids);
    if let Some((_, why)) = failed.first().filter(|_| !params.with_deps) {
        return Err(RpcError::new(
            ErrorCode::Conflict,
            format!("{why}: start it first, or add --with-deps"),
        ));
    }
    ids.extend(failed.into_iter().map(|(id, _)| id));
    let waves = order::start_waves(&god.table(), &ids);
    for wave in &waves {
        super::deps::wait_before_restart(&god, wave).await?;
        if params.update_env.is_empty() {
            restart_ids(&god, &ctx, wave).await?;
        } else {
            super::update_env::restart_with_env(&god, &ctx, wave, &params.update_env).await?;
        }
    }
    Ok(rows(&god, &ids))
}

/// Restarts `ids` together and waits until each shows its new run.
async fn restart_ids(god: &God, ctx: &Ctx, ids: &[u32]) -> Result<(), RpcError> {
    let before: HashMap<u32, u32> = {
        let table = god.table();
        ids.iter()
            .filter_map(|id| table.get(*id).map(|p| (*id, p.report.restarts)))
            .collect()
    };
    {
        let mut table = god.table();
        table.set_desired(ids, Desired::Running);
        for id in ids {
            if let Some(p) = table.get_mut(*id) {
                p.pending_reason.get_or_insert(RestartReason::User);
            }
        }
    }
    god.persist().await;
    let route = route(god, ids).await?;
    let (respawns, held) = split_unheld(god, ids);
    push_each::<proc::Restart>(ctx, &route, &held).await?;
    for command in &respawns {
        push_to::<proc::Spawn>(ctx, &route, command.id, command).await?;
    }
    let limit = stop_wait(god, ids) + launch_wait(god, ids);
    god.wait_table(limit, "restart", |t| {
        ids.iter()
            .all(|id| relaunched(t.get(*id), before.get(id).copied().unwrap_or(0)))
    })
    .await
}

/// `zpm reset`: every target's restart counter back to 0 (the spawner's too, so the next
/// report agrees), and its restart history emptied. Replies once God sees the zeroes.
pub async fn reset(god: Arc<God>, params: Target, ctx: Ctx) -> Result<Vec<ProcessInfo>, RpcError> {
    let ids = god.table().resolve_all(&params.names())?;
    let route = route(&god, &ids).await?;
    push_each::<proc::Reset>(&ctx, &route, &ids).await?;
    god.wait_table(SPAWNER_WAIT, "reset", |t| {
        ids.iter()
            .all(|id| t.get(*id).is_none_or(|p| p.report.restarts == 0))
    })
    .await?;
    {
        let mut table = god.table();
        for id in &ids {
            if let Some(p) = table.get_mut(*id) {
                p.history.clear();
            }
        }
    }
    god.persist().await;
    Ok(rows(&god, &ids))
}

/// A metrics agent saw app `id` over its memory limit: restart that instance (not its
/// neighbours), recording why. Refused if God does not see it over its limit and online.
pub async fn memory_restart(
    god: Arc<God>,
    params: MemoryRestart,
    ctx: Ctx,
) -> Result<Vec<ProcessInfo>, RpcError> {
    {
        let mut table = god.table();
        let Some(p) = table.get_mut(params.id) else {
            return Err(RpcError::new(
                ErrorCode::NotFound,
                format!("no app with id {}", params.id),
            ));
        };
        let limit = match p.spec.max_memory_restart {
            Some(limit) if params.memory > limit && p.report.status == ProcessStatus::Online => {
                limit
            }
            _ => {
                return Err(RpcError::new(
                    ErrorCode::Conflict,
                    format!("app {} is not online over a memory limit", params.id),
                ));
            }
        };
        tracing::warn!(
            id = params.id,
            memory = params.memory,
            limit,
            "over max_memory_restart; restarting"
        );
        p.pending_reason = Some(RestartReason::MaxMemory {
            memory: params.memory,
            limit,
        });
    }
    // Its dependencies are not checked: this run is replaced, not started anew.
    restart_ids(&god, &ctx, &[params.id]).await?;
    Ok(rows(&god, &[params.id]))
}

/// Splits `ids` into spawn commands for apps no supervisor holds (stopped apps of a
/// replaced spawner: the spawner could not restart them) and the ids it can restart.
/// The spawn counts as the restart it stands for.
fn split_unheld(god: &God, ids: &[u32]) -> (Vec<SpawnCommand>, Vec<u32>) {
    let mut table = god.table();
    let mut respawns = Vec::new();
    let mut held = Vec::new();
    for &id in ids {
        match table.get_mut(id) {
            Some(p) if p.unheld => {
                p.unheld = false;
                respawns.push(SpawnCommand {
                    id,
                    instance: p.instance,
                    spec: p.spec.clone(),
                    restarts: p.report.restarts.saturating_add(1),
                });
            }
            _ => held.push(id),
        }
    }
    (respawns, held)
}

/// The reply to a restart shows the new run: the spawner counts every relaunch (even one
/// that fails to spawn), so a moved count means the new attempt has been reported; a state
/// such as `errored` from before the restart must not end the wait.
fn relaunched(proc: Option<&crate::table::Proc>, restarts_before: u32) -> bool {
    proc.is_none_or(|p| {
        p.report.restarts > restarts_before && p.report.status != ProcessStatus::Launching
    })
}

pub async fn delete(god: Arc<God>, params: Target, ctx: Ctx) -> Result<Vec<ProcessInfo>, RpcError> {
    let ids = god.table().resolve_all(&params.names())?;
    let deleted = delete_ids(&god, &ctx, &ids).await?;
    Ok(deleted)
}

pub(super) async fn delete_ids(
    god: &God,
    ctx: &Ctx,
    ids: &[u32],
) -> Result<Vec<ProcessInfo>, RpcError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    god.table().stop_waiting(ids);
    let route = route(god, ids).await?;
    let waves = order::stop_waves(&god.table(), ids);
    for wave in &waves {
        push_each::<proc::Delete>(ctx, &route, wave).await?;
        god.wait_table(stop_wait(god, wave), "delete", |t| {
            wave.iter().all(|id| is_down(t.status(*id)))
        })
        .await?;
    }
    let gone = rows(god, ids);
    {
        let mut table = god.table();
        for id in ids {
            table.remove(*id);
        }
    }
    god.persist().await;
    god.changed();
    Ok(gone)
}

pub async fn list(
    god: Arc<God>,
    filter: Option<zpm_proto::commands::ListFilter>,
    _: Ctx,
) -> Result<Vec<ProcessInfo>, RpcError> {
    let now = now_ms();
    let table = god.table();
    Ok(match filter.and_then(|f| f.host) {
        Some(host) => table
            .procs()
            .filter(|p| p.host == host)
            .map(|p| p.row(now))
            .collect(),
        None => table.rows(None, now),
    })
}

/// Env values whose names suggest secrets are shown masked.
pub(super) fn looks_secret(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    [
        "SECRET",
        "TOKEN",
        "PASSWORD",
        "PASSWD",
        "KEY",
        "CREDENTIAL",
        "AUTH",
        "PRIVATE",
    ]
    .iter()
    .any(|word| upper.contains(word))
}

fn described_spec(spec: &AppSpec) -> AppSpec {
    let env: BTreeMap<String, String> = spec
        .env_explicit
        .iter()
        .filter_map(|name| {
            let value = spec.env.get(name)?;
            let shown = if looks_secret(name) {
                "****".to_owned()
            } else {
                value.clone()
            };
            Some((name.clone(), shown))
        })
        .collect();
    AppSpec {
        env,
        ..spec.clone()
    }
}

pub async fn describe(
    god: Arc<God>,
    params: Target,
    _: Ctx,
) -> Result<Vec<AppDescription>, RpcError> {
    let table = god.table();
    let ids = table.resolve_all(&params.names())?;
    let now = now_ms();
    Ok(ids
        .iter()
        .filter_map(|id| table.get(*id))
        .map(|p| AppDescription {
            info: p.row(now),
            spec: described_spec(&p.spec),
            restarts: p.history.iter().cloned().collect(),
            logs: Some(god.log_target(p)),
        })
        .collect())
}

pub async fn signal(
    god: Arc<God>,
    params: SignalApps,
    ctx: Ctx,
) -> Result<Vec<ProcessInfo>, RpcError> {
    validate::signal_name("signal", &params.signal).map_err(bad_params)?;
    let ids = god.table().resolve_all(&params.targets.names())?;
    let route = route(&god, &ids).await?;
    for &id in &ids {
        let command = zpm_proto::commands::SignalCommand {
            id,
            signal: params.signal.clone(),
        };
        push_to::<proc::Signal>(&ctx, &route, id, &command).await?;
    }
    Ok(rows(&god, &ids))
}

pub async fn scale(god: Arc<God>, params: Scale, ctx: Ctx) -> Result<Vec<ProcessInfo>, RpcError> {
    validate::scale(&params.name, params.instances).map_err(bad_params)?;
    let current = god.table().instances_of(&params.name);
    let Some(&first_id) = current.first() else {
        return Err(RpcError::not_found(format!(
            "no app named {:?}",
            params.name
        )));
    };
    let want = params.instances as usize;
    if want > current.len() {
        let (spec, next_instance) = {
            let table = god.table();
            let spec = table.get(first_id).map(|p| p.spec.clone());
            let next = current
                .iter()
                .filter_map(|id| table.get(*id))
                .map(|p| p.instance + 1)
                .max();
            (spec, next.unwrap_or(0))
        };
        let spec = spec.ok_or_else(|| RpcError::not_found("app vanished while scaling"))?;
        let added = spawn_instances(
            &god,
            &ctx,
            &spec,
            next_instance,
            (want - current.len()) as u32,
        )
        .await?;
        wait_launched(&god, &added).await?;
    } else if want < current.len() {
        let victims = god
            .table()
            .scale_down_victims(&params.name, current.len() - want);
        delete_ids(&god, &ctx, &victims).await?;
    }
    let ids = god.table().instances_of(&params.name);
    Ok(rows(&god, &ids))
}

/// Stops every app, tells every agent to exit, waits for the local ones to be gone, then
/// shuts God down. An order, not a crash: nothing is relaunched afterwards.
pub async fn kill(god: Arc<God>, _: NoParams, ctx: Ctx) -> Result<Pong, RpcError> {
    let ids = god.table().resolve("all")?;
    // Keepers keep relaunching until every app is confirmed stopped: a spawner that died
    // just now is replaced, and its replacement ends what the dead one left.
    if let Err(e) = stop_ids(&god, &ctx, &ids).await {
        tracing::warn!(error = %e, "stopping apps before kill");
    }
    god.stopping
        .store(true, std::sync::atomic::Ordering::SeqCst);
    // The logs agent first, while the spawner still serves what the stopped apps printed
    // last; then every other agent (third parties too).
    let logs = Role::Logs.as_str();
    let mut peers = god.registry().peers();
    peers.sort_by_key(|(role, _, _)| role != logs);
    for (role, host, peer) in peers {
        // Only this host's pids mean anything here.
        let pid = Some(&host)
            .filter(|h| **h == god.host)
            .and_then(|h| god.registry().pid_of(&role, h));
        if let Err(e) = ctx
            .pusher
            .push_method::<agent::Exit>(&peer, &NoParams {})
            .await
        {
            tracing::warn!(%role, error = %e, "telling agent to exit");
        }
        if let Some(pid) = pid.filter(|_| Role::parse(&role).is_some()) {
            wait_gone(pid, Duration::from_secs(10)).await;
        }
    }
    // An order, not a crash: the next God starts empty (`zpm resurrect` restores a dump).
    {
        let mut table = god.table();
        for id in ids {
            table.remove(id);
        }
    }
    god.persist().await;
    god.shutdown.notify_one();
    Ok(god.pong())
}

async fn wait_gone(pid: u32, limit: Duration) {
    let deadline = tokio::time::Instant::now() + limit;
    while zpm_host::procfs::alive(pid) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

//! `app.reload`: each instance replaced by a new run that is ready before the old one
//! stops (the spawner does the overlap, see agents/src/spawner/supervisor/reload.rs), at
//! most `parallel` at once, stopping at the first instance that rolls back. With an
//! ecosystem file: changed apps reloaded with their new spec, new apps started.
//! Also `app.msg` and `app.send`, which reach a running app's IPC channel and stdin.

use super::apps::{route, rows, start_specs};
use super::bad_params;
use crate::state::God;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use zpm_proto::commands::{MsgApps, ProcInput, ReloadApps, ReloadCommand, Reloaded, SendLine};
use zpm_proto::method::proc;
use zpm_proto::{AppSpec, ProcessInfo, RestartReason, validate};
use zpm_rpc::{Ctx, ErrorCode, PeerId, RpcError};

/// Most instances replaced at once.
const MAX_PARALLEL: u32 = 64;
/// Longest `zpm msg` value or `zpm send` line.
const MAX_INPUT_BYTES: usize = 64 * 1024;

pub async fn reload(
    god: Arc<God>,
    params: ReloadApps,
    ctx: Ctx,
) -> Result<Vec<ProcessInfo>, RpcError> {
    let parallel = params.parallel.clamp(1, MAX_PARALLEL) as usize;
    let (work, started) = if params.apps.is_empty() {
        let ids = god.table().resolve_all(&params.targets.names())?;
        let work = if params.targets.update_env.is_empty() {
            ids.into_iter().map(|id| (id, None)).collect()
        } else {
            super::update_env::updated_specs(&god, &ids, &params.targets.update_env)?
        };
        (work, Vec::new())
    } else {
        validate::start_apps(&params.apps).map_err(bad_params)?;
        from_file(&god, &ctx, &params.apps).await?
    };
    let ids: Vec<u32> = work.iter().map(|(id, _)| *id).collect();
    let route = route(&god, &ids).await?;
    let failure = replace_all(&god, &ctx, &route, work, parallel, None).await;
    god.persist().await;
    if let Some(message) = failure {
        return Err(RpcError::new(ErrorCode::Failed, message));
    }
    let mut all = ids;
    all.extend(started);
    Ok(rows(&god, &all))
}

/// The instances to reload with their new spec (apps whose spec changed), after starting
/// the file's apps God does not have. Returns them and the ids started.
async fn from_file(
    god: &God,
    ctx: &Ctx,
    apps: &[AppSpec],
) -> Result<(Vec<(u32, Option<AppSpec>)>, Vec<u32>), RpcError> {
    let mut work = Vec::new();
    let mut new = Vec::new();
    for spec in apps {
        let table = god.table();
        let ids: Vec<u32> = table
            .instances_of(&spec.name)
            .into_iter()
            .filter(|id| {
                table
                    .get(*id)
                    .is_some_and(|p| p.spec.namespace == spec.namespace)
            })
            .collect();
        let Some(current) = ids.first().and_then(|id| table.get(*id)) else {
            new.push(spec.clone());
            continue;
        };
        if current.spec == *spec {
            continue;
        }
        if current.spec.hosts != spec.hosts || current.spec.instances != spec.instances {
            return Err(RpcError::new(
                ErrorCode::Conflict,
                format!(
                    "app {:?}: its instances or hosts changed; a reload keeps both (use `zpm scale`, or delete and start)",
                    spec.name
                ),
            ));
        }
        work.extend(ids.into_iter().map(|id| (id, Some(spec.clone()))));
    }
    let started = if new.is_empty() {
        Vec::new()
    } else {
        start_specs(god, ctx, &new)
            .await?
            .into_iter()
            .map(|row| row.id)
            .collect()
    };
    Ok((work, started))
}

/// Replaces instances `parallel` at a time; after the first failure none more is begun.
/// Returns what failed, if anything did. `reason` is what the restart history shows
/// (`None`: `reload`).
pub(super) async fn replace_all(
    god: &Arc<God>,
    ctx: &Ctx,
    route: &std::collections::HashMap<u32, PeerId>,
    work: Vec<(u32, Option<AppSpec>)>,
    parallel: usize,
    reason: Option<RestartReason>,
) -> Option<String> {
    let mut queue = work.into_iter();
    let mut running = JoinSet::new();
    let mut failures = Vec::new();
    let mut not_begun = Vec::new();
    loop {
        while running.len() < parallel && failures.is_empty() {
            let Some((id, spec)) = queue.next() else {
                break;
            };
            let Some(peer) = route.get(&id).cloned() else {
                continue;
            };
            let one = replace_one(Arc::clone(god), ctx.clone(), peer, id, spec, reason.clone());
            running.spawn(one);
        }
        let Some(done) = running.join_next().await else {
            break;
        };
        if let Ok(Err(failure)) = done {
            failures.push(failure);
        }
    }
    not_begun.extend(queue.map(|(id, _)| id.to_string()));
    if failures.is_empty() {
        return None;
    }
    let mut message = failures.join("; ");
    if !not_begun.is_empty() {
        message = format!(
            "{message}; not reloaded (left as they were): ids {}",
            not_begun.join(", ")
        );
    }
    Some(message)
}

/// One instance: push `proc.reload`, wait for `proc.reloaded`; on success the new spec
/// is God's.
async fn replace_one(
    god: Arc<God>,
    ctx: Ctx,
    peer: PeerId,
    id: u32,
    spec: Option<AppSpec>,
    reason: Option<RestartReason>,
) -> Result<(), String> {
    let (label, host, limit) = {
        let table = god.table();
        let Some(p) = table.get(id) else {
            return Ok(());
        };
        let spec = spec.as_ref().unwrap_or(&p.spec);
        let limit = Duration::from_millis(spec.ready.timeout_ms + p.spec.kill_timeout_ms)
            + Duration::from_secs(15);
        (
            format!(
                "{} instance {} (id {id}, pid {})",
                p.spec.name,
                p.instance,
                p.report.pid.map_or("-".into(), |p| p.to_string())
            ),
            p.host.clone(),
            limit,
        )
    };
    let (token, answer) = god.reloads().open(&host).map_err(|e| e.message)?;
    let command = ReloadCommand {
        id,
        token,
        spec: spec.clone(),
        reason,
    };
    if let Err(e) = ctx
        .pusher
        .push_method::<proc::Reload>(&peer, &command)
        .await
    {
        god.reloads().close(token);
        return Err(format!("{label}: cannot reach its spawner: {e}"));
    }
    let outcome = tokio::select! {
        answer = tokio::time::timeout(limit, answer) => answer,
        () = spawner_gone(&god, &host, &peer) => {
            god.reloads().close(token);
            return Err(format!("{label}: its spawner went away during the reload (its successor starts the app again)"));
        }
    };
    god.reloads().close(token);
    match outcome {
        Ok(Ok(None)) => {
            if let Some(spec) = spec
                && let Some(p) = god.table().get_mut(id)
            {
                p.spec = spec;
            }
            god.changed();
            Ok(())
        }
        Ok(Ok(Some(reason))) => Err(format!(
            "{label}: {reason}; rolled back, the old run still serves"
        )),
        Ok(Err(_)) | Err(_) => Err(format!(
            "{label}: no answer from its spawner within {limit:?}"
        )),
    }
}

/// Resolves once `peer` is no longer the live spawner of `host` (it died or was replaced):
/// its answer will never come.
async fn spawner_gone(god: &God, host: &str, peer: &PeerId) {
    let mut changes = god.changes();
    loop {
        let live = god
            .registry()
            .live_by_host(zpm_proto::Role::Spawner.as_str())
            .into_iter()
            .any(|(h, p)| h == host && p == *peer);
        if !live || changes.changed().await.is_err() {
            return;
        }
    }
}

/// Spawner → God: how a reload ended (only from the spawner of the host asked; another
/// agent of that host cannot settle it).
pub async fn reloaded(god: Arc<God>, reloaded: Reloaded, ctx: Ctx) -> Result<(), RpcError> {
    match god.heard_from(&ctx.peer, None) {
        Some(sender) if sender.is_spawner_of(&sender.host) => {
            god.reloads()
                .settle(reloaded.token, &sender.host, reloaded.error);
        }
        _ => tracing::debug!("proc.reloaded from a peer that is not a spawner; ignored"),
    }
    Ok(())
}

pub async fn msg(god: Arc<God>, params: MsgApps, ctx: Ctx) -> Result<Vec<ProcessInfo>, RpcError> {
    if params.json.len() > MAX_INPUT_BYTES {
        return Err(RpcError::bad_params(format!(
            "the message is {} bytes, at most {MAX_INPUT_BYTES}",
            params.json.len()
        )));
    }
    if let Err(e) = serde_json::from_str::<serde_json::Value>(&params.json) {
        return Err(RpcError::bad_params(format!(
            "the message is not JSON: {e}"
        )));
    }
    push_input::<proc::Msg>(&god, &ctx, &params.targets, params.json).await
}

pub async fn send(god: Arc<God>, params: SendLine, ctx: Ctx) -> Result<Vec<ProcessInfo>, RpcError> {
    if params.line.len() > MAX_INPUT_BYTES {
        return Err(RpcError::bad_params(format!(
            "the line is {} bytes, at most {MAX_INPUT_BYTES}",
            params.line.len()
        )));
    }
    push_input::<proc::Stdin>(&god, &ctx, &params.targets, params.line).await
}

async fn push_input<M: zpm_rpc::Method<Params = ProcInput>>(
    god: &God,
    ctx: &Ctx,
    targets: &zpm_proto::commands::Target,
    text: String,
) -> Result<Vec<ProcessInfo>, RpcError> {
    let ids = god.table().resolve_all(&targets.names())?;
    let route = route(god, &ids).await?;
    for &id in &ids {
        if let Some(peer) = route.get(&id) {
            let input = ProcInput {
                id,
                text: text.clone(),
            };
            ctx.pusher.push_method::<M>(peer, &input).await?;
        }
    }
    Ok(rows(god, &ids))
}

//! `app.watch` (`zpm watch`/`zpm unwatch`): file watching on or off at run time, without
//! a restart. And `proc.changed`: a spawner saw the watched files of a ready-gated app
//! change; God reloads every instance of the app once, as `zpm reload` does (plain apps
//! are restarted by their spawner itself, see DESIGN.md).

use super::apps::{route, rows};
use super::reload::replace_all;
use crate::state::God;
use std::sync::Arc;
use zpm_proto::commands::{Changed, WatchApps, WatchCommand};
use zpm_proto::method::proc;
use zpm_proto::{ProcessInfo, RestartReason};
use zpm_rpc::{Ctx, RpcError};

/// Longest path a `proc.changed` may name; a longer one is cut.
const MAX_PATH_BYTES: usize = 4096;

pub async fn watch(
    god: Arc<God>,
    params: WatchApps,
    ctx: Ctx,
) -> Result<Vec<ProcessInfo>, RpcError> {
    let ids = god.table().resolve_all(&params.targets.names())?;
    let commands: Vec<WatchCommand> = {
        let mut table = god.table();
        let mut commands = Vec::new();
        for &id in &ids {
            if let Some(p) = table.get_mut(id) {
                p.spec.watch.enabled = params.enabled;
                let watch = p.spec.watch.clone();
                commands.push(WatchCommand { id, watch });
            }
        }
        commands
    };
    god.persist().await;
    god.changed();
    let route = route(&god, &ids).await?;
    for command in &commands {
        if let Some(peer) = route.get(&command.id) {
            ctx.pusher.push_method::<proc::Watch>(peer, command).await?;
        }
    }
    Ok(rows(&god, &ids))
}

/// Never trusted: the instance must exist on the sender's host and watch its files.
pub async fn changed(god: Arc<God>, params: Changed, ctx: Ctx) -> Result<(), RpcError> {
    let Some(sender) = god.heard_from(&ctx.peer, None) else {
        return Ok(());
    };
    let app = {
        let table = god.table();
        table
            .get(params.id)
            .filter(|p| sender.is_spawner_of(&p.host) && p.spec.watch.enabled)
            .map(|p| (p.spec.name.clone(), p.spec.namespace.clone()))
    };
    let Some(app) = app else {
        tracing::debug!(
            id = params.id,
            "proc.changed for no watched app of its sender; ignored"
        );
        return Ok(());
    };
    if !god.watch_reloads().insert(app.clone()) {
        return Ok(());
    }
    let path = cut(params.path);
    tracing::info!(app = %app.0, %path, "watched files changed; reloading");
    tokio::spawn(reload_app(god, ctx, app, path));
    Ok(())
}

/// Every instance of the app, one at a time, then the app may be reloaded again.
async fn reload_app(god: Arc<God>, ctx: Ctx, app: (String, String), path: String) {
    let ids: Vec<u32> = {
        let table = god.table();
        table
            .instances_of(&app.0)
            .into_iter()
            .filter(|id| table.get(*id).is_some_and(|p| p.spec.namespace == app.1))
            .collect()
    };
    let reason = Some(RestartReason::Watch { path });
    let outcome = match route(&god, &ids).await {
        Ok(route) => {
            let work = ids.iter().map(|id| (*id, None)).collect();
            replace_all(&god, &ctx, &route, work, 1, reason).await
        }
        Err(e) => Some(e.message),
    };
    if let Some(failure) = outcome {
        tracing::warn!(app = %app.0, %failure, "reload for watched files failed");
    }
    god.watch_reloads().remove(&app);
}

fn cut(mut path: String) -> String {
    if path.len() > MAX_PATH_BYTES {
        let mut end = MAX_PATH_BYTES;
        while !path.is_char_boundary(end) {
            end -= 1;
        }
        path.truncate(end);
    }
    path
}

//! `--update-env`: the new spec of each instance, its environment replaced by what the CLI
//! read again, the app's own `--env-var` values kept on top (they were given for this app,
//! not read from a file or shell). Without it an app keeps the environment it started with.

use super::apps::route;
use super::bad_params;
use super::reload::replace_all;
use crate::state::God;
use std::sync::Arc;
use zpm_proto::RestartReason;
use zpm_proto::commands::EnvUpdate;
use zpm_proto::{AppSpec, validate};
use zpm_rpc::RpcError;
use zpm_rpc::{Ctx, ErrorCode};

/// `(id, new spec)` for every id; `(id, None)` (its spec as it is) for an app `updates`
/// does not name (e.g. a dependency `--with-deps` brings along).
pub(super) fn updated_specs(
    god: &God,
    ids: &[u32],
    updates: &[EnvUpdate],
) -> Result<Vec<(u32, Option<AppSpec>)>, RpcError> {
    if updates.len() > validate::MAX_APPS_PER_REQUEST {
        return Err(RpcError::bad_params(format!(
            "update_env: {} apps, at most {}",
            updates.len(),
            validate::MAX_APPS_PER_REQUEST
        )));
    }
    let table = god.table();
    let mut work = Vec::with_capacity(ids.len());
    for &id in ids {
        let Some(p) = table.get(id) else {
            continue;
        };
        let Some(update) = updates
            .iter()
            .find(|u| u.name == p.spec.name && u.namespace == p.spec.namespace)
        else {
            work.push((id, None));
            continue;
        };
        let spec = with_env(&p.spec, update);
        validate::app_spec(&spec)
            .map_err(|e| bad_params(e.within(&format!("app {:?}", spec.name))))?;
        work.push((id, Some(spec)));
    }
    Ok(work)
}

/// `zpm restart --update-env` of `ids`: every instance at once replaced by a run of its
/// new spec (for a ready-gated app the new run is ready before the old one stops).
pub(super) async fn restart_with_env(
    god: &Arc<God>,
    ctx: &Ctx,
    ids: &[u32],
    updates: &[EnvUpdate],
) -> Result<(), RpcError> {
    let work = updated_specs(god, ids, updates)?;
    let route = route(god, ids).await?;
    let parallel = ids.len().max(1);
    let failure = replace_all(god, ctx, &route, work, parallel, Some(RestartReason::User)).await;
    god.persist().await;
    match failure {
        Some(message) => Err(RpcError::new(ErrorCode::Failed, message)),
        None => Ok(()),
    }
}

fn with_env(old: &AppSpec, update: &EnvUpdate) -> AppSpec {
    let mut spec = old.clone();
    spec.env.clone_from(&update.env);
    spec.env_explicit.clone_from(&update.env_explicit);
    for name in &old.env_origin.overrides {
        if let Some(value) = old.env.get(name) {
            spec.env.insert(name.clone(), value.clone());
            if !spec.env_explicit.contains(name) {
                spec.env_explicit.push(name.clone());
            }
        }
    }
    spec
}

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
    // Instances of one app run one spec: each app's new spec is made and checked once,
    // outside the table's lock.
    let current: Vec<AppSpec> = {
        let table = god.table();
        let mut seen = std::collections::BTreeSet::new();
        ids.iter()
            .filter_map(|id| table.get(*id))
            .filter(|p| seen.insert((p.spec.namespace.clone(), p.spec.name.clone())))
            .map(|p| p.spec.clone())
            .collect()
    };
    let mut new_specs = Vec::with_capacity(current.len());
    for spec in &current {
        let update = updates
            .iter()
            .find(|u| u.name == spec.name && u.namespace == spec.namespace);
        let new = update.map(|update| with_env(spec, update));
        if let Some(new) = &new {
            validate::app_spec(new)
                .map_err(|e| bad_params(e.within(&format!("app {:?}", new.name))))?;
        }
        new_specs.push(((spec.namespace.clone(), spec.name.clone()), new));
    }
    let table = god.table();
    let work = ids
        .iter()
        .filter_map(|id| table.get(*id))
        .map(|p| {
            let key = (p.spec.namespace.clone(), p.spec.name.clone());
            let new = new_specs
                .iter()
                .find(|(k, _)| *k == key)
                .and_then(|(_, s)| s.clone());
            (p.id, new)
        })
        .collect();
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

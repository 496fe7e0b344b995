//! `app.apply`: the file's apps made the truth. God computes the plan itself from its own
//! table (the CLI only sends the resolved specs), answers a dry run with it, and otherwise
//! carries it out with the verbs' own machinery: `delete_ids` for pruned apps and removed
//! instances, `start_specs` for new apps, the reload path (`replace_all`) for changed ones
//! (the spawner overlaps runs when it can, else restarts), `spawn_instances` for added
//! instances. An unchanged file pushes nothing to any spawner.

mod diff;
mod plan;

use super::apps::{delete_ids, route, rows, spawn_instances, start_specs, wait_launched};
use super::bad_params;
use super::reload::replace_all;
use crate::state::God;
use plan::Step;
use std::sync::Arc;
use zpm_proto::AppSpec;
use zpm_proto::apply::{ApplyAction, ApplyApps, ApplyPlan};
use zpm_proto::validate;
use zpm_rpc::{Ctx, ErrorCode, RpcError};

pub async fn apply(god: Arc<God>, params: ApplyApps, ctx: Ctx) -> Result<ApplyPlan, RpcError> {
    validate::apply_apps(&params.apps).map_err(bad_params)?;
    let steps = plan::plan(&god, &params.apps, params.prune)?;
    let mut result = ApplyPlan {
        apps: steps.iter().map(|s| s.line.clone()).collect(),
        executed: false,
        rows: Vec::new(),
    };
    if params.dry_run || result.nothing_to_do() {
        return Ok(result);
    }
    execute(&god, &ctx, &steps).await?;
    result.executed = true;
    result.rows = rows(&god, &file_ids(&god, &params.apps));
    Ok(result)
}

/// Deletions first (they free ports and memory the rest may need), then new apps, then
/// changed ones one instance at a time (as `zpm reload`), then added instances. Stops at
/// the first failure; what was done before it stays done.
async fn execute(god: &Arc<God>, ctx: &Ctx, steps: &[Step]) -> Result<(), RpcError> {
    let doomed: Vec<u32> = steps
        .iter()
        .flat_map(|s| match s.line.action {
            ApplyAction::Delete => &s.ids[..],
            _ => s.ids.get(s.want()..).unwrap_or_default(),
        })
        .copied()
        .collect();
    delete_ids(god, ctx, &doomed)
        .await
        .map_err(|e| during("deleting", e))?;
    let new: Vec<AppSpec> = specs_of(steps, &[ApplyAction::Start]).cloned().collect();
    if !new.is_empty() {
        start_specs(god, ctx, &new)
            .await
            .map_err(|e| during("starting new apps", e))?;
    }
    replace_changed(god, ctx, steps).await?;
    grow(god, ctx, steps).await?;
    god.persist().await;
    Ok(())
}

fn specs_of<'a>(
    steps: &'a [Step],
    actions: &'a [ApplyAction],
) -> impl Iterator<Item = &'a AppSpec> + 'a {
    steps
        .iter()
        .filter(|s| actions.contains(&s.line.action))
        .filter_map(|s| s.spec.as_ref())
}

/// Every kept instance of a changed app replaced by a run of its new spec.
async fn replace_changed(god: &Arc<God>, ctx: &Ctx, steps: &[Step]) -> Result<(), RpcError> {
    let changed: Vec<(u32, &AppSpec)> = steps
        .iter()
        .filter(|s| matches!(s.line.action, ApplyAction::Reload | ApplyAction::Restart))
        .filter_map(|s| Some((s, s.spec.as_ref()?)))
        .flat_map(|(s, spec)| {
            let kept = &s.ids[..s.want().min(s.ids.len())];
            kept.iter().map(move |id| (*id, spec))
        })
        .collect();
    // Dependencies first, by the specs they will run.
    let work: Vec<(u32, Option<AppSpec>)> = crate::order::waves_of(changed.iter().copied())
        .into_iter()
        .flatten()
        .filter_map(|id| {
            let spec = changed.iter().find(|(i, _)| *i == id)?.1;
            Some((id, Some(spec.clone())))
        })
        .collect();
    if work.is_empty() {
        return Ok(());
    }
    let ids: Vec<u32> = work.iter().map(|(id, _)| *id).collect();
    let route = route(god, &ids).await?;
    let failure = replace_all(god, ctx, &route, work, 1, None).await;
    god.persist().await;
    match failure {
        Some(message) => Err(RpcError::new(
            ErrorCode::Failed,
            format!("reloading changed apps: {message}"),
        )),
        None => Ok(()),
    }
}

/// Instances added to apps that have fewer than the file says, numbered after theirs.
async fn grow(god: &God, ctx: &Ctx, steps: &[Step]) -> Result<(), RpcError> {
    let mut added = Vec::new();
    for s in steps.iter().filter(|s| s.line.action != ApplyAction::Start) {
        let (Some(spec), Some(missing)) = (&s.spec, s.want().checked_sub(s.ids.len())) else {
            continue;
        };
        if missing == 0 {
            continue;
        }
        let next = {
            let table = god.table();
            s.ids
                .iter()
                .filter_map(|id| table.get(*id))
                .map(|p| p.instance + 1)
                .max()
                .unwrap_or(0)
        };
        let count = u32::try_from(missing).unwrap_or(u32::MAX);
        added.extend(
            spawn_instances(god, ctx, spec, next, count)
                .await
                .map_err(|e| during("adding instances", e))?,
        );
    }
    if !added.is_empty() {
        god.persist().await;
        wait_launched(god, &added)
            .await
            .map_err(|e| during("adding instances", e))?;
    }
    Ok(())
}

fn during(what: &str, e: RpcError) -> RpcError {
    RpcError::new(e.code, format!("{what}: {}", e.message))
}

/// The ids of the file's apps, in file order.
fn file_ids(god: &God, apps: &[AppSpec]) -> Vec<u32> {
    let table = god.table();
    let mut ids = Vec::new();
    for spec in apps {
        let mut of: Vec<(u32, u32)> = table
            .procs()
            .filter(|p| p.spec.name == spec.name && p.spec.namespace == spec.namespace)
            .map(|p| (p.instance, p.id))
            .collect();
        of.sort_unstable();
        ids.extend(of.into_iter().map(|(_, id)| id));
    }
    ids
}

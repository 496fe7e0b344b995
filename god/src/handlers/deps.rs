//! Starting apps in `depends_on` order: every app of a start is in the table at once
//! (`ls` shows what it waits for), and each is spawned as soon as its own dependencies are
//! met, so independent apps start in parallel and a chain takes its critical path.

use super::apps::{spawn_ids, wait_launched};
use crate::order::{self, Progress};
use crate::persist::Desired;
use crate::state::God;
use std::sync::Arc;
use std::time::Duration;
use zpm_proto::depends::DEFAULT_TIMEOUT_MS;
use zpm_proto::{AppSpec, ProcessStatus};
use zpm_rpc::{Ctx, RpcError};

/// Why an app of a start was not launched.
pub(super) enum Blocked {
    /// A dependency failed or did not become ready in time.
    Dependency(String),
    /// Pushing to or waiting for its spawner failed.
    Rpc(RpcError),
}

/// Adds every instance of `apps` to the table; those with dependencies wait for them.
pub(super) fn add_waiting(god: &God, apps: &[AppSpec]) -> Vec<(AppSpec, Vec<u32>)> {
    let mut table = god.table();
    let groups = apps
        .iter()
        .map(|spec| {
            let ids = table.add(spec, &god.host, 0, spec.instances.max(1));
            for id in &ids {
                if let Some(p) = table.get_mut(*id) {
                    p.waiting.clone_from(&spec.depends_on);
                }
            }
            (spec.clone(), ids)
        })
        .collect();
    drop(table);
    god.changed();
    groups
}

/// After a God restart: the apps of `host` a previous God saved while they waited for
/// their dependencies wait again, each in a task of its own, and are spawned when met; one
/// whose dependency fails or times out is left `errored` with why (no caller to tell).
pub(super) fn resume_waiting(god: &Arc<God>, ctx: &Ctx, host: &str) {
    let mut groups: Vec<(AppSpec, Vec<u32>)> = Vec::new();
    {
        let mut table = god.table();
        let orphans: Vec<u32> = table
            .procs()
            .filter(|p| p.waiting_orphaned && p.host == host)
            .map(|p| p.id)
            .collect();
        for id in orphans {
            let Some(p) = table.get_mut(id) else {
                continue;
            };
            p.waiting_orphaned = false;
            match groups.iter_mut().find(|(spec, _)| same_app(spec, &p.spec)) {
                Some((_, ids)) => ids.push(id),
                None => groups.push((p.spec.clone(), vec![id])),
            }
        }
    }
    for (spec, ids) in groups {
        let (god, ctx) = (Arc::clone(god), ctx.clone());
        tokio::spawn(async move {
            tracing::info!(app = %spec.name, "resuming the wait for its dependencies");
            if let Err(Blocked::Dependency(why) | Blocked::Rpc(RpcError { message: why, .. })) =
                launch_when_ready(&god, &ctx, &spec, &ids).await
            {
                tracing::warn!(app = %spec.name, %why, "a resumed start failed");
            }
            god.persist().await;
        });
    }
}

/// Waits for `spec`'s dependencies, then spawns `ids` and waits until they are launched.
pub(super) async fn launch_when_ready(
    god: &God,
    ctx: &Ctx,
    spec: &AppSpec,
    ids: &[u32],
) -> Result<(), Blocked> {
    let mut ids = ids.to_vec();
    if !spec.depends_on.is_empty() {
        let outcome = wait_dependencies(god, spec, Some(&ids)).await;
        let mut table = god.table();
        // Stopped or deleted while it waited: not to be spawned.
        ids.retain(|id| {
            table
                .get(*id)
                .is_some_and(|p| p.desired == Desired::Running)
        });
        for id in &ids {
            if let Some(p) = table.get_mut(*id) {
                p.waiting.clear();
                // Never spawned: its own dependents learn at once that it will not run.
                if let Err(why) = &outcome {
                    p.report.status = ProcessStatus::Errored;
                    p.report.error = Some(why.clone());
                    p.desired = Desired::Stopped;
                }
            }
        }
        drop(table);
        god.changed();
        outcome.map_err(Blocked::Dependency)?;
    }
    spawn_ids(god, ctx, &ids).await.map_err(Blocked::Rpc)?;
    wait_launched(god, &ids).await.map_err(Blocked::Rpc)
}

/// Before a restart of `ids` (in `depends_on` waves): waits for the dependencies of each of
/// their apps to meet their condition again, as a start does.
pub(super) async fn wait_before_restart(god: &God, ids: &[u32]) -> Result<(), RpcError> {
    let mut specs: Vec<AppSpec> = Vec::new();
    {
        let table = god.table();
        for p in ids.iter().filter_map(|id| table.get(*id)) {
            if !p.spec.depends_on.is_empty() && !specs.iter().any(|s| same_app(s, &p.spec)) {
                specs.push(p.spec.clone());
            }
        }
    }
    let waits = specs.iter().map(|spec| wait_dependencies(god, spec, None));
    let failures: Vec<String> = futures::future::join_all(waits)
        .await
        .into_iter()
        .filter_map(Result::err)
        .collect();
    if failures.is_empty() {
        return Ok(());
    }
    Err(RpcError::new(
        zpm_rpc::ErrorCode::Failed,
        failures
            .join("; ")
            .replace("was not started", "was not restarted"),
    ))
}

fn same_app(a: &AppSpec, b: &AppSpec) -> bool {
    a.name == b.name && a.namespace == b.namespace
}

/// Until every dependency of `spec` is met, one fails, `depends_timeout` passes, or (given
/// `ids`) no instance of them is wanted running any more (stopped or deleted meanwhile).
async fn wait_dependencies(god: &God, spec: &AppSpec, ids: Option<&[u32]>) -> Result<(), String> {
    let limit = Duration::from_millis(spec.depends_timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS));
    let mut last = Progress::Met;
    let mut abandoned = false;
    let _ = god
        .wait_table(limit, "depends_on", |table| {
            abandoned = ids.is_some_and(|ids| {
                !ids.iter().any(|id| {
                    table
                        .get(*id)
                        .is_some_and(|p| p.desired == Desired::Running)
                })
            });
            last = order::all_progress(table, spec);
            abandoned || !matches!(last, Progress::Waiting(_))
        })
        .await;
    if abandoned {
        return Ok(());
    }
    match last {
        Progress::Met => Ok(()),
        Progress::Failed(why) => Err(format!("{} was not started: {why}", spec.name)),
        Progress::Waiting(why) => Err(format!(
            "{} was not started: it waited {limit:?} (depends_timeout) for {why}",
            spec.name
        )),
    }
}

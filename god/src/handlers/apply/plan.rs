//! The plan of an `app.apply`: each file app compared with what God runs (by name and
//! namespace), and with `prune` the apps of the file's namespaces it no longer names.

use super::diff::changes;
use crate::state::God;
use std::collections::{BTreeMap, HashSet};
use zpm_proto::AppSpec;
use zpm_proto::apply::{ApplyAction, Change, PlannedApp};
use zpm_rpc::{ErrorCode, RpcError};

/// One app's step: its plan line, the spec its instances run afterwards, and the ids of
/// its instances now (lowest instance number first).
pub(super) struct Step {
    pub line: PlannedApp,
    pub spec: Option<AppSpec>,
    pub ids: Vec<u32>,
}

impl Step {
    /// Instances it should have.
    pub fn want(&self) -> usize {
        self.line.instances as usize
    }
}

type Key = (String, String);

/// Every app God has: (name, namespace) → its ids, lowest instance number first.
fn running(god: &God) -> BTreeMap<Key, Vec<u32>> {
    let table = god.table();
    let mut found: BTreeMap<Key, Vec<(u32, u32)>> = BTreeMap::new();
    for p in table.procs() {
        found
            .entry((p.spec.name.clone(), p.spec.namespace.clone()))
            .or_default()
            .push((p.instance, p.id));
    }
    found
        .into_iter()
        .map(|(key, mut ids)| {
            ids.sort_unstable();
            (key, ids.into_iter().map(|(_, id)| id).collect())
        })
        .collect()
}

/// The steps for `apps` (already validated), file order, deletions last. Refused when an
/// app would have to move between hosts.
pub(super) fn plan(god: &God, apps: &[AppSpec], prune: bool) -> Result<Vec<Step>, RpcError> {
    let mut running = running(god);
    let mut steps = Vec::with_capacity(apps.len());
    for spec in apps {
        let key = (spec.name.clone(), spec.namespace.clone());
        let ids = running.remove(&key).unwrap_or_default();
        steps.push(step(god, spec, ids)?);
    }
    if prune {
        let namespaces: HashSet<&str> = apps.iter().map(|s| s.namespace.as_str()).collect();
        for ((name, namespace), ids) in running {
            if namespaces.contains(namespace.as_str()) {
                steps.push(Step {
                    line: line(name, namespace, ApplyAction::Delete, ids.len(), Vec::new()),
                    spec: None,
                    ids,
                });
            }
        }
    }
    Ok(steps)
}

fn line(
    name: String,
    namespace: String,
    action: ApplyAction,
    instances: usize,
    changes: Vec<Change>,
) -> PlannedApp {
    PlannedApp {
        name,
        namespace,
        action,
        instances: u32::try_from(instances).unwrap_or(u32::MAX),
        changes,
    }
}

/// What `spec` needs, given the ids God runs of it.
fn step(god: &God, spec: &AppSpec, ids: Vec<u32>) -> Result<Step, RpcError> {
    let want = spec.instances.max(1);
    let named = |action, changes| {
        line(
            spec.name.clone(),
            spec.namespace.clone(),
            action,
            want as usize,
            changes,
        )
    };
    let current = ids
        .first()
        .and_then(|id| god.table().get(*id).map(|p| p.spec.clone()));
    let Some(current) = current else {
        return Ok(Step {
            line: named(ApplyAction::Start, Vec::new()),
            spec: Some(spec.clone()),
            ids,
        });
    };
    if current.hosts != spec.hosts {
        return Err(RpcError::new(
            ErrorCode::Conflict,
            format!(
                "app {:?}: its hosts change ({:?} → {:?}); apply does not move running apps \
                 between hosts: delete it (`zpm delete`, or leave it out and apply --prune), \
                 then apply again; nothing was changed",
                spec.name, current.hosts, spec.hosts
            ),
        ));
    }
    let mut found = Vec::new();
    if ids.len() != want as usize {
        found.push(Change {
            key: "instances".into(),
            old: Some(ids.len().to_string()),
            new: Some(want.to_string()),
        });
    }
    let settings = changes(&current, spec);
    let (action, runs) = if settings.is_empty() {
        // Unchanged settings: the instances keep the spec they run (an env inherited from
        // another shell is not taken up), and new ones get the same.
        let action = if found.is_empty() {
            ApplyAction::Unchanged
        } else {
            ApplyAction::Scale
        };
        (
            action,
            AppSpec {
                instances: want,
                ..current
            },
        )
    } else if spec.reload_overlaps() || spec.ready.gated() {
        // Ready-gated without shared sockets: replaced one instance at a time, each ready
        // before the next goes, as `zpm reload` does (its siblings serve meanwhile).
        (ApplyAction::Reload, spec.clone())
    } else {
        (ApplyAction::Restart, spec.clone())
    };
    found.extend(settings);
    Ok(Step {
        line: named(action, found),
        spec: Some(runs),
        ids,
    })
}

//! `depends_on`: which apps may start, which must wait and for what, and the order in which
//! a set of apps is started (dependencies first) or stopped (dependents first). Pure
//! functions of the table, so the handlers stay about pushing and waiting.

use crate::persist::Desired;
use crate::table::{Proc, Table};
use std::collections::{BTreeMap, BTreeSet};
use zpm_proto::depends::{Condition, Dependency};
use zpm_proto::{AppSpec, ProcessStatus};
use zpm_rpc::RpcError;

/// An app: (namespace, name).
pub type Key = (String, String);

pub fn key(spec: &AppSpec) -> Key {
    (spec.namespace.clone(), spec.name.clone())
}

fn dep_key(spec: &AppSpec, dependency: &Dependency) -> Key {
    (spec.namespace.clone(), dependency.name.clone())
}

/// The spec of every app God has, by key.
fn table_specs(table: &Table) -> BTreeMap<Key, &AppSpec> {
    table.procs().map(|p| (key(&p.spec), &p.spec)).collect()
}

/// Refuses a start of `apps` (before anything starts) when one depends on an app that is
/// neither among them nor in the table, on `healthy` of an app without a health check, or
/// when the dependencies form a cycle.
pub fn check_start(table: &Table, apps: &[AppSpec]) -> Result<(), RpcError> {
    let mut specs = table_specs(table);
    specs.extend(apps.iter().map(|spec| (key(spec), spec)));
    for spec in apps {
        for dependency in &spec.depends_on {
            let Some(target) = specs.get(&dep_key(spec, dependency)) else {
                return Err(RpcError::bad_params(format!(
                    "app {:?} depends on {:?}, which is neither in this start nor an app of \
                     namespace {:?}; nothing was started",
                    spec.name, dependency.name, spec.namespace
                )));
            };
            if dependency.condition == Condition::Healthy && !target.health.enabled() {
                return Err(RpcError::bad_params(format!(
                    "app {:?} waits for {:?} to be healthy, but {:?} has no health check \
                     (health_http, health_tcp or health_cmd); nothing was started",
                    spec.name, dependency.name, dependency.name
                )));
            }
        }
    }
    if let Some(cycle) = find_cycle(&specs) {
        return Err(RpcError::bad_params(format!(
            "depends_on forms a cycle: {}; nothing was started",
            cycle.join(" → ")
        )));
    }
    Ok(())
}

/// A cycle among `specs`' dependencies, as the names along it (first repeated last).
fn find_cycle(specs: &BTreeMap<Key, &AppSpec>) -> Option<Vec<String>> {
    // Depth-first, iteratively coloured: 1 = on the current path, 2 = done.
    let mut colour: BTreeMap<&Key, u8> = BTreeMap::new();
    for start in specs.keys() {
        let mut path: Vec<(&Key, usize)> = vec![(start, 0)];
        if colour.contains_key(start) {
            continue;
        }
        colour.insert(start, 1);
        while let Some((node, next)) = path.last().copied() {
            let deps = &specs[node].depends_on;
            let Some(dependency) = deps.get(next) else {
                colour.insert(node, 2);
                path.pop();
                continue;
            };
            if let Some(last) = path.last_mut() {
                last.1 += 1;
            }
            let target = (node.0.clone(), dependency.name.clone());
            let Some((target, _)) = specs.get_key_value(&target) else {
                continue;
            };
            match colour.get(target) {
                Some(1) => {
                    let from = path.iter().position(|(k, _)| *k == target).unwrap_or(0);
                    let mut names: Vec<String> =
                        path[from..].iter().map(|(k, _)| k.1.clone()).collect();
                    names.push(target.1.clone());
                    return Some(names);
                }
                Some(_) => {}
                None => {
                    colour.insert(target, 1);
                    path.push((target, 0));
                }
            }
        }
    }
    None
}

/// Where a dependency stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    Met,
    /// Not yet; why, for the error if it never is.
    Waiting(String),
    /// It never will be without someone acting: why.
    Failed(String),
}

/// Where `dependency` of an app in `namespace` stands: met when every instance of it is.
pub fn progress(table: &Table, namespace: &str, dependency: &Dependency) -> Progress {
    let instances: Vec<&Proc> = table
        .procs()
        .filter(|p| p.spec.name == dependency.name && p.spec.namespace == namespace)
        .collect();
    if instances.is_empty() {
        return Progress::Failed(format!("{} is not an app any more", dependency.name));
    }
    let mut worst = Progress::Met;
    for p in instances {
        match instance_progress(p, dependency.condition) {
            Progress::Met => {}
            failed @ Progress::Failed(_) => return failed,
            waiting => worst = waiting,
        }
    }
    worst
}

fn instance_progress(p: &Proc, condition: Condition) -> Progress {
    let name = &p.spec.name;
    let r = &p.report;
    let ended = || match (&r.signal, r.exit_code) {
        (Some(signal), _) => format!("killed by {signal}"),
        (None, Some(code)) => format!("exited with code {code}"),
        (None, None) => "ended".to_owned(),
    };
    let completes = matches!(
        condition,
        Condition::Completed | Condition::CompletedSuccessfully
    );
    match r.status {
        _ if !p.waiting.is_empty() => {
            Progress::Waiting(format!("{name} waits for its own dependencies"))
        }
        ProcessStatus::Errored => Progress::Failed(match &r.error {
            Some(error) => format!("{name} could not start: {error}"),
            None => format!("{name} is errored"),
        }),
        ProcessStatus::Stopped if p.desired == Desired::Stopped => {
            Progress::Failed(format!("{name} is stopped"))
        }
        ProcessStatus::Stopped => match condition {
            Condition::Completed => Progress::Met,
            Condition::CompletedSuccessfully if r.exit_code == Some(0) && r.signal.is_none() => {
                Progress::Met
            }
            _ => Progress::Failed(format!("{name} {}", ended())),
        },
        ProcessStatus::Launching if r.pid.is_none() => {
            Progress::Waiting(format!("{name} is not started yet"))
        }
        ProcessStatus::Launching if condition == Condition::Started => Progress::Met,
        ProcessStatus::Launching => Progress::Waiting(format!("{name} is not ready yet")),
        ProcessStatus::Online if completes => Progress::Waiting(format!("{name} is still running")),
        ProcessStatus::Online if condition == Condition::Healthy => match &r.health {
            Some(h) if h.passed > 0 && h.failures == 0 => Progress::Met,
            Some(h) if h.failures > 0 => Progress::Waiting(format!(
                "{name} is unhealthy ({})",
                h.last.as_deref().unwrap_or("check failed")
            )),
            _ => Progress::Waiting(format!("{name} has not passed a health check yet")),
        },
        ProcessStatus::Online => Progress::Met,
        ProcessStatus::Stopping | ProcessStatus::WaitingRestart => {
            Progress::Waiting(format!("{name} is restarting"))
        }
        ProcessStatus::Unknown => Progress::Waiting(format!("{name}'s host is down")),
    }
}

/// Where all of `spec`'s dependencies stand: the first failure, else the first that waits.
pub fn all_progress(table: &Table, spec: &AppSpec) -> Progress {
    let mut waiting = Progress::Met;
    for dependency in &spec.depends_on {
        match progress(table, &spec.namespace, dependency) {
            Progress::Failed(why) => {
                return Progress::Failed(format!("{dependency}: {why}"));
            }
            Progress::Waiting(why) if waiting == Progress::Met => {
                waiting = Progress::Waiting(format!("{dependency}: {why}"));
            }
            Progress::Met | Progress::Waiting(_) => {}
        }
    }
    waiting
}

/// `ids` in waves: every app's dependencies among `ids` are in earlier waves (start
/// order). Instances of one app stay together; apps in a cycle (refused at start, but a
/// table may still hold one) end up in the last wave.
pub fn start_waves(table: &Table, ids: &[u32]) -> Vec<Vec<u32>> {
    waves_of(
        ids.iter()
            .filter_map(|id| table.get(*id))
            .map(|p| (p.id, &p.spec)),
    )
}

/// [`start_waves`] of instances given with the spec each will run (e.g. a new one).
pub fn waves_of<'a>(instances: impl IntoIterator<Item = (u32, &'a AppSpec)>) -> Vec<Vec<u32>> {
    let mut by_app: BTreeMap<Key, Vec<u32>> = BTreeMap::new();
    let mut specs: BTreeMap<Key, &AppSpec> = BTreeMap::new();
    for (id, spec) in instances {
        by_app.entry(key(spec)).or_default().push(id);
        specs.insert(key(spec), spec);
    }
    let mut left: BTreeSet<Key> = by_app.keys().cloned().collect();
    let mut waves = Vec::new();
    while !left.is_empty() {
        let ready: Vec<Key> = left
            .iter()
            .filter(|k| {
                specs[*k]
                    .depends_on
                    .iter()
                    .all(|d| !left.contains(&dep_key(specs[*k], d)))
            })
            .cloned()
            .collect();
        let wave = if ready.is_empty() {
            std::mem::take(&mut left).into_iter().collect()
        } else {
            ready
        };
        for k in &wave {
            left.remove(k);
        }
        waves.push(wave.iter().flat_map(|k| by_app[k].clone()).collect());
    }
    waves
}

/// `ids` in stop order: dependents before what they depend on.
pub fn stop_waves(table: &Table, ids: &[u32]) -> Vec<Vec<u32>> {
    let mut waves = start_waves(table, ids);
    waves.reverse();
    waves
}

/// The apps `ids` depend on, transitively, whose condition failed (stopped, errored, a
/// job that failed) and that are not among `ids`: what `--with-deps` starts too, or what a
/// start without it refuses.
pub fn failed_dependencies(table: &Table, ids: &[u32]) -> Vec<(u32, String)> {
    let mut wanted: BTreeSet<Key> = ids
        .iter()
        .filter_map(|id| table.get(*id))
        .map(|p| key(&p.spec))
        .collect();
    let specs = table_specs(table);
    let mut queue: Vec<Key> = wanted.iter().cloned().collect();
    let mut found = Vec::new();
    while let Some(app) = queue.pop() {
        let Some(spec) = specs.get(&app) else {
            continue;
        };
        for dependency in &spec.depends_on {
            let dep = dep_key(spec, dependency);
            if wanted.contains(&dep) {
                continue;
            }
            if let Progress::Failed(why) = progress(table, &spec.namespace, dependency) {
                let label = format!("{} depends on {dependency}, and {why}", spec.name);
                found.extend(
                    table
                        .procs()
                        .filter(|p| key(&p.spec) == dep)
                        .map(|p| (p.id, label.clone())),
                );
                wanted.insert(dep.clone());
                queue.push(dep);
            }
        }
    }
    found
}

#[cfg(test)]
mod tests;

//! The process table: desired state (specs, ids) and the last report of each app instance.

use crate::persist::{Desired, STATE_VERSION, SavedApp, SavedState};
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::time::{Duration, Instant};
use zpm_bus::now_ms;
use zpm_proto::{AppSpec, ProcessInfo, ProcessReport, ProcessStatus, RestartReason, RestartRecord};
use zpm_rpc::{ErrorCode, RpcError};

pub struct Proc {
    pub id: u32,
    pub instance: u32,
    pub spec: AppSpec,
    pub host: String,
    pub desired: Desired,
    pub report: ProcessReport,
    /// No supervisor holds it: a stopped app its replaced spawner ran. A restart must spawn
    /// it anew, since the spawner has nothing to restart.
    pub unheld: bool,
    /// The metrics agent's latest sample of it.
    pub usage: Option<Usage>,
    /// Its last restarts, oldest first (at most [`HISTORY`]).
    pub history: VecDeque<RestartRecord>,
    /// Why God asked for the restart it is waiting to see reported.
    pub pending_reason: Option<RestartReason>,
    /// Its host is down: shown `unknown`, whatever it last reported.
    pub host_down: bool,
    /// The dependencies it is waiting for before it is spawned (`depends_on`).
    pub waiting: Vec<zpm_proto::depends::Dependency>,
    /// It was waiting when a previous God saved it: no start waits for it now, so the
    /// next hello of its spawner resumes the wait (`handlers/deps.rs`).
    pub waiting_orphaned: bool,
}

impl Proc {
    fn new(
        id: u32,
        instance: u32,
        spec: AppSpec,
        host: String,
        desired: Desired,
        report: ProcessReport,
    ) -> Self {
        Self {
            id,
            instance,
            spec,
            host,
            desired,
            report,
            unheld: false,
            usage: None,
            history: VecDeque::new(),
            pending_reason: None,
            host_down: false,
            waiting: Vec::new(),
            waiting_orphaned: false,
        }
    }
}

/// Restart records kept per instance.
const HISTORY: usize = 10;

impl Proc {
    /// Records why the run changed, comparing the report that replaces `old`.
    fn note_restart(&mut self, old: &ProcessReport, now_ms: u64) {
        let new = &self.report;
        let reason = if new.restarts > old.restarts {
            self.pending_reason
                .take()
                .or_else(|| new.reason.clone())
                .unwrap_or_else(|| RestartReason::Exited {
                    code: new.exit_code,
                    signal: new.signal.clone(),
                })
        } else if new.status == ProcessStatus::Errored
            && old.status != ProcessStatus::Errored
            && new.error.is_none()
        {
            RestartReason::Errored {
                restarts: new.restarts,
            }
        } else {
            return;
        };
        self.record(reason, now_ms);
    }

    /// Adds to the restart history, dropping the oldest past [`HISTORY`].
    pub fn record(&mut self, reason: RestartReason, now_ms: u64) {
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(RestartRecord {
            at_ms: now_ms,
            reason,
        });
    }
}

/// One sample of an app's process tree, and when God got it.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    pub pid: Option<u32>,
    pub cpu: f32,
    pub memory: u64,
    pub at: Instant,
}

/// A sample older than this is not shown: the metrics agent is gone or stuck.
const USAGE_TTL: Duration = Duration::from_secs(5);

impl Proc {
    /// The latest sample, if it is fresh and of the run that is reported now.
    fn usage(&self) -> Option<&Usage> {
        let running = matches!(
            self.report.status,
            ProcessStatus::Online | ProcessStatus::Stopping
        );
        self.usage
            .as_ref()
            .filter(|u| running && u.pid == self.report.pid && u.at.elapsed() < USAGE_TTL)
    }

    pub fn row(&self, now_ms: u64) -> ProcessInfo {
        let r = &self.report;
        let running = matches!(r.status, ProcessStatus::Online | ProcessStatus::Stopping);
        ProcessInfo {
            id: self.id,
            name: self.spec.name.clone(),
            namespace: self.spec.namespace.clone(),
            instance: self.instance,
            host: self.host.clone(),
            pid: r.pid,
            status: if self.host_down {
                ProcessStatus::Unknown
            } else {
                r.status
            },
            restarts: r.restarts,
            uptime_ms: r
                .started_at_ms
                .filter(|_| running)
                .map(|at| now_ms.saturating_sub(at)),
            exit_code: r.exit_code,
            signal: r.signal.clone(),
            cpu: self.usage().map(|u| u.cpu),
            memory: self.usage().map(|u| u.memory),
            max_memory_restart: self.spec.max_memory_restart,
            error: r.error.clone(),
            status_text: r.status_text.clone(),
            health: r.health.clone(),
            waiting: self.waiting.iter().map(ToString::to_string).collect(),
        }
    }
}

#[derive(Default)]
pub struct Table {
    next_id: u32,
    procs: BTreeMap<u32, Proc>,
}

fn initial_report(id: u32, status: ProcessStatus, restarts: u32) -> ProcessReport {
    ProcessReport {
        id,
        status,
        pid: None,
        restarts,
        started_at_ms: None,
        exit_code: None,
        signal: None,
        seq: 0,
        error: None,
        reason: None,
        status_text: None,
        health: None,
    }
}

impl Table {
    /// Adds `count` instances of `spec`, numbered from `first_instance`, each on its host
    /// ([`AppSpec::host_of`], `default_host` if the spec names none); returns their ids.
    pub fn add(
        &mut self,
        spec: &AppSpec,
        default_host: &str,
        first_instance: u32,
        count: u32,
    ) -> Vec<u32> {
        (first_instance..first_instance + count)
            .map(|instance| {
                let id = self.next_id;
                self.next_id += 1;
                let proc = Proc::new(
                    id,
                    instance,
                    spec.clone(),
                    spec.host_of(instance, default_host),
                    Desired::Running,
                    initial_report(id, ProcessStatus::Launching, 0),
                );
                self.procs.insert(id, proc);
                id
            })
            .collect()
    }

    /// Rebuilds the table from the persisted state; running apps are `launching` until an
    /// agent reports them.
    pub fn from_saved(saved: SavedState<'static>, host: &str) -> Self {
        let mut table = Self {
            next_id: saved.next_id,
            procs: BTreeMap::new(),
        };
        for app in saved.apps {
            let status = match app.desired {
                Desired::Running => ProcessStatus::Launching,
                Desired::Stopped => ProcessStatus::Stopped,
            };
            table.next_id = table.next_id.max(app.id + 1);
            let mut proc = Proc::new(
                app.id,
                app.instance,
                app.spec.into_owned(),
                app.host
                    .map_or_else(|| host.to_owned(), std::borrow::Cow::into_owned),
                app.desired,
                initial_report(app.id, status, app.restarts),
            );
            proc.waiting_orphaned = !app.waiting.is_empty();
            proc.waiting = app.waiting;
            table.procs.insert(app.id, proc);
        }
        table
    }

    /// The desired state to save, borrowing every spec.
    pub fn snapshot(&self) -> SavedState<'_> {
        SavedState {
            version: STATE_VERSION,
            next_id: self.next_id,
            apps: self
                .procs
                .values()
                .map(|p| SavedApp {
                    id: p.id,
                    instance: p.instance,
                    desired: p.desired,
                    restarts: p.report.restarts,
                    spec: std::borrow::Cow::Borrowed(&p.spec),
                    host: Some(std::borrow::Cow::Borrowed(p.host.as_str())),
                    waiting: p.waiting.clone(),
                })
                .collect(),
        }
    }

    /// Takes in an app an agent runs that this table does not know (state lost).
    pub fn adopt(&mut self, held: zpm_proto::commands::Held, host: &str) {
        let id = held.report.id;
        self.next_id = self.next_id.max(id + 1);
        let proc = Proc::new(
            id,
            held.instance,
            held.spec,
            host.to_owned(),
            Desired::Running,
            held.report,
        );
        self.procs.insert(id, proc);
    }

    /// Every app on `host` shows `unknown` while it is down, and its own status again
    /// once it is back.
    pub fn set_host_down(&mut self, host: &str, down: bool) {
        for proc in self.procs.values_mut().filter(|p| p.host == host) {
            proc.host_down = down;
        }
    }

    /// `host`'s spawner died: every app it ran that should run is being started again.
    pub fn mark_replacing(&mut self, host: &str) {
        for proc in self
            .procs
            .values_mut()
            .filter(|p| p.desired == Desired::Running && p.host == host)
        {
            if proc.report.pid.is_some() {
                proc.report.restarts += 1;
            }
            proc.report.status = ProcessStatus::Launching;
            proc.report.pid = None;
            proc.report.started_at_ms = None;
        }
    }

    pub fn set_desired(&mut self, ids: &[u32], desired: Desired) {
        for id in ids {
            if let Some(proc) = self.procs.get_mut(id) {
                proc.desired = desired;
            }
        }
    }

    /// Of `ids`, those still waiting for their dependencies (never spawned) are stopped
    /// here, with nothing for a spawner to do: their start will not spawn them.
    pub fn stop_waiting(&mut self, ids: &[u32]) {
        for id in ids {
            if let Some(p) = self.procs.get_mut(id).filter(|p| !p.waiting.is_empty()) {
                p.waiting.clear();
                p.desired = Desired::Stopped;
                p.report.status = ProcessStatus::Stopped;
            }
        }
    }

    pub fn procs(&self) -> impl Iterator<Item = &Proc> {
        self.procs.values()
    }

    pub fn get_mut(&mut self, id: u32) -> Option<&mut Proc> {
        self.procs.get_mut(&id)
    }

    pub fn get(&self, id: u32) -> Option<&Proc> {
        self.procs.get(&id)
    }

    pub fn remove(&mut self, id: u32) -> Option<Proc> {
        self.procs.remove(&id)
    }

    /// Records a report; false if the id is unknown (deleted meanwhile).
    /// Takes a spawner's report unless it is older than the one held.
    pub fn apply(&mut self, report: ProcessReport) -> bool {
        match self.procs.get_mut(&report.id) {
            Some(proc) => {
                if report.seq == 0 || report.seq >= proc.report.seq {
                    let old = std::mem::replace(&mut proc.report, report);
                    proc.note_restart(&old, now_ms());
                }
                true
            }
            None => false,
        }
    }

    pub fn status(&self, id: u32) -> Option<ProcessStatus> {
        self.procs.get(&id).map(|p| p.report.status)
    }

    /// Keeps a metrics sample of every app it names that God has on `host` (the sampling
    /// agent's: it cannot see the others).
    pub fn apply_metrics(&mut self, apps: &[zpm_proto::metrics::AppMetrics], host: &str) {
        let at = Instant::now();
        for app in apps {
            if let Some(proc) = self.procs.get_mut(&app.id).filter(|p| p.host == host) {
                proc.usage = Some(Usage {
                    pid: app.pid,
                    cpu: app.cpu,
                    memory: app.memory,
                    at,
                });
            }
        }
    }

    pub fn rows(&self, ids: Option<&[u32]>, now_ms: u64) -> Vec<ProcessInfo> {
        match ids {
            None => self.procs.values().map(|p| p.row(now_ms)).collect(),
            Some(ids) => ids
                .iter()
                .filter_map(|id| self.procs.get(id))
                .map(|p| p.row(now_ms))
                .collect(),
        }
    }

    /// Ids of the instances of app `name` in any namespace, by instance number.
    pub fn instances_of(&self, name: &str) -> Vec<u32> {
        let mut found: Vec<&Proc> = self
            .procs
            .values()
            .filter(|p| p.spec.name == name)
            .collect();
        found.sort_by_key(|p| p.instance);
        found.iter().map(|p| p.id).collect()
    }

    pub fn name_taken(&self, name: &str, namespace: &str) -> bool {
        self.procs
            .values()
            .any(|p| p.spec.name == name && p.spec.namespace == namespace)
    }

    /// Resolves every target before anything is acted on: the ids in order of first mention,
    /// each once, or an error naming every target that matches nothing.
    pub fn resolve_all(&self, targets: &[&str]) -> Result<Vec<u32>, RpcError> {
        if targets.is_empty() {
            return Err(RpcError::bad_params(
                "no target given (an id, a name, a namespace or `all`)",
            ));
        }
        let mut ids = Vec::new();
        let mut seen = HashSet::new();
        let mut unknown = Vec::new();
        for target in targets {
            match self.resolve(target) {
                Ok(found) => ids.extend(found.into_iter().filter(|id| seen.insert(*id))),
                Err(_) => unknown.push(format!("{target:?}")),
            }
        }
        if unknown.is_empty() {
            return Ok(ids);
        }
        let nothing_done = if targets.len() > 1 {
            "; nothing was done"
        } else {
            ""
        };
        Err(RpcError::new(
            ErrorCode::NotFound,
            format!(
                "no app matches {} (not an id, name or namespace){nothing_done}",
                unknown.join(" or ")
            ),
        ))
    }

    /// The `count` instances of app `name` a scale-down removes: errored or stopped ones
    /// first (they serve nothing), then the highest instance numbers.
    pub fn scale_down_victims(&self, name: &str, count: usize) -> Vec<u32> {
        let mut found: Vec<&Proc> = self
            .procs
            .values()
            .filter(|p| p.spec.name == name)
            .collect();
        let serving = |p: &Proc| {
            !matches!(
                p.report.status,
                ProcessStatus::Errored | ProcessStatus::Stopped
            )
        };
        found.sort_by_key(|p| (serving(p), std::cmp::Reverse(p.instance)));
        found.iter().take(count).map(|p| p.id).collect()
    }

    /// Resolves a target: `all`, an id, an app name, or a namespace.
    pub fn resolve(&self, target: &str) -> Result<Vec<u32>, RpcError> {
        let ids: Vec<u32> = if target == "all" {
            self.procs.keys().copied().collect()
        } else if let Ok(id) = target.parse::<u32>() {
            self.procs
                .contains_key(&id)
                .then_some(id)
                .into_iter()
                .collect()
        } else {
            let by_name = self.instances_of(target);
            if by_name.is_empty() {
                self.procs
                    .values()
                    .filter(|p| p.spec.namespace == target)
                    .map(|p| p.id)
                    .collect()
            } else {
                by_name
            }
        };
        if ids.is_empty() && target != "all" {
            return Err(RpcError::new(
                ErrorCode::NotFound,
                format!("no app matches {target:?} (not an id, name or namespace)"),
            ));
        }
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, namespace: &str) -> AppSpec {
        let mut spec = AppSpec::new(name, vec!["sleep".into(), "9".into()], "/");
        spec.namespace = namespace.into();
        spec
    }

    #[test]
    fn ids_are_stable_and_never_reused() {
        let mut t = Table::default();
        assert_eq!(t.add(&spec("a", "default"), "h", 0, 2), vec![0, 1]);
        t.remove(1);
        assert_eq!(t.add(&spec("b", "default"), "h", 0, 1), vec![2]);
    }

    #[test]
    fn targets_resolve_by_id_name_namespace_and_all() {
        let mut t = Table::default();
        t.add(&spec("api", "web"), "h", 0, 2);
        t.add(&spec("worker", "jobs"), "h", 0, 1);
        assert_eq!(t.resolve("all").unwrap(), vec![0, 1, 2]);
        assert_eq!(t.resolve("2").unwrap(), vec![2]);
        assert_eq!(t.resolve("api").unwrap(), vec![0, 1]);
        assert_eq!(t.resolve("jobs").unwrap(), vec![2]);
        assert_eq!(t.resolve("nope").unwrap_err().code, ErrorCode::NotFound);
        assert_eq!(t.resolve("7").unwrap_err().code, ErrorCode::NotFound);
    }

    #[test]
    fn several_targets_resolve_together_once_each() {
        let mut t = Table::default();
        t.add(&spec("api", "web"), "h", 0, 2);
        t.add(&spec("worker", "jobs"), "h", 0, 1);
        assert_eq!(
            t.resolve_all(&["worker", "api", "1"]).unwrap(),
            vec![2, 0, 1]
        );
        assert_eq!(t.resolve_all(&["all", "api"]).unwrap(), vec![0, 1, 2]);
        let err = t.resolve_all(&["api", "nope", "9"]).unwrap_err();
        assert_eq!(err.code, ErrorCode::NotFound);
        assert!(
            err.message.contains(r#""nope" or "9""#) && err.message.contains("nothing was done"),
            "{}",
            err.message
        );
        assert_eq!(t.resolve_all(&[]).unwrap_err().code, ErrorCode::BadParams);
    }

    #[test]
    fn scale_down_removes_broken_instances_then_the_highest() {
        let mut t = Table::default();
        t.add(&spec("api", "web"), "h", 0, 5);
        for id in 0..5 {
            t.get_mut(id).unwrap().report.status = ProcessStatus::Online;
        }
        t.get_mut(1).unwrap().report.status = ProcessStatus::Errored;
        t.get_mut(2).unwrap().report.status = ProcessStatus::Stopped;
        assert_eq!(t.scale_down_victims("api", 3), vec![2, 1, 4]);
        assert_eq!(t.scale_down_victims("api", 1), vec![2]);
    }
}

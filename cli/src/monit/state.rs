//! What the dashboard shows, as plain data: the apps, the selection, per-app samples and log
//! tails, host metrics and a status line. The view draws only this; bus events, rpc replies
//! and keys only change this. Every buffer in it is bounded.

use super::tail::Tails;
use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;
use zpm_proto::metrics::{HostMetrics, MetricsReport};
use zpm_proto::{LogEvent, ProcessInfo};

/// Apps shown (and given a history); more are left out of the table.
pub const MAX_APPS: usize = 1000;
/// Samples kept per app for the sparklines.
pub const SAMPLES: usize = 60;
/// Hosts whose metrics are kept (one report per host and interval).
const MAX_HOSTS: usize = 64;

/// An app's recent samples, oldest first.
#[derive(Debug, Default)]
pub struct Samples {
    /// Tenths of a percent of one core, so that a sparkline shows small loads too.
    pub cpu: VecDeque<u64>,
    /// Resident bytes.
    pub memory: VecDeque<u64>,
}

impl Samples {
    fn push(&mut self, cpu: f32, memory: u64) {
        if self.cpu.len() == SAMPLES {
            self.cpu.pop_front();
            self.memory.pop_front();
        }
        self.cpu
            .push_back((f64::from(cpu.max(0.0)) * 10.0).round() as u64);
        self.memory.push_back(memory);
    }

    /// The latest sample: (cpu %, bytes).
    pub fn latest(&self) -> Option<(f32, u64)> {
        Some((*self.cpu.back()? as f32 / 10.0, *self.memory.back()?))
    }
}

/// The line under the table: the outcome of the last action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub text: String,
    pub error: bool,
}

#[derive(Debug)]
pub struct MonitState {
    /// Sorted by id, at most [`MAX_APPS`].
    pub apps: Vec<ProcessInfo>,
    /// The selected app's id: a selection follows its app when the list changes.
    pub selected: Option<u32>,
    pub samples: BTreeMap<u32, Samples>,
    pub tails: Tails,
    /// Latest metrics per host name.
    pub hosts: BTreeMap<String, HostMetrics>,
    pub status: Option<Status>,
    /// When `apps` was fetched: uptimes grow from there.
    pub listed_at: Instant,
    /// The time the view shows.
    pub now: Instant,
}

impl MonitState {
    pub fn new(now: Instant) -> Self {
        Self {
            apps: Vec::new(),
            selected: None,
            samples: BTreeMap::new(),
            tails: Tails::default(),
            hosts: BTreeMap::new(),
            status: None,
            listed_at: now,
            now,
        }
    }

    /// A fresh `app.list`: keeps the selection on its app (or on the row where it was), and
    /// forgets the samples and tails of apps that are gone.
    pub fn set_apps(&mut self, mut apps: Vec<ProcessInfo>, now: Instant) {
        let row = self.selected_index();
        apps.sort_by_key(|a| a.id);
        apps.truncate(MAX_APPS);
        self.apps = apps;
        self.listed_at = now;
        self.selected = match self.selected {
            Some(id) if self.index_of(id).is_some() => Some(id),
            _ => row
                .map(|row| row.min(self.apps.len().saturating_sub(1)))
                .or(Some(0))
                .and_then(|row| self.apps.get(row))
                .map(|a| a.id),
        };
        let ids: Vec<u32> = self.apps.iter().map(|a| a.id).collect();
        let known = |id: &u32| ids.binary_search(id).is_ok();
        self.samples.retain(|id, _| known(id));
        self.tails.retain(|id| known(&id));
    }

    pub fn selected_index(&self) -> Option<usize> {
        self.selected.and_then(|id| self.index_of(id))
    }

    pub fn selected_app(&self) -> Option<&ProcessInfo> {
        self.selected_index().map(|i| &self.apps[i])
    }

    fn index_of(&self, id: u32) -> Option<usize> {
        self.apps.binary_search_by_key(&id, |a| a.id).ok()
    }

    /// Moves the selection by `delta` rows, stopping at the first and last.
    pub fn move_selection(&mut self, delta: isize) {
        let Some(last) = self.apps.len().checked_sub(1) else {
            return;
        };
        let row = match self.selected_index() {
            Some(row) => row.saturating_add_signed(delta).min(last),
            None => 0,
        };
        self.selected = Some(self.apps[row].id);
    }

    /// A `metrics` report from `host`: its host line, and a sample for each listed app.
    pub fn apply_metrics(&mut self, host: &str, report: MetricsReport) {
        if self.hosts.len() < MAX_HOSTS || self.hosts.contains_key(host) {
            self.hosts.insert(host.to_owned(), report.host);
        }
        for app in report.apps {
            if self.index_of(app.id).is_some() {
                self.samples
                    .entry(app.id)
                    .or_default()
                    .push(app.cpu, app.memory);
            }
        }
    }

    pub fn apply_log(&mut self, event: &LogEvent) {
        self.tails.append(event, self.selected);
    }

    /// The metrics of the selected app's host, else of any host.
    pub fn host_metrics(&self) -> Option<(&str, &HostMetrics)> {
        let host = self.selected_app().map(|a| a.host.as_str());
        host.and_then(|h| self.hosts.get_key_value(h))
            .or_else(|| self.hosts.iter().next())
            .map(|(name, metrics)| (name.as_str(), metrics))
    }

    pub fn set_status(&mut self, text: impl Into<String>, error: bool) {
        self.status = Some(Status {
            text: text.into(),
            error,
        });
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use zpm_proto::ProcessStatus;
    use zpm_proto::metrics::AppMetrics;

    pub fn app(id: u32, name: &str, status: ProcessStatus) -> ProcessInfo {
        ProcessInfo {
            id,
            name: name.to_owned(),
            namespace: "default".to_owned(),
            instance: 0,
            host: "box".to_owned(),
            pid: Some(1000 + id),
            status,
            restarts: 0,
            uptime_ms: Some(5000),
            exit_code: None,
            signal: None,
            cpu: None,
            memory: None,
            max_memory_restart: None,
            error: None,
            status_text: None,
            health: None,
            waiting: Vec::new(),
        }
    }

    pub fn report(apps: &[(u32, f32, u64)]) -> MetricsReport {
        MetricsReport {
            at_ms: 0,
            host: HostMetrics {
                cpus: 2,
                cpu: 25.0,
                mem_total: 8 << 30,
                mem_available: 6 << 30,
                load: [0.5, 0.25, 0.125],
            },
            apps: apps
                .iter()
                .map(|&(id, cpu, memory)| AppMetrics {
                    id,
                    pid: None,
                    cpu,
                    memory,
                    processes: 1,
                })
                .collect(),
        }
    }

    #[test]
    fn selection_follows_its_app_and_falls_back_to_its_row() {
        let now = Instant::now();
        let mut state = MonitState::new(now);
        let online = ProcessStatus::Online;
        state.set_apps(vec![app(5, "c", online), app(1, "a", online)], now);
        assert_eq!(state.selected, Some(1), "the first row is selected");
        state.move_selection(1);
        assert_eq!(state.selected, Some(5));
        state.move_selection(7);
        assert_eq!(state.selected, Some(5), "stops at the last row");
        state.set_apps(vec![app(0, "z", online), app(5, "c", online)], now);
        assert_eq!(state.selected, Some(5), "follows its app");
        state.set_apps(vec![app(0, "z", online), app(9, "d", online)], now);
        assert_eq!(state.selected, Some(9), "gone: the same row");
        state.set_apps(vec![], now);
        assert_eq!(state.selected, None);
        state.move_selection(-1);
        assert_eq!(state.selected, None);
    }

    #[test]
    fn samples_are_bounded_and_only_for_listed_apps() {
        let now = Instant::now();
        let mut state = MonitState::new(now);
        state.set_apps(vec![app(1, "a", ProcessStatus::Online)], now);
        for i in 0..SAMPLES + 5 {
            state.apply_metrics("box", report(&[(1, i as f32, 10), (2, 1.0, 1)]));
        }
        let samples = &state.samples[&1];
        assert_eq!(samples.cpu.len(), SAMPLES);
        assert_eq!(samples.memory.len(), SAMPLES);
        assert_eq!(samples.latest(), Some(((SAMPLES + 4) as f32, 10)));
        assert!(!state.samples.contains_key(&2));
        state.set_apps(vec![], now);
        assert!(state.samples.is_empty());
        assert_eq!(state.host_metrics().map(|(h, _)| h), Some("box"));
    }

    #[test]
    fn apps_shown_are_bounded() {
        let now = Instant::now();
        let mut state = MonitState::new(now);
        let many = (0..MAX_APPS as u32 + 10).map(|i| app(i, "x", ProcessStatus::Online));
        state.set_apps(many.collect(), now);
        assert_eq!(state.apps.len(), MAX_APPS);
    }
}

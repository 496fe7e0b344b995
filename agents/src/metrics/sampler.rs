//! One sample of the host and of every app's process tree, from one walk of /proc.
//!
//! CPU is a rate, so it needs the previous sample: the sampler keeps, per live process of
//! any tree, the cpu ticks it had last time, keyed by (pid, start time) so that a recycled
//! pid starts from nothing instead of inheriting (and subtracting) someone else's ticks. A
//! process seen for the first time contributes only from its next sample on, so a new app,
//! or a restarted one, reports 0 % once. A process that exits between two samples takes
//! its last ticks with it: short-lived children are under-counted, never over-counted.
//! Meaningful for intervals well above one clock tick (10 ms); the agent uses seconds.

use super::tree::build_trees;
use std::collections::{HashMap, HashSet};
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use zpm_host::procfs::{self, CpuTimes, ProcStat};
use zpm_proto::metrics::{AppMetrics, HostMetrics, MetricsReport};

#[derive(Debug)]
pub struct Sampler {
    ticks_per_second: f64,
    last_at: Option<Instant>,
    /// Cpu ticks of every tree member at the last sample, by (pid, start time).
    ticks: HashMap<(u32, u64), u64>,
    /// Apps present in the last sample: only those can have a cpu rate.
    apps: HashSet<u32>,
    host_cpu: Option<CpuTimes>,
}

impl Default for Sampler {
    fn default() -> Self {
        Self::new()
    }
}

impl Sampler {
    pub fn new() -> Self {
        Self {
            ticks_per_second: procfs::ticks_per_second().max(1) as f64,
            last_at: None,
            ticks: HashMap::new(),
            apps: HashSet::new(),
            host_cpu: None,
        }
    }

    /// Samples the host and the tree of each `(id, pid)`. What cannot be read reports as
    /// zero (and is logged): a report always goes out.
    pub fn sample(&mut self, apps: &[(u32, u32)]) -> MetricsReport {
        let now = Instant::now();
        let stats = procfs::all_stats().unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot walk /proc; app metrics report zero");
            Vec::new()
        });
        let apps = self.account(now, &stats, apps);
        MetricsReport {
            at_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            host: self.host(),
            apps,
        }
    }

    /// The app part of a sample, from a snapshot taken at `now`; /proc is not read here.
    pub(crate) fn account(
        &mut self,
        now: Instant,
        stats: &[ProcStat],
        apps: &[(u32, u32)],
    ) -> Vec<AppMetrics> {
        let roots: Vec<u32> = apps.iter().map(|&(_, pid)| pid).collect();
        let trees = build_trees(stats, &roots);
        let wall = self
            .last_at
            .map(|last| now.saturating_duration_since(last).as_secs_f64());
        let mut ticks = HashMap::with_capacity(self.ticks.len());
        let mut seen = HashSet::with_capacity(apps.len());
        let metrics = apps
            .iter()
            .zip(trees)
            .map(|(&(id, pid), tree)| {
                let (mut delta, mut memory) = (0_u64, 0_u64);
                for &i in &tree.members {
                    let s = &stats[i];
                    let key = (s.pid, s.start_time);
                    if let Some(before) = self.ticks.get(&key) {
                        delta += s.cpu_ticks().saturating_sub(*before);
                    }
                    ticks.insert(key, s.cpu_ticks());
                    memory += s.rss_bytes;
                }
                let cpu = match wall {
                    Some(wall) if wall > 0.0 && self.apps.contains(&id) => {
                        delta as f64 / self.ticks_per_second / wall * 100.0
                    }
                    _ => 0.0,
                };
                seen.insert(id);
                AppMetrics {
                    id,
                    pid: tree.root_alive.then_some(pid),
                    cpu: cpu as f32,
                    memory,
                    processes: u32::try_from(tree.members.len()).unwrap_or(u32::MAX),
                }
            })
            .collect();
        self.ticks = ticks;
        self.apps = seen;
        self.last_at = Some(now);
        metrics
    }

    fn host(&mut self) -> HostMetrics {
        let cpu_now = procfs::cpu_times()
            .inspect_err(|e| tracing::warn!(error = %e, "cannot read host cpu"))
            .ok();
        let cpu = match (self.host_cpu, cpu_now) {
            (Some(before), Some(now)) if now.total > before.total => {
                now.busy.saturating_sub(before.busy) as f64 / (now.total - before.total) as f64
                    * 100.0
            }
            _ => 0.0,
        };
        if cpu_now.is_some() {
            self.host_cpu = cpu_now;
        }
        let memory = procfs::meminfo()
            .inspect_err(|e| tracing::warn!(error = %e, "cannot read host memory"))
            .unwrap_or_default();
        let load = procfs::loadavg()
            .inspect_err(|e| tracing::warn!(error = %e, "cannot read the load average"))
            .unwrap_or_default();
        HostMetrics {
            cpus: cpu_now.map_or(0, |c| c.cpus),
            cpu: cpu.min(100.0) as f32,
            mem_total: memory.total,
            mem_available: memory.available,
            load,
        }
    }
}

#[cfg(test)]
mod tests;

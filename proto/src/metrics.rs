//! The body of the `metrics` bus event: what one host's metrics agent sampled. Percentages
//! are `f32` (the samples are coarse anyway, and it halves a report of many apps).

use serde::{Deserialize, Serialize};

/// One app's process tree on its host at the time of the sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppMetrics {
    pub id: u32,
    /// The app's root process, `None` when it was no longer alive (what remains of its
    /// process group is still counted).
    pub pid: Option<u32>,
    /// Percent of one core used by the whole tree since the previous sample (may exceed 100).
    pub cpu: f32,
    /// Resident bytes of the whole tree (pages shared between its processes count each time).
    pub memory: u64,
    /// Live processes in the tree.
    pub processes: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostMetrics {
    pub cpus: u32,
    /// Percent of all cores busy since the previous sample (0–100).
    pub cpu: f32,
    pub mem_total: u64,
    pub mem_available: u64,
    /// 1, 5 and 15 minute load averages.
    pub load: [f32; 3],
}

/// One host's latest sample, as God keeps it (`hosts.list`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostInfo {
    pub host: String,
    /// When its metrics agent sampled it, ms since the epoch.
    pub at_ms: u64,
    pub metrics: HostMetrics,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsReport {
    /// Milliseconds since the epoch when the sample was taken.
    pub at_ms: u64,
    pub host: HostMetrics,
    pub apps: Vec<AppMetrics>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_survives_msgpack_named() {
        let report = MetricsReport {
            at_ms: 1_700_000_000_000,
            host: HostMetrics {
                cpus: 2,
                cpu: 12.5,
                mem_total: 8 << 30,
                mem_available: 3 << 30,
                load: [0.5, 0.25, 0.125],
            },
            apps: vec![
                AppMetrics {
                    id: 0,
                    pid: Some(4242),
                    cpu: 150.0,
                    memory: 40 << 20,
                    processes: 3,
                },
                AppMetrics {
                    id: 7,
                    pid: None,
                    cpu: 0.0,
                    memory: 0,
                    processes: 0,
                },
            ],
        };
        let bytes = rmp_serde::to_vec_named(&report).expect("encode");
        let back: MetricsReport = rmp_serde::from_slice(&bytes).expect("decode");
        assert_eq!(back, report);
    }
}

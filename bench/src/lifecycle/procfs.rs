//! What the bench reads of other processes, in MB, through zpm's one `/proc` reader.

use zpm_host::procfs;

const MB: f64 = 1024.0 * 1024.0;

/// Resident set size of `pid` in MB (VmRSS): shared pages counted in full.
pub fn rss_mb(pid: u32) -> f64 {
    procfs::rss_bytes(pid).map_or(0.0, |b| b as f64 / MB)
}

/// Proportional set size in MB: shared pages split among the processes mapping them.
pub fn pss_mb(pid: u32) -> f64 {
    procfs::pss_bytes(pid).map_or(0.0, |b| b as f64 / MB)
}

pub fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

pub use procfs::zombie_children;

/// Live processes whose argv contains `marker`.
pub fn marked(marker: &str) -> Vec<u32> {
    procfs::all_stats()
        .unwrap_or_default()
        .into_iter()
        .filter(procfs::ProcStat::alive)
        .map(|s| s.pid)
        .filter(|&pid| procfs::cmdline(pid).iter().any(|a| a.contains(marker)))
        .collect()
}

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

/// Percent of one core that `pids` used together over `window` (the bench sleeps it).
pub fn cpu_percent(pids: &[u32], window: std::time::Duration) -> f64 {
    let ticks = || -> u64 {
        pids.iter()
            .filter_map(|pid| procfs::stat(*pid).ok())
            .map(|s| s.cpu_ticks())
            .sum()
    };
    let before = ticks();
    std::thread::sleep(window);
    let used = ticks().saturating_sub(before) as f64 / procfs::ticks_per_second() as f64;
    used / window.as_secs_f64() * 100.0
}

/// How long CPU use is averaged: long enough for 1 s sampling to show, at 10 ms ticks.
pub const CPU_WINDOW: std::time::Duration = std::time::Duration::from_secs(15);

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

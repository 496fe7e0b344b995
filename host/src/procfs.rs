//! Reading processes from `/proc` (through the `procfs` crate): the one place zpm parses it.

use procfs::process::{Process, all_processes};

/// What zpm needs of `/proc/PID/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub pid: u32,
    pub ppid: u32,
    pub pgrp: i32,
    /// `R`, `S`, `Z`…
    pub state: char,
    /// Clock ticks after boot: with the pid, identifies one process across pid reuse.
    pub start_time: u64,
    /// User + system time, in clock ticks.
    pub cpu_ticks: u64,
    /// Resident pages.
    pub rss_pages: u64,
}

impl Stat {
    /// A zombie (or a dying task) only waits to be reaped.
    pub fn is_dead(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }

    pub fn rss_bytes(&self) -> u64 {
        self.rss_pages * page_size()
    }
}

fn from_crate(stat: &procfs::process::Stat) -> Stat {
    Stat {
        pid: stat.pid.cast_unsigned(),
        ppid: stat.ppid.cast_unsigned(),
        pgrp: stat.pgrp,
        state: stat.state,
        start_time: stat.starttime,
        cpu_ticks: stat.utime + stat.stime,
        rss_pages: stat.rss,
    }
}

/// `/proc/PID/stat`, if `pid` exists.
pub fn stat(pid: u32) -> Option<Stat> {
    let process = Process::new(pid.cast_signed()).ok()?;
    process.stat().ok().map(|s| from_crate(&s))
}

/// Every process readable now (one that ends while being read is skipped).
pub fn all() -> Vec<Stat> {
    let Ok(processes) = all_processes() else {
        return Vec::new();
    };
    processes
        .filter_map(Result::ok)
        .filter_map(|p| p.stat().ok())
        .map(|s| from_crate(&s))
        .collect()
}

/// True if `pid` is a live process (a zombie is dead).
pub fn alive(pid: u32) -> bool {
    stat(pid).is_some_and(|s| !s.is_dead())
}

/// True if `pid` exists and is a zombie.
pub fn is_zombie(pid: u32) -> bool {
    stat(pid).is_some_and(|s| s.is_dead())
}

/// The kernel's start time of `pid`, if it exists.
pub fn start_time(pid: u32) -> Option<u64> {
    stat(pid).map(|s| s.start_time)
}

/// True if any live process belongs to process group `pgid`.
pub fn group_alive(pgid: i32) -> bool {
    all().iter().any(|s| s.pgrp == pgid && !s.is_dead())
}

/// Zombie processes whose parent is `parent`.
pub fn zombie_children(parent: u32) -> usize {
    all()
        .iter()
        .filter(|s| s.ppid == parent && s.is_dead())
        .count()
}

/// Direct children of this process (every thread's).
pub fn children_of_self() -> Vec<u32> {
    let Ok(tasks) = procfs::process::Process::myself().and_then(|me| me.tasks()) else {
        return Vec::new();
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|task| task.children().ok())
        .flatten()
        .collect()
}

/// `(tid, name, state)` of each thread of `pid`, for reports of what a process is doing.
pub fn threads(pid: u32) -> Vec<(u32, String, char)> {
    let Ok(tasks) = Process::new(pid.cast_signed()).and_then(|p| p.tasks()) else {
        return Vec::new();
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|t| t.stat().ok())
        .map(|s| (s.pid.cast_unsigned(), s.comm, s.state))
        .collect()
}

/// Resident memory of `pid` in bytes (shared pages counted in full).
pub fn rss_bytes(pid: u32) -> Option<u64> {
    stat(pid).map(|s| s.rss_bytes())
}

/// Resident memory of `pid` now and its high-water mark, in bytes (`/proc/PID/status`).
pub fn rss_and_peak(pid: u32) -> Option<(u64, u64)> {
    let status = Process::new(pid.cast_signed()).ok()?.status().ok()?;
    Some((status.vmrss? * 1024, status.vmhwm? * 1024))
}

/// Proportional set size of `pid` in bytes: shared pages split among their mappers.
pub fn pss_bytes(pid: u32) -> Option<u64> {
    let rollup = Process::new(pid.cast_signed()).ok()?.smaps_rollup().ok()?;
    rollup
        .memory_map_rollup
        .iter()
        .find_map(|m| m.extension.map.get("Pss").copied())
}

/// `argv` of `pid`, empty if unreadable.
pub fn cmdline(pid: u32) -> Vec<String> {
    Process::new(pid.cast_signed())
        .and_then(|p| p.cmdline())
        .unwrap_or_default()
}

pub fn page_size() -> u64 {
    procfs::page_size()
}

pub fn ticks_per_second() -> u64 {
    procfs::ticks_per_second()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn this_process_is_read() {
        let me = std::process::id();
        let stat = stat(me).unwrap();
        assert_eq!(stat.pid, me);
        assert!(alive(me));
        assert!(!is_zombie(me));
        assert!(stat.start_time > 0);
        assert!(rss_bytes(me).unwrap() > 0);
        let (rss, peak) = rss_and_peak(me).unwrap();
        assert!(rss > 0 && peak >= rss, "{rss} {peak}");
        assert!(pss_bytes(me).unwrap() > 0);
        assert!(all().iter().any(|s| s.pid == me));
        assert!(group_alive(nix_pgrp(me)));
    }

    fn nix_pgrp(pid: u32) -> i32 {
        stat(pid).unwrap().pgrp
    }

    #[test]
    fn a_reaped_child_is_gone_and_an_unreaped_one_is_a_zombie() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !is_zombie(pid) {
            assert!(std::time::Instant::now() < deadline, "child never exited");
            std::thread::yield_now();
        }
        assert!(!alive(pid));
        assert!(children_of_self().contains(&pid));
        assert_eq!(zombie_children(std::process::id()), 1);
        child.wait().unwrap();
        assert!(stat(pid).is_none());
    }
}

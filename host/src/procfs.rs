//! Everything zpm reads from /proc, in one place, through the `procfs` crate. Only
//! `/proc/PID/stat` is read per process on a walk (one open and one read): status and
//! smaps cost several times more and the metrics agent reads every process on each sample.

use procfs::prelude::*;
use procfs::process::Process;
use procfs::{KernelStats, LoadAverage, Meminfo, ProcError};
use std::io::Read as _;

/// The fields of `/proc/PID/stat` zpm uses. Times are in clock ticks
/// ([`ticks_per_second`]); `start_time` is ticks after boot, which with the pid names a
/// process uniquely (pids are recycled, start times of one pid are not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    pub pid: u32,
    pub ppid: u32,
    pub pgrp: u32,
    /// `R`, `S`, `D`, `Z`, ... as the kernel shows it.
    pub state: char,
    pub start_time: u64,
    pub utime: u64,
    pub stime: u64,
    pub rss_bytes: u64,
}

impl ProcStat {
    /// False for a zombie (exited, waiting to be reaped) or a dead entry.
    pub fn alive(&self) -> bool {
        !matches!(self.state, 'Z' | 'X')
    }

    /// User plus system time, all threads.
    pub fn cpu_ticks(&self) -> u64 {
        self.utime.saturating_add(self.stime)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProcfsError {
    /// The process exited (or never existed): an ordinary race when walking /proc.
    #[error("no process {0}")]
    Gone(u32),
    #[error("reading {path}: {message}")]
    Read { path: String, message: String },
}

fn read_error(path: &str, error: &ProcError) -> ProcfsError {
    ProcfsError::Read {
        path: path.to_owned(),
        message: error.to_string(),
    }
}

/// The stat line of `pid`.
pub fn stat(pid: u32) -> Result<ProcStat, ProcfsError> {
    let path = format!("/proc/{pid}/stat");
    let stat = match read_small(&path) {
        Ok(bytes) => procfs::process::Stat::from_read(bytes.as_slice()),
        Err(e) => Err(e.into()),
    };
    let stat = match stat {
        Ok(stat) => stat,
        Err(e) if vanished(&e) => return Err(ProcfsError::Gone(pid)),
        Err(e) => return Err(read_error(&path, &e)),
    };
    Ok(ProcStat {
        pid,
        // Negative only for pid 0's parent and detached groups; neither is ever ours.
        ppid: u32::try_from(stat.ppid).unwrap_or(0),
        pgrp: u32::try_from(stat.pgrp).unwrap_or(0),
        state: stat.state,
        start_time: stat.starttime,
        utime: stat.utime,
        stime: stat.stime,
        rss_bytes: stat.rss.saturating_mul(page_size()),
    })
}

/// A whole small /proc file in three system calls (open, read, close), where
/// `std::fs::read` and procfs's own `from_file` also size the file and read to a second,
/// empty read: on a walk of every process that saves a quarter of the kernel time. A
/// /proc file generated whole (seq_file single_open, as stat is) comes in one read when
/// it fits; not for files generated record by record (maps, smaps).
fn read_small(path: &str) -> std::io::Result<Vec<u8>> {
    let mut file = std::fs::File::open(path)?;
    let mut buf = vec![0; 1024];
    let mut len = file.read(&mut buf)?;
    // Filled to the brim: it may be longer (never for a stat line), read the rest.
    while len == buf.len() {
        buf.resize(len * 2, 0);
        match file.read(&mut buf[len..])? {
            0 => break,
            n => len += n,
        }
    }
    buf.truncate(len);
    Ok(buf)
}

/// A process that exits between readdir and read shows up as not found or ESRCH.
fn vanished(error: &ProcError) -> bool {
    match error {
        ProcError::NotFound(_) => true,
        ProcError::Io(e, _) => {
            e.kind() == std::io::ErrorKind::NotFound
                || e.raw_os_error() == Some(nix::errno::Errno::ESRCH as i32)
        }
        _ => false,
    }
}

/// The kernel's start time of `pid`, if it is alive or a zombie.
pub fn start_time(pid: u32) -> Option<u64> {
    stat(pid).ok().map(|s| s.start_time)
}

/// True if `pid` is a live process (a zombie only waits to be reaped).
pub fn alive(pid: u32) -> bool {
    stat(pid).is_ok_and(|s| s.alive())
}

/// True if `pid` exists and is a zombie.
pub fn is_zombie(pid: u32) -> bool {
    stat(pid).is_ok_and(|s| !s.alive())
}

/// True if any live process belongs to process group `pgid`.
pub fn group_alive(pgid: u32) -> bool {
    all_stats()
        .unwrap_or_default()
        .iter()
        .any(|s| s.pgrp == pgid && s.alive())
}

/// Zombie processes whose parent is `parent`.
pub fn zombie_children(parent: u32) -> usize {
    all_stats()
        .unwrap_or_default()
        .iter()
        .filter(|s| s.ppid == parent && !s.alive())
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
    stat(pid).ok().map(|s| s.rss_bytes)
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

/// Every process (thread group) on the host, in /proc's order.
pub fn all_pids() -> Result<Vec<u32>, ProcfsError> {
    let entries = std::fs::read_dir("/proc").map_err(|e| ProcfsError::Read {
        path: "/proc".to_owned(),
        message: e.to_string(),
    })?;
    Ok(entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect())
}

/// The stat of every process that could be read: those that exit during the walk, and
/// those hidden from us (`hidepid=1` lists them but refuses their files), are left out.
/// Fails only if /proc itself cannot be listed.
pub fn all_stats() -> Result<Vec<ProcStat>, ProcfsError> {
    Ok(all_pids()?
        .into_iter()
        .filter_map(|pid| stat(pid).ok())
        .collect())
}

/// Clock ticks per second, the unit of [`ProcStat`] and [`CpuTimes`] times.
pub fn ticks_per_second() -> u64 {
    procfs::ticks_per_second()
}

pub fn page_size() -> u64 {
    procfs::page_size()
}

/// Host-wide cpu time since boot, from `/proc/stat`, in clock ticks summed over all cores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuTimes {
    /// Cores listed (online when read).
    pub cpus: u32,
    /// Everything but idle and iowait.
    pub busy: u64,
    pub total: u64,
}

pub fn cpu_times() -> Result<CpuTimes, ProcfsError> {
    let stats = KernelStats::current().map_err(|e| read_error("/proc/stat", &e))?;
    let t = &stats.total;
    let idle = t.idle + t.iowait.unwrap_or(0);
    // guest time is already inside user; adding it would count it twice.
    let total = t.user
        + t.nice
        + t.system
        + idle
        + t.irq.unwrap_or(0)
        + t.softirq.unwrap_or(0)
        + t.steal.unwrap_or(0);
    Ok(CpuTimes {
        cpus: u32::try_from(stats.cpu_time.len()).unwrap_or(u32::MAX),
        busy: total - idle,
        total,
    })
}

/// Host memory in bytes, from `/proc/meminfo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemInfo {
    pub total: u64,
    /// MemAvailable; before Linux 3.14, free + buffers + page cache.
    pub available: u64,
}

pub fn meminfo() -> Result<MemInfo, ProcfsError> {
    let m = Meminfo::current().map_err(|e| read_error("/proc/meminfo", &e))?;
    Ok(MemInfo {
        total: m.mem_total,
        available: m.mem_available.unwrap_or(m.mem_free + m.buffers + m.cached),
    })
}

/// 1, 5 and 15 minute load averages, from `/proc/loadavg`.
pub fn loadavg() -> Result<[f32; 3], ProcfsError> {
    let l = LoadAverage::current().map_err(|e| read_error("/proc/loadavg", &e))?;
    Ok([l.one, l.five, l.fifteen])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reads_this_process() {
        let me = stat(std::process::id()).unwrap();
        assert_eq!(me.pid, std::process::id());
        assert!(me.alive());
        assert!(me.rss_bytes > 0);
        assert!(me.start_time > 0);
        assert!(all_pids().unwrap().contains(&std::process::id()));
        assert!(all_stats().unwrap().iter().any(|s| s.pid == me.ppid));
    }

    #[test]
    fn a_file_longer_than_the_first_read_comes_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("long");
        let content: Vec<u8> = (0..5000_u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &content).unwrap();
        assert_eq!(read_small(path.to_str().unwrap()).unwrap(), content);
    }

    #[test]
    fn a_missing_pid_is_gone() {
        // Above the kernel's maximum pid (2^22), so never allocated.
        assert!(matches!(stat(u32::MAX - 1), Err(ProcfsError::Gone(_))));
        assert!(!alive(u32::MAX - 1));
    }

    #[test]
    fn host_counters_are_sane() {
        let cpu = cpu_times().unwrap();
        assert!(cpu.cpus >= 1 && cpu.busy <= cpu.total);
        let mem = meminfo().unwrap();
        assert!(mem.available <= mem.total && mem.total > 0);
        assert!(loadavg().unwrap().iter().all(|l| *l >= 0.0));
        assert!(ticks_per_second() > 0);
    }
    #[test]
    fn this_process_in_every_reader() {
        let me = std::process::id();
        assert!(!is_zombie(me));
        let (rss, peak) = rss_and_peak(me).unwrap();
        assert!(rss > 0 && peak >= rss, "{rss} {peak}");
        assert!(rss_bytes(me).unwrap() > 0);
        assert!(pss_bytes(me).unwrap() > 0);
        assert!(group_alive(stat(me).unwrap().pgrp));
        assert!(!cmdline(me).is_empty());
        assert!(threads(me).iter().any(|(tid, _, _)| *tid == me));
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
        assert!(stat(pid).is_err());
    }
}

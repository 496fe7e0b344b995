//! What this spawner runs, on disk (`spawner-record.json`): pid (= process group) and
//! the kernel's start time of every app leader — both runs of an instance being reloaded. A spawner that starts after another one
//! died uses it to end the processes it left behind — the start time makes sure a recycled
//! pid is never mistaken for one of ours.
//!
//! Why replace rather than re-adopt: the dead spawner held the read ends of the apps'
//! output pipes, so the apps' next write fails (SIGPIPE), and the new spawner is not their
//! parent, so it could never learn their exit status (and here no init reaps them). A clean
//! replacement keeps "no orphan, no duplicate, every byte of output accounted for".

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub pid: u32,
    /// Field 22 of /proc/PID/stat: clock ticks after boot.
    pub start_time: u64,
}

#[derive(Clone)]
pub struct Record {
    path: PathBuf,
    entries: Arc<Mutex<BTreeMap<u32, Entry>>>,
}

impl Record {
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            entries: Arc::default(),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut BTreeMap<u32, Entry>) -> R) -> R {
        f(&mut self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Entries are keyed by pid (an older record keyed them by app id: only the values
    /// are read back).
    pub fn started(&self, pid: u32) {
        let Some(start_time) = zpm_host::procfs::start_time(pid) else {
            return;
        };
        self.with(|e| {
            e.insert(pid, Entry { pid, start_time });
            self.write(e);
        });
    }

    pub fn ended(&self, pid: u32) {
        self.with(|e| {
            if e.remove(&pid).is_some() {
                self.write(e);
            }
        });
    }

    /// Called with the entries locked: supervisors on other threads write one at a time,
    /// so their temp files never collide and the last write holds the latest entries.
    fn write(&self, entries: &BTreeMap<u32, Entry>) {
        let written = serde_json::to_vec(entries)
            .map_err(std::io::Error::other)
            .and_then(|bytes| zpm_host::atomic::write(&self.path, &bytes));
        if let Err(e) = written {
            tracing::warn!(error = %e, path = %self.path.display(), "cannot write spawner record");
        }
    }
}

/// Ends every process group a previous spawner recorded that still runs.
pub async fn replace_leftovers(path: &Path, grace: Duration) {
    let Ok(bytes) = std::fs::read(path) else {
        return;
    };
    let entries: BTreeMap<u32, Entry> = match serde_json::from_slice(&bytes) {
        Ok(entries) => entries,
        Err(e) => {
            tracing::warn!(error = %e, "unreadable spawner record ignored");
            return;
        }
    };
    let ours: Vec<Pid> = entries
        .values()
        .filter(|e| zpm_host::procfs::start_time(e.pid) == Some(e.start_time))
        .map(|e| Pid::from_raw(e.pid.cast_signed()))
        .collect();
    if ours.is_empty() {
        return;
    }
    tracing::warn!(
        groups = ours.len(),
        "ending the apps of a spawner that died; they will be started again"
    );
    for pgid in &ours {
        let _ = killpg(*pgid, Signal::SIGTERM);
    }
    let deadline = tokio::time::Instant::now() + grace;
    while ours.iter().any(|g| super::child::live_members(*g))
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for pgid in &ours {
        let _ = killpg(*pgid, Signal::SIGKILL);
    }
}

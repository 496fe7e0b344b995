//! The spawner is a child subreaper: what an app leaves behind when it dies is re-parented
//! to the spawner instead of init (which, in containers, may never reap it). This reaps
//! those orphans on every SIGCHLD — but never an app leader, whose exit status belongs to
//! its supervisor (tokio waits for it).

use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::Pid;
use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};

/// Pids of app leaders, whose exit statuses the supervisors collect.
#[derive(Clone, Default)]
pub struct Leaders(Arc<Mutex<HashSet<u32>>>);

impl Leaders {
    /// Hold this while spawning, so an instantly-exiting leader is never mistaken for an orphan.
    pub fn lock(&self) -> MutexGuard<'_, HashSet<u32>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

pub fn become_subreaper() {
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        tracing::warn!(error = %e, "cannot become a child subreaper; orphans go to init");
    }
}

/// Reaps orphans now and after every SIGCHLD, forever.
pub async fn run(leaders: Leaders) {
    let mut sigchld = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::child()) {
        Ok(stream) => stream,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch SIGCHLD; orphans will not be reaped");
            return;
        }
    };
    loop {
        reap_orphans(&leaders);
        if sigchld.recv().await.is_none() {
            return;
        }
    }
}

fn reap_orphans(leaders: &Leaders) {
    let leaders = leaders.lock();
    for pid in zpm_host::procfs::children_of_self() {
        if leaders.contains(&pid) {
            continue;
        }
        let pid = Pid::from_raw(pid.cast_signed());
        if let Ok(status) = waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            tracing::trace!(?status, "reaped orphan");
        }
    }
}

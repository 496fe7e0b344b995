//! Keeping a process alive by its flock — one routine for both directions: the spawner
//! keeps God, God keeps the spawner (DESIGN.md, "Crash-proofing").
//!
//! Nobody holding the lock means the process is dead (the kernel releases a dead process's
//! locks at once). A thread blocks in `flock` on it, so a death is noticed the instant it
//! happens, with no polling while the process lives. A relaunch happens at once; the
//! backoff (100 ms doubling to 5 s) applies only while relaunched processes die *before*
//! becoming healthy, and it resets as soon as one is healthy ([`Health::healthy`], e.g. the
//! spawner's `agent.hello` accepted) — not after some wall time, and with no fixed grace.

use std::fmt;
use std::fs::File;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{oneshot, watch};

/// First pause before relaunching a process that died before becoming healthy.
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How often a launched, not yet healthy process is checked for having died.
const STARTING_CHECK: Duration = Duration::from_millis(10);
/// Pause before retrying when the lock file cannot even be opened.
const LOCK_RETRY: Duration = Duration::from_millis(100);

/// Set by whoever can tell the kept process is healthy; the keeper waits on it after each
/// launch. Cheap to clone; every clone is the same signal.
#[derive(Clone, Debug)]
pub struct Health(Arc<watch::Sender<u64>>);

impl Default for Health {
    fn default() -> Self {
        Self(Arc::new(watch::Sender::new(0)))
    }
}

impl Health {
    /// The kept process is healthy now (e.g. its hello was accepted).
    pub fn healthy(&self) {
        self.0.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver that sees each later [`Health::healthy`] as a change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.0.subscribe()
    }
}

/// What the keeper last knew, for error messages ("no spawner connected: …").
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeeperState {
    /// Nothing launched or observed yet.
    Idle,
    /// Launched as this pid, not healthy yet.
    Starting { pid: u32 },
    /// This pid said it is healthy.
    Healthy { pid: u32 },
    /// Found dead; relaunching after this pause.
    Relaunching { backoff: Duration },
    /// The last launch failed.
    LaunchFailed { error: String },
    /// Told to stop keeping (`zpm kill`).
    Stopped,
}

impl fmt::Display for KeeperState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Idle => f.write_str("not launched by this keeper"),
            Self::Starting { pid } => write!(f, "launched as pid {pid}, not healthy yet"),
            Self::Healthy { pid } => write!(f, "pid {pid} was healthy"),
            Self::Relaunching { backoff } => write!(f, "died; relaunching in {backoff:?}"),
            Self::LaunchFailed { error } => write!(f, "launch failed: {error}"),
            Self::Stopped => f.write_str("no longer kept (stopping)"),
        }
    }
}

/// The keeper's state, readable from elsewhere. Cheap to clone.
#[derive(Clone, Debug)]
pub struct KeeperStatus(Arc<Mutex<KeeperState>>);

impl Default for KeeperStatus {
    fn default() -> Self {
        Self(Arc::new(Mutex::new(KeeperState::Idle)))
    }
}

impl KeeperStatus {
    pub fn get(&self) -> KeeperState {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set(&self, state: KeeperState) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = state;
    }
}

/// What is kept, and how to bring it back.
pub trait Kept: Send {
    /// True once it must never be relaunched again (`agent.exit`, `god.kill`).
    fn stopped(&self) -> bool;
    /// Starts a new process; returns its pid.
    fn launch(&mut self) -> Result<u32, String>;
    /// Called when it is found dead, before the relaunch.
    fn gone(&mut self) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// Keeps one process alive: see the module doc.
#[derive(Debug)]
pub struct Keeper {
    /// For logs: "God", "spawner".
    pub name: &'static str,
    /// The lock the kept process holds for its life.
    pub lock: PathBuf,
    pub health: Health,
    pub status: KeeperStatus,
}

/// How a launched process's start ended.
enum Start {
    Healthy,
    /// Died before becoming healthy.
    Died,
    /// It exited but another instance holds the lock (someone else launched one).
    Other,
    Stopped,
}

impl Keeper {
    /// Runs until `kept` is stopped. With `launch_first`, launches at once (the caller knows
    /// none runs yet, e.g. God starting its spawner); otherwise first waits for a death.
    pub async fn run(self, mut kept: impl Kept, launch_first: bool) {
        let mut health = self.health.subscribe();
        let mut backoff = Duration::ZERO;
        let mut launched = if launch_first {
            self.launch(&mut kept, &mut health)
        } else {
            None
        };
        loop {
            if let Some(pid) = launched.take() {
                match self.watch_start(pid, &kept, &mut health).await {
                    Start::Healthy => backoff = Duration::ZERO,
                    Start::Died => backoff = grow(backoff),
                    Start::Other => {}
                    Start::Stopped => break,
                }
            }
            self.wait_until_free().await;
            if kept.stopped() {
                break;
            }
            self.status.set(KeeperState::Relaunching { backoff });
            tracing::warn!(what = self.name, ?backoff, "gone; launching it again");
            kept.gone().await;
            tokio::time::sleep(backoff).await;
            if kept.stopped() {
                break;
            }
            launched = self.launch(&mut kept, &mut health);
            if launched.is_none() {
                // Nothing to watch: the lock is free, so the next wait returns at once.
                backoff = grow(backoff);
            }
        }
        self.status.set(KeeperState::Stopped);
    }

    fn launch(&self, kept: &mut impl Kept, health: &mut watch::Receiver<u64>) -> Option<u32> {
        // Only health reported after this launch counts.
        health.borrow_and_update();
        match kept.launch() {
            Ok(pid) => {
                tracing::info!(what = self.name, pid, "launched");
                self.status.set(KeeperState::Starting { pid });
                Some(pid)
            }
            Err(error) => {
                tracing::error!(what = self.name, %error, "launch failed");
                self.status.set(KeeperState::LaunchFailed { error });
                None
            }
        }
    }

    /// Waits until the launched `pid` is healthy or gone. Never probes the lock while `pid`
    /// lives: a probe holding it for a moment could make the starting process fail to take it.
    async fn watch_start(
        &self,
        pid: u32,
        kept: &impl Kept,
        health: &mut watch::Receiver<u64>,
    ) -> Start {
        let mut checks = tokio::time::interval(STARTING_CHECK);
        loop {
            tokio::select! {
                changed = health.changed() => {
                    if changed.is_ok() {
                        self.status.set(KeeperState::Healthy { pid });
                        return Start::Healthy;
                    }
                }
                _ = checks.tick() => {}
            }
            if kept.stopped() {
                return Start::Stopped;
            }
            if !crate::procfs::alive(pid) {
                return if crate::lock::is_free(&self.lock) {
                    tracing::warn!(what = self.name, pid, "died before becoming healthy");
                    Start::Died
                } else {
                    Start::Other
                };
            }
        }
    }

    /// Returns once nobody holds the lock, the moment the holder dies.
    async fn wait_until_free(&self) {
        loop {
            match wait_for_lock(&self.lock).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(what = self.name, lock = %self.lock.display(), error = %e, "cannot wait on the lock");
                    tokio::time::sleep(LOCK_RETRY).await;
                }
            }
        }
    }
}

fn grow(backoff: Duration) -> Duration {
    (backoff * 2).clamp(MIN_BACKOFF, MAX_BACKOFF)
}

/// Blocks a thread in `flock` until the lock is ours, then releases it at once. A plain
/// thread (not tokio's blocking pool): it may stay blocked until the process exits, and a
/// runtime must never wait for it on shutdown.
async fn wait_for_lock(path: &Path) -> std::io::Result<()> {
    let (tx, rx) = oneshot::channel();
    let path = path.to_owned();
    std::thread::Builder::new()
        .name("zpm-keeper".into())
        .spawn(move || {
            // Dropping the file releases the lock before anyone is told.
            let _ = tx.send(lock_blocking(&path));
        })?;
    rx.await
        .unwrap_or_else(|_| Err(std::io::Error::other("lock waiter vanished")))
}

fn lock_blocking(path: &Path) -> std::io::Result<()> {
    let file: File = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    file.lock()
}

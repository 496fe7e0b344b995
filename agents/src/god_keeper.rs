//! Brings God back when it dies: nobody holding God's flock means no God runs (the
//! kernel releases a dead process's locks at once). Relaunch within ~100 ms, backing off
//! if God keeps dying. Stops for good once God orders the agent to exit (`zpm kill`).

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use zpm_proto::HomeLock;
use zpm_proto::home::Home;

const CHECK_EVERY: Duration = Duration::from_millis(100);
const GRACE: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// A relaunched process that stays up this long resets the backoff.
const STABLE_AFTER: Duration = Duration::from_secs(1);

pub struct GodKeeper {
    pub home: Home,
    /// The zpm executable, run as `zpm daemon`.
    pub exe: PathBuf,
    /// Set when God ordered this agent to exit: never relaunch after that.
    pub stopped: Arc<AtomicBool>,
}

impl GodKeeper {
    pub async fn run(self) {
        let lock = self.home.god_lock();
        let mut backoff = Duration::ZERO;
        let mut relaunched_at = None;
        let mut ticks = tokio::time::interval(CHECK_EVERY);
        loop {
            ticks.tick().await;
            if self.stopped.load(Ordering::SeqCst) {
                return;
            }
            let Ok(probe) = HomeLock::acquire(&lock) else {
                if relaunched_at
                    .is_some_and(|at: tokio::time::Instant| at.elapsed() >= STABLE_AFTER)
                {
                    backoff = Duration::ZERO;
                }
                continue;
            };
            drop(probe);
            tokio::time::sleep(backoff).await;
            if self.stopped.load(Ordering::SeqCst) {
                return;
            }
            tracing::warn!(?backoff, "God is gone; launching it again");
            if let Err(e) = self.launch() {
                tracing::error!(error = %e, "relaunching God");
            }
            relaunched_at = Some(tokio::time::Instant::now());
            backoff = (backoff * 2)
                .max(Duration::from_millis(100))
                .min(MAX_BACKOFF);
            tokio::time::sleep(GRACE).await;
        }
    }

    /// Starts `zpm daemon` (it detaches itself); the spawner's reaper collects it when it exits.
    fn launch(&self) -> std::io::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.home.daemon_log())?;
        let log_err = log.try_clone()?;
        std::process::Command::new(&self.exe)
            .arg("daemon")
            .env("ZPM_HOME", self.home.root())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map(drop)
    }
}

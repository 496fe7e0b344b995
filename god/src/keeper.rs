//! Keeps this host's spawner alive: when nobody holds the spawner's flock, the spawner is
//! dead (the kernel drops a dead process's locks at once), so launch a new one — with
//! backoff if it keeps dying. A new spawner cleanly replaces what the dead one left.

use crate::launcher::AgentLauncher;
use crate::state::God;
use std::sync::Arc;
use std::time::Duration;
use zpm_proto::HomeLock;

const CHECK_EVERY: Duration = Duration::from_millis(100);
/// Time a freshly launched spawner gets to take its lock before we look again.
const GRACE: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// A relaunched process that stays up this long resets the backoff.
const STABLE_AFTER: Duration = Duration::from_secs(1);

pub async fn keep_spawner(god: Arc<God>, agents: AgentLauncher) {
    let lock = agents.home.agent_lock("spawner");
    let mut backoff = Duration::ZERO;
    let mut relaunched_at = None;
    let mut ticks = tokio::time::interval(CHECK_EVERY);
    tokio::time::sleep(GRACE).await;
    loop {
        ticks.tick().await;
        if god.is_stopping() {
            return;
        }
        let Ok(probe) = HomeLock::acquire(&lock) else {
            // Held: the spawner lives. Forget old failures once it has been up a while.
            if relaunched_at.is_some_and(|at: tokio::time::Instant| at.elapsed() >= STABLE_AFTER) {
                backoff = Duration::ZERO;
            }
            continue;
        };
        drop(probe);
        tracing::warn!(?backoff, "spawner is gone; launching a new one");
        spawner_gone(&god).await;
        tokio::time::sleep(backoff).await;
        if god.is_stopping() {
            return;
        }
        if let Err(e) = agents.launch("spawner") {
            tracing::error!(error = %e, "relaunching the spawner");
        }
        relaunched_at = Some(tokio::time::Instant::now());
        backoff = (backoff * 2)
            .max(Duration::from_millis(100))
            .min(MAX_BACKOFF);
        tokio::time::sleep(GRACE).await;
    }
}

/// Stops trusting what the dead spawner reported: it is down, and its apps are being
/// replaced by the next spawner.
async fn spawner_gone(god: &God) {
    let down = god.registry().mark_down("spawner");
    god.table().mark_replacing();
    god.changed();
    if let Some(hello) = down {
        god.publish(zpm_proto::topics::AGENT_DOWN, &hello).await;
    }
}

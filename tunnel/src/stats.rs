//! What a tunnel end has seen, for `zpm ping --json`.

use crate::Error;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What a tunnel end has seen; shared with whoever reports it.
#[derive(Debug, Default)]
pub struct TunnelStats {
    pub connections: AtomicU64,
    pub refused: AtomicU64,
    pub handshakes_failed: AtomicU64,
    pub frames_rejected: AtomicU64,
    pub timeouts: AtomicU64,
    /// Cut connections not logged since the last line (see [`TunnelStats::log_cut`]).
    unlogged: AtomicU64,
    logged_at: Mutex<Option<Instant>>,
}

/// A flood of bad connections is logged as one line per this much time.
const LOG_EVERY: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatsSnapshot {
    pub connections: u64,
    pub refused: u64,
    pub handshakes_failed: u64,
    pub frames_rejected: u64,
    pub timeouts: u64,
}

impl StatsSnapshot {
    /// The counters by name, as `zpm ping --json` shows them.
    pub fn by_name(&self) -> BTreeMap<String, u64> {
        [
            ("connections", self.connections),
            ("refused", self.refused),
            ("handshakes_failed", self.handshakes_failed),
            ("frames_rejected", self.frames_rejected),
            ("timeouts", self.timeouts),
        ]
        .into_iter()
        .map(|(name, n)| (name.to_owned(), n))
        .collect()
    }
}

impl TunnelStats {
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            connections: self.connections.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            handshakes_failed: self.handshakes_failed.load(Ordering::Relaxed),
            frames_rejected: self.frames_rejected.load(Ordering::Relaxed),
            timeouts: self.timeouts.load(Ordering::Relaxed),
        }
    }

    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Logs a connection cut for a fault of its peer (failed handshake, bad frame,
    /// silence): the first at once, then at most one line per [`LOG_EVERY`] saying how
    /// many more there were.
    pub(crate) fn log_cut(&self, peer: &dyn std::fmt::Display, error: &Error) {
        let mut logged_at = self
            .logged_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if logged_at.is_some_and(|at| at.elapsed() < LOG_EVERY) {
            self.unlogged.fetch_add(1, Ordering::Relaxed);
            return;
        }
        *logged_at = Some(Instant::now());
        let more = self.unlogged.swap(0, Ordering::Relaxed);
        tracing::warn!(%peer, %error, more_since_last_line = more, "tunnel: connection cut");
    }

    pub(crate) fn connection(&self) {
        Self::bump(&self.connections);
    }

    pub(crate) fn refused(&self) {
        Self::bump(&self.refused);
    }

    /// Counts why a connection ended; `handshake` tells a failed handshake apart.
    pub(crate) fn count(&self, error: &Error, handshake: bool) {
        if error.is_timeout() {
            Self::bump(&self.timeouts);
        } else if handshake {
            Self::bump(&self.handshakes_failed);
        } else if error.is_rejected_frame() {
            Self::bump(&self.frames_rejected);
        }
    }
}

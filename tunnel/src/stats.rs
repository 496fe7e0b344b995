//! What a tunnel end has seen, for `zpm ping --json`.

use crate::Error;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// What a tunnel end has seen; shared with whoever reports it.
#[derive(Debug, Default)]
pub struct TunnelStats {
    pub connections: AtomicU64,
    pub refused: AtomicU64,
    pub handshakes_failed: AtomicU64,
    pub frames_rejected: AtomicU64,
    pub timeouts: AtomicU64,
}

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

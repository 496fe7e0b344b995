//! What a guarded socket knows of each connected peer: what the server handed zmq.rs for
//! it, what the guard actually delivered, how many of its requests are in flight — and
//! the switch that cuts it off. The server consults [`Peer::admit`] before every send, so
//! no send ever waits on a peer that does not read: zmq.rs's per-peer queue (100k
//! messages, then `send` waits forever) is never allowed to fill.

use bytes::Bytes;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::sync::Notify;

use super::GuardLimits;

/// Why a peer was cut off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CutReason {
    /// It broke ZMTP framing, or sent a message over the size limits.
    Protocol,
    /// It did not finish its handshake in time.
    Handshake,
    /// Replies or events piled up because it does not read.
    NotReading,
    /// It had more requests in flight than its share.
    OverShare,
}

/// Counters of one guarded socket (all its endpoints).
#[derive(Debug, Default)]
pub struct GuardStats {
    pub connections: AtomicU64,
    /// Connections refused because the socket had its maximum already.
    pub refused: AtomicU64,
    pub cut_protocol: AtomicU64,
    pub cut_handshake: AtomicU64,
    pub cut_not_reading: AtomicU64,
    pub cut_over_share: AtomicU64,
    /// ZMTP commands after the handshake (e.g. PING), which zmq.rs does not implement.
    pub commands_dropped: AtomicU64,
}

/// A copy of [`GuardStats`] to show (`zpm ping --json`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct GuardCounters {
    pub connections: u64,
    pub refused: u64,
    pub cut_protocol: u64,
    pub cut_handshake: u64,
    pub cut_not_reading: u64,
    pub cut_over_share: u64,
    pub commands_dropped: u64,
}

impl GuardCounters {
    /// The counters by name, for reports that do not know this type.
    pub fn by_name(&self) -> std::collections::BTreeMap<String, u64> {
        [
            ("connections", self.connections),
            ("refused", self.refused),
            ("cut_protocol", self.cut_protocol),
            ("cut_handshake", self.cut_handshake),
            ("cut_not_reading", self.cut_not_reading),
            ("cut_over_share", self.cut_over_share),
            ("commands_dropped", self.commands_dropped),
        ]
        .into_iter()
        .map(|(name, n)| (name.to_owned(), n))
        .collect()
    }
}

impl GuardStats {
    pub fn snapshot(&self) -> GuardCounters {
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        GuardCounters {
            connections: read(&self.connections),
            refused: read(&self.refused),
            cut_protocol: read(&self.cut_protocol),
            cut_handshake: read(&self.cut_handshake),
            cut_not_reading: read(&self.cut_not_reading),
            cut_over_share: read(&self.cut_over_share),
            commands_dropped: read(&self.commands_dropped),
        }
    }

    fn count(&self, reason: CutReason) {
        let counter = match reason {
            CutReason::Protocol => &self.cut_protocol,
            CutReason::Handshake => &self.cut_handshake,
            CutReason::NotReading => &self.cut_not_reading,
            CutReason::OverShare => &self.cut_over_share,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// One connected peer.
pub struct Peer {
    identity: Bytes,
    limits: GuardLimits,
    stats: Arc<GuardStats>,
    cut: AtomicBool,
    cut_signal: Notify,
    handed_messages: AtomicU64,
    handed_bytes: AtomicU64,
    delivered_messages: AtomicU64,
    delivered_bytes: AtomicU64,
    in_flight: AtomicU32,
}

impl Peer {
    /// Asks to send one message of `bytes` to this peer. Refused if the peer is cut off, or
    /// is cut off now because too much already waits for it to read.
    pub fn admit(&self, bytes: usize) -> bool {
        if self.is_cut() {
            return false;
        }
        let queued_messages = self
            .handed_messages
            .load(Ordering::Relaxed)
            .saturating_sub(self.delivered_messages.load(Ordering::Relaxed));
        let queued_bytes = self
            .handed_bytes
            .load(Ordering::Relaxed)
            .saturating_sub(self.delivered_bytes.load(Ordering::Relaxed));
        let over_bytes = queued_bytes > 0
            && queued_bytes.saturating_add(bytes as u64) > self.limits.max_queued_bytes;
        if queued_messages >= self.limits.max_queued_messages || over_bytes {
            self.cut_off(CutReason::NotReading);
            return false;
        }
        self.handed_messages.fetch_add(1, Ordering::Relaxed);
        self.handed_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        true
    }

    /// Counts a request (or notification) in flight; cuts the peer off past its share.
    pub fn begin_request(&self) -> bool {
        let before = self.in_flight.fetch_add(1, Ordering::Relaxed);
        if before >= self.limits.max_in_flight {
            self.in_flight.fetch_sub(1, Ordering::Relaxed);
            self.cut_off(CutReason::OverShare);
            return false;
        }
        !self.is_cut()
    }

    pub fn end_request(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// Closes this peer's connection (once: counted and logged the first time).
    pub fn cut_off(&self, reason: CutReason) {
        if self.cut.swap(true, Ordering::AcqRel) {
            return;
        }
        self.stats.count(reason);
        tracing::warn!(peer = %hex(&self.identity), ?reason, "peer cut off");
        self.cut_signal.notify_one();
    }

    pub fn is_cut(&self) -> bool {
        self.cut.load(Ordering::Acquire)
    }

    pub(super) async fn cut_requested(&self) {
        self.cut_signal.notified().await;
    }

    pub(super) fn delivered(&self, messages: u64, bytes: u64) {
        self.delivered_messages
            .fetch_add(messages, Ordering::Relaxed);
        self.delivered_bytes.fetch_add(bytes, Ordering::Relaxed);
    }
}

/// Every peer of one guarded socket, by the routing identity the guard gave it.
pub struct Ledger {
    limits: GuardLimits,
    stats: Arc<GuardStats>,
    peers: Mutex<HashMap<Bytes, Arc<Peer>>>,
    next_identity: AtomicU64,
}

impl Ledger {
    pub fn new(limits: GuardLimits) -> Arc<Self> {
        Arc::new(Self {
            limits,
            stats: Arc::default(),
            peers: Mutex::default(),
            next_identity: AtomicU64::new(1),
        })
    }

    pub fn limits(&self) -> &GuardLimits {
        &self.limits
    }

    pub fn stats(&self) -> &Arc<GuardStats> {
        &self.stats
    }

    /// The peer zmq.rs knows by `identity`, while it is connected.
    pub fn peer(&self, identity: &[u8]) -> Option<Arc<Peer>> {
        self.lock().get(identity).cloned()
    }

    /// A new peer with a fresh identity (`zg` + counter): the one zmq.rs will route by.
    pub(super) fn register(&self) -> Arc<Peer> {
        let n = self.next_identity.fetch_add(1, Ordering::Relaxed);
        let mut identity = b"zg".to_vec();
        identity.extend_from_slice(&n.to_be_bytes());
        let peer = Arc::new(Peer {
            identity: Bytes::from(identity),
            limits: self.limits,
            stats: Arc::clone(&self.stats),
            cut: AtomicBool::new(false),
            cut_signal: Notify::new(),
            handed_messages: AtomicU64::new(0),
            handed_bytes: AtomicU64::new(0),
            delivered_messages: AtomicU64::new(0),
            delivered_bytes: AtomicU64::new(0),
            in_flight: AtomicU32::new(0),
        });
        self.lock().insert(peer.identity.clone(), Arc::clone(&peer));
        peer
    }

    pub(super) fn unregister(&self, peer: &Peer) {
        self.lock().remove(&peer.identity);
    }

    pub(super) fn identity_of(peer: &Peer) -> &[u8] {
        &peer.identity
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Bytes, Arc<Peer>>> {
        self.peers.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> GuardLimits {
        GuardLimits {
            max_queued_messages: 3,
            max_queued_bytes: 100,
            max_in_flight: 2,
            ..GuardLimits::default()
        }
    }

    #[test]
    fn a_peer_that_does_not_read_is_cut_off_once() {
        let ledger = Ledger::new(limits());
        let peer = ledger.register();
        assert!(ledger.peer(Ledger::identity_of(&peer)).is_some());
        assert!(peer.admit(10) && peer.admit(10) && peer.admit(10));
        assert!(!peer.admit(10), "fourth queued message is refused");
        assert!(peer.is_cut());
        assert!(!peer.admit(1));
        assert_eq!(ledger.stats().snapshot().cut_not_reading, 1);
    }

    #[test]
    fn delivered_messages_make_room_and_bytes_are_bounded() {
        let peer = Ledger::new(limits()).register();
        assert!(peer.admit(500), "one big message fits an empty queue");
        peer.delivered(1, 500);
        assert!(peer.admit(60));
        assert!(!peer.admit(60), "160 bytes queued would exceed 100");
    }

    #[test]
    fn in_flight_share_is_bounded() {
        let ledger = Ledger::new(limits());
        let peer = ledger.register();
        assert!(peer.begin_request() && peer.begin_request());
        assert!(!peer.begin_request());
        assert_eq!(ledger.stats().snapshot().cut_over_share, 1);
        ledger.unregister(&peer);
        assert!(ledger.peer(Ledger::identity_of(&peer)).is_none());
    }
}

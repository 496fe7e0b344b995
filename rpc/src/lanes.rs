//! Notifications of one peer are handled in the order they came, one at a time (an
//! agent's `bus.publish` events must reach the bus in its order), while different peers
//! never wait for each other: one bounded queue and one task per peer that has
//! notifications pending. A task idle for a while ends and frees its lane.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::mpsc;

/// Notifications queued per peer before more are dropped (counted by the caller).
const LANE_DEPTH: usize = 1024;
/// A lane with nothing to do for this long ends.
const LANE_IDLE: Duration = Duration::from_secs(10);

pub(crate) type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

#[derive(Clone, Default)]
pub(crate) struct Lanes(Arc<Mutex<HashMap<Vec<u8>, mpsc::Sender<Job>>>>);

impl Lanes {
    /// Queues `job` behind the peer's earlier notifications; false if its lane is full.
    pub(crate) fn push(&self, peer: &[u8], job: Job) -> bool {
        let mut lanes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(lane) = lanes.get(peer) {
            return lane.try_send(job).is_ok();
        }
        let (lane, jobs) = mpsc::channel(LANE_DEPTH);
        let queued = lane.try_send(job).is_ok();
        lanes.insert(peer.to_vec(), lane);
        tokio::spawn(self.clone().drive(peer.to_vec(), jobs));
        queued
    }

    async fn drive(self, peer: Vec<u8>, mut jobs: mpsc::Receiver<Job>) {
        loop {
            match tokio::time::timeout(LANE_IDLE, jobs.recv()).await {
                Ok(Some(job)) => job.await,
                Ok(None) => return,
                Err(_) => {
                    // Senders queue under the map's lock: once the lane is out of the map
                    // and empty, nothing can be queued behind our back.
                    let mut lanes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
                    if jobs.is_empty() {
                        lanes.remove(&peer);
                        return;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_peer_in_order_and_peers_independent() {
        let lanes = Lanes::default();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (gate, opened) = tokio::sync::oneshot::channel::<()>();
        // Peer "a" is stuck behind a gate; "b" must not wait for it.
        lanes.push(b"a", Box::pin(async move { opened.await.unwrap() }));
        for i in 0..100 {
            let seen = Arc::clone(&seen);
            lanes.push(
                b"a",
                Box::pin(async move {
                    tokio::task::yield_now().await;
                    seen.lock().unwrap().push(i);
                }),
            );
        }
        let (b_done, b_seen) = tokio::sync::oneshot::channel();
        lanes.push(b"b", Box::pin(async move { b_done.send(()).unwrap() }));
        b_seen.await.unwrap();
        assert!(
            seen.lock().unwrap().is_empty(),
            "a's jobs wait behind its gate"
        );
        gate.send(()).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while seen.lock().unwrap().len() < 100 {
            assert!(std::time::Instant::now() < deadline);
            tokio::task::yield_now().await;
        }
        assert_eq!(*seen.lock().unwrap(), (0..100).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_full_lane_refuses() {
        let lanes = Lanes::default();
        let (_gate, opened) = tokio::sync::oneshot::channel::<()>();
        lanes.push(
            b"a",
            Box::pin(async move {
                let _ = opened.await;
            }),
        );
        tokio::task::yield_now().await;
        let accepted = (0..LANE_DEPTH + 10)
            .filter(|_| lanes.push(b"a", Box::pin(async {})))
            .count();
        assert!(accepted <= LANE_DEPTH, "{accepted}");
    }
}

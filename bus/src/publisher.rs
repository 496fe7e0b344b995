//! The publishing side: a ROUTER that knows each subscriber's prefixes and credit.
//!
//! One task owns the subscriber table. It never waits on a subscriber: an event is written
//! to a subscriber only while it has credit, and credit is capped below zmq.rs's per-peer
//! queue (100k messages), so a stalled subscriber costs at most its credit window.

use crate::control::Control;
use crate::error::BusError;
use crate::event::{EventHeader, EventSource};
use crate::relay::RelayEvent;
use crate::{DroppedReport, TOPIC_DROPPED, TOPIC_RESUBSCRIBE};
use bytes::Bytes;
use futures::StreamExt;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use zeromq::{
    RouterRecvHalf, RouterSendHalf, Socket, SocketEvent, SocketRecv, SocketSend, ZmqMessage,
};

/// Tuning for a [`Publisher`].
#[derive(Debug, Clone)]
pub struct PublisherOptions {
    /// `source` stamped on events this publisher originates.
    pub source: String,
    /// `host` stamped on events this publisher originates.
    pub host: String,
    pub version: u32,
    /// Largest credit window a subscriber may hold (kept below zmq.rs's 100k peer queue).
    pub max_credit: u32,
    /// A subscriber silent this long is forgotten (subscribers heartbeat every second).
    pub silence_timeout: Duration,
    /// Most subscribers at once; further subscriptions are ignored and logged.
    pub max_subscribers: usize,
    /// Events waiting for the publisher task.
    pub queue: usize,
}

impl Default for PublisherOptions {
    fn default() -> Self {
        Self {
            source: "publisher".into(),
            host: String::new(),
            version: 1,
            max_credit: 65_536,
            silence_timeout: Duration::from_secs(10),
            max_subscribers: 1024,
            queue: 4096,
        }
    }
}

/// What the publisher knows of one subscriber.
#[derive(Debug, Clone, Serialize)]
pub struct SubscriberInfo {
    /// The zeromq routing identity, hex.
    pub id: String,
    pub prefixes: Vec<String>,
    /// Credit left: events it may still be sent.
    pub credit: u32,
    /// Events sent and not yet acknowledged by returned credit.
    pub lag: u32,
    pub sent: u64,
    pub dropped: u64,
    pub silent_ms: u64,
}

/// Counters over all subscribers.
#[derive(Debug, Default)]
pub struct PublisherStats {
    pub published: AtomicU64,
    pub delivered: AtomicU64,
    pub dropped: AtomicU64,
    /// Control messages or relayed events that did not decode.
    pub malformed: AtomicU64,
    pub subscribers_forgotten: AtomicU64,
}

enum Command {
    Publish { topic: String, body: Vec<u8> },
    Raw { topic: Bytes, payload: Bytes },
    Subscribers(oneshot::Sender<Vec<SubscriberInfo>>),
}

/// A handle to a running publisher; cheap to clone. The publisher stops when the last
/// handle is dropped.
#[derive(Clone)]
pub struct Publisher {
    commands: mpsc::Sender<Command>,
    stats: Arc<PublisherStats>,
    endpoints: Arc<Vec<String>>,
    _task: Arc<AbortOnDrop>,
}

struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Publisher {
    /// Binds every endpoint (ipc or loopback tcp) and starts publishing.
    pub async fn bind(endpoints: &[&str], options: PublisherOptions) -> Result<Self, BusError> {
        let mut socket = zeromq::RouterSocket::new();
        let monitor = socket.monitor();
        let mut bound = Vec::new();
        for endpoint in endpoints {
            bound.push(zpm_rpc::bind_endpoint(&mut socket, endpoint).await?);
        }
        let (send, recv) = socket.split();
        let (commands, commands_rx) = mpsc::channel(options.queue.max(1));
        let stats = Arc::new(PublisherStats::default());
        let table = State {
            source: EventSource::new(&options.source, &options.host, options.version),
            options,
            subscribers: HashMap::new(),
            send,
            stats: Arc::clone(&stats),
        };
        let task = tokio::spawn(table.run(recv, monitor, commands_rx));
        Ok(Self {
            commands,
            stats,
            endpoints: Arc::new(bound),
            _task: Arc::new(AbortOnDrop(task)),
        })
    }

    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    pub fn stats(&self) -> &PublisherStats {
        &self.stats
    }

    /// Publishes `data` on `topic` as an event of this publisher's own source.
    pub async fn publish<T: Serialize + ?Sized>(
        &self,
        topic: &str,
        data: &T,
    ) -> Result<(), BusError> {
        let body = rmp_serde::to_vec_named(data).map_err(|e| BusError::Encode {
            topic: topic.to_owned(),
            reason: e.to_string(),
        })?;
        let topic = topic.to_owned();
        self.send(Command::Publish { topic, body }).await
    }

    /// Publishes an event encoded elsewhere (by an agent's [`EventSource`]) byte for byte.
    /// A payload without a readable envelope is counted as malformed and not published.
    pub async fn publish_raw(&self, topic: Bytes, payload: Bytes) -> Result<(), BusError> {
        if let Err(e) = EventHeader::decode(&payload) {
            self.stats.malformed.fetch_add(1, Ordering::Relaxed);
            return Err(e);
        }
        self.send(Command::Raw { topic, payload }).await
    }

    /// Re-publishes an event an agent sent up its connection.
    pub async fn relay(&self, event: RelayEvent) -> Result<(), BusError> {
        self.publish_raw(Bytes::from(event.topic), Bytes::from(event.payload))
            .await
    }

    /// What the publisher knows of each current subscriber.
    pub async fn subscribers(&self) -> Result<Vec<SubscriberInfo>, BusError> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Subscribers(tx)).await?;
        rx.await.map_err(|_| BusError::Closed)
    }

    async fn send(&self, command: Command) -> Result<(), BusError> {
        self.commands
            .send(command)
            .await
            .map_err(|_| BusError::Closed)
    }
}

struct Subscription {
    prefixes: Vec<Bytes>,
    window: u32,
    credit: u32,
    sent: u64,
    dropped: u64,
    unreported: u64,
    last_seen: Instant,
}

impl Subscription {
    fn matches(&self, topic: &[u8]) -> bool {
        self.prefixes.iter().any(|p| topic.starts_with(p))
    }
}

struct State {
    options: PublisherOptions,
    source: EventSource,
    subscribers: HashMap<Bytes, Subscription>,
    send: RouterSendHalf,
    stats: Arc<PublisherStats>,
}

impl State {
    async fn run(
        mut self,
        mut recv: RouterRecvHalf,
        mut monitor: futures::channel::mpsc::Receiver<SocketEvent>,
        mut commands: mpsc::Receiver<Command>,
    ) {
        let mut sweep = tokio::time::interval(self.options.silence_timeout / 4);
        loop {
            tokio::select! {
                biased;
                incoming = recv.recv() => match incoming {
                    Ok(message) => self.on_control(message).await,
                    Err(e) => tracing::warn!(error = %e, "bus receive failed"),
                },
                Some(event) = monitor.next() => {
                    if let SocketEvent::Disconnected(peer) = event {
                        self.forget(&Bytes::from(peer), "disconnected");
                    }
                }
                command = commands.recv() => match command {
                    Some(command) => self.on_command(command).await,
                    None => return,
                },
                _ = sweep.tick() => self.forget_silent(),
            }
        }
    }

    async fn on_command(&mut self, command: Command) {
        match command {
            Command::Publish { topic, body } => {
                let payload = self.source.encode_body(&topic, &body);
                self.fan_out(&Bytes::from(topic), &payload).await;
            }
            Command::Raw { topic, payload } => self.fan_out(&topic, &payload).await,
            Command::Subscribers(reply) => {
                let _ = reply.send(self.describe());
            }
        }
    }

    async fn fan_out(&mut self, topic: &Bytes, payload: &Bytes) {
        self.stats.published.fetch_add(1, Ordering::Relaxed);
        let mut targets = Vec::new();
        for (peer, sub) in &mut self.subscribers {
            if !sub.matches(topic) {
                continue;
            }
            if sub.credit == 0 {
                sub.dropped += 1;
                sub.unreported += 1;
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            sub.credit -= 1;
            sub.sent += 1;
            targets.push(peer.clone());
        }
        for peer in targets {
            if self.write(peer, topic.clone(), payload.clone()).await {
                self.stats.delivered.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    async fn write(&mut self, peer: Bytes, topic: Bytes, payload: Bytes) -> bool {
        let Ok(message) = ZmqMessage::try_from(vec![peer.clone(), topic, payload]) else {
            return false;
        };
        match self.send.send(message).await {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!(error = %e, "bus write failed; forgetting subscriber");
                self.forget(&peer, "write failed");
                false
            }
        }
    }

    async fn on_control(&mut self, message: ZmqMessage) {
        let mut frames = message.into_vec();
        let (Some(payload), Some(peer)) = (frames.pop(), frames.first().cloned()) else {
            self.stats.malformed.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let Some(control) = Control::decode(&payload) else {
            self.stats.malformed.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(len = payload.len(), "undecodable bus control message");
            return;
        };
        match control {
            Control::Subscribe {
                prefixes, credit, ..
            } => self.subscribe(peer, prefixes, credit),
            Control::Unsubscribe => self.forget(&peer, "unsubscribed"),
            Control::Credit { n } => self.add_credit(peer, n).await,
            Control::Heartbeat => match self.subscribers.get_mut(&peer) {
                Some(sub) => sub.last_seen = Instant::now(),
                None => self.ask_to_resubscribe(peer).await,
            },
        }
    }

    fn subscribe(&mut self, peer: Bytes, prefixes: Vec<String>, credit: u32) {
        if !self.subscribers.contains_key(&peer)
            && self.subscribers.len() >= self.options.max_subscribers
        {
            tracing::warn!(
                max = self.options.max_subscribers,
                "subscriber limit reached; ignoring subscribe"
            );
            return;
        }
        let window = credit.min(self.options.max_credit);
        let prefixes = prefixes.into_iter().take(64).map(Bytes::from).collect();
        self.subscribers.insert(
            peer,
            Subscription {
                prefixes,
                window,
                credit: window,
                sent: 0,
                dropped: 0,
                unreported: 0,
                last_seen: Instant::now(),
            },
        );
    }

    async fn add_credit(&mut self, peer: Bytes, n: u32) {
        let Some(sub) = self.subscribers.get_mut(&peer) else {
            self.ask_to_resubscribe(peer).await;
            return;
        };
        sub.last_seen = Instant::now();
        sub.credit = sub.credit.saturating_add(n).min(sub.window);
        if sub.unreported == 0 || sub.credit == 0 {
            return;
        }
        let report = DroppedReport {
            dropped: sub.unreported,
            total: sub.dropped,
        };
        sub.unreported = 0;
        sub.credit -= 1;
        match self.source.encode(TOPIC_DROPPED, &report) {
            Ok(payload) => {
                self.write(peer, Bytes::from_static(TOPIC_DROPPED.as_bytes()), payload)
                    .await;
            }
            Err(e) => tracing::warn!(error = %e, "cannot encode drop report"),
        }
    }

    async fn ask_to_resubscribe(&mut self, peer: Bytes) {
        if let Ok(payload) = self.source.encode(TOPIC_RESUBSCRIBE, &()) {
            self.write(
                peer,
                Bytes::from_static(TOPIC_RESUBSCRIBE.as_bytes()),
                payload,
            )
            .await;
        }
    }

    fn forget(&mut self, peer: &Bytes, why: &str) {
        if self.subscribers.remove(peer).is_some() {
            self.stats
                .subscribers_forgotten
                .fetch_add(1, Ordering::Relaxed);
            tracing::debug!(why, "bus subscriber forgotten");
        }
    }

    fn forget_silent(&mut self) {
        let timeout = self.options.silence_timeout;
        let silent: Vec<Bytes> = self
            .subscribers
            .iter()
            .filter(|(_, sub)| sub.last_seen.elapsed() > timeout)
            .map(|(peer, _)| peer.clone())
            .collect();
        for peer in silent {
            self.forget(&peer, "silent");
        }
    }

    fn describe(&self) -> Vec<SubscriberInfo> {
        self.subscribers
            .iter()
            .map(|(peer, sub)| SubscriberInfo {
                id: hex(peer),
                prefixes: sub
                    .prefixes
                    .iter()
                    .map(|p| String::from_utf8_lossy(p).into_owned())
                    .collect(),
                credit: sub.credit,
                lag: sub.window - sub.credit,
                sent: sub.sent,
                dropped: sub.dropped,
                silent_ms: sub.last_seen.elapsed().as_millis() as u64,
            })
            .collect()
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

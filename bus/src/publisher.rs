//! The publishing side: a ROUTER that knows each subscriber's prefixes and credit.
//!
//! One task owns the subscriber table. It never waits on a subscriber: an event is written
//! to a subscriber only while it has credit — in events and in bytes — and every write is
//! admitted by the guard's ledger, which cuts off a peer that lets messages pile up
//! instead of waiting for it. Control messages and events take turns in the task, so a
//! peer flooding control messages slows only its own share.

use crate::control::Control;
use crate::error::BusError;
use crate::event::{EventHeader, EventSource};
use crate::relay::RelayEvent;
use crate::{DroppedReport, TOPIC_DROPPED, TOPIC_RESUBSCRIBE};
use bytes::Bytes;
use futures::StreamExt;
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use zeromq::{
    RouterRecvHalf, RouterSendHalf, Socket, SocketEvent, SocketRecv, SocketSend, ZmqMessage,
};
use zpm_rpc::guard::{Guard, GuardCounters, GuardLimits, Ledger, Peer, hex};

/// Tuning for a [`Publisher`].
#[derive(Debug, Clone)]
pub struct PublisherOptions {
    /// `source` stamped on events this publisher originates.
    pub source: String,
    /// `host` stamped on events this publisher originates.
    pub host: String,
    pub version: u32,
    /// Largest credit window a subscriber may hold, in events (kept below zmq.rs's 100k
    /// peer queue).
    pub max_credit: u32,
    /// Largest credit window a subscriber may hold, in bytes of events in flight.
    pub max_credit_bytes: u64,
    /// A subscriber silent this long is forgotten (subscribers heartbeat every second).
    pub silence_timeout: Duration,
    /// Most subscribers at once; further subscriptions are ignored and logged.
    pub max_subscribers: usize,
    /// Events waiting for the publisher task.
    pub queue: usize,
    /// Bytes of events waiting for the publisher task.
    pub queue_bytes: usize,
    /// Largest control message a subscriber may send.
    pub max_control_bytes: u64,
}

impl Default for PublisherOptions {
    fn default() -> Self {
        Self {
            source: "publisher".into(),
            host: String::new(),
            version: 1,
            max_credit: 65_536,
            max_credit_bytes: 8 * 1024 * 1024,
            silence_timeout: Duration::from_secs(10),
            max_subscribers: 256,
            queue: 4096,
            queue_bytes: 16 * 1024 * 1024,
            max_control_bytes: 64 * 1024,
        }
    }
}

impl PublisherOptions {
    /// What the guard lets each peer send and have queued: control messages only in, at
    /// most a full credit window (plus a few replies) out.
    fn guard_limits(&self) -> GuardLimits {
        GuardLimits {
            max_message_bytes: self.max_control_bytes,
            max_frames: 4,
            max_queued_messages: u64::from(self.max_credit) + 4096,
            max_queued_bytes: self.max_credit_bytes + 4 * 1024 * 1024,
            // A subscriber that stops reading but heartbeats is kept, its events dropped
            // and counted (its backlog is bounded by its credit); a silent one is forgotten.
            write_stall: None,
            ..GuardLimits::default()
        }
    }
}

/// What the publisher knows of one subscriber.
#[derive(Debug, Clone, Serialize)]
pub struct SubscriberInfo {
    /// The routing identity, hex.
    pub id: String,
    pub prefixes: Vec<String>,
    /// Credit left: events it may still be sent.
    pub credit: u32,
    /// Events sent and not yet acknowledged by returned credit.
    pub lag: u32,
    /// Bytes of events sent and not yet acknowledged.
    pub lag_bytes: u64,
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
    /// Relayed events refused because the publisher's queue was full.
    pub queue_full: AtomicU64,
}

enum Command {
    Publish {
        topic: String,
        body: Vec<u8>,
        _permit: OwnedSemaphorePermit,
    },
    Raw {
        topic: Bytes,
        payload: Bytes,
        _permit: OwnedSemaphorePermit,
    },
    Subscribers(oneshot::Sender<Vec<SubscriberInfo>>),
}

/// A handle to a running publisher; cheap to clone. The publisher stops when the last
/// handle is dropped.
#[derive(Clone)]
pub struct Publisher {
    commands: mpsc::Sender<Command>,
    queue_bytes: Arc<Semaphore>,
    queue_bytes_max: usize,
    stats: Arc<PublisherStats>,
    ledger: Arc<Ledger>,
    endpoints: Arc<Vec<String>>,
    interest: watch::Receiver<Vec<String>>,
    _task: Arc<AbortOnDrop>,
}

/// Stops the task and the guards (the endpoints) with the last handle.
struct AbortOnDrop {
    task: JoinHandle<()>,
    _guards: Vec<Guard>,
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Publisher {
    /// Binds every endpoint (ipc or loopback tcp, each behind a guard) and starts
    /// publishing.
    pub async fn bind(endpoints: &[&str], options: PublisherOptions) -> Result<Self, BusError> {
        let mut socket = zeromq::RouterSocket::new();
        let monitor = socket.monitor();
        let ledger = Ledger::new(options.guard_limits());
        let mut bound = Vec::new();
        let mut guards = Vec::new();
        for endpoint in endpoints {
            let (name, guard) = zpm_rpc::bind_endpoint(&mut socket, endpoint, &ledger).await?;
            bound.push(name);
            guards.push(guard);
        }
        let (send, recv) = socket.split();
        let (commands, commands_rx) = mpsc::channel(options.queue.max(1));
        let queue_bytes_max = options.queue_bytes.max(1);
        let queue_bytes = Arc::new(Semaphore::new(queue_bytes_max));
        let stats = Arc::new(PublisherStats::default());
        let (interest_tx, interest) = watch::channel(Vec::new());
        let table = State {
            interest: interest_tx,
            source: EventSource::new(&options.source, &options.host, options.version),
            options,
            subscribers: HashMap::new(),
            asked_to_resubscribe: HashMap::new(),
            send,
            ledger: Arc::clone(&ledger),
            stats: Arc::clone(&stats),
        };
        let task = tokio::spawn(table.run(recv, monitor, commands_rx));
        Ok(Self {
            commands,
            queue_bytes,
            queue_bytes_max,
            stats,
            ledger,
            endpoints: Arc::new(bound),
            interest,
            _task: Arc::new(AbortOnDrop {
                task,
                _guards: guards,
            }),
        })
    }

    /// Every topic prefix some subscriber wants now (sorted, no duplicates; `""` means
    /// every topic). Publishers of events (agents) need publish only what matches.
    pub fn interest(&self) -> watch::Receiver<Vec<String>> {
        self.interest.clone()
    }

    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    pub fn stats(&self) -> &PublisherStats {
        &self.stats
    }

    /// What the guard counted: connections, peers cut off and why.
    pub fn guard_counters(&self) -> GuardCounters {
        self.ledger.stats().snapshot()
    }

    /// Publishes `data` on `topic` as an event of this publisher's own source; waits for
    /// room in the queue.
    pub async fn publish<T: Serialize + ?Sized>(
        &self,
        topic: &str,
        data: &T,
    ) -> Result<(), BusError> {
        let body = rmp_serde::to_vec_named(data).map_err(|e| BusError::Encode {
            topic: topic.to_owned(),
            reason: e.to_string(),
        })?;
        let permit = self.room_for(topic.len() + body.len()).await?;
        let topic = topic.to_owned();
        self.commands
            .send(Command::Publish {
                topic,
                body,
                _permit: permit,
            })
            .await
            .map_err(|_| BusError::Closed)
    }

    /// Publishes an event encoded elsewhere (by an agent's [`EventSource`]) byte for byte,
    /// waiting for room in the queue. A payload without a readable envelope is counted as
    /// malformed and not published.
    pub async fn publish_raw(&self, topic: Bytes, payload: Bytes) -> Result<(), BusError> {
        self.check_envelope(&payload)?;
        let permit = self.room_for(topic.len() + payload.len()).await?;
        self.commands
            .send(Command::Raw {
                topic,
                payload,
                _permit: permit,
            })
            .await
            .map_err(|_| BusError::Closed)
    }

    /// Re-publishes an event a peer sent up its connection. Never waits: with the queue
    /// full (in events or bytes) the event is dropped and counted (`queue_full`), so a
    /// peer flooding events cannot hold up whoever relays them.
    pub fn relay(&self, event: RelayEvent) -> Result<(), BusError> {
        let payload = Bytes::from(event.payload);
        self.check_envelope(&payload)?;
        let topic = Bytes::from(event.topic);
        let full = |stats: &PublisherStats| {
            stats.queue_full.fetch_add(1, Ordering::Relaxed);
            BusError::Full
        };
        let Some(permit) = self.try_room_for(topic.len() + payload.len()) else {
            return Err(full(&self.stats));
        };
        self.commands
            .try_send(Command::Raw {
                topic,
                payload,
                _permit: permit,
            })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => full(&self.stats),
                mpsc::error::TrySendError::Closed(_) => BusError::Closed,
            })
    }

    /// What the publisher knows of each current subscriber.
    pub async fn subscribers(&self) -> Result<Vec<SubscriberInfo>, BusError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Subscribers(tx))
            .await
            .map_err(|_| BusError::Closed)?;
        rx.await.map_err(|_| BusError::Closed)
    }

    fn check_envelope(&self, payload: &[u8]) -> Result<(), BusError> {
        EventHeader::decode(payload).map(drop).inspect_err(|_| {
            self.stats.malformed.fetch_add(1, Ordering::Relaxed);
        })
    }

    /// Waits for `bytes` of room in the queue; an event larger than the whole queue is
    /// refused.
    async fn room_for(&self, bytes: usize) -> Result<OwnedSemaphorePermit, BusError> {
        let n = u32::try_from(bytes.max(1))
            .ok()
            .filter(|n| *n as usize <= self.queue_bytes_max)
            .ok_or(BusError::TooLarge { bytes })?;
        Arc::clone(&self.queue_bytes)
            .acquire_many_owned(n)
            .await
            .map_err(|_| BusError::Closed)
    }

    fn try_room_for(&self, bytes: usize) -> Option<OwnedSemaphorePermit> {
        let n = u32::try_from(bytes.max(1)).ok()?;
        Arc::clone(&self.queue_bytes).try_acquire_many_owned(n).ok()
    }
}
struct Subscription {
    prefixes: Vec<Bytes>,
    /// The guard's view of this peer: every write is admitted by it.
    peer: Arc<Peer>,
    window: u32,
    credit: u32,
    byte_window: u64,
    /// Sizes of messages sent and not yet acknowledged, oldest first: returned credit
    /// acknowledges them in order, so bytes in flight are known exactly.
    in_flight: VecDeque<u32>,
    bytes_in_flight: u64,
    sent: u64,
    dropped: u64,
    unreported: u64,
    last_seen: Instant,
}

impl Subscription {
    fn matches(&self, topic: &[u8]) -> bool {
        self.prefixes.iter().any(|p| topic.starts_with(p))
    }

    /// Takes credit for a message of `bytes`; false if there is not enough, in events or
    /// in bytes (one message larger than the byte window passes when nothing is in flight).
    fn take_credit(&mut self, bytes: usize) -> bool {
        let bytes = bytes as u64;
        let over_bytes =
            self.bytes_in_flight > 0 && self.bytes_in_flight + bytes > self.byte_window;
        if self.credit == 0 || over_bytes {
            return false;
        }
        self.credit -= 1;
        self.bytes_in_flight += bytes;
        self.in_flight.push_back(bytes as u32);
        true
    }

    fn return_credit(&mut self, n: u32) {
        for _ in 0..n {
            let Some(bytes) = self.in_flight.pop_front() else {
                break;
            };
            self.bytes_in_flight -= u64::from(bytes);
        }
        self.credit = self.credit.saturating_add(n).min(self.window);
    }
}

/// Unknown peers asked to resubscribe recently: asked at most once a second each.
const RESUBSCRIBE_EVERY: Duration = Duration::from_secs(1);
const MAX_ASKED: usize = 4096;

struct State {
    options: PublisherOptions,
    source: EventSource,
    subscribers: HashMap<Bytes, Subscription>,
    asked_to_resubscribe: HashMap<Bytes, Instant>,
    send: RouterSendHalf,
    ledger: Arc<Ledger>,
    stats: Arc<PublisherStats>,
    /// The union of the subscribers' prefixes, updated as they come and go.
    interest: watch::Sender<Vec<String>>,
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
            // Not biased: control messages and events take turns, so a control flood
            // cannot starve delivery.
            tokio::select! {
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
            Command::Publish { topic, body, .. } => {
                let payload = self.source.encode_body(&topic, &body);
                self.fan_out(&Bytes::from(topic), &payload).await;
            }
            Command::Raw { topic, payload, .. } => self.fan_out(&topic, &payload).await,
            Command::Subscribers(reply) => {
                let _ = reply.send(self.describe());
            }
        }
    }

    async fn fan_out(&mut self, topic: &Bytes, payload: &Bytes) {
        self.stats.published.fetch_add(1, Ordering::Relaxed);
        let size = topic.len() + payload.len();
        let mut targets = Vec::new();
        for (peer, sub) in &mut self.subscribers {
            if !sub.matches(topic) {
                continue;
            }
            if !sub.take_credit(size) {
                sub.dropped += 1;
                sub.unreported += 1;
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            sub.sent += 1;
            targets.push((peer.clone(), Arc::clone(&sub.peer)));
        }
        for (identity, peer) in targets {
            if self
                .write(&peer, identity, topic.clone(), payload.clone())
                .await
            {
                self.stats.delivered.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Writes one message if the ledger admits it (never waits on the peer); a peer that
    /// is cut off, or whose write fails, is forgotten.
    async fn write(&mut self, peer: &Peer, identity: Bytes, topic: Bytes, payload: Bytes) -> bool {
        if !peer.admit(topic.len() + payload.len()) {
            self.forget(&identity, "cut off: not reading");
            return false;
        }
        let Ok(message) = ZmqMessage::try_from(vec![identity.clone(), topic, payload]) else {
            return false;
        };
        match self.send.send(message).await {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!(error = %e, "bus write failed; forgetting subscriber");
                self.forget(&identity, "write failed");
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
                prefixes,
                credit,
                credit_bytes,
                ..
            } => self.subscribe(peer, prefixes, credit, credit_bytes),
            Control::Unsubscribe => self.forget(&peer, "unsubscribed"),
            Control::Credit { n } => self.add_credit(peer, n).await,
            Control::Heartbeat => match self.subscribers.get_mut(&peer) {
                Some(sub) => sub.last_seen = Instant::now(),
                None => self.ask_to_resubscribe(peer).await,
            },
        }
    }

    fn subscribe(&mut self, identity: Bytes, prefixes: Vec<String>, credit: u32, bytes: u64) {
        if !self.subscribers.contains_key(&identity)
            && self.subscribers.len() >= self.options.max_subscribers
        {
            tracing::warn!(
                max = self.options.max_subscribers,
                "subscriber limit reached; ignoring subscribe"
            );
            return;
        }
        let Some(peer) = self.ledger.peer(&identity) else {
            return;
        };
        let window = credit.min(self.options.max_credit);
        let byte_window = match bytes {
            0 => self.options.max_credit_bytes,
            n => n.min(self.options.max_credit_bytes),
        };
        let prefixes = prefixes.into_iter().take(64).map(Bytes::from).collect();
        self.asked_to_resubscribe.remove(&identity);
        self.subscribers.insert(
            identity,
            Subscription {
                prefixes,
                peer,
                window,
                credit: window,
                byte_window,
                in_flight: VecDeque::new(),
                bytes_in_flight: 0,
                sent: 0,
                dropped: 0,
                unreported: 0,
                last_seen: Instant::now(),
            },
        );
        self.update_interest();
    }

    async fn add_credit(&mut self, identity: Bytes, n: u32) {
        let Some(sub) = self.subscribers.get_mut(&identity) else {
            self.ask_to_resubscribe(identity).await;
            return;
        };
        sub.last_seen = Instant::now();
        sub.return_credit(n);
        if sub.unreported == 0 {
            return;
        }
        let report = DroppedReport {
            dropped: sub.unreported,
            total: sub.dropped,
        };
        let payload = match self.source.encode(TOPIC_DROPPED, &report) {
            Ok(payload) => payload,
            Err(e) => {
                tracing::warn!(error = %e, "cannot encode drop report");
                return;
            }
        };
        let topic = Bytes::from_static(TOPIC_DROPPED.as_bytes());
        if !sub.take_credit(topic.len() + payload.len()) {
            return;
        }
        sub.unreported = 0;
        let peer = Arc::clone(&sub.peer);
        self.write(&peer, identity, topic, payload).await;
    }

    async fn ask_to_resubscribe(&mut self, identity: Bytes) {
        let now = Instant::now();
        let recently = self
            .asked_to_resubscribe
            .get(&identity)
            .is_some_and(|at| now.duration_since(*at) < RESUBSCRIBE_EVERY);
        if recently || self.asked_to_resubscribe.len() >= MAX_ASKED {
            return;
        }
        let Some(peer) = self.ledger.peer(&identity) else {
            return;
        };
        self.asked_to_resubscribe.insert(identity.clone(), now);
        if let Ok(payload) = self.source.encode(TOPIC_RESUBSCRIBE, &()) {
            let topic = Bytes::from_static(TOPIC_RESUBSCRIBE.as_bytes());
            self.write(&peer, identity, topic, payload).await;
        }
    }

    fn update_interest(&self) {
        let mut prefixes: Vec<String> = self
            .subscribers
            .values()
            .flat_map(|sub| &sub.prefixes)
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect();
        prefixes.sort();
        prefixes.dedup();
        self.interest.send_if_modified(|current| {
            let changed = *current != prefixes;
            *current = prefixes;
            changed
        });
    }

    fn forget(&mut self, peer: &Bytes, why: &str) {
        if self.subscribers.remove(peer).is_some() {
            self.update_interest();
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
        self.asked_to_resubscribe
            .retain(|_, at| at.elapsed() < RESUBSCRIBE_EVERY);
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
                lag_bytes: sub.bytes_in_flight,
                sent: sub.sent,
                dropped: sub.dropped,
                silent_ms: sub.last_seen.elapsed().as_millis() as u64,
            })
            .collect()
    }
}

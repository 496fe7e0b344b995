//! The ROUTER side: binds, dispatches each request to its handler in its own task, routes
//! each reply back through the frames it came with (so DEALER and REQ peers both work).

use crate::envelope::{ENVELOPE_VERSION, encode_error_reply, encode_message, encode_ok_reply};
use crate::error::{BindError, ErrorCode, RpcError};
use crate::guard::{Guard, GuardCounters, GuardLimits, GuardStats, Ledger, Peer, bind_endpoint};
use crate::handler::{Ctx, Handler, erase};
use crate::lanes::Lanes;
use crate::method::Method;
use crate::scan::{Envelope, Incoming, RawId, ScanLimits, decode_incoming};
use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use zeromq::{RouterRecvHalf, RouterSendHalf, Socket, SocketRecv, SocketSend, ZmqMessage};

/// A send admitted by the ledger never waits on the peer's queue; this only bounds a
/// zmq.rs surprise.
const SEND_LIMIT: Duration = Duration::from_secs(5);

/// The routing identity zeromq gives a connected peer.
pub type PeerId = Bytes;

/// Counters a server keeps; read them with [`Server::stats`].
#[derive(Debug, Default)]
pub struct ServerStats {
    pub requests: AtomicU64,
    pub notifications: AtomicU64,
    pub error_replies: AtomicU64,
    /// Payloads with no readable id: nothing could be answered.
    pub dropped_unreadable: AtomicU64,
    /// Replies and pushes not sent: the peer was gone or cut off.
    pub replies_undeliverable: AtomicU64,
    /// Messages from peers the guard does not know (already gone).
    pub dropped_unknown_peer: AtomicU64,
    /// Notifications dropped because their peer had 1024 queued already.
    pub dropped_notifications: AtomicU64,
}

impl ServerStats {
    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Registers handlers, then binds.
pub struct ServerBuilder {
    handlers: HashMap<String, Handler>,
    version: u32,
    max_in_flight: usize,
    limits: GuardLimits,
    scan: ScanLimits,
}

impl Default for ServerBuilder {
    fn default() -> Self {
        Self {
            handlers: HashMap::new(),
            version: ENVELOPE_VERSION,
            max_in_flight: 4096,
            limits: GuardLimits::default(),
            scan: ScanLimits::default(),
        }
    }
}

impl ServerBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// The envelope `v` this server accepts and answers with.
    #[must_use]
    pub fn version(mut self, version: u32) -> Self {
        self.version = version;
        self
    }

    /// What the guard accepts from and queues for each peer (message size, share).
    #[must_use]
    pub fn limits(mut self, limits: GuardLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Bounds on the `params` of a request (depth, values).
    #[must_use]
    pub fn scan_limits(mut self, scan: ScanLimits) -> Self {
        self.scan = scan;
        self
    }

    /// How many handlers may run at once (all peers) before the server stops reading.
    #[must_use]
    pub fn max_in_flight(mut self, max: usize) -> Self {
        self.max_in_flight = max.max(1);
        self
    }

    /// Registers `handler` for `method`. It also serves notifications of that method (their
    /// result is discarded).
    #[must_use]
    pub fn method<P, R, F, Fut>(mut self, method: &str, handler: F) -> Self
    where
        P: DeserializeOwned + Send + 'static,
        R: Serialize + Send + 'static,
        F: Fn(P, Ctx) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, RpcError>> + Send + 'static,
    {
        self.handlers.insert(method.to_owned(), erase(handler));
        self
    }

    /// Registers `handler` for the method `M`, typed by its declaration.
    #[must_use]
    pub fn handle<M, F, Fut>(self, handler: F) -> Self
    where
        M: Method,
        F: Fn(M::Params, Ctx) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<M::Output, RpcError>> + Send + 'static,
    {
        self.method(M::NAME, handler)
    }

    /// Binds every endpoint (ipc paths and loopback tcp only, each behind a guard) and
    /// starts serving.
    pub async fn bind(self, endpoints: &[&str]) -> Result<Server, BindError> {
        let mut socket = zeromq::RouterSocket::new();
        let ledger = Ledger::new(self.limits);
        let mut bound = Vec::with_capacity(endpoints.len());
        let mut guards = Vec::with_capacity(endpoints.len());
        for endpoint in endpoints {
            let (name, guard) = bind_endpoint(&mut socket, endpoint, &ledger).await?;
            bound.push(name);
            guards.push(guard);
        }
        let (send, recv) = socket.split();
        let stats = Arc::new(ServerStats::default());
        let (outgoing, outgoing_rx) = mpsc::channel(OUTGOING_QUEUE);
        let writer = tokio::spawn(write_out(send, outgoing_rx, Arc::clone(&stats)));
        let shared = Arc::new(Dispatch {
            handlers: self.handlers,
            version: self.version,
            scan: self.scan,
            stats,
            pusher: Pusher {
                outgoing,
                version: self.version,
                ledger: Arc::clone(&ledger),
            },
            permits: Arc::new(Semaphore::new(self.max_in_flight)),
            lanes: Lanes::default(),
        });
        let task = tokio::spawn(serve(recv, Arc::clone(&shared)));
        Ok(Server {
            endpoints: bound,
            shared,
            task,
            writer,
            _guards: guards,
        })
    }
}

/// A running server. Dropping it stops serving and unbinds.
pub struct Server {
    endpoints: Vec<String>,
    shared: Arc<Dispatch>,
    task: JoinHandle<()>,
    writer: JoinHandle<()>,
    _guards: Vec<Guard>,
}

impl Server {
    pub fn builder() -> ServerBuilder {
        ServerBuilder::new()
    }

    /// The bound endpoints, with real ports for `tcp://…:0`.
    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    pub fn stats(&self) -> &ServerStats {
        &self.shared.stats
    }

    /// What the guard counted: connections, peers cut off and why.
    pub fn guard_counters(&self) -> GuardCounters {
        self.shared.pusher.ledger.stats().snapshot()
    }

    /// The guard's live counters, to read after the server is handed elsewhere.
    pub fn guard_stats(&self) -> Arc<GuardStats> {
        Arc::clone(self.shared.pusher.ledger.stats())
    }

    pub fn pusher(&self) -> Pusher {
        self.shared.pusher.clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
        self.writer.abort();
    }
}

/// Sends one-way messages `{v, method, params}` to connected DEALER peers, and replies.
/// Every send is admitted by the ledger first: a peer that does not read is cut off
/// rather than waited for.
#[derive(Clone)]
pub struct Pusher {
    outgoing: mpsc::Sender<Outgoing>,
    version: u32,
    ledger: Arc<Ledger>,
}

/// A message on its way to zmq.rs, with the peer it is for.
type Outgoing = (Arc<Peer>, ZmqMessage);

/// Messages waiting for the writer (all peers); a full queue makes senders wait for the
/// writer, which itself never waits on a peer.
const OUTGOING_QUEUE: usize = 4096;

impl Pusher {
    pub async fn push<P: Serialize>(
        &self,
        peer: &PeerId,
        method: &str,
        params: &P,
    ) -> Result<(), RpcError> {
        let payload = encode_message(self.version, None, method, params)
            .map_err(|e| RpcError::internal(format!("cannot encode push: {e}")))?;
        let Some(connected) = self.ledger.peer(peer) else {
            return Err(RpcError::new(
                ErrorCode::Unavailable,
                "push failed: peer gone",
            ));
        };
        self.send_frames(&connected, vec![peer.clone(), Bytes::from(payload)])
            .await
            .map_err(|e| RpcError::new(ErrorCode::Unavailable, format!("push failed: {e}")))
    }

    /// Pushes the method `M` to `peer`.
    pub async fn push_method<M: Method>(
        &self,
        peer: &PeerId,
        params: &M::Params,
    ) -> Result<(), RpcError> {
        self.push(peer, M::NAME, params).await
    }

    /// Queues `[identity, frames…]` for the writer if the ledger admits it.
    async fn send_frames(&self, peer: &Arc<Peer>, frames: Vec<Bytes>) -> Result<(), &'static str> {
        let bytes = frames.iter().skip(1).map(Bytes::len).sum();
        if !peer.admit(bytes) {
            return Err("peer cut off: it does not read");
        }
        let message = ZmqMessage::try_from(frames).map_err(|_| "empty message")?;
        self.outgoing
            .send((Arc::clone(peer), message))
            .await
            .map_err(|_| "server stopped")
    }
}

/// The one task that hands messages to zmq.rs. One writer rather than one per handler:
/// zmq.rs looks the peer up in a lock-per-bucket map whose lock is handed to the next
/// waiter on release; with many tasks sending at once, a waiting task could be handed the
/// lock while the worker threads sit in zmq.rs's blocking `remove_sync` of a disconnecting
/// peer — a deadlock (measured: a flood cut off for over-share wedged God 1 run in 3).
/// With one writer zmq.rs sees one waiter at most; it also batches under load.
async fn write_out(
    mut send: RouterSendHalf,
    mut outgoing: mpsc::Receiver<Outgoing>,
    stats: Arc<ServerStats>,
) {
    while let Some((peer, message)) = outgoing.recv().await {
        // Admitted sends never find the peer's queue full; this bounds a zmq.rs surprise.
        match tokio::time::timeout(SEND_LIMIT, send.send(message)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                ServerStats::bump(&stats.replies_undeliverable);
                tracing::debug!(error = %e, "message undeliverable (peer gone?)");
            }
            Err(_) => {
                ServerStats::bump(&stats.replies_undeliverable);
                peer.cut_off(crate::guard::CutReason::NotReading);
            }
        }
    }
}

struct Dispatch {
    handlers: HashMap<String, Handler>,
    version: u32,
    scan: ScanLimits,
    stats: Arc<ServerStats>,
    pusher: Pusher,
    permits: Arc<Semaphore>,
    /// Each peer's notifications, in order.
    lanes: Lanes,
}

async fn serve(mut recv: RouterRecvHalf, shared: Arc<Dispatch>) {
    loop {
        let mut frames = match recv.recv().await {
            Ok(message) => message.into_vec(),
            Err(e) => {
                tracing::warn!(error = %e, "rpc server receive failed");
                continue;
            }
        };
        // frames: [identity, (empty delimiter from REQ peers)…, payload]
        let Some(payload) = frames.pop().filter(|_| !frames.is_empty()) else {
            ServerStats::bump(&shared.stats.dropped_unreadable);
            continue;
        };
        let Some(peer) = shared.pusher.ledger.peer(&frames[0]) else {
            ServerStats::bump(&shared.stats.dropped_unknown_peer);
            continue;
        };
        let incoming = decode_incoming(&payload, shared.scan);
        // A peer's share counts requests (which hold a reply slot): a burst of
        // notifications — a spawner reporting a thousand restarts — is normal traffic,
        // bounded by the server's permits like everything else.
        let is_request = matches!(
            incoming,
            Incoming::Request { .. } | Incoming::Invalid { .. }
        );
        if is_request && !peer.begin_request() {
            continue;
        }
        let Ok(permit) = Arc::clone(&shared.permits).acquire_owned().await else {
            return;
        };
        let identity = frames[0].clone();
        let job = {
            let shared = Arc::clone(&shared);
            async move {
                shared.handle(&peer, frames, payload, incoming).await;
                if is_request {
                    peer.end_request();
                }
                drop(permit);
            }
        };
        if is_request {
            tokio::spawn(job);
        } else if !shared.lanes.push(&identity, Box::pin(job)) {
            ServerStats::bump(&shared.stats.dropped_notifications);
        }
    }
}

impl Dispatch {
    async fn handle(
        &self,
        peer: &Arc<Peer>,
        route: Vec<Bytes>,
        payload: Bytes,
        incoming: Incoming,
    ) {
        match incoming {
            Incoming::Unreadable => {
                ServerStats::bump(&self.stats.dropped_unreadable);
                tracing::debug!(
                    len = payload.len(),
                    "dropped rpc payload with no readable id"
                );
            }
            Incoming::Invalid { id, error } => self.reply(peer, route, &id, Err(error)).await,
            Incoming::Request { id, envelope } => {
                ServerStats::bump(&self.stats.requests);
                let outcome = self.run(route[0].clone(), &envelope, payload).await;
                self.reply(peer, route, &id, outcome).await;
            }
            Incoming::Notification(envelope) => {
                ServerStats::bump(&self.stats.notifications);
                let method = envelope.method.clone();
                if let Err(error) = self.run(route[0].clone(), &envelope, payload).await {
                    tracing::debug!(%method, %error, "notification failed");
                }
            }
        }
    }

    async fn run(
        &self,
        peer: PeerId,
        envelope: &Envelope,
        payload: Bytes,
    ) -> Result<Vec<u8>, RpcError> {
        if envelope.v != u64::from(self.version) {
            return Err(RpcError::new(
                ErrorCode::Version,
                format!(
                    "envelope v {} is not supported; this server speaks v {}",
                    envelope.v, self.version
                ),
            ));
        }
        let Some(handler) = self.handlers.get(&envelope.method) else {
            return Err(RpcError::new(
                ErrorCode::UnknownMethod,
                format!("unknown method {:?}", envelope.method),
            ));
        };
        let ctx = Ctx {
            peer,
            pusher: self.pusher.clone(),
        };
        handler(payload, ctx).await
    }

    async fn reply(
        &self,
        peer: &Arc<Peer>,
        mut route: Vec<Bytes>,
        id: &RawId,
        outcome: Result<Vec<u8>, RpcError>,
    ) {
        let payload = match outcome {
            Ok(raw) => encode_ok_reply(self.version, id, &raw),
            Err(error) => {
                ServerStats::bump(&self.stats.error_replies);
                encode_error_reply(self.version, id, &error)
            }
        };
        route.push(Bytes::from(payload));
        if let Err(why) = self.pusher.send_frames(peer, route).await {
            ServerStats::bump(&self.stats.replies_undeliverable);
            tracing::debug!(why, "reply not sent");
        }
    }
}

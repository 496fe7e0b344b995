//! The ROUTER side: binds, dispatches each request to its handler in its own task, routes
//! each reply back through the frames it came with (so DEALER and REQ peers both work).

use crate::endpoint::bind_endpoint;
use crate::envelope::{
    ENVELOPE_VERSION, Incoming, Message, decode_incoming, encode_error_reply, encode_message,
    encode_ok_reply,
};
use crate::error::{BindError, ErrorCode, RpcError};
use crate::handler::{Ctx, Handler, erase};
use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use zeromq::{RouterRecvHalf, RouterSendHalf, Socket, SocketRecv, SocketSend, ZmqMessage};

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
    pub replies_undeliverable: AtomicU64,
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
}

impl Default for ServerBuilder {
    fn default() -> Self {
        Self {
            handlers: HashMap::new(),
            version: ENVELOPE_VERSION,
            max_in_flight: 4096,
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

    /// How many handlers may run at once before the server stops reading new requests.
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

    /// Binds every endpoint (ipc paths and loopback tcp only) and starts serving.
    pub async fn bind(self, endpoints: &[&str]) -> Result<Server, BindError> {
        let mut socket = zeromq::RouterSocket::new();
        let mut bound = Vec::with_capacity(endpoints.len());
        for endpoint in endpoints {
            bound.push(bind_endpoint(&mut socket, endpoint).await?);
        }
        let (send, recv) = socket.split();
        let shared = Arc::new(Dispatch {
            handlers: self.handlers,
            version: self.version,
            stats: Arc::new(ServerStats::default()),
            pusher: Pusher {
                send,
                version: self.version,
            },
            permits: Arc::new(Semaphore::new(self.max_in_flight)),
        });
        let task = tokio::spawn(serve(recv, Arc::clone(&shared)));
        Ok(Server {
            endpoints: bound,
            shared,
            task,
        })
    }
}

/// A running server. Dropping it stops serving and unbinds.
pub struct Server {
    endpoints: Vec<String>,
    shared: Arc<Dispatch>,
    task: JoinHandle<()>,
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

    pub fn pusher(&self) -> Pusher {
        self.shared.pusher.clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Sends one-way messages `{v, method, params}` to connected DEALER peers.
#[derive(Clone)]
pub struct Pusher {
    send: RouterSendHalf,
    version: u32,
}

impl Pusher {
    pub async fn push<P: Serialize>(
        &self,
        peer: &PeerId,
        method: &str,
        params: &P,
    ) -> Result<(), RpcError> {
        let payload = encode_message(self.version, None, method, params)
            .map_err(|e| RpcError::internal(format!("cannot encode push: {e}")))?;
        self.send_frames(vec![peer.clone(), Bytes::from(payload)])
            .await
            .map_err(|e| RpcError::new(ErrorCode::Unavailable, format!("push failed: {e}")))
    }

    async fn send_frames(&self, frames: Vec<Bytes>) -> Result<(), zeromq::ZmqError> {
        let message =
            ZmqMessage::try_from(frames).map_err(|_| zeromq::ZmqError::Socket("empty message"))?;
        self.send.clone().send(message).await
    }
}

struct Dispatch {
    handlers: HashMap<String, Handler>,
    version: u32,
    stats: Arc<ServerStats>,
    pusher: Pusher,
    permits: Arc<Semaphore>,
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
        let Ok(permit) = Arc::clone(&shared.permits).acquire_owned().await else {
            return;
        };
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            shared.handle(frames, payload).await;
            drop(permit);
        });
    }
}

impl Dispatch {
    async fn handle(&self, route: Vec<Bytes>, payload: Bytes) {
        match decode_incoming(&payload) {
            Incoming::Unreadable => {
                ServerStats::bump(&self.stats.dropped_unreadable);
                tracing::debug!(
                    len = payload.len(),
                    "dropped rpc payload with no readable id"
                );
            }
            Incoming::Invalid { id, error } => self.reply(route, id, Err(error)).await,
            Incoming::Request(message) => {
                ServerStats::bump(&self.stats.requests);
                let id = message.id.unwrap_or_default();
                let outcome = self.run(route[0].clone(), &message, payload).await;
                self.reply(route, id, outcome).await;
            }
            Incoming::Notification(message) => {
                ServerStats::bump(&self.stats.notifications);
                let method = message.method.clone();
                if let Err(error) = self.run(route[0].clone(), &message, payload).await {
                    tracing::warn!(%method, %error, "notification failed");
                }
            }
        }
    }

    async fn run(
        &self,
        peer: PeerId,
        message: &Message,
        payload: Bytes,
    ) -> Result<Vec<u8>, RpcError> {
        if message.v != u64::from(self.version) {
            return Err(RpcError::new(
                ErrorCode::Version,
                format!(
                    "envelope v {} is not supported; this server speaks v {}",
                    message.v, self.version
                ),
            ));
        }
        let Some(handler) = self.handlers.get(&message.method) else {
            return Err(RpcError::new(
                ErrorCode::UnknownMethod,
                format!("unknown method {:?}", message.method),
            ));
        };
        let ctx = Ctx {
            peer,
            pusher: self.pusher.clone(),
        };
        handler(payload, ctx).await
    }

    async fn reply(&self, mut route: Vec<Bytes>, id: u64, outcome: Result<Vec<u8>, RpcError>) {
        let payload = match outcome {
            Ok(raw) => encode_ok_reply(self.version, id, &raw),
            Err(error) => {
                ServerStats::bump(&self.stats.error_replies);
                encode_error_reply(self.version, id, &error)
            }
        };
        route.push(Bytes::from(payload));
        if let Err(e) = self.pusher.send_frames(route).await {
            ServerStats::bump(&self.stats.replies_undeliverable);
            tracing::debug!(error = %e, id, "reply undeliverable (peer gone?)");
        }
    }
}

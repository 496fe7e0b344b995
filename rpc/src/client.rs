//! The DEALER side: concurrent calls multiplexed by id on one socket, a deadline on every
//! call, and a connection task that recreates the socket whenever the connection is lost,
//! because zmq.rs never reconnects a DEALER over ipc after the server restarts.

use crate::envelope::{ENVELOPE_VERSION, FromServer, decode_from_server, encode_message};
use crate::error::{CallError, RpcError};
use crate::method::Method;
use bytes::Bytes;
use futures::StreamExt;
use rmpv::Value;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use zeromq::{
    DealerSocket, Socket, SocketEvent, SocketOptions, SocketRecv, SocketSend, ZmqMessage,
};

/// A one-way message the server pushed to this client.
#[derive(Debug, Clone)]
pub struct Push {
    pub method: String,
    pub params: Value,
}

impl Push {
    /// True if this is a push of the method `M`.
    pub fn is<M: Method>(&self) -> bool {
        self.method == M::NAME
    }

    /// Its params as the method `M` declares them.
    pub fn params<M: Method>(&self) -> Result<M::Params, RpcError> {
        crate::typed::from_value(&self.params)
    }
}

/// Tuning for a [`Client`].
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Envelope `v` sent with every message.
    pub version: u32,
    /// How long the first connection attempt may take before the next one starts. An
    /// attempt that reached a listener but did not complete doubles the next one's time,
    /// up to [`MAX_CONNECT_ATTEMPT`]: a server behind the keyed tunnel on a distant host
    /// needs several round trips (TCP, the tunnel's handshake, ZMTP's), and a fixed short
    /// budget would never be enough there.
    pub connect_attempt: Duration,
    /// Longest pause between connection attempts.
    pub max_backoff: Duration,
    /// Messages waiting to be sent, e.g. while the server is down.
    pub outbox_capacity: usize,
    /// Pushes waiting to be taken from [`Client::take_pushes`]; more are dropped and counted.
    pub push_capacity: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            version: ENVELOPE_VERSION,
            connect_attempt: Duration::from_millis(250),
            max_backoff: Duration::from_millis(200),
            outbox_capacity: 1024,
            push_capacity: 1024,
        }
    }
}

enum Answer {
    /// The reply payload (typed results decode from it) and its parsed outcome.
    Outcome(Bytes, Result<Value, RpcError>),
    ConnectionLost,
}

struct Pending {
    answer: oneshot::Sender<Answer>,
    /// The connection generation it was written to, once written.
    sent_on: Option<u64>,
}

struct Outgoing {
    id: Option<u64>,
    payload: Bytes,
}

struct Shared {
    endpoint: String,
    options: ClientOptions,
    next_id: AtomicU64,
    pending: Mutex<HashMap<u64, Pending>>,
    /// Messages received on any connection: a call that timed out while this did not move
    /// suggests a half-dead connection.
    received: AtomicU64,
    pushes_dropped: AtomicU64,
    reconnect: Notify,
    generation: watch::Sender<u64>,
}

impl Shared {
    fn pending(&self) -> MutexGuard<'_, HashMap<u64, Pending>> {
        // A panic while holding this lock cannot leave the map inconsistent, so recover.
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// An RPC client. Cheap to share behind an `Arc`; dropping it stops its connection task.
pub struct Client {
    shared: Arc<Shared>,
    outbox: mpsc::Sender<Outgoing>,
    pushes: Mutex<Option<mpsc::Receiver<Push>>>,
    task: JoinHandle<()>,
}

impl Drop for Client {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Client {
    /// Starts connecting to `endpoint` in the background. Must be called inside a tokio runtime.
    pub fn new(endpoint: &str) -> Self {
        Self::with_options(endpoint, ClientOptions::default())
    }

    pub fn with_options(endpoint: &str, options: ClientOptions) -> Self {
        let (outbox, outbox_rx) = mpsc::channel(options.outbox_capacity.max(1));
        let (push_tx, push_rx) = mpsc::channel(options.push_capacity.max(1));
        let shared = Arc::new(Shared {
            endpoint: endpoint.to_owned(),
            options,
            next_id: AtomicU64::new(1),
            pending: Mutex::new(HashMap::new()),
            received: AtomicU64::new(0),
            pushes_dropped: AtomicU64::new(0),
            reconnect: Notify::new(),
            generation: watch::Sender::new(0),
        });
        let task = tokio::spawn(run_connection(Arc::clone(&shared), outbox_rx, push_tx));
        Self {
            shared,
            outbox,
            pushes: Mutex::new(Some(push_rx)),
            task,
        }
    }

    pub fn endpoint(&self) -> &str {
        &self.shared.endpoint
    }

    /// Calls `method` and waits at most `timeout` for its reply.
    pub async fn call<P, R>(
        &self,
        method: &str,
        params: &P,
        timeout: Duration,
    ) -> Result<R, CallError>
    where
        P: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        let (payload, _) = self.exchange(method, params, timeout).await?;
        crate::typed::result(&payload).map_err(|reason| CallError::BadReply {
            method: method.to_owned(),
            reason,
        })
    }

    /// Calls the method `M` and waits at most `timeout` for its reply.
    pub async fn call_method<M: Method>(
        &self,
        params: &M::Params,
        timeout: Duration,
    ) -> Result<M::Output, CallError> {
        self.call(M::NAME, params, timeout).await
    }

    /// Like [`Client::call`] but returns the `result` as a msgpack value.
    pub async fn call_value<P>(
        &self,
        method: &str,
        params: &P,
        timeout: Duration,
    ) -> Result<Value, CallError>
    where
        P: Serialize + ?Sized,
    {
        self.exchange(method, params, timeout)
            .await
            .map(|(_, value)| value)
    }

    /// Sends one request and waits for its successful reply: (payload, result value).
    async fn exchange<P>(
        &self,
        method: &str,
        params: &P,
        timeout: Duration,
    ) -> Result<(Bytes, Value), CallError>
    where
        P: Serialize + ?Sized,
    {
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let payload = self.encode(Some(id), method, params)?;
        let (answer, answer_rx) = oneshot::channel();
        self.shared.pending().insert(
            id,
            Pending {
                answer,
                sent_on: None,
            },
        );
        let received_before = self.shared.received.load(Ordering::Relaxed);
        let outcome = tokio::time::timeout(timeout, async {
            let outgoing = Outgoing {
                id: Some(id),
                payload,
            };
            self.outbox
                .send(outgoing)
                .await
                .map_err(|_| CallError::Closed)?;
            answer_rx.await.map_err(|_| CallError::Closed)
        })
        .await;
        let lost = || CallError::ConnectionLost {
            method: method.to_owned(),
            endpoint: self.shared.endpoint.clone(),
        };
        match outcome {
            Ok(Ok(Answer::Outcome(payload, result))) => result
                .map(|value| (payload, value))
                .map_err(CallError::Remote),
            Ok(Ok(Answer::ConnectionLost)) => Err(lost()),
            Ok(Err(e)) => {
                self.shared.pending().remove(&id);
                Err(e)
            }
            Err(_elapsed) => {
                self.shared.pending().remove(&id);
                if self.shared.received.load(Ordering::Relaxed) == received_before {
                    // Lazy pirate: nothing came back at all, so distrust this connection.
                    self.shared.reconnect.notify_waiters();
                }
                Err(CallError::Timeout {
                    method: method.to_owned(),
                    endpoint: self.shared.endpoint.clone(),
                    timeout,
                })
            }
        }
    }

    /// Sends a one-way notification `{v, method, params}`; queued while disconnected.
    pub fn notify<P: Serialize + ?Sized>(&self, method: &str, params: &P) -> Result<(), CallError> {
        let payload = self.encode(None, method, params)?;
        self.outbox
            .try_send(Outgoing { id: None, payload })
            .map_err(|_| CallError::Closed)
    }

    /// Sends the method `M` as a one-way notification.
    pub fn notify_method<M: Method>(&self, params: &M::Params) -> Result<(), CallError> {
        self.notify(M::NAME, params)
    }

    /// The receiver of server pushes; `None` after the first call.
    pub fn take_pushes(&self) -> Option<mpsc::Receiver<Push>> {
        self.pushes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }

    /// Pushes dropped because nobody took them fast enough.
    pub fn pushes_dropped(&self) -> u64 {
        self.shared.pushes_dropped.load(Ordering::Relaxed)
    }

    /// Counts established connections: watch it to re-register after a reconnect.
    pub fn connections(&self) -> watch::Receiver<u64> {
        self.shared.generation.subscribe()
    }

    /// Waits until a connection is established, at most `timeout`. True if connected.
    pub async fn wait_connected(&self, timeout: Duration) -> bool {
        let mut generations = self.connections();
        tokio::time::timeout(timeout, generations.wait_for(|g| *g > 0))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    fn encode<P: Serialize + ?Sized>(
        &self,
        id: Option<u64>,
        method: &str,
        params: &P,
    ) -> Result<Bytes, CallError> {
        encode_message(self.shared.options.version, id, method, params)
            .map(Bytes::from)
            .map_err(|e| CallError::Encode {
                method: method.to_owned(),
                reason: e.to_string(),
            })
    }
}

/// zmq.rs retries a refused connect internally after 50, 100, 200 ms… — a God that comes
/// back 5 ms later would be noticed only after those sleeps. So we first ask the kernel
/// whether anyone accepts on the ipc path (a cheap connect the guard drops at once), and
/// hand the connect to zmq.rs only then; our own retry loop waits 10 ms at first.
async fn accepts(endpoint: &str) -> bool {
    match endpoint.strip_prefix("ipc://") {
        Some(path) => tokio::net::UnixStream::connect(path).await.is_ok(),
        None => true,
    }
}

/// The longest a connection attempt is ever given (see [`ClientOptions::connect_attempt`]).
pub const MAX_CONNECT_ATTEMPT: Duration = Duration::from_secs(10);

/// How a connection attempt ended.
enum Attempt {
    Connected(DealerSocket, futures::channel::mpsc::Receiver<SocketEvent>),
    /// Nobody listens (refused at once): try again soon, with the same budget.
    Refused,
    /// Someone listens but the handshake did not complete in time: slow, or far away.
    TooSlow,
}

async fn connect(shared: &Shared, budget: Duration) -> Attempt {
    if !accepts(&shared.endpoint).await {
        return Attempt::Refused;
    }
    let mut options = SocketOptions::default();
    options.connect_timeout(budget);
    let mut socket = DealerSocket::with_options(options);
    let monitor = socket.monitor();
    match socket.connect(&shared.endpoint).await {
        Ok(()) => Attempt::Connected(socket, monitor),
        Err(e) => {
            tracing::trace!(endpoint = %shared.endpoint, error = %e, ?budget, "connect attempt failed");
            Attempt::TooSlow
        }
    }
}

async fn run_connection(
    shared: Arc<Shared>,
    mut outbox: mpsc::Receiver<Outgoing>,
    pushes: mpsc::Sender<Push>,
) {
    let mut carry = VecDeque::new();
    let mut backoff = Duration::from_millis(10);
    let mut budget = shared.options.connect_attempt;
    let mut generation = 0;
    loop {
        let (socket, monitor) = match connect(&shared, budget).await {
            Attempt::Connected(socket, monitor) => (socket, monitor),
            failed => {
                if matches!(failed, Attempt::TooSlow) {
                    budget = (budget * 2).min(MAX_CONNECT_ATTEMPT);
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(shared.options.max_backoff);
                continue;
            }
        };
        backoff = Duration::from_millis(10);
        budget = shared.options.connect_attempt;
        generation += 1;
        shared.generation.send_replace(generation);
        let mut connection = Connection {
            shared: &shared,
            socket,
            generation,
            pushes: &pushes,
        };
        let closed = connection.serve(monitor, &mut outbox, &mut carry).await;
        fail_in_flight(&shared, generation);
        if closed {
            return;
        }
        tracing::debug!(endpoint = %shared.endpoint, "rpc connection lost; reconnecting");
    }
}

fn fail_in_flight(shared: &Shared, generation: u64) {
    let mut pending = shared.pending();
    let lost: Vec<u64> = pending
        .iter()
        .filter(|(_, p)| p.sent_on == Some(generation))
        .map(|(id, _)| *id)
        .collect();
    for id in lost {
        if let Some(p) = pending.remove(&id) {
            let _ = p.answer.send(Answer::ConnectionLost);
        }
    }
}

struct Connection<'a> {
    shared: &'a Shared,
    socket: DealerSocket,
    generation: u64,
    pushes: &'a mpsc::Sender<Push>,
}

impl Connection<'_> {
    /// Serves until the connection is lost (false) or the client is gone (true).
    async fn serve(
        &mut self,
        mut monitor: futures::channel::mpsc::Receiver<SocketEvent>,
        outbox: &mut mpsc::Receiver<Outgoing>,
        carry: &mut VecDeque<Outgoing>,
    ) -> bool {
        while let Some(outgoing) = carry.pop_front() {
            if let Err(back) = self.send(outgoing).await {
                carry.push_front(back);
                return false;
            }
        }
        loop {
            tokio::select! {
                event = monitor.next() => match event {
                    Some(SocketEvent::Disconnected(_)) | None => return false,
                    Some(_) => {}
                },
                () = self.shared.reconnect.notified() => return false,
                received = self.socket.recv() => match received {
                    Ok(message) => self.deliver(message),
                    Err(_) => return false,
                },
                outgoing = outbox.recv() => match outgoing {
                    None => return true,
                    Some(outgoing) => if let Err(back) = self.send(outgoing).await {
                        carry.push_back(back);
                        return false;
                    },
                },
            }
        }
    }

    /// Writes one message; gives it back if the socket has no live peer.
    async fn send(&mut self, outgoing: Outgoing) -> Result<(), Outgoing> {
        if let Some(id) = outgoing.id {
            match self.shared.pending().get_mut(&id) {
                Some(pending) => pending.sent_on = Some(self.generation),
                None => return Ok(()), // the caller already gave up
            }
        }
        match self
            .socket
            .send(ZmqMessage::from(outgoing.payload.clone()))
            .await
        {
            Ok(()) => Ok(()),
            Err(e) => {
                tracing::debug!(error = %e, "rpc send failed; will resend on the next connection");
                if let Some(id) = outgoing.id
                    && let Some(pending) = self.shared.pending().get_mut(&id)
                {
                    pending.sent_on = None;
                }
                Err(outgoing)
            }
        }
    }

    fn deliver(&self, message: ZmqMessage) {
        self.shared.received.fetch_add(1, Ordering::Relaxed);
        let Some(payload) = message.into_vec().pop() else {
            return;
        };
        match decode_from_server(&payload) {
            Some(FromServer::Reply { id, outcome }) => {
                if let Some(pending) = self.shared.pending().remove(&id) {
                    let _ = pending
                        .answer
                        .send(Answer::Outcome(payload.clone(), outcome));
                } else {
                    tracing::debug!(id, "late reply dropped (caller timed out)");
                }
            }
            Some(FromServer::Push(message)) => {
                let push = Push {
                    method: message.method,
                    params: message.params,
                };
                if self.pushes.try_send(push).is_err() {
                    self.shared.pushes_dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
            None => tracing::warn!(
                len = payload.len(),
                "unreadable message from rpc server dropped"
            ),
        }
    }
}

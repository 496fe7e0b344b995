//! The frame guard: no byte from a peer reaches zmq.rs before our own code has checked it.
//!
//! zmq.rs aborts the process on a frame header larger than memory, has no maximum message
//! size, lets a new peer take over another's routing identity, and makes `send` wait
//! forever once a peer's 100k-message queue is full. So every endpoint a zpm process
//! serves is ours: a listener whose connections are pumped, frame by frame, to a private
//! zmq.rs listener in a private file next to it (or in a 0700 temp dir for loopback tcp).
//! The pump ([`pump`]) checks ZMTP framing and size limits ([`zmtp`]), gives each peer its
//! routing identity, and counts what the peer actually reads, so the server can refuse to
//! queue more for a peer that does not read and cut it off ([`ledger`]). The TCP tunnel
//! between hosts ends in the same guard.

mod ledger;
mod pump;
pub mod zmtp;

pub use ledger::{CutReason, GuardCounters, GuardStats, Ledger, Peer, hex};

use crate::endpoint::{bind_ipc_listener, bind_tcp_listener, remove_if_stale};
use crate::error::BindError;
use futures::FutureExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio::task::{JoinHandle, JoinSet};
use zeromq::Socket;

/// What one guarded socket accepts from, and queues for, each peer. Defaults are in
/// PROTOCOL.md ("Limits").
#[derive(Debug, Clone, Copy)]
pub struct GuardLimits {
    /// Bytes of one incoming message, all frames together; larger → cut off.
    pub max_message_bytes: u64,
    /// Frames of one incoming message.
    pub max_frames: u32,
    /// Bytes of one ZMTP command (the READY handshake).
    pub max_command_bytes: usize,
    /// Time from connect to a completed handshake.
    pub handshake_timeout: Duration,
    /// Time one write to a peer may wait for it to read; `None`: as long as it takes
    /// (what is queued for the peer stays bounded by the limits below either way).
    pub write_stall: Option<Duration>,
    /// Peers connected at once; more are refused.
    pub max_connections: usize,
    /// Messages handed to zmq.rs for a peer and not yet read by it.
    pub max_queued_messages: u64,
    /// Bytes handed to zmq.rs for a peer and not yet read by it.
    pub max_queued_bytes: u64,
    /// Requests of one peer being handled at once.
    pub max_in_flight: u32,
}

impl Default for GuardLimits {
    fn default() -> Self {
        Self {
            max_message_bytes: 8 * 1024 * 1024,
            max_frames: 16,
            max_command_bytes: 4096,
            handshake_timeout: Duration::from_secs(5),
            write_stall: Some(Duration::from_secs(30)),
            max_connections: 1024,
            max_queued_messages: 10_000,
            max_queued_bytes: 32 * 1024 * 1024,
            max_in_flight: 256,
        }
    }
}

impl GuardLimits {
    fn frames(&self) -> zmtp::FrameLimits {
        zmtp::FrameLimits {
            max_message_bytes: self.max_message_bytes,
            max_frames: self.max_frames,
            max_command_bytes: self.max_command_bytes,
        }
    }
}

/// A running guard for one endpoint. Dropping it stops accepting, closes every
/// connection it pumps, and removes its private socket file.
pub struct Guard {
    task: JoinHandle<()>,
    private: PathBuf,
    private_dir: Option<PathBuf>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.private);
        if let Some(dir) = &self.private_dir {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

enum Public {
    Ipc(tokio::net::UnixListener),
    Tcp(tokio::net::TcpListener),
}

/// Binds `endpoint` (`ipc://PATH` or loopback `tcp://HOST:PORT`) for `socket` behind a
/// guard. Returns the endpoint peers connect to (real port for `:0`) and the guard.
pub async fn bind_endpoint<S: Socket>(
    socket: &mut S,
    endpoint: &str,
    ledger: &Arc<Ledger>,
) -> Result<(String, Guard), BindError> {
    let (public, bound, private, private_dir) = public_listener(endpoint)?;
    let private_listener = bind_private(&private)?;
    socket
        .bind_listener(private_listener)
        .await
        .map_err(|source| BindError::Zmq {
            endpoint: endpoint.to_owned(),
            source,
        })?;
    let task = tokio::spawn(accept(public, private.clone(), Arc::clone(ledger)));
    let guard = Guard {
        task,
        private,
        private_dir,
    };
    Ok((bound, guard))
}

type Bound = (Public, String, PathBuf, Option<PathBuf>);

fn public_listener(endpoint: &str) -> Result<Bound, BindError> {
    let io = |what: String| move |source| BindError::Io { what, source };
    if let Some(path) = endpoint.strip_prefix("ipc://") {
        let path = Path::new(path);
        let listener = bind_ipc_listener(path)?;
        listener
            .set_nonblocking(true)
            .map_err(io(format!("configure {}", path.display())))?;
        let listener = tokio::net::UnixListener::from_std(listener)
            .map_err(io(format!("register {}", path.display())))?;
        let private = private_sibling(path);
        return Ok((Public::Ipc(listener), endpoint.to_owned(), private, None));
    }
    if let Some(addr) = endpoint.strip_prefix("tcp://") {
        let listener = bind_tcp_listener(addr, endpoint)?;
        let local = listener
            .local_addr()
            .map_err(io(format!("read the address of {endpoint}")))?;
        listener
            .set_nonblocking(true)
            .map_err(io(format!("configure {endpoint}")))?;
        let listener = tokio::net::TcpListener::from_std(listener)
            .map_err(io(format!("register {endpoint}")))?;
        let dir = private_temp_dir().map_err(io("create a private directory".into()))?;
        let private = dir.join("z.sock");
        return Ok((
            Public::Tcp(listener),
            format!("tcp://{local}"),
            private,
            Some(dir),
        ));
    }
    Err(BindError::BadEndpoint(endpoint.to_owned()))
}

/// The private name is unique to this bind, so no other server can race for it.
fn bind_private(path: &Path) -> Result<std::os::unix::net::UnixListener, BindError> {
    let _ = std::fs::remove_file(path);
    std::os::unix::net::UnixListener::bind(path).map_err(|source| BindError::Io {
        what: format!("bind {}", path.display()),
        source,
    })
}

static PRIVATE_COUNTER: AtomicU32 = AtomicU32::new(0);

/// `DIR/.NAME.PID-N.z`: unique per bind, so a stopping server never unlinks a live one's.
/// Leftovers of dead processes are removed here.
fn private_sibling(public: &Path) -> PathBuf {
    let dir = public.parent().unwrap_or(Path::new("."));
    let name = public
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    remove_stale_privates(dir, &name);
    let n = PRIVATE_COUNTER.fetch_add(1, Ordering::Relaxed);
    dir.join(format!(".{name}.{}-{n}.z", std::process::id()))
}

fn remove_stale_privates(dir: &Path, name: &str) {
    let prefix = format!(".{name}.");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let file = entry.file_name();
        let file = file.to_string_lossy();
        if !file.starts_with(&prefix) {
            continue;
        }
        if file.ends_with(".z") {
            let _ = remove_if_stale(&entry.path());
        } else if file.ends_with(".z.lock") {
            // Left by earlier versions, which locked private names too.
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

fn private_temp_dir() -> std::io::Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt as _;
    let n = PRIVATE_COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("zpm-guard-{}-{n}", std::process::id()));
    std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
    Ok(dir)
}

async fn accept(public: Public, private: PathBuf, ledger: Arc<Ledger>) {
    let mut connections = JoinSet::new();
    loop {
        let accepted = match &public {
            Public::Ipc(listener) => listener.accept().await.map(|(s, _)| {
                let (r, w) = s.into_split();
                pump::serve(r, w, private.clone(), Arc::clone(&ledger)).boxed()
            }),
            Public::Tcp(listener) => listener.accept().await.map(|(s, _)| {
                let _ = s.set_nodelay(true);
                let (r, w) = s.into_split();
                pump::serve(r, w, private.clone(), Arc::clone(&ledger)).boxed()
            }),
        };
        while connections.try_join_next().is_some() {}
        let connection = match accepted {
            Ok(connection) => connection,
            Err(e) => {
                // Out of descriptors or similar: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if connections.len() >= ledger.limits().max_connections {
            ledger.stats().refused.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        connections.spawn(connection);
    }
}

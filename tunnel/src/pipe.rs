//! Moving bytes between a sealed stream and a plain local one, and the two ends of a
//! tunnel: [`serve`] (TCP in, ipc out) and [`expose`] (ipc in, TCP out).

use crate::handshake::{self, HandshakeLimits, Sealed};
use crate::seal::MAX_CHUNK;
use crate::{Error, Key};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs, UnixListener, UnixStream};
use tokio::sync::Semaphore;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub handshake: HandshakeLimits,
    /// A connection with no byte either way for this long (up to twice it) is closed.
    pub idle: Duration,
    /// Connections served at once; further ones are closed at accept.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            handshake: HandshakeLimits::default(),
            idle: Duration::from_secs(300),
            max_connections: 1024,
        }
    }
}

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

    /// Counts why a connection ended; `handshake` tells a failed handshake apart.
    fn count(&self, error: &Error, handshake: bool) {
        if error.is_timeout() {
            Self::bump(&self.timeouts);
        } else if handshake {
            Self::bump(&self.handshakes_failed);
        } else if error.is_rejected_frame() {
            Self::bump(&self.frames_rejected);
        }
    }
}

/// Copies bytes both ways until either side ends or fails, or nothing moves for `idle`:
/// plain → sealed frames of at most [`MAX_CHUNK`] bytes, sealed → unsealed → plain. At
/// most one frame per direction is buffered. Both sides are closed on return.
pub async fn bridge<S, T>(sealed: Sealed<S>, plain: T, idle: Duration) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    T: AsyncRead + AsyncWrite + Unpin,
{
    bridge_counted(sealed, plain, idle, None).await
}

/// As [`bridge`], counting the reason before either side is closed, so a peer that sees
/// its connection cut can rely on the counter already being bumped.
async fn bridge_counted<S, T>(
    sealed: Sealed<S>,
    plain: T,
    idle: Duration,
    stats: Option<&TunnelStats>,
) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    T: AsyncRead + AsyncWrite + Unpin,
{
    let (mut sealed_in, mut sealed_out) = sealed.split();
    let (mut plain_in, mut plain_out) = tokio::io::split(plain);
    let activity = AtomicU64::new(0);
    let up = async {
        let mut buf = vec![0u8; MAX_CHUNK];
        loop {
            let n = plain_in.read(&mut buf).await?;
            activity.fetch_add(1, Ordering::Relaxed);
            if n == 0 {
                return sealed_out.shutdown().await;
            }
            sealed_out.send(&buf[..n]).await?;
        }
    };
    let down = async {
        let mut buf = Vec::with_capacity(MAX_CHUNK);
        loop {
            buf.clear();
            let more = sealed_in.recv(&mut buf).await?;
            activity.fetch_add(1, Ordering::Relaxed);
            if !more {
                plain_out.shutdown().await?;
                return Ok(());
            }
            plain_out.write_all(&buf).await?;
        }
    };
    // A watchdog rather than a timeout per read: one direction may rightly stay quiet
    // for long (a subscriber only receives) while the other carries traffic.
    let watchdog = async {
        loop {
            let before = activity.load(Ordering::Relaxed);
            tokio::time::sleep(idle).await;
            if activity.load(Ordering::Relaxed) == before {
                return Err(Error::Idle(idle));
            }
        }
    };
    let result = tokio::select! {
        r = up => r,
        r = down => r,
        r = watchdog => r,
    };
    if let (Some(stats), Err(e)) = (stats, &result) {
        stats.count(e, false);
    }
    result
}

/// The service every tunnel server answers without carrying anything anywhere: the
/// connection ends right after the handshake. A client checks address and key with it.
pub const PROBE: &str = "probe";

/// What a tunnel server offers: service name (asked for in the handshake) → the ipc path
/// a connection for it is carried to.
pub type Services = BTreeMap<String, PathBuf>;

/// Serves a tunnel: accepts TCP, runs the responder handshake, and only then connects to
/// the ipc path of the service the peer asked for and bridges, so no byte of a peer
/// without the key ever reaches an ipc endpoint. Runs until the listener fails.
pub async fn serve(
    listener: TcpListener,
    key: Key,
    services: Services,
    limits: Limits,
    stats: Arc<TunnelStats>,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let key = Arc::new(key);
    let to_ipc = Arc::new(services);
    loop {
        let (stream, peer) = listener.accept().await?;
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            TunnelStats::bump(&stats.refused);
            tracing::debug!(%peer, "tunnel: too many connections, closing");
            continue;
        };
        TunnelStats::bump(&stats.connections);
        let (key, to_ipc, stats) = (Arc::clone(&key), Arc::clone(&to_ipc), Arc::clone(&stats));
        tokio::spawn(async move {
            if let Err(e) = serve_one(stream, &key, &to_ipc, limits, &stats).await {
                tracing::debug!(%peer, error = %e, "tunnel: connection ended");
            }
            drop(slot);
        });
    }
}

async fn serve_one(
    mut stream: TcpStream,
    key: &Key,
    services: &Services,
    limits: Limits,
    stats: &TunnelStats,
) -> Result<(), Error> {
    let _ = stream.set_nodelay(true);
    let handshake = handshake::handshake_on(
        &mut stream,
        key,
        limits.handshake,
        handshake::Side::Responder,
    )
    .await
    .and_then(|(noise, service)| match services.get(&service) {
        Some(path) => Ok((noise, Some(path))),
        None if service == PROBE => Ok((noise, None)),
        None => Err(Error::UnknownService(service)),
    });
    let (noise, Some(to_ipc)) = handshake.inspect_err(|e| stats.count(e, true))? else {
        return Ok(()); // a probe
    };
    let sealed = Sealed::from_parts(stream, noise);
    let local = UnixStream::connect(to_ipc).await?;
    bridge_counted(sealed, local, limits.idle, Some(stats)).await
}

/// Dials a tunnel server for `service` and completes the initiator handshake (default
/// limits).
pub async fn connect(
    addr: impl ToSocketAddrs,
    key: &Key,
    service: &str,
) -> Result<Sealed<TcpStream>, Error> {
    connect_with(addr, key, service, HandshakeLimits::default()).await
}

pub async fn connect_with(
    addr: impl ToSocketAddrs,
    key: &Key,
    service: &str,
    limits: HandshakeLimits,
) -> Result<Sealed<TcpStream>, Error> {
    handshake::check_service(service)?;
    let stream = TcpStream::connect(addr).await?;
    let _ = stream.set_nodelay(true);
    handshake::initiate(stream, key, service, limits).await
}

/// Checks that a tunnel server answers at `addr` and holds `key`: a handshake for
/// [`PROBE`], which reaches no endpoint.
pub async fn probe(
    addr: impl ToSocketAddrs,
    key: &Key,
    limits: HandshakeLimits,
) -> Result<(), Error> {
    let sealed = connect_with(addr, key, PROBE, limits).await?;
    let (mut stream, _) = sealed.into_parts();
    // Wait for the server's close, so a wrong key (the server closes during the
    // handshake) cannot pass for a right one.
    let mut byte = [0u8; 1];
    match stream.read(&mut byte).await {
        Ok(0) => Ok(()),
        Ok(_) => Err(Error::UnknownService(PROBE.to_owned())),
        Err(e) => Err(e.into()),
    }
}

/// Where [`expose`] carries connections: a tunnel server's address and the service there.
#[derive(Debug, Clone)]
pub struct Remote {
    /// `HOST:PORT`.
    pub addr: String,
    pub service: String,
}

/// The local end (`zpm tunnel --local`, a remote host's agents, the remote CLI): every
/// connection accepted on `listener` (an ipc path bound by the caller in a 0700
/// directory) is carried to `remote` through its own tunnel. Runs until the listener
/// fails.
pub async fn expose(
    listener: UnixListener,
    remote: Remote,
    key: Key,
    limits: Limits,
    stats: Arc<TunnelStats>,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let key = Arc::new(key);
    let remote = Arc::new(remote);
    loop {
        let (local, _) = listener.accept().await?;
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            TunnelStats::bump(&stats.refused);
            continue;
        };
        TunnelStats::bump(&stats.connections);
        let (key, remote, stats) = (Arc::clone(&key), Arc::clone(&remote), Arc::clone(&stats));
        tokio::spawn(async move {
            let result = async {
                let sealed = connect_with(
                    remote.addr.as_str(),
                    &key,
                    &remote.service,
                    limits.handshake,
                )
                .await
                .inspect_err(|e| stats.count(e, true))?;
                bridge_counted(sealed, local, limits.idle, Some(&stats)).await
            }
            .await;
            if let Err(e) = result {
                tracing::debug!(remote = %remote.addr, error = %e, "tunnel: connection ended");
            }
            drop(slot);
        });
    }
}

//! The two ends of a tunnel: [`serve`] (TCP in, ipc out) and [`expose`] (ipc in, TCP
//! out), and the client side of the handshake ([`connect`], [`probe`]).

use crate::bridge::{Liveness, bridge_counted};
use crate::handshake::{self, HandshakeLimits, Sealed};
use crate::seal::MAX_CHUNK;
use crate::stats::TunnelStats;
use crate::{Error, Key, SharedKey};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt as _;
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs, UnixListener, UnixStream};
use tokio::sync::Semaphore;

/// A failed accept (out of descriptors, mostly, while a flood of connections is open)
/// never gives up the port: back off a moment and accept again, logging now and then.
#[derive(Default)]
struct AcceptFailures {
    warned_at: Option<std::time::Instant>,
}

impl AcceptFailures {
    const BACKOFF: std::time::Duration = std::time::Duration::from_millis(50);
    const WARN_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

    async fn pass<T>(&mut self, accepted: std::io::Result<T>) -> Option<T> {
        let error = match accepted {
            Ok(accepted) => return Some(accepted),
            Err(error) => error,
        };
        if self
            .warned_at
            .is_none_or(|at| at.elapsed() >= Self::WARN_EVERY)
        {
            tracing::warn!(%error, "tunnel: accept failed; retrying");
            self.warned_at = Some(std::time::Instant::now());
        }
        tokio::time::sleep(Self::BACKOFF).await;
        None
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub handshake: HandshakeLimits,
    pub liveness: Liveness,
    /// Connections served at once; further ones are closed at accept.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            handshake: HandshakeLimits::default(),
            liveness: Liveness::default(),
            max_connections: 1024,
        }
    }
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
    key: SharedKey,
    services: Services,
    limits: Limits,
    stats: Arc<TunnelStats>,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let to_ipc = Arc::new(services);
    let mut failures = AcceptFailures::default();
    loop {
        let Some((stream, peer)) = failures.pass(listener.accept().await).await else {
            continue;
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            stats.refused();
            tracing::debug!(%peer, "tunnel: too many connections, closing");
            continue;
        };
        stats.connection();
        let (key, to_ipc, stats) = (key.current(), Arc::clone(&to_ipc), Arc::clone(&stats));
        tokio::spawn(async move {
            if let Err(e) = serve_one(stream, &key, &to_ipc, limits, &stats).await {
                stats.log_cut(&peer, &e);
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
    bridge_counted(sealed, local, limits.liveness, Some(stats)).await
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
    // Bounded: while a network is away, a fresh attempt (a fresh SYN) every so often
    // reconnects sooner once it is back than one attempt in TCP's growing backoff.
    let stream = tokio::time::timeout(limits.connect, TcpStream::connect(addr))
        .await
        .map_err(|_| Error::ConnectTimeout(limits.connect))??;
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
    key: SharedKey,
    limits: Limits,
    stats: Arc<TunnelStats>,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let remote = Arc::new(remote);
    let mut failures = AcceptFailures::default();
    loop {
        let Some((mut local, _)) = failures.pass(listener.accept().await).await else {
            continue;
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            stats.refused();
            continue;
        };
        stats.connection();
        let (key, remote, stats) = (key.current(), Arc::clone(&remote), Arc::clone(&stats));
        tokio::spawn(async move {
            let result = async {
                let Some(first) = first_bytes(&mut local, limits.handshake.deadline).await? else {
                    return Ok(());
                };
                let mut sealed = connect_with(
                    remote.addr.as_str(),
                    &key,
                    &remote.service,
                    limits.handshake,
                )
                .await
                .inspect_err(|e| stats.count(e, true))?;
                sealed.send(&first).await?;
                bridge_counted(sealed, local, limits.liveness, Some(&stats)).await
            }
            .await;
            if let Err(e) = result {
                tracing::debug!(remote = %remote.addr, error = %e, "tunnel: connection ended");
            }
            drop(slot);
        });
    }
}

/// What a local peer sends first, before any tunnel connection is made for it: a peer
/// that closes without a byte (an rpc client checking that the path accepts) or says
/// nothing within `limit` costs no handshake at the other end. `None` for those.
async fn first_bytes(local: &mut UnixStream, limit: Duration) -> Result<Option<Vec<u8>>, Error> {
    let mut first = vec![0u8; MAX_CHUNK];
    match tokio::time::timeout(limit, local.read(&mut first)).await {
        Ok(Ok(0)) | Err(_) => Ok(None),
        Ok(Ok(n)) => {
            first.truncate(n);
            Ok(Some(first))
        }
        Ok(Err(e)) => Err(e.into()),
    }
}

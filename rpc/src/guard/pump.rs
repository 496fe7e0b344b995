//! One guarded connection: the peer's bytes are checked ([`Inbound`]) on their way to the
//! private zmq.rs listener; zmq.rs's bytes are counted ([`Outbound`]) on their way back,
//! so the ledger knows what the peer has read. Ends when either side closes, the peer
//! breaks the rules, stalls a write for too long, or the server cuts it off.

use super::ledger::{CutReason, Ledger, Peer};
use super::zmtp::{Inbound, Outbound, Violation};
use futures::FutureExt as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::UnixStream;
use tokio::time::Instant;

const BUFFER: usize = 32 * 1024;
const PRIVATE_CONNECT: Duration = Duration::from_secs(2);

/// Why a pump stopped on its own.
enum End {
    Closed,
    Violation(Violation),
    WriteStalled,
}

pub(super) async fn serve<R, W>(
    client_read: R,
    client_write: W,
    private: PathBuf,
    ledger: Arc<Ledger>,
) where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send,
{
    ledger.stats().connections.fetch_add(1, Ordering::Relaxed);
    let server = match tokio::time::timeout(PRIVATE_CONNECT, UnixStream::connect(&private)).await {
        Ok(Ok(server)) => server,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, private = %private.display(), "guard cannot reach its zmq socket");
            return;
        }
        Err(_) => {
            tracing::warn!(private = %private.display(), "guard timed out reaching its zmq socket");
            return;
        }
    };
    let (server_read, server_write) = server.into_split();
    let peer = ledger.register();
    let limits = *ledger.limits();
    let inbound = Inbound::new(limits.frames(), Ledger::identity_of(&peer).to_vec());
    let end = tokio::select! {
        end = pump_in(client_read, server_write, inbound, &ledger, limits.handshake_timeout) => end,
        end = pump_out(server_read, client_write, &peer, limits.write_stall) => end,
        () = peer.cut_requested() => End::Closed,
    };
    match end {
        End::Closed => {}
        End::Violation(Violation::HandshakeTimeout) => peer.cut_off(CutReason::Handshake),
        End::Violation(violation) => {
            tracing::debug!(%violation, "peer broke the framing rules");
            peer.cut_off(CutReason::Protocol);
        }
        End::WriteStalled => peer.cut_off(CutReason::NotReading),
    }
    ledger.unregister(&peer);
}

async fn pump_in<R, W>(
    mut from: R,
    mut to: W,
    mut inbound: Inbound,
    ledger: &Ledger,
    handshake: Duration,
) -> End
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let deadline = Instant::now() + handshake;
    let mut buf = vec![0u8; BUFFER];
    let mut out = Vec::with_capacity(BUFFER);
    loop {
        let read = if inbound.ready() {
            from.read(&mut buf).await
        } else {
            match tokio::time::timeout_at(deadline, from.read(&mut buf)).await {
                Ok(read) => read,
                Err(_) => return End::Violation(Violation::HandshakeTimeout),
            }
        };
        let n = match read {
            Ok(0) | Err(_) => return End::Closed,
            Ok(n) => n,
        };
        let dropped_before = inbound.commands_dropped;
        if let Err(violation) = inbound.feed(&buf[..n], &mut out) {
            return End::Violation(violation);
        }
        let dropped = inbound.commands_dropped - dropped_before;
        if dropped > 0 {
            ledger
                .stats()
                .commands_dropped
                .fetch_add(dropped, Ordering::Relaxed);
        }
        if !out.is_empty() {
            if to.write_all(&out).await.is_err() {
                return End::Closed;
            }
            out.clear();
        }
    }
}

async fn pump_out<R, W>(mut from: R, mut to: W, peer: &Peer, stall: Option<Duration>) -> End
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut counter = Outbound::default();
    let mut buf = vec![0u8; BUFFER];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return End::Closed,
            Ok(n) => n,
        };
        let done = counter.count(&buf[..n]);
        if let Err(end) = write_within(&mut to, &buf[..n], stall).await {
            return end;
        }
        peer.delivered(done.messages, done.bytes);
    }
}

/// Writes all of `bytes`, giving the peer at most `stall` to make room. The common case —
/// the socket takes it at once — arms no timer.
async fn write_within<W: AsyncWrite + Unpin>(
    to: &mut W,
    bytes: &[u8],
    stall: Option<Duration>,
) -> Result<(), End> {
    let mut written = 0;
    while written < bytes.len() {
        // A write that is not ready wrote nothing, so dropping it loses nothing.
        match to.write(&bytes[written..]).now_or_never() {
            Some(Ok(0) | Err(_)) => return Err(End::Closed),
            Some(Ok(n)) => written += n,
            None => break,
        }
    }
    if written == bytes.len() {
        return Ok(());
    }
    let rest = to.write_all(&bytes[written..]);
    let outcome = match stall {
        Some(stall) => tokio::time::timeout(stall, rest)
            .await
            .map_err(|_| End::WriteStalled)?,
        None => rest.await,
    };
    outcome.map_err(|_| End::Closed)
}

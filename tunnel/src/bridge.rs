//! Moving bytes between a sealed stream and a plain local one, and knowing the other end
//! is still there: each side sends an empty frame when it has sent nothing for a while,
//! and closes a connection it has heard nothing on for longer. A stalled peer is cut,
//! and after a network outage a new connection comes sooner than TCP's retransmissions.

use crate::Error;
use crate::handshake::Sealed;
use crate::seal::MAX_CHUNK;
use crate::stats::TunnelStats;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::sync::Notify;

#[derive(Debug, Clone, Copy)]
pub struct Liveness {
    /// An empty frame goes out after this long without sending anything.
    pub keepalive: Duration,
    /// The connection is closed after this long without receiving anything.
    pub silent: Duration,
}

impl Default for Liveness {
    fn default() -> Self {
        Self {
            keepalive: Duration::from_secs(1),
            silent: Duration::from_secs(4),
        }
    }
}

/// Copies bytes both ways until either side ends or fails, or the peer is silent too
/// long: plain → sealed frames of at most [`MAX_CHUNK`] bytes, sealed → unsealed → plain.
/// At most one frame per direction is buffered. Both sides are closed on return.
pub async fn bridge<S, T>(sealed: Sealed<S>, plain: T, liveness: Liveness) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    T: AsyncRead + AsyncWrite + Unpin,
{
    bridge_counted(sealed, plain, liveness, None).await
}

/// As [`bridge`], counting the reason before either side is closed, so a peer that sees
/// its connection cut can rely on the counter already being bumped.
pub(crate) async fn bridge_counted<S, T>(
    sealed: Sealed<S>,
    plain: T,
    liveness: Liveness,
    stats: Option<&TunnelStats>,
) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    T: AsyncRead + AsyncWrite + Unpin,
{
    let (mut sealed_in, mut sealed_out) = sealed.split();
    let (mut plain_in, mut plain_out) = tokio::io::split(plain);
    let heard = Notify::new();
    let up = async {
        let mut buf = vec![0u8; MAX_CHUNK];
        let mut quiet = tokio::time::interval(liveness.keepalive);
        quiet.reset();
        loop {
            tokio::select! {
                read = plain_in.read(&mut buf) => {
                    let n = read?;
                    if n == 0 {
                        return sealed_out.shutdown().await;
                    }
                    sealed_out.send(&buf[..n]).await?;
                    quiet.reset();
                }
                _ = quiet.tick() => sealed_out.send(&[]).await?,
            }
        }
    };
    let down = async {
        let mut buf = Vec::with_capacity(MAX_CHUNK);
        loop {
            buf.clear();
            let more = sealed_in.recv(&mut buf).await?;
            heard.notify_one();
            if !more {
                plain_out.shutdown().await?;
                return Ok(());
            }
            plain_out.write_all(&buf).await?;
        }
    };
    let watchdog = async {
        loop {
            if tokio::time::timeout(liveness.silent, heard.notified())
                .await
                .is_err()
            {
                return Err(Error::Silent(liveness.silent));
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

use std::time::Duration;

/// Why a tunnel connection ended abnormally. The variants matter to the server's
/// counters: [`Error::is_rejected_frame`] and [`Error::is_timeout`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("tunnel i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("handshake not completed within {0:?}")]
    HandshakeTimeout(Duration),
    #[error("handshake message of {len} bytes exceeds the cap of {max}")]
    HandshakeTooLarge { len: usize, max: usize },
    #[error("handshake failed (wrong key or not a zpm tunnel peer): {0}")]
    Handshake(snow::Error),
    #[error("bad service name {0:?} (1-64 of [A-Za-z0-9_-])")]
    BadService(String),
    #[error("no such service: {0:?}")]
    UnknownService(String),
    #[error("peer closed the connection during the handshake")]
    HandshakeClosed,
    #[error("frame of {0} bytes is shorter than its authentication tag")]
    ShortFrame(usize),
    #[error("peer closed the connection in the middle of a frame")]
    Truncated,
    #[error("frame failed to decrypt (wrong key, tampered, replayed or reordered)")]
    Decrypt,
    #[error("chunk of {0} bytes is larger than one frame can carry")]
    ChunkTooLarge(usize),
    #[error("encrypting a frame failed: {0}")]
    Encrypt(snow::Error),
    #[error("nothing heard from the peer for {0:?}")]
    Silent(Duration),
    #[error("no TCP connection within {0:?}")]
    ConnectTimeout(Duration),
}

impl Error {
    /// A frame that reached the decoder and was refused.
    pub fn is_rejected_frame(&self) -> bool {
        matches!(self, Self::ShortFrame(_) | Self::Decrypt | Self::Truncated)
    }

    pub fn is_timeout(&self) -> bool {
        matches!(
            self,
            Self::HandshakeTimeout(_) | Self::Silent(_) | Self::ConnectTimeout(_)
        )
    }
}

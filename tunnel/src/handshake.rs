//! `Noise_NNpsk0_25519_ChaChaPoly_BLAKE2s` over any byte stream: the initiator's first
//! message already proves the pre-shared key, so a responder learns whether a peer holds
//! it from 48 bytes, before anything is forwarded anywhere. That message's payload names
//! the service the initiator wants (`rpc`, `bus`): encrypted and authenticated by the key,
//! so one port serves every endpoint and a peer without the key learns nothing of them.

use crate::seal::{self, HEADER};
use crate::{Error, Key};
use snow::{Builder, HandshakeState, TransportState};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::io::{
    AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadHalf, WriteHalf,
};

pub const PATTERN: &str = "Noise_NNpsk0_25519_ChaChaPoly_BLAKE2s";
/// Bound into the handshake hash: a peer speaking another protocol (or a later version of
/// this one) fails the handshake instead of being misread.
const PROLOGUE: &[u8] = b"zpm-tunnel/1";

#[derive(Debug, Clone, Copy)]
pub struct HandshakeLimits {
    /// Time for the whole handshake; a silent peer is cut when it passes.
    pub deadline: Duration,
    /// Largest handshake message accepted (NNpsk0's are 48 bytes each).
    pub max_message: usize,
    /// Time for the TCP connection itself (client side).
    pub connect: Duration,
}

impl Default for HandshakeLimits {
    fn default() -> Self {
        Self {
            deadline: Duration::from_secs(5),
            max_message: 256,
            connect: Duration::from_secs(2),
        }
    }
}

/// Longest service name an initiator may ask for.
pub const MAX_SERVICE: usize = 64;

/// The service an initiator asks for, checked before any byte is sent.
pub(crate) fn check_service(service: &str) -> Result<(), Error> {
    let ok = !service.is_empty()
        && service.len() <= MAX_SERVICE
        && service
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::BadService(service.escape_debug().to_string()))
    }
}

fn builder(key: &Key) -> Result<Builder<'_>, Error> {
    let params = PATTERN.parse().map_err(Error::Handshake)?;
    Builder::new(params)
        .prologue(PROLOGUE)
        .and_then(|b| b.psk(0, key.bytes()))
        .map_err(Error::Handshake)
}

/// Which end of the handshake this is: the initiator speaks first, naming the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side<'a> {
    Initiator(&'a str),
    Responder,
}

/// Runs the initiator side on `stream`, asking for `service`, and returns the sealed
/// transport.
pub async fn initiate<S>(
    mut stream: S,
    key: &Key,
    service: &str,
    limits: HandshakeLimits,
) -> Result<Sealed<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    check_service(service)?;
    let (noise, _) = handshake_on(&mut stream, key, limits, Side::Initiator(service)).await?;
    Ok(Sealed::from_parts(stream, noise))
}

/// Runs the responder side on `stream`; returns the sealed transport and the service the
/// initiator asked for (not yet checked against what the caller serves).
pub async fn respond<S>(
    mut stream: S,
    key: &Key,
    limits: HandshakeLimits,
) -> Result<(Sealed<S>, String), Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (noise, service) = handshake_on(&mut stream, key, limits, Side::Responder).await?;
    Ok((Sealed::from_parts(stream, noise), service))
}

/// The handshake on a borrowed stream, so a server can count a failure while it still
/// holds the stream. Returns the service named by the initiator (for the initiator, the
/// one it asked for).
pub(crate) async fn handshake_on<S>(
    stream: &mut S,
    key: &Key,
    limits: HandshakeLimits,
    side: Side<'_>,
) -> Result<(TransportState, String), Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let builder = builder(key)?;
    let mut state = match side {
        Side::Initiator(_) => builder.build_initiator(),
        Side::Responder => builder.build_responder(),
    }
    .map_err(Error::Handshake)?;
    with_deadline(limits, async {
        // NNpsk0 is one message each way; the initiator's goes first, naming the service.
        let service = match side {
            Side::Initiator(service) => {
                write_message(stream, &mut state, service.as_bytes()).await?;
                read_message(stream, &mut state, limits.max_message).await?;
                service.to_owned()
            }
            Side::Responder => {
                let asked = read_message(stream, &mut state, limits.max_message).await?;
                write_message(stream, &mut state, &[]).await?;
                let service =
                    String::from_utf8(asked).map_err(|e| Error::BadService(e.to_string()))?;
                check_service(&service)?;
                service
            }
        };
        let noise = state.into_transport_mode().map_err(Error::Handshake)?;
        Ok((noise, service))
    })
    .await
}

/// Both ends of a completed handshake, in memory: for tests of the framing.
pub fn pair_in_memory(key: &Key) -> Result<(TransportState, TransportState), Error> {
    let mut initiator = builder(key)?.build_initiator().map_err(Error::Handshake)?;
    let mut responder = builder(key)?.build_responder().map_err(Error::Handshake)?;
    let mut msg = [0u8; 256];
    let mut payload = [0u8; 256];
    let n = initiator
        .write_message(&[], &mut msg)
        .map_err(Error::Handshake)?;
    responder
        .read_message(&msg[..n], &mut payload)
        .map_err(Error::Handshake)?;
    let n = responder
        .write_message(&[], &mut msg)
        .map_err(Error::Handshake)?;
    initiator
        .read_message(&msg[..n], &mut payload)
        .map_err(Error::Handshake)?;
    Ok((
        initiator.into_transport_mode().map_err(Error::Handshake)?,
        responder.into_transport_mode().map_err(Error::Handshake)?,
    ))
}

async fn with_deadline<T>(
    limits: HandshakeLimits,
    run: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    tokio::time::timeout(limits.deadline, run)
        .await
        .map_err(|_| Error::HandshakeTimeout(limits.deadline))?
}

async fn write_message<S: AsyncWrite + Unpin>(
    stream: &mut S,
    state: &mut HandshakeState,
    payload: &[u8],
) -> Result<(), Error> {
    let mut buf = [0u8; HEADER + 256];
    let n = state
        .write_message(payload, &mut buf[HEADER..])
        .map_err(Error::Handshake)?;
    buf[..HEADER].copy_from_slice(&(n as u16).to_be_bytes());
    stream.write_all(&buf[..HEADER + n]).await?;
    stream.flush().await?;
    Ok(())
}

/// Reads exactly one message and nothing more, so no transport bytes are swallowed;
/// returns its payload.
async fn read_message<S: AsyncRead + Unpin>(
    stream: &mut S,
    state: &mut HandshakeState,
    max: usize,
) -> Result<Vec<u8>, Error> {
    let mut header = [0u8; HEADER];
    read_exact(stream, &mut header).await?;
    let len = usize::from(u16::from_be_bytes(header));
    if len > max {
        return Err(Error::HandshakeTooLarge { len, max });
    }
    let mut msg = vec![0u8; len];
    read_exact(stream, &mut msg).await?;
    let mut payload = vec![0u8; len];
    let n = state
        .read_message(&msg, &mut payload)
        .map_err(Error::Handshake)?;
    payload.truncate(n);
    Ok(payload)
}

async fn read_exact<S: AsyncRead + Unpin>(stream: &mut S, buf: &mut [u8]) -> Result<(), Error> {
    fill(stream, buf, Error::HandshakeClosed).await
}

/// Fills `buf`; an end of stream before it is full is `at_eof`.
async fn fill<R: AsyncRead + Unpin>(
    stream: &mut R,
    buf: &mut [u8],
    at_eof: Error,
) -> Result<(), Error> {
    match stream.read_exact(buf).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(at_eof),
        Err(e) => Err(e.into()),
    }
}

/// A stream after a completed handshake: every byte written is sealed, every byte read
/// was unsealed.
pub struct Sealed<S> {
    stream: S,
    noise: TransportState,
    frame: Vec<u8>,
}

/// Never shows the cipher state.
impl<S: std::fmt::Debug> std::fmt::Debug for Sealed<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealed")
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Sealed<S> {
    pub(crate) fn from_parts(stream: S, noise: TransportState) -> Self {
        Self {
            stream,
            noise,
            frame: Vec::new(),
        }
    }

    /// Seals and writes all of `data`.
    pub async fn send(&mut self, data: &[u8]) -> Result<(), Error> {
        self.frame.clear();
        seal::seal_all(&mut self.noise, data, &mut self.frame)?;
        write_frames(&mut self.stream, &self.frame).await
    }

    /// Reads one frame and appends its plaintext to `out`; `false` on a clean end of
    /// stream between frames.
    pub async fn recv(&mut self, out: &mut Vec<u8>) -> Result<bool, Error> {
        let Self {
            stream,
            noise,
            frame,
        } = self;
        recv_frame(stream, frame, out, |msg, out| seal::open(noise, msg, out)).await
    }

    /// The raw stream and cipher state, e.g. to write frames of one's own.
    pub fn into_parts(self) -> (S, TransportState) {
        (self.stream, self.noise)
    }

    /// Halves that read and write concurrently, sharing the cipher state (each side of
    /// Noise transport has its own nonce, the lock is held only to encrypt or decrypt).
    pub fn split(self) -> (SealedReader<S>, SealedWriter<S>) {
        let (read, write) = tokio::io::split(self.stream);
        let noise = Arc::new(Mutex::new(self.noise));
        (
            SealedReader {
                stream: read,
                noise: Arc::clone(&noise),
                frame: Vec::new(),
            },
            SealedWriter {
                stream: write,
                noise,
                frame: Vec::new(),
            },
        )
    }
}

pub struct SealedReader<S> {
    stream: ReadHalf<S>,
    noise: Arc<Mutex<TransportState>>,
    frame: Vec<u8>,
}

impl<S: AsyncRead + Unpin> SealedReader<S> {
    /// As [`Sealed::recv`].
    pub async fn recv(&mut self, out: &mut Vec<u8>) -> Result<bool, Error> {
        let Self {
            stream,
            noise,
            frame,
        } = self;
        recv_frame(stream, frame, out, |msg, out| {
            let mut noise = noise.lock().unwrap_or_else(PoisonError::into_inner);
            seal::open(&mut noise, msg, out)
        })
        .await
    }
}

pub struct SealedWriter<S> {
    stream: WriteHalf<S>,
    noise: Arc<Mutex<TransportState>>,
    frame: Vec<u8>,
}

impl<S: AsyncWrite + Unpin> SealedWriter<S> {
    /// As [`Sealed::send`].
    pub async fn send(&mut self, data: &[u8]) -> Result<(), Error> {
        self.frame.clear();
        {
            let mut noise = self.noise.lock().unwrap_or_else(PoisonError::into_inner);
            seal::seal_all(&mut noise, data, &mut self.frame)?;
        }
        write_frames(&mut self.stream, &self.frame).await
    }

    /// Ends the write direction (TCP FIN).
    pub async fn shutdown(&mut self) -> Result<(), Error> {
        self.stream.shutdown().await?;
        Ok(())
    }
}

/// Reads one frame: the header is checked before the body is read, so a peer can make
/// us buffer at most one maximal frame.
async fn recv_frame<R: AsyncRead + Unpin>(
    stream: &mut R,
    frame: &mut Vec<u8>,
    out: &mut Vec<u8>,
    open: impl FnOnce(&[u8], &mut Vec<u8>) -> Result<(), Error>,
) -> Result<bool, Error> {
    let mut header = [0u8; HEADER];
    // A clean end is an end before the first header byte; anything later is truncation.
    if stream.read(&mut header[..1]).await? == 0 {
        return Ok(false);
    }
    read_body(stream, &mut header[1..]).await?;
    let len = seal::frame_len(header)?;
    frame.resize(len, 0);
    read_body(stream, frame).await?;
    open(frame, out)?;
    Ok(true)
}

async fn read_body<R: AsyncRead + Unpin>(stream: &mut R, buf: &mut [u8]) -> Result<(), Error> {
    fill(stream, buf, Error::Truncated).await
}

/// Writes sealed frames and flushes them.
async fn write_frames<W: AsyncWrite + Unpin>(stream: &mut W, frames: &[u8]) -> Result<(), Error> {
    stream.write_all(frames).await?;
    stream.flush().await?;
    Ok(())
}

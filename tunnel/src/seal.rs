//! Framing after the handshake: `[len: u16 big-endian][Noise transport message of len
//! bytes]`. Pure functions over byte buffers, so they can be tested without sockets.
//!
//! A u16 length cannot exceed snow's 65535-byte message limit, so an oversized frame is
//! impossible by construction; a frame too short to hold its tag is refused before any
//! decryption. Noise transport nonces are implicit counters, so a replayed, reordered or
//! dropped frame fails to decrypt.

use crate::Error;
use snow::TransportState;

/// Bytes of the length header.
pub const HEADER: usize = 2;
/// Largest Noise message (snow's limit, and what a u16 header can say).
pub const MAX_FRAME: usize = 65535;
/// ChaCha20-Poly1305 tag carried by every frame.
pub const TAG: usize = 16;
/// Largest plaintext one frame carries.
pub const MAX_CHUNK: usize = MAX_FRAME - TAG;

/// Appends one frame sealing `plain` (at most [`MAX_CHUNK`] bytes) to `out`.
pub fn seal(noise: &mut TransportState, plain: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
    if plain.len() > MAX_CHUNK {
        return Err(Error::ChunkTooLarge(plain.len()));
    }
    let len = plain.len() + TAG;
    let start = out.len();
    out.resize(start + HEADER + len, 0);
    let written = noise
        .write_message(plain, &mut out[start + HEADER..])
        .map_err(Error::Encrypt)?;
    debug_assert_eq!(written, len);
    out[start..start + HEADER].copy_from_slice(&(len as u16).to_be_bytes());
    Ok(())
}

/// Appends frames sealing all of `plain`, split into chunks of at most [`MAX_CHUNK`]; an
/// empty `plain` is one empty frame (a keepalive).
pub fn seal_all(noise: &mut TransportState, plain: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
    if plain.is_empty() {
        return seal(noise, plain, out);
    }
    for chunk in plain.chunks(MAX_CHUNK) {
        seal(noise, chunk, out)?;
    }
    Ok(())
}

/// The length of the Noise message a header announces, refused if it cannot hold a tag.
pub fn frame_len(header: [u8; HEADER]) -> Result<usize, Error> {
    let len = usize::from(u16::from_be_bytes(header));
    if len < TAG {
        return Err(Error::ShortFrame(len));
    }
    Ok(len)
}

/// Decrypts one Noise message (the bytes after the header), appending the plaintext.
pub fn open(noise: &mut TransportState, message: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
    let start = out.len();
    out.resize(start + message.len(), 0);
    match noise.read_message(message, &mut out[start..]) {
        Ok(n) => {
            out.truncate(start + n);
            Ok(())
        }
        Err(_) => {
            out.truncate(start);
            Err(Error::Decrypt)
        }
    }
}

/// Decodes the first frame of `buf`: `Ok(None)` if it is not complete yet, else the bytes
/// it took, with its plaintext appended to `out`.
pub fn unseal(
    noise: &mut TransportState,
    buf: &[u8],
    out: &mut Vec<u8>,
) -> Result<Option<usize>, Error> {
    let Some(header) = buf.first_chunk::<HEADER>() else {
        return Ok(None);
    };
    let len = frame_len(*header)?;
    let Some(message) = buf.get(HEADER..HEADER + len) else {
        return Ok(None);
    };
    open(noise, message, out)?;
    Ok(Some(HEADER + len))
}

//! zpm's keyed tunnel between hosts.
//!
//! zmq.rs must never read a byte from an unauthenticated peer (it aborts on a huge frame
//! header, DESIGN.md shortcoming 2). So a remote peer reaches a zpm endpoint only through
//! this tunnel: TCP carrying `Noise_NNpsk0_25519_ChaChaPoly_BLAKE2s` keyed by a
//! pre-shared file ([`key`]), ending in a plain local ipc connection on each side
//! ([`pipe`], [`bridge`]). The server side connects to the ipc endpoint only after the peer proved the
//! key, so every zpm component keeps speaking ZMTP to an ipc path behind the frame guard.

pub mod addr;
mod bridge;
mod error;
pub mod handshake;
pub mod key;
pub mod pipe;
pub mod seal;
mod stats;

pub use addr::{AddrError, tcp_address};
pub use bridge::{Liveness, bridge};
pub use error::Error;
pub use handshake::{HandshakeLimits, Sealed, SealedReader, SealedWriter};
pub use key::{Key, KeyError, SharedKey, reload_on_hangup};
pub use pipe::{Limits, PROBE, Remote, Services, connect, connect_with, expose, probe, serve};
pub use stats::{StatsSnapshot, TunnelStats};

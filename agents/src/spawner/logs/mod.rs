//! The spawner's side of the log data path (DESIGN.md, "The log data path").
//!
//! The spawner reads each app's stdout and stderr pipes continuously ([`LogHub::pump`]) into
//! a bounded per-app, per-stream buffer addressed by absolute byte offset, and serves those
//! bytes on a host-local endpoint with the long-poll pull `logs.fetch` ([`serve_logs`],
//! [`LogHub::fetch`]).
//!
//! Only the host's registered log consumer gates an app: the first peer that fetches with
//! `consume` holds the role while it keeps fetching within [`LogLimits::consumer_ttl`], and
//! the offsets it asks from acknowledge every byte below them. Any other reader reads from
//! its cursors without acknowledging and never counts as attached, so a stray or hostile
//! poller can never freeze an app.
//!
//! When a buffer is full: while the consumer is attached (it fetched within the ttl, or a
//! fetch of its is waiting) the pump stops reading the pipe, so the app blocks on write as
//! on a full terminal; with no consumer attached the oldest bytes are dropped and counted
//! ([`LogHub::dropped`]), so a pipe is never left undrained and memory never grows past
//! [`LogLimits::per_stream_bytes`] per stream.

mod buffer;
mod endpoint;
mod hub;
mod pump;

pub use endpoint::{fetch_logs, serve_logs};
pub use hub::{FetchError, LogHub, MAX_FETCH_BYTES, MAX_FETCH_WAIT};

use std::time::Duration;

/// Bounds of the log buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogLimits {
    /// Bytes held per app per stream (at least 1).
    pub per_stream_bytes: usize,
    /// How long after its last fetch the consumer counts as attached and holds its role.
    pub consumer_ttl: Duration,
}

impl LogLimits {
    pub const DEFAULT_PER_STREAM_BYTES: usize = 1024 * 1024;
    pub const DEFAULT_CONSUMER_TTL: Duration = Duration::from_secs(5);
}

impl Default for LogLimits {
    fn default() -> Self {
        Self {
            per_stream_bytes: Self::DEFAULT_PER_STREAM_BYTES,
            consumer_ttl: Self::DEFAULT_CONSUMER_TTL,
        }
    }
}

//! `logs.fetch`, served by each spawner on its host-local endpoint: a long-poll pull of app
//! output by byte offset. The host's one registered log consumer (a fetch with `consume`)
//! acknowledges everything below the offset it asks from; any other reader just reads.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogStream {
    Out,
    Err,
}

/// Where a consumer is in one app's stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogCursor {
    pub id: u32,
    pub stream: LogStream,
    /// Next byte wanted. From the registered consumer, every byte below it may be freed.
    pub offset: u64,
}

/// Params of `logs.fetch`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogsFetch {
    /// Streams not listed are read from the oldest byte still held.
    pub after: Vec<LogCursor>,
    /// Upper bound on the bytes of all chunks together.
    pub max_bytes: u32,
    /// How long to wait for new bytes when there are none.
    pub wait_ms: u32,
    /// Claims (or keeps) the role of this host's log consumer: its cursors acknowledge, and
    /// while it holds the role a full buffer stops the app's pipe instead of dropping. Absent
    /// (false): a plain reader, which frees nothing and can never hold an app back.
    #[serde(default)]
    pub consume: bool,
}

/// One contiguous piece of one app's stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogChunk {
    pub id: u32,
    pub stream: LogStream,
    /// Offset of the first byte of `data`.
    pub offset: u64,
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
    /// Bytes between the asked offset and `offset` that are no longer held: dropped while no
    /// consumer was attached, or (for a plain reader) already consumed.
    pub dropped: u64,
}

/// Result of `logs.fetch`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogsFetched {
    pub chunks: Vec<LogChunk>,
}

/// Body of the `log:out` / `log:err` bus events the logs agent publishes (only while some
/// subscriber wants them): bytes of one app's stream as written to its file, batched —
/// many lines per event on a busy stream. `data` may end mid-line only when a partial line
/// was flushed after a pause; it is exactly what the app wrote, never re-encoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEvent {
    pub id: u32,
    pub name: String,
    pub stream: LogStream,
    /// Offset in the app's stream of the first byte of `data`.
    pub offset: u64,
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
}

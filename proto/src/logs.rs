//! `logs.fetch`, served by each spawner on its host-local endpoint: a long-poll pull of app
//! output by byte offset. The offset a consumer asks from acknowledges everything below it.

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
    /// Next byte wanted; every byte below it may be freed.
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
    /// Bytes between the asked offset and `offset` that were dropped before anyone fetched
    /// them (only while no consumer was attached).
    pub dropped: u64,
}

/// Result of `logs.fetch`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogsFetched {
    pub chunks: Vec<LogChunk>,
}

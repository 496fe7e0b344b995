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
    /// Next byte wanted. From the registered consumer, every byte below `min(ack, offset)`
    /// may be freed.
    pub offset: u64,
    /// From the registered consumer: every byte below `min(ack, offset)` is acknowledged.
    /// Absent: `offset`. Lets a consumer read past bytes it holds in memory (a partial line
    /// it will only write once complete) without acknowledging them, and without having
    /// them sent again on every fetch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ack: Option<u64>,
}

impl LogCursor {
    /// The offset below which this cursor acknowledges.
    pub fn acknowledged(&self) -> u64 {
        self.ack.map_or(self.offset, |ack| ack.min(self.offset))
    }
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
    /// The `epoch` of the spawner the cursors were read from. When it is not this
    /// spawner's (it was replaced, and its streams start again from 0), the cursors are
    /// ignored: every stream is read from its oldest byte and nothing is acknowledged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u64>,
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
    /// Names this spawner's offsets: a new spawner (whose streams start again from 0) has
    /// another. 0 from spawners that predate it.
    #[serde(default)]
    pub epoch: u64,
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
    /// Newlines the logs agent has seen in this stream before `offset` (since it started):
    /// a subscriber that missed events tells how many lines it missed.
    pub line: u64,
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ack_is_optional_on_the_wire() {
        let cursor = LogCursor {
            id: 1,
            stream: LogStream::Err,
            offset: 20,
            ack: None,
        };
        let bytes = rmp_serde::to_vec_named(&cursor).unwrap();
        assert!(!bytes.windows(3).any(|w| w == b"ack"), "None is not sent");
        assert_eq!(rmp_serde::from_slice::<LogCursor>(&bytes).unwrap(), cursor);
        assert_eq!(cursor.acknowledged(), 20);
        let held = LogCursor {
            ack: Some(12),
            ..cursor
        };
        let bytes = rmp_serde::to_vec_named(&held).unwrap();
        assert_eq!(rmp_serde::from_slice::<LogCursor>(&bytes).unwrap(), held);
        assert_eq!(held.acknowledged(), 12);
        assert_eq!(
            LogCursor {
                ack: Some(30),
                ..cursor
            }
            .acknowledged(),
            20
        );
    }
}

/// `logs.ask`: a request for a host's logs agent (`logs.tail`, `logs.flush` or
/// `logs.reopen`), carried by God to a host the caller cannot reach on `logs.sock`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogsAsk {
    pub host: String,
    pub method: String,
    /// The method's own params.
    pub params: zpm_rpc::Value,
}

/// `logs.query`: God's push to a logs agent, one asked request. The agent answers with
/// `logs.answer` carrying the same `query`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogsQuery {
    pub query: u64,
    pub method: String,
    pub params: zpm_rpc::Value,
}

/// `logs.answer`: the reply to a `logs.query`: its result (absent or nil for a method that
/// returns nothing), or the error its endpoint gave.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogsAnswer {
    pub query: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<zpm_rpc::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<zpm_rpc::RpcError>,
}

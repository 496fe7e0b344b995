//! Events that agents send up their rpc connection for God to re-publish verbatim.

use serde::{Deserialize, Serialize};

/// An already-encoded event (see [`crate::EventSource::encode`]) addressed to a topic.
/// Sent as the params of an rpc notification; the payload crosses as msgpack `bin` and is
/// re-published without being re-encoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayEvent {
    pub topic: String,
    #[serde(with = "serde_bytes")]
    pub payload: Vec<u8>,
}

impl RelayEvent {
    pub fn new(topic: impl Into<String>, payload: impl Into<Vec<u8>>) -> Self {
        Self {
            topic: topic.into(),
            payload: payload.into(),
        }
    }
}

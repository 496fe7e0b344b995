//! The event envelope: a msgpack map `{v, seq, at, source, host, data}` sent as the second
//! frame after the topic. `seq` counts per source *and topic*, starting at 1, so a
//! subscriber that filters by prefix still sees every gap in what it asked for.

use crate::error::BusError;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The envelope fields of an event, without its body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventHeader {
    pub v: u32,
    pub seq: u64,
    pub at: u64,
    pub source: String,
    pub host: String,
}

impl EventHeader {
    /// Reads the header of an encoded event, skipping its body.
    pub fn decode(payload: &[u8]) -> Result<Self, BusError> {
        rmp_serde::from_slice(payload).map_err(|e| BusError::Decode(e.to_string()))
    }
}

/// A typed event: envelope plus body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event<T> {
    #[serde(skip)]
    pub topic: String,
    pub v: u32,
    pub seq: u64,
    pub at: u64,
    pub source: String,
    pub host: String,
    pub data: T,
}

/// An event as it travels: topic frame and encoded payload frame, plus its parsed header.
#[derive(Debug, Clone)]
pub struct RawEvent {
    pub topic: Bytes,
    pub payload: Bytes,
    pub header: EventHeader,
}

impl RawEvent {
    pub fn topic_str(&self) -> &str {
        std::str::from_utf8(&self.topic).unwrap_or("")
    }

    pub fn decode<T: DeserializeOwned>(&self) -> Result<Event<T>, BusError> {
        let mut event: Event<T> =
            rmp_serde::from_slice(&self.payload).map_err(|e| BusError::Decode(e.to_string()))?;
        self.topic_str().clone_into(&mut event.topic);
        Ok(event)
    }
}

/// Stamps events from one source: version, per-topic sequence, time, source and host.
#[derive(Debug, Clone)]
pub struct EventSource {
    source: String,
    host: String,
    version: u32,
    seqs: HashMap<String, u64>,
}

impl EventSource {
    pub fn new(source: impl Into<String>, host: impl Into<String>, version: u32) -> Self {
        Self {
            source: source.into(),
            host: host.into(),
            version,
            seqs: HashMap::new(),
        }
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Encodes `data` as the body of the next event on `topic`.
    pub fn encode<T: Serialize + ?Sized>(
        &mut self,
        topic: &str,
        data: &T,
    ) -> Result<Bytes, BusError> {
        let body = rmp_serde::to_vec_named(data).map_err(|e| BusError::Encode {
            topic: topic.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(self.encode_body(topic, &body))
    }

    /// Wraps an already-encoded msgpack `body` in the next envelope on `topic`.
    pub fn encode_body(&mut self, topic: &str, body: &[u8]) -> Bytes {
        let seq = self.next_seq(topic);
        let mut out = Vec::with_capacity(48 + self.source.len() + self.host.len() + body.len());
        write_envelope_head(&mut out, self.version, seq, &self.source, &self.host);
        out.extend_from_slice(body);
        Bytes::from(out)
    }

    fn next_seq(&mut self, topic: &str) -> u64 {
        if let Some(seq) = self.seqs.get_mut(topic) {
            *seq += 1;
            return *seq;
        }
        self.seqs.insert(topic.to_owned(), 1);
        1
    }
}

fn write_envelope_head(out: &mut Vec<u8>, v: u32, seq: u64, source: &str, host: &str) {
    // Writing into a Vec cannot fail; the Results exist for generic writers.
    let _ = rmp::encode::write_map_len(out, 6);
    let _ = rmp::encode::write_str(out, "v");
    let _ = rmp::encode::write_uint(out, u64::from(v));
    let _ = rmp::encode::write_str(out, "seq");
    let _ = rmp::encode::write_uint(out, seq);
    let _ = rmp::encode::write_str(out, "at");
    let _ = rmp::encode::write_uint(out, now_ms());
    let _ = rmp::encode::write_str(out, "source");
    let _ = rmp::encode::write_str(out, source);
    let _ = rmp::encode::write_str(out, "host");
    let _ = rmp::encode::write_str(out, host);
    let _ = rmp::encode::write_str(out, "data");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_counts_per_topic_from_one() {
        let mut source = EventSource::new("god", "h1", 1);
        let a1 = EventHeader::decode(&source.encode("a", &1u8).unwrap()).unwrap();
        let b1 = EventHeader::decode(&source.encode("b", &1u8).unwrap()).unwrap();
        let a2 = EventHeader::decode(&source.encode("a", &1u8).unwrap()).unwrap();
        assert_eq!((a1.seq, b1.seq, a2.seq), (1, 1, 2));
        assert_eq!(a1.source, "god");
        assert_eq!(a1.host, "h1");
        assert!(a1.at > 0);
    }

    #[test]
    fn typed_round_trip() {
        let mut source = EventSource::new("spawner", "h1", 1);
        let payload = source.encode("process:event", &vec![1u32, 2, 3]).unwrap();
        let raw = RawEvent {
            topic: Bytes::from_static(b"process:event"),
            header: EventHeader::decode(&payload).unwrap(),
            payload,
        };
        let event: Event<Vec<u32>> = raw.decode().unwrap();
        assert_eq!(event.data, vec![1, 2, 3]);
        assert_eq!(event.topic, "process:event");
        assert_eq!(event.seq, 1);
    }
}

//! Live `log:out` / `log:err` events: what the logs agent pulled, published through God
//! only while some bus subscriber wants it, many lines per event, never waiting on God.

use crate::agent::Wanted;
use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use zpm_bus::{EventSource, RelayEvent};
use zpm_proto::logfiles::LogTarget;
use zpm_proto::method::agent;
use zpm_proto::{LogEvent, LogStream, LogsFetched, topics};
use zpm_rpc::Client;

/// An event carries at most this much of a stream: well inside every message limit, and
/// small enough that a subscriber short of credit loses little at a time.
const MAX_EVENT_DATA: usize = 256 * 1024;

pub(super) struct Live {
    client: Arc<Client>,
    source: EventSource,
    interest: Wanted,
    targets: Arc<RwLock<Vec<LogTarget>>>,
    /// Newlines seen per stream so far (see `LogEvent::line`).
    lines: HashMap<(u32, LogStream), u64>,
}

impl Live {
    pub(super) fn new(
        client: Arc<Client>,
        source: EventSource,
        interest: Wanted,
        targets: Arc<RwLock<Vec<LogTarget>>>,
    ) -> Self {
        Self {
            client,
            source,
            interest,
            targets,
            lines: HashMap::new(),
        }
    }

    /// Publishes the chunks of one fetch (those a subscriber wants).
    pub(super) fn publish(&mut self, fetched: &LogsFetched) {
        let names = self.names();
        for chunk in &fetched.chunks {
            let topic = match chunk.stream {
                LogStream::Out => topics::LOG_OUT,
                LogStream::Err => topics::LOG_ERR,
            };
            let wanted = self.interest.wants(topic);
            let mut line = *self.lines.get(&(chunk.id, chunk.stream)).unwrap_or(&0);
            let mut offset = chunk.offset;
            for piece in chunk.data.chunks(MAX_EVENT_DATA) {
                if wanted {
                    let event = LogEvent {
                        id: chunk.id,
                        name: names.get(&chunk.id).cloned().unwrap_or_default(),
                        stream: chunk.stream,
                        offset,
                        line,
                        data: piece.to_vec(),
                    };
                    self.send(topic, &event);
                }
                line += memchr::memchr_iter(b'\n', piece).count() as u64;
                offset += piece.len() as u64;
            }
            self.lines.insert((chunk.id, chunk.stream), line);
        }
    }

    fn names(&self) -> HashMap<u32, String> {
        self.targets
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|t| (t.id, t.name.clone()))
            .collect()
    }

    /// Queued for God without waiting; a full queue drops the event (the subscriber sees
    /// the gap by `line`).
    fn send(&mut self, topic: &str, event: &LogEvent) {
        let payload = match self.source.encode(topic, event) {
            Ok(payload) => payload,
            Err(e) => {
                tracing::warn!(error = %e, "cannot encode a log event");
                return;
            }
        };
        let relay = RelayEvent::new(topic, payload.to_vec());
        if self.client.notify_method::<agent::Publish>(&relay).is_err() {
            tracing::debug!("log event dropped: the queue to God is full");
        }
    }
}

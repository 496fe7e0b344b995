//! Live `log:out` / `log:err` events: what the logs agent pulled, published through God
//! only while some bus subscriber wants it, many lines per event, never waiting on God.

use crate::agent::Wanted;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, PoisonError, RwLock};
use zpm_bus::{EventSource, RelayEvent};
use zpm_proto::logfiles::LogTarget;
use zpm_proto::method::agent;
use zpm_proto::{LogEvent, LogStream, LogsFetched, topics};
use zpm_rpc::Client;

/// An event carries at most this much of a stream: well inside every message limit, and
/// small enough that a subscriber short of credit loses little at a time.
const MAX_EVENT_DATA: usize = 256 * 1024;

fn topic_of(stream: LogStream) -> &'static str {
    match stream {
        LogStream::Out => topics::LOG_OUT,
        LogStream::Err => topics::LOG_ERR,
    }
}

pub(super) struct Live {
    client: Arc<Client>,
    source: EventSource,
    interest: Wanted,
    targets: Arc<RwLock<Vec<LogTarget>>>,
    /// Per stream: newlines seen so far (see `LogEvent::line`) and the offset reached.
    lines: HashMap<(u32, LogStream), (u64, u64)>,
    /// Streams published since the last quiet round: each gets an empty event marking
    /// where it ended, so a subscriber that lost the end of a burst learns it at once
    /// instead of at the next line, which may never come.
    unmarked: HashSet<(u32, LogStream)>,
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
            unmarked: HashSet::new(),
        }
    }

    /// Publishes the chunks of one fetch (those a subscriber wants).
    pub(super) fn publish(&mut self, fetched: &LogsFetched) {
        let names = self.names();
        for chunk in &fetched.chunks {
            // Bytes of an app the agent has no target for yet are fetched again once it
            // has one: publish them then, with the app's name.
            let Some(name) = names.get(&chunk.id) else {
                continue;
            };
            let topic = topic_of(chunk.stream);
            let wanted = self.interest.wants(topic);
            let key = (chunk.id, chunk.stream);
            let mut line = self.lines.get(&key).map_or(0, |(line, _)| *line);
            let mut offset = chunk.offset;
            for piece in chunk.data.chunks(MAX_EVENT_DATA) {
                if wanted {
                    let event = LogEvent {
                        id: chunk.id,
                        name: name.clone(),
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
            self.lines.insert(key, (line, offset));
            if wanted && !chunk.data.is_empty() {
                self.unmarked.insert(key);
            }
        }
    }

    /// After a round that brought nothing: marks where each stream published since ended.
    pub(super) fn quiet(&mut self) {
        let names = self.names();
        for key in std::mem::take(&mut self.unmarked) {
            let (line, offset) = self.lines.get(&key).copied().unwrap_or_default();
            let event = LogEvent {
                id: key.0,
                name: names.get(&key.0).cloned().unwrap_or_default(),
                stream: key.1,
                offset,
                line,
                data: Vec::new(),
            };
            self.send(topic_of(key.1), &event);
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

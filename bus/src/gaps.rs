//! Gap detection at the subscriber: one expected next `seq` per (source, host, topic) —
//! every host's spawner publishes as `spawner`, each with its own numbering.

use std::collections::HashMap;

/// Streams tracked before the table is reset, so a flood of sources cannot grow it forever.
const MAX_STREAMS: usize = 4096;

#[derive(Debug, Default)]
pub struct SeqTracker {
    /// source → host → topic → last seq; nested so a lookup allocates nothing.
    last: HashMap<String, HashMap<String, HashMap<String, u64>>>,
    streams: usize,
    missed: u64,
}

impl SeqTracker {
    /// Records one event; returns how many events of this stream were missed before it.
    pub fn observe(&mut self, source: &str, host: &str, topic: &str, seq: u64) -> u64 {
        let last = self
            .last
            .get_mut(source)
            .and_then(|hosts| hosts.get_mut(host))
            .and_then(|topics| topics.get_mut(topic));
        let Some(last) = last else {
            self.first_of_stream(source, host, topic, seq);
            return 0;
        };
        let missed = if seq > *last {
            seq - *last - 1
        } else {
            tracing::info!(
                source,
                host,
                topic,
                seq,
                last = *last,
                "sequence restarted (source restarted?)"
            );
            0
        };
        *last = seq;
        if missed > 0 {
            self.missed += missed;
            tracing::warn!(source, host, topic, seq, missed, "gap in event sequence");
        }
        missed
    }

    fn first_of_stream(&mut self, source: &str, host: &str, topic: &str, seq: u64) {
        if self.streams >= MAX_STREAMS {
            tracing::warn!(
                streams = self.streams,
                "seq tracker full; forgetting all streams"
            );
            self.last.clear();
            self.streams = 0;
        }
        self.streams += 1;
        self.last
            .entry(source.to_owned())
            .or_default()
            .entry(host.to_owned())
            .or_default()
            .insert(topic.to_owned(), seq);
    }

    /// Events missed across all streams so far.
    pub fn missed(&self) -> u64 {
        self.missed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_gaps_per_stream_and_tolerates_restart() {
        let mut t = SeqTracker::default();
        assert_eq!(t.observe("a", "h", "x", 1), 0);
        assert_eq!(t.observe("a", "h", "y", 1), 0);
        assert_eq!(t.observe("a", "h", "x", 2), 0);
        assert_eq!(t.observe("a", "h", "x", 5), 2);
        assert_eq!(t.observe("a", "h", "y", 2), 0);
        assert_eq!(t.observe("a", "h", "x", 1), 0, "restart is not a gap");
        assert_eq!(t.observe("a", "h2", "x", 9), 0, "another host's stream");
        assert_eq!(t.observe("a", "h2", "x", 10), 0);
        assert_eq!(t.observe("a", "h", "x", 2), 0, "each host numbers its own");
        assert_eq!(t.missed(), 2);
    }
}

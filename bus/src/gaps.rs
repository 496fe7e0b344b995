//! Gap detection at the subscriber: one expected next `seq` per (source, topic).

use std::collections::HashMap;

/// Streams tracked before the table is reset, so a flood of sources cannot grow it forever.
const MAX_STREAMS: usize = 4096;

#[derive(Debug, Default)]
pub struct SeqTracker {
    last: HashMap<(String, String), u64>,
    missed: u64,
}

impl SeqTracker {
    /// Records one event; returns how many events of this stream were missed before it.
    pub fn observe(&mut self, source: &str, topic: &str, seq: u64) -> u64 {
        if self.last.len() >= MAX_STREAMS {
            tracing::warn!(
                streams = self.last.len(),
                "seq tracker full; forgetting all streams"
            );
            self.last.clear();
        }
        let key = (source.to_owned(), topic.to_owned());
        let missed = match self.last.get(&key) {
            Some(&last) if seq > last => seq - last - 1,
            Some(&last) => {
                tracing::info!(
                    source,
                    topic,
                    seq,
                    last,
                    "sequence restarted (source restarted?)"
                );
                0
            }
            None => 0,
        };
        self.last.insert(key, seq);
        if missed > 0 {
            self.missed += missed;
            tracing::warn!(source, topic, seq, missed, "gap in event sequence");
        }
        missed
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
        assert_eq!(t.observe("a", "x", 1), 0);
        assert_eq!(t.observe("a", "y", 1), 0);
        assert_eq!(t.observe("a", "x", 2), 0);
        assert_eq!(t.observe("a", "x", 5), 2);
        assert_eq!(t.observe("a", "y", 2), 0);
        assert_eq!(t.observe("a", "x", 1), 0, "restart is not a gap");
        assert_eq!(t.missed(), 2);
    }
}

//! One bounded byte buffer of one app stream, addressed by absolute byte offset.
//!
//! Pure and synchronous: the hub decides the policy (wait or drop) and calls it under its
//! lock. The buffer holds the bytes `[start, end)` exactly as they were read from the pipe.

use std::collections::VecDeque;

/// Capacity kept after an acknowledgement only when the buffer is still fairly full.
const SHRINK_FLOOR: usize = 16 * 1024;

#[derive(Debug, Default)]
pub(crate) struct StreamBuf {
    data: VecDeque<u8>,
    /// Absolute offset of `data[0]`.
    start: u64,
    /// Bytes dropped so far because nobody fetched them in time.
    dropped: u64,
}

impl StreamBuf {
    /// Offset of the oldest byte held.
    pub(crate) fn start(&self) -> u64 {
        self.start
    }

    /// Offset one past the newest byte held: where the next byte read will go.
    pub(crate) fn end(&self) -> u64 {
        self.start + self.data.len() as u64
    }

    /// Bytes held.
    pub(crate) fn len(&self) -> usize {
        self.data.len()
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Bytes of memory reserved (for tests and stats).
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.data.capacity()
    }

    /// Appends as much of `bytes` as fits under `limit` bytes held; returns how many it took.
    pub(crate) fn push_within(&mut self, bytes: &[u8], limit: usize) -> usize {
        let take = limit.saturating_sub(self.data.len()).min(bytes.len());
        self.extend(&bytes[..take], limit);
        take
    }

    /// Appends all of `bytes`, dropping the oldest bytes (possibly some of `bytes` itself) so
    /// that at most `limit` bytes stay held. Returns how many bytes were dropped.
    pub(crate) fn push_dropping(&mut self, mut bytes: &[u8], limit: usize) -> u64 {
        let total = self.data.len() + bytes.len();
        let excess = total.saturating_sub(limit);
        if excess > 0 {
            let from_held = excess.min(self.data.len());
            self.data.drain(..from_held);
            bytes = &bytes[excess - from_held..];
            self.start += excess as u64;
            self.dropped += excess as u64;
        }
        self.extend(bytes, limit);
        excess as u64
    }

    /// Frees every byte below `offset` (clamped to what is held). Returns how many were freed.
    pub(crate) fn ack(&mut self, offset: u64) -> usize {
        let upto = offset.clamp(self.start, self.end());
        let freed = (upto - self.start) as usize;
        if freed == 0 {
            return 0;
        }
        if freed == self.data.len() {
            // Drained: give the memory back, so idle apps cost nothing.
            self.data = VecDeque::new();
        } else {
            self.data.drain(..freed);
            let capacity = self.data.capacity();
            if capacity > SHRINK_FLOOR && self.data.len() < capacity / 4 {
                self.data.shrink_to((self.data.len() * 2).max(SHRINK_FLOOR));
            }
        }
        self.start = upto;
        freed
    }

    /// Copies up to `max` bytes starting at offset `from` (clamped to what is held).
    pub(crate) fn read(&self, from: u64, max: usize) -> Vec<u8> {
        let skip = (from.clamp(self.start, self.end()) - self.start) as usize;
        let until = skip + (self.data.len() - skip).min(max);
        let (front, back) = self.data.as_slices();
        let mut out = Vec::with_capacity(until - skip);
        if skip < front.len() {
            out.extend_from_slice(&front[skip..until.min(front.len())]);
        }
        if until > front.len() {
            out.extend_from_slice(&back[skip.saturating_sub(front.len())..until - front.len()]);
        }
        out
    }

    /// Appends, growing the allocation geometrically but never past `limit` (unless the
    /// caller holds more than `limit`, which the hub never does).
    fn extend(&mut self, bytes: &[u8], limit: usize) {
        if bytes.is_empty() {
            return;
        }
        let needed = self.data.len() + bytes.len();
        let capacity = self.data.capacity();
        if needed > capacity {
            let target = (capacity * 2).max(needed).min(limit.max(needed));
            self.data.reserve_exact(target - self.data.len());
        }
        self.data.extend(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(chunks: &[&[u8]], limit: usize) -> StreamBuf {
        let mut buf = StreamBuf::default();
        for chunk in chunks {
            assert_eq!(buf.push_within(chunk, limit), chunk.len());
        }
        buf
    }

    #[test]
    fn offsets_continue_across_appends() {
        let buf = filled(&[b"hello ", b"wor", b"ld\npartial"], 1024);
        assert_eq!((buf.start(), buf.end()), (0, 19));
        assert_eq!(buf.read(0, 1024), b"hello world\npartial");
        assert_eq!(buf.read(6, 5), b"world");
        assert_eq!(buf.read(17, 100), b"al");
        assert_eq!(buf.read(19, 100), b"");
    }

    #[test]
    fn acknowledgement_frees_bytes_below_the_offset() {
        let mut buf = filled(&[b"0123456789"], 1024);
        assert_eq!(buf.ack(4), 4);
        assert_eq!((buf.start(), buf.end(), buf.len()), (4, 10, 6));
        assert_eq!(
            buf.read(0, 100),
            b"456789",
            "reads below start begin at start"
        );
        assert_eq!(buf.ack(2), 0, "acknowledging old bytes again is harmless");
        assert_eq!(buf.ack(99), 6, "an offset beyond the end frees everything");
        assert_eq!((buf.start(), buf.end()), (10, 10));
        assert_eq!(buf.capacity(), 0, "a drained buffer gives its memory back");
        buf.push_within(b"ab", 1024);
        assert_eq!((buf.start(), buf.end()), (10, 12));
        assert_eq!(buf.read(10, 100), b"ab");
        assert_eq!(buf.dropped(), 0);
    }

    #[test]
    fn push_within_stops_at_the_limit() {
        let mut buf = StreamBuf::default();
        assert_eq!(buf.push_within(b"abcdef", 4), 4);
        assert_eq!(buf.push_within(b"gh", 4), 0);
        assert_eq!(buf.read(0, 100), b"abcd");
        assert!(buf.capacity() <= 8, "never reserves far past the limit");
        buf.ack(3);
        assert_eq!(buf.push_within(b"ef", 4), 2);
        assert_eq!(buf.read(0, 100), b"def");
        assert_eq!(buf.end(), 6);
    }

    #[test]
    fn dropping_the_oldest_is_counted() {
        let mut buf = StreamBuf::default();
        assert_eq!(buf.push_dropping(b"0123", 6), 0);
        assert_eq!(buf.push_dropping(b"4567", 6), 2);
        assert_eq!((buf.start(), buf.end()), (2, 8));
        assert_eq!(buf.read(0, 100), b"234567");
        // More than the limit in one go: the held bytes and the head of the new ones go.
        assert_eq!(buf.push_dropping(b"abcdefghij", 6), 10);
        assert_eq!((buf.start(), buf.end()), (12, 18));
        assert_eq!(buf.read(12, 100), b"efghij");
        assert_eq!(buf.dropped(), 12);
    }

    #[test]
    fn reads_across_the_ring_wrap() {
        let mut buf = StreamBuf::default();
        let limit = 64;
        let mut expected = Vec::new();
        for round in 0..50u8 {
            let chunk: Vec<u8> = (0..7)
                .map(|i| round.wrapping_mul(7).wrapping_add(i))
                .collect();
            buf.push_dropping(&chunk, limit);
            expected.extend_from_slice(&chunk);
            buf.ack(buf.end().saturating_sub(40));
            let start = buf.start() as usize;
            assert_eq!(buf.read(buf.start(), 1000), &expected[start..]);
            let until = (start + 8).min(expected.len());
            assert_eq!(buf.read(buf.start() + 3, 5), &expected[start + 3..until]);
        }
        assert_eq!(buf.dropped(), 0);
    }
}

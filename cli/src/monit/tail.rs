//! Live log tails: the last lines of each app's output, assembled from `log:*` events whose
//! data may split a line across events. Everything is bounded: lines per app, bytes per line
//! and the number of apps with a tail.

use std::collections::{BTreeMap, VecDeque};
use zpm_proto::{LogEvent, LogStream};

/// Lines kept per app.
pub const LINES: usize = 200;
/// Bytes kept of one line: a terminal shows far fewer, and an app writing without newlines
/// must not grow a line without bound. The rest of a longer line is shown as a new line.
pub const LINE_BYTES: usize = 1024;
/// Apps with a tail: a tail is ~200 KiB at worst, so the oldest-written goes beyond this.
pub const APPS: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub stream: LogStream,
    /// As the app wrote it (invalid UTF-8 replaced), control characters included: escaped
    /// only when drawn.
    pub text: String,
}

#[derive(Debug, Default)]
pub struct Tail {
    pub lines: VecDeque<LogLine>,
    /// The unfinished last line of out and of err, shown after the complete lines.
    partial: [Vec<u8>; 2],
    /// When this tail was last written ([`Tails`]' clock), to evict the stalest.
    written: u64,
}

impl Tail {
    /// Unfinished lines (no newline yet), out then err.
    pub fn partial_lines(&self) -> impl Iterator<Item = LogLine> + '_ {
        [LogStream::Out, LogStream::Err]
            .into_iter()
            .zip(&self.partial)
            .filter(|(_, bytes)| !bytes.is_empty())
            .map(|(stream, bytes)| line(stream, bytes))
    }

    fn append(&mut self, stream: LogStream, data: &[u8]) {
        let slot = usize::from(stream == LogStream::Err);
        let mut pieces = data.split(|b| *b == b'\n').peekable();
        while let Some(piece) = pieces.next() {
            let finished = pieces.peek().is_some();
            let mut rest = piece;
            while !rest.is_empty() {
                if self.partial[slot].len() == LINE_BYTES {
                    self.finish(stream, slot);
                }
                let partial = &mut self.partial[slot];
                let take = rest.len().min(LINE_BYTES - partial.len());
                partial.extend_from_slice(&rest[..take]);
                rest = &rest[take..];
            }
            if finished {
                self.finish(stream, slot);
            }
        }
    }

    fn finish(&mut self, stream: LogStream, slot: usize) {
        let bytes = std::mem::take(&mut self.partial[slot]);
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(&bytes);
        if self.lines.len() == LINES {
            self.lines.pop_front();
        }
        self.lines.push_back(line(stream, bytes));
    }
}

fn line(stream: LogStream, bytes: &[u8]) -> LogLine {
    LogLine {
        stream,
        text: String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// The tails of at most [`APPS`] apps, by app id.
#[derive(Debug, Default)]
pub struct Tails {
    tails: BTreeMap<u32, Tail>,
    clock: u64,
}

impl Tails {
    pub fn get(&self, id: u32) -> Option<&Tail> {
        self.tails.get(&id)
    }

    /// Adds an event's bytes to its app's tail. A new app past [`APPS`] evicts the tail
    /// written longest ago, but never `keep` (the selected app).
    pub fn append(&mut self, event: &LogEvent, keep: Option<u32>) {
        self.clock += 1;
        if !self.tails.contains_key(&event.id) && self.tails.len() >= APPS {
            let stalest = self
                .tails
                .iter()
                .filter(|(id, _)| Some(**id) != keep)
                .min_by_key(|(_, tail)| tail.written)
                .map(|(id, _)| *id);
            if let Some(id) = stalest {
                self.tails.remove(&id);
            }
        }
        let tail = self.tails.entry(event.id).or_default();
        tail.written = self.clock;
        tail.append(event.stream, &event.data);
    }

    /// Forgets the apps that are gone.
    pub fn retain(&mut self, mut known: impl FnMut(u32) -> bool) {
        self.tails.retain(|id, _| known(*id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: u32, stream: LogStream, data: &[u8]) -> LogEvent {
        LogEvent {
            line: 0,
            id,
            name: "app".into(),
            stream,
            offset: 0,
            data: data.to_vec(),
        }
    }

    fn texts(tail: &Tail) -> Vec<&str> {
        tail.lines.iter().map(|l| l.text.as_str()).collect()
    }

    #[test]
    fn lines_split_across_events_are_joined_per_stream() {
        let mut tails = Tails::default();
        tails.append(&event(1, LogStream::Out, b"hel"), None);
        tails.append(&event(1, LogStream::Err, b"oops\r\nha"), None);
        tails.append(&event(1, LogStream::Out, b"lo\nwor"), None);
        let tail = tails.get(1).unwrap();
        assert_eq!(texts(tail), ["oops", "hello"]);
        assert_eq!(tail.lines[0].stream, LogStream::Err);
        let partial: Vec<_> = tail.partial_lines().map(|l| l.text).collect();
        assert_eq!(partial, ["wor", "ha"]);
    }

    #[test]
    fn lines_and_line_length_are_bounded() {
        let mut tails = Tails::default();
        let many: Vec<u8> = (0..LINES + 50)
            .flat_map(|i| format!("line {i}\n").into_bytes())
            .collect();
        tails.append(&event(1, LogStream::Out, &many), None);
        let tail = tails.get(1).unwrap();
        assert_eq!(tail.lines.len(), LINES);
        assert_eq!(tail.lines[0].text, "line 50");
        let long = vec![b'x'; LINE_BYTES * 2 + 10];
        tails.append(&event(2, LogStream::Out, &long), None);
        let tail = tails.get(2).unwrap();
        assert_eq!(tail.lines.len(), 2);
        assert!(tail.lines.iter().all(|l| l.text.len() == LINE_BYTES));
        assert_eq!(tail.partial_lines().next().unwrap().text.len(), 10);
    }

    #[test]
    fn apps_are_bounded_and_the_selected_tail_stays() {
        let mut tails = Tails::default();
        for id in 0..APPS as u32 {
            tails.append(&event(id, LogStream::Out, b"x\n"), None);
        }
        tails.append(&event(999, LogStream::Out, b"x\n"), Some(0));
        assert!(tails.get(0).is_some(), "the selected app keeps its tail");
        assert!(tails.get(1).is_none(), "the stalest other tail goes");
        assert!(tails.get(999).is_some());
        tails.retain(|id| id == 999);
        assert!(tails.get(0).is_none());
    }
}

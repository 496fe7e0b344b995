//! Live `log:*` events back into lines: per (app, stream), bytes are assembled across
//! events, complete lines are handed on, a partial line is held until its newline or
//! [`HOLD`] (then shown as a line of its own). Each event's `offset` and `line` are
//! checked against what the previous one led us to expect, so lost events show as a
//! marked line instead of vanishing.

use std::collections::HashMap;
use std::io;
use std::time::{Duration, Instant};
use zpm_proto::{LogEvent, LogStream};

/// How long a partial line waits for the rest of it.
pub const HOLD: Duration = Duration::from_secs(1);
/// A partial line this long is shown at once: an app writing without newlines must not
/// grow our memory.
const MAX_HELD: usize = 1 << 20;

/// Whose line it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Who<'a> {
    pub id: u32,
    pub name: &'a str,
    pub stream: Option<LogStream>,
}

/// What was lost between two events of one stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lost {
    /// Whole lines (newlines the logs agent saw that never reached us).
    Lines(u64),
    /// Bytes in the middle of one line.
    Bytes(u64),
}

/// Where lines go (the printer; a list in tests).
pub trait Sink {
    fn line(&mut self, who: Who<'_>, line: &[u8]) -> io::Result<()>;
    fn lost(&mut self, who: Who<'_>, lost: Lost) -> io::Result<()>;
}

#[derive(Debug)]
struct Stream {
    name: String,
    /// Where the next event should start, and how many newlines precede it.
    next_offset: u64,
    next_line: u64,
    held: Vec<u8>,
    held_since: Option<Instant>,
}

impl Stream {
    fn who(&self, id: u32, stream: LogStream) -> Who<'_> {
        Who {
            id,
            name: &self.name,
            stream: Some(stream),
        }
    }

    /// Shows the held partial line, if any, as a line.
    fn release(&mut self, id: u32, stream: LogStream, sink: &mut impl Sink) -> io::Result<()> {
        self.held_since = None;
        if self.held.is_empty() {
            return Ok(());
        }
        let held = std::mem::take(&mut self.held);
        sink.line(self.who(id, stream), &held)
    }
}

#[derive(Debug, Default)]
pub struct Assembler {
    streams: HashMap<(u32, LogStream), Stream>,
}

impl Assembler {
    /// Hands the complete lines of `event` (and what was lost before it) to `sink`.
    pub fn accept(
        &mut self,
        event: &LogEvent,
        now: Instant,
        sink: &mut impl Sink,
    ) -> io::Result<()> {
        let key = (event.id, event.stream);
        let state = self.streams.entry(key).or_insert_with(|| Stream {
            name: event.name.clone(),
            next_offset: event.offset,
            next_line: event.line,
            held: Vec::new(),
            held_since: None,
        });
        if state.name != event.name {
            event.name.clone_into(&mut state.name);
        }
        check_gap(state, event, sink)?;
        let data = event.data.as_slice();
        state.next_offset = event.offset + data.len() as u64;
        state.next_line = event.line + memchr::memchr_iter(b'\n', data).count() as u64;
        let mut rest = data;
        while let Some(end) = memchr::memchr(b'\n', rest) {
            let (line, after) = (&rest[..end], &rest[end + 1..]);
            if state.held.is_empty() {
                sink.line(state.who(event.id, event.stream), line)?;
            } else {
                state.held.extend_from_slice(line);
                state.release(event.id, event.stream, sink)?;
            }
            rest = after;
        }
        if !rest.is_empty() {
            state.held.extend_from_slice(rest);
            state.held_since.get_or_insert(now);
            if state.held.len() >= MAX_HELD {
                state.release(event.id, event.stream, sink)?;
            }
        }
        Ok(())
    }

    /// Shows every partial line held since [`HOLD`] before `now`.
    pub fn expire(&mut self, now: Instant, sink: &mut impl Sink) -> io::Result<()> {
        for (&(id, stream), state) in &mut self.streams {
            if state.held_since.is_some_and(|since| now >= since + HOLD) {
                state.release(id, stream, sink)?;
            }
        }
        Ok(())
    }

    /// When the oldest held partial line is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.streams
            .values()
            .filter_map(|s| s.held_since)
            .min()
            .map(|since| since + HOLD)
    }

    /// Shows every held partial line (on exit).
    pub fn finish(&mut self, sink: &mut impl Sink) -> io::Result<()> {
        for (&(id, stream), state) in &mut self.streams {
            state.release(id, stream, sink)?;
        }
        Ok(())
    }
}

/// Compares `event` with what the stream's previous event led us to expect.
fn check_gap(state: &mut Stream, event: &LogEvent, sink: &mut impl Sink) -> io::Result<()> {
    let (id, stream) = (event.id, event.stream);
    if event.offset < state.next_offset || event.line < state.next_line {
        // Counting started again (a new logs agent counts lines from 0, a new spawner
        // numbers offsets from 0): nothing to compare with, so nothing to report.
        return state.release(id, stream, sink);
    }
    let lost = if event.line > state.next_line {
        Lost::Lines(event.line - state.next_line)
    } else if event.offset > state.next_offset {
        Lost::Bytes(event.offset - state.next_offset)
    } else {
        return Ok(());
    };
    // What is held does not continue into this event: its rest was lost.
    state.release(id, stream, sink)?;
    sink.lost(state.who(id, stream), lost)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Eq)]
    enum Seen {
        Line(u32, String),
        Lost(u32, Lost),
    }

    #[derive(Default)]
    struct Collect(Vec<Seen>);

    impl Sink for Collect {
        fn line(&mut self, who: Who<'_>, line: &[u8]) -> io::Result<()> {
            let text = String::from_utf8_lossy(line).into_owned();
            self.0.push(Seen::Line(who.id, text));
            Ok(())
        }
        fn lost(&mut self, who: Who<'_>, lost: Lost) -> io::Result<()> {
            self.0.push(Seen::Lost(who.id, lost));
            Ok(())
        }
    }

    fn event(id: u32, offset: u64, line: u64, data: &str) -> LogEvent {
        LogEvent {
            id,
            name: "api".into(),
            stream: LogStream::Out,
            offset,
            line,
            data: data.as_bytes().to_vec(),
        }
    }

    fn line(id: u32, text: &str) -> Seen {
        Seen::Line(id, text.to_owned())
    }

    #[test]
    fn lines_are_assembled_across_events_and_apps() {
        let (mut lines, mut sink, now) = (Assembler::default(), Collect::default(), Instant::now());
        lines
            .accept(&event(1, 0, 0, "a\nb"), now, &mut sink)
            .unwrap();
        lines.accept(&event(2, 0, 0, "x"), now, &mut sink).unwrap();
        lines
            .accept(&event(1, 3, 1, "c\nd\n"), now, &mut sink)
            .unwrap();
        lines
            .accept(&event(2, 1, 0, "y\n"), now, &mut sink)
            .unwrap();
        assert_eq!(
            sink.0,
            [line(1, "a"), line(1, "bc"), line(1, "d"), line(2, "xy")]
        );
        assert_eq!(lines.next_due(), None);
    }

    #[test]
    fn a_partial_line_is_shown_after_the_hold() {
        let (mut lines, mut sink, now) = (Assembler::default(), Collect::default(), Instant::now());
        lines
            .accept(&event(1, 0, 0, "part"), now, &mut sink)
            .unwrap();
        assert_eq!(lines.next_due(), Some(now + HOLD));
        lines.expire(now + HOLD / 2, &mut sink).unwrap();
        assert!(sink.0.is_empty());
        lines.expire(now + HOLD, &mut sink).unwrap();
        lines
            .accept(&event(1, 4, 0, "rest\n"), now + HOLD, &mut sink)
            .unwrap();
        assert_eq!(sink.0, [line(1, "part"), line(1, "rest")]);
        lines
            .accept(&event(1, 9, 1, "open"), now, &mut sink)
            .unwrap();
        lines.finish(&mut sink).unwrap();
        assert_eq!(sink.0[2], line(1, "open"));
    }

    #[test]
    fn lost_events_are_reported_never_silent() {
        let (mut lines, mut sink, now) = (Assembler::default(), Collect::default(), Instant::now());
        lines
            .accept(&event(1, 100, 7, "a\nhalf"), now, &mut sink)
            .unwrap();
        // Events with 2 newlines went missing, then one carrying 8 bytes of a line.
        lines
            .accept(&event(1, 130, 10, "b\n"), now, &mut sink)
            .unwrap();
        lines
            .accept(&event(1, 140, 11, "c\n"), now, &mut sink)
            .unwrap();
        assert_eq!(
            sink.0,
            [
                line(1, "a"),
                line(1, "half"),
                Seen::Lost(1, Lost::Lines(2)),
                line(1, "b"),
                Seen::Lost(1, Lost::Bytes(8)),
                line(1, "c"),
            ]
        );
    }

    #[test]
    fn counting_from_zero_again_is_not_a_loss() {
        let (mut lines, mut sink, now) = (Assembler::default(), Collect::default(), Instant::now());
        lines
            .accept(&event(1, 500, 40, "x\n"), now, &mut sink)
            .unwrap();
        lines
            .accept(&event(1, 0, 0, "y\n"), now, &mut sink)
            .unwrap();
        lines
            .accept(&event(1, 2, 1, "z\n"), now, &mut sink)
            .unwrap();
        assert_eq!(sink.0, [line(1, "x"), line(1, "y"), line(1, "z")]);
    }

    #[test]
    fn an_endless_line_is_shown_in_pieces() {
        let (mut lines, mut sink, now) = (Assembler::default(), Collect::default(), Instant::now());
        let big = "x".repeat(MAX_HELD);
        lines.accept(&event(1, 0, 0, &big), now, &mut sink).unwrap();
        assert_eq!(sink.0.len(), 1);
        assert_eq!(lines.next_due(), None);
    }
}

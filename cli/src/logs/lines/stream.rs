//! One (app, stream): where the next event should start, the events that came before
//! their turn, and the partial line being assembled.

use super::{HOLD, Lost, REORDER, Sink, Who};
use std::collections::BTreeMap;
use std::io;
use std::time::Instant;
use zpm_proto::{LogEvent, LogStream};

/// A partial line this long is shown at once: an app writing without newlines must not
/// grow our memory.
const MAX_HELD: usize = 1 << 20;
/// Early events kept at most (count and bytes); past either, the hole is taken as lost.
const MAX_EARLY: usize = 256;
const MAX_EARLY_BYTES: usize = 16 << 20;

/// How an event relates to where the stream is.
#[derive(Debug, PartialEq, Eq)]
enum Place {
    /// It starts where the previous one ended.
    Next,
    /// It starts further on: what lies between is late or lost.
    Ahead,
    /// It lies wholly before where we are: shown already, or reported lost.
    Behind,
    /// Counting started again (a new logs agent counts lines from 0, a new spawner
    /// numbers offsets from 0): nothing to compare with, so nothing to report.
    Restart,
}

#[derive(Debug)]
pub(super) struct Stream {
    id: u32,
    kind: LogStream,
    name: String,
    /// Where the next event should start, and how many newlines precede it.
    next_offset: u64,
    next_line: u64,
    /// Events that came before their turn, by offset, and since when one waits.
    early: BTreeMap<u64, LogEvent>,
    early_bytes: usize,
    early_since: Option<Instant>,
    held: Vec<u8>,
    held_since: Option<Instant>,
}

impl Stream {
    pub(super) fn new(first: &LogEvent) -> Self {
        Self {
            id: first.id,
            kind: first.stream,
            name: first.name.clone(),
            next_offset: first.offset,
            next_line: first.line,
            early: BTreeMap::new(),
            early_bytes: 0,
            early_since: None,
            held: Vec::new(),
            held_since: None,
        }
    }

    fn who(&self) -> Who<'_> {
        Who {
            id: self.id,
            name: &self.name,
            stream: Some(self.kind),
        }
    }

    pub(super) fn accept(
        &mut self,
        event: LogEvent,
        now: Instant,
        sink: &mut impl Sink,
    ) -> io::Result<()> {
        match self.place(&event) {
            Place::Next => {
                self.show(&event, now, sink)?;
                self.take_early(now, sink)
            }
            Place::Ahead => {
                self.early_bytes += event.data.len();
                self.early.insert(event.offset, event);
                self.early_since.get_or_insert(now);
                if self.early.len() > MAX_EARLY || self.early_bytes > MAX_EARLY_BYTES {
                    self.skip_hole(now, sink)?;
                }
                Ok(())
            }
            Place::Behind => Ok(()),
            Place::Restart => {
                self.finish(sink)?;
                self.next_offset = event.offset;
                self.next_line = event.line;
                self.show(&event, now, sink)
            }
        }
    }

    fn place(&self, event: &LogEvent) -> Place {
        let newlines = memchr::memchr_iter(b'\n', &event.data).count() as u64;
        let end = event.offset + event.data.len() as u64;
        if event.offset >= self.next_offset {
            match (
                event.line >= self.next_line,
                event.offset == self.next_offset,
            ) {
                (false, _) => Place::Restart,
                (true, true) => Place::Next,
                (true, false) => Place::Ahead,
            }
        } else if end <= self.next_offset && event.line + newlines <= self.next_line {
            Place::Behind
        } else {
            Place::Restart
        }
    }

    /// Shows the early events that are now next in line.
    fn take_early(&mut self, now: Instant, sink: &mut impl Sink) -> io::Result<()> {
        while let Some(entry) = self.early.first_entry() {
            if *entry.key() > self.next_offset {
                break;
            }
            let event = entry.remove();
            self.early_bytes -= event.data.len();
            if self.place(&event) == Place::Next {
                self.show(&event, now, sink)?;
            }
        }
        // The wait starts again for the next hole, if any.
        self.early_since = (!self.early.is_empty()).then_some(now);
        Ok(())
    }

    /// Gives up on the hole before the first early event: reports it lost, goes on.
    fn skip_hole(&mut self, now: Instant, sink: &mut impl Sink) -> io::Result<()> {
        let Some((&offset, first)) = self.early.first_key_value() else {
            return Ok(());
        };
        let first_line = first.line;
        let lost = if first_line > self.next_line {
            Lost::Lines(first_line - self.next_line)
        } else {
            Lost::Bytes(offset - self.next_offset)
        };
        // What is held does not continue into that event: its rest was lost.
        self.release(sink)?;
        sink.lost(self.who(), lost)?;
        self.next_offset = offset;
        self.next_line = first_line;
        self.take_early(now, sink)
    }

    /// Shows the lines of `event`, which starts at `next_offset`.
    fn show(&mut self, event: &LogEvent, now: Instant, sink: &mut impl Sink) -> io::Result<()> {
        if event.name != self.name {
            event.name.clone_into(&mut self.name);
        }
        let data = event.data.as_slice();
        self.next_offset = event.offset + data.len() as u64;
        self.next_line = event.line + memchr::memchr_iter(b'\n', data).count() as u64;
        let mut rest = data;
        while let Some(end) = memchr::memchr(b'\n', rest) {
            let line = &rest[..end];
            if self.held.is_empty() {
                sink.line(self.who(), line)?;
            } else {
                self.held.extend_from_slice(line);
                self.release(sink)?;
            }
            rest = &rest[end + 1..];
        }
        if !rest.is_empty() {
            self.held.extend_from_slice(rest);
            self.held_since.get_or_insert(now);
            if self.held.len() >= MAX_HELD {
                self.release(sink)?;
            }
        }
        Ok(())
    }

    /// Shows the held partial line, if any, as a line.
    fn release(&mut self, sink: &mut impl Sink) -> io::Result<()> {
        self.held_since = None;
        if self.held.is_empty() {
            return Ok(());
        }
        let held = std::mem::take(&mut self.held);
        let result = sink.line(self.who(), &held);
        // The buffer's capacity is kept for the next partial line.
        self.held = held;
        self.held.clear();
        result
    }

    pub(super) fn expire(&mut self, now: Instant, sink: &mut impl Sink) -> io::Result<()> {
        while self.early_since.is_some_and(|since| now >= since + REORDER) {
            self.skip_hole(now, sink)?;
        }
        if self.held_since.is_some_and(|since| now >= since + HOLD) {
            self.release(sink)?;
        }
        Ok(())
    }

    pub(super) fn next_due(&self) -> Option<Instant> {
        let early = self.early_since.map(|since| since + REORDER);
        let held = self.held_since.map(|since| since + HOLD);
        early.into_iter().chain(held).min()
    }

    /// Shows everything waiting: early events (after what was lost before them), then
    /// the partial line.
    pub(super) fn finish(&mut self, sink: &mut impl Sink) -> io::Result<()> {
        let now = Instant::now();
        while !self.early.is_empty() {
            self.skip_hole(now, sink)?;
        }
        self.release(sink)
    }
}

//! Live `log:*` events back into lines, per (app, stream): events are put back in offset
//! order (God may relay one agent's events out of order), bytes are assembled across
//! events, complete lines are handed on, and a partial line is held until its newline or
//! [`HOLD`] (then shown as a line of its own). Each event's `offset` and `line` are checked
//! against what the previous one led us to expect, so lost events show as a marked line
//! instead of vanishing.

mod stream;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::io;
use std::time::{Duration, Instant};
use stream::Stream;
use zpm_proto::{LogEvent, LogStream};

/// How long a partial line waits for the rest of it.
pub const HOLD: Duration = Duration::from_secs(1);
/// How long an event that came early waits for the ones before it, before they are
/// taken as lost.
pub const REORDER: Duration = Duration::from_millis(250);

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

#[derive(Debug, Default)]
pub struct Assembler {
    streams: HashMap<(u32, LogStream), Stream>,
}

impl Assembler {
    /// Hands the complete lines of `event` (and of the early events it lets through, and
    /// what was lost before them) to `sink`.
    pub fn accept(
        &mut self,
        event: LogEvent,
        now: Instant,
        sink: &mut impl Sink,
    ) -> io::Result<()> {
        self.streams
            .entry((event.id, event.stream))
            .or_insert_with(|| Stream::new(&event))
            .accept(event, now, sink)
    }

    /// Shows what is due: partial lines held since [`HOLD`], and early events waiting
    /// since [`REORDER`] (reporting what never came before them).
    pub fn expire(&mut self, now: Instant, sink: &mut impl Sink) -> io::Result<()> {
        for state in self.streams.values_mut() {
            state.expire(now, sink)?;
        }
        Ok(())
    }

    /// When [`Assembler::expire`] next has something to do.
    pub fn next_due(&self) -> Option<Instant> {
        self.streams.values().filter_map(Stream::next_due).min()
    }

    /// Shows everything still waiting (on exit).
    pub fn finish(&mut self, sink: &mut impl Sink) -> io::Result<()> {
        for state in self.streams.values_mut() {
            state.finish(sink)?;
        }
        Ok(())
    }
}

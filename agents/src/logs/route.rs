//! A route: one source stream (app id, out or err) into one file. It turns the stream's
//! bytes into the file's bytes (as is, timestamped lines, or json lines) and knows which
//! stream offsets are in the file (`written`, committed when the bytes landed) and which it
//! has taken in (`consumed`, including a partial line it holds).

use super::format::{RFC3339_MS, Source, StampCache, json_line};
use super::{Now, Options};
use jiff::tz::TimeZone;
use std::time::Instant;
use zpm_proto::LogStream;

pub(crate) type StreamKey = (u32, LogStream);

/// How a route turns stream bytes into file bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Style {
    /// The bytes as they come: a raw file without timestamps and with this single source.
    Passthrough,
    /// Line by line, each line prefixed `<timestamp>: ` when `date` (a pattern) is set.
    Lines { date: Option<String> },
    /// One json object per line.
    Json { app_name: String },
}

/// The bytes for one file produced by its routes, not written yet, and what each piece
/// means once it has landed.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    pub bytes: Vec<u8>,
    pub marks: Vec<Mark>,
    /// Whose unterminated line the file ends with, once this batch is written.
    pub open_line: Option<StreamKey>,
}

/// The end of one piece of a [`Batch`]: once `bytes[..end]` landed, route `route` has
/// everything below `written` in the file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mark {
    pub end: usize,
    pub route: usize,
    pub written: u64,
    pub mid_line: bool,
    pub open_line: Option<StreamKey>,
    /// Rotating right after this piece splits no line.
    pub boundary: bool,
}

/// What a route needs from its writer while taking bytes in.
pub(crate) struct Ctx<'a> {
    pub zone: &'a TimeZone,
    pub options: &'a Options,
    /// This route's index, for the marks.
    pub index: usize,
}

#[derive(Debug)]
pub(crate) struct Route {
    pub stream: StreamKey,
    /// Index of its file in the writer.
    pub file: usize,
    pub style: Style,
    /// Every stream byte below it is in the file.
    pub written: u64,
    /// The file has a started line of this route: its continuation gets no prefix.
    pub mid_line: bool,
    /// `written` as of the last ledger save: what may be acknowledged.
    pub saved: u64,
    /// Every stream byte below it was taken in (written, in a batch, or held).
    pub consumed: u64,
    /// `mid_line` as it will be once the batch lands.
    working_mid: bool,
    /// The start of a line, waiting for its newline.
    held: Vec<u8>,
    /// When the first held byte arrived.
    held_since: Option<Now>,
    stamps: StampCache,
}

impl Route {
    /// A route whose file has every stream byte below `written`.
    pub(crate) fn new(stream: StreamKey, file: usize, style: Style, written: u64) -> Self {
        Self {
            stream,
            file,
            style,
            written,
            mid_line: false,
            saved: written,
            consumed: written,
            working_mid: false,
            held: Vec::new(),
            held_since: None,
            stamps: StampCache::default(),
        }
    }

    pub(crate) fn with_mid_line(mut self, mid_line: bool) -> Self {
        self.mid_line = mid_line;
        self.working_mid = mid_line;
        self
    }

    pub(crate) fn holds(&self) -> bool {
        !self.held.is_empty()
    }

    /// When the held partial line is due to be written.
    pub(crate) fn due_at(&self, options: &Options) -> Option<Instant> {
        self.held_since
            .map(|since| since.mono + options.flush_timeout)
    }

    /// Takes in `data`, the stream bytes from `offset`, where the fetch asked from `asked`
    /// (bytes in between were dropped by the spawner). A route behind `asked` was not
    /// asked for (it was waiting for a retry) and takes nothing.
    pub(crate) fn take(
        &mut self,
        ctx: &Ctx<'_>,
        (asked, offset): (u64, u64),
        data: &[u8],
        now: Now,
        batch: &mut Batch,
    ) {
        if self.consumed < asked {
            return;
        }
        if offset > self.consumed {
            self.skip_to(ctx, offset, batch);
        }
        let Some(data) = data.get((self.consumed - offset) as usize..) else {
            return;
        };
        if data.is_empty() {
            return;
        }
        if self.style == Style::Passthrough {
            self.pass(ctx, data, batch);
        } else {
            self.lines(ctx, data, now, batch);
        }
    }

    /// For a discarded stream: everything up to `end` counts as written.
    pub(crate) fn discard_to(&mut self, end: u64) {
        self.held.clear();
        self.held_since = None;
        self.consumed = self.consumed.max(end);
        self.written = self.consumed;
    }

    /// Bytes before `offset` are gone: what is held is written, and what comes next starts
    /// a new line.
    fn skip_to(&mut self, ctx: &Ctx<'_>, offset: u64, batch: &mut Batch) {
        self.flush_held(ctx, batch);
        if self.style != Style::Passthrough {
            self.working_mid = false;
        }
        self.consumed = offset;
        self.mark(ctx, batch, true);
    }

    fn pass(&mut self, ctx: &Ctx<'_>, data: &[u8], batch: &mut Batch) {
        batch.bytes.extend_from_slice(data);
        self.consumed += data.len() as u64;
        self.working_mid = data.last() != Some(&b'\n');
        batch.open_line = self.working_mid.then_some(self.stream);
        self.mark(ctx, batch, true);
    }

    fn lines(&mut self, ctx: &Ctx<'_>, data: &[u8], now: Now, batch: &mut Batch) {
        let mut rest = data;
        while let Some(newline) = rest.iter().position(|&b| b == b'\n') {
            self.consumed += newline as u64 + 1;
            if self.held.is_empty() {
                self.emit(ctx, batch, &rest[..newline], true, now);
            } else {
                let mut line = std::mem::take(&mut self.held);
                line.extend_from_slice(&rest[..newline]);
                let since = self.held_since.take().unwrap_or(now);
                self.emit(ctx, batch, &line, true, since);
            }
            rest = &rest[newline + 1..];
        }
        if !rest.is_empty() {
            if self.held.is_empty() {
                self.held_since = Some(now);
            }
            self.held.extend_from_slice(rest);
            self.consumed += rest.len() as u64;
        }
        if self.held.len() >= ctx.options.max_partial {
            self.flush_held(ctx, batch);
        }
    }

    /// Writes the held partial line now (its timeout passed, or it is too long).
    pub(crate) fn flush_held(&mut self, ctx: &Ctx<'_>, batch: &mut Batch) {
        if self.held.is_empty() {
            return;
        }
        let line = std::mem::take(&mut self.held);
        let since = self.held_since.take().unwrap_or_else(Now::current);
        self.emit(ctx, batch, &line, false, since);
    }

    /// Appends one line (`complete`) or the start of one to the batch, stamped `at`.
    fn emit(&mut self, ctx: &Ctx<'_>, batch: &mut Batch, line: &[u8], complete: bool, at: Now) {
        let me = Some(self.stream);
        match &self.style {
            Style::Json { app_name } => {
                let (id, stream) = self.stream;
                let source = Source {
                    app_name,
                    id,
                    stream,
                };
                let timestamp = self.stamps.get(RFC3339_MS, ctx.zone, at.wall);
                json_line(&mut batch.bytes, timestamp, source, line);
                batch.open_line = None;
            }
            Style::Lines { date } => {
                let continues = self.working_mid && batch.open_line == me;
                if batch.open_line.is_some() && !continues {
                    // A line left open (written on timeout, by another source or before a
                    // gap) is ended rather than glued to this one.
                    batch.bytes.push(b'\n');
                }
                if let (false, Some(pattern)) = (continues, date) {
                    let timestamp = self.stamps.get(pattern, ctx.zone, at.wall);
                    batch.bytes.extend_from_slice(timestamp.as_bytes());
                    batch.bytes.extend_from_slice(b": ");
                }
                batch.bytes.extend_from_slice(line);
                if complete {
                    batch.bytes.push(b'\n');
                }
                batch.open_line = if complete { None } else { me };
            }
            Style::Passthrough => batch.bytes.extend_from_slice(line),
        }
        self.working_mid = !complete;
        let boundary = batch.open_line.is_none();
        self.mark(ctx, batch, boundary);
    }

    fn mark(&self, ctx: &Ctx<'_>, batch: &mut Batch, boundary: bool) {
        // Held bytes are taken in but not in the file: `written` stops before them.
        let written = self.consumed - self.held.len() as u64;
        batch.marks.push(Mark {
            end: batch.bytes.len(),
            route: ctx.index,
            written,
            mid_line: self.working_mid,
            open_line: batch.open_line,
            boundary,
        });
    }

    /// A piece of this route landed in the file.
    pub(crate) fn commit(&mut self, mark: &Mark) {
        self.written = self.written.max(mark.written);
        self.mid_line = mark.mid_line;
    }

    /// Its file failed: forget everything not in the file; those bytes are fetched again.
    pub(crate) fn rewind(&mut self) {
        self.consumed = self.written;
        self.working_mid = self.mid_line;
        self.held.clear();
        self.held_since = None;
    }
}

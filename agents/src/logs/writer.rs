//! [`Writer`]: targets → routes and files, fetched chunks → file bytes, cursors for the
//! next fetch.

mod build;
mod flush;

use super::error::{LogError, LogErrorKind};
use super::ledger::{self, FileRecord};
use super::rotate::{Background, Family};
use super::route::{Batch, Ctx, Route, StreamKey};
use super::sink::{Identity, Sink};
use super::{Now, Options};
use jiff::tz::TimeZone;
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Instant;
use zpm_proto::logfiles::LogTarget;
use zpm_proto::{LogCursor, LogsFetched};

/// Writes the log bytes of this host's apps into their files (see the module docs).
///
/// Call [`Writer::apply`] with each fetch's answer, [`Writer::save`] after it, and fetch
/// next with [`Writer::cursors`]; [`Writer::flush_due`] when [`Writer::next_deadline`]
/// passes without a fetch answer. [`super::run`] does exactly that.
#[derive(Debug)]
pub struct Writer {
    state_path: PathBuf,
    options: Options,
    zone: TimeZone,
    targets: Vec<LogTarget>,
    routes: Vec<Route>,
    files: Vec<FileState>,
    streams: BTreeMap<StreamKey, Stream>,
    background: Background,
    errors: Vec<LogError>,
    dropped: u64,
    discarded: u64,
    /// Something changed since the last save.
    dirty: bool,
    /// The epoch of the spawner the offsets are in (`LogsFetched::epoch`).
    epoch: Option<u64>,
    /// The time of the last operation: cursors leave out files still waiting for a retry.
    now: Now,
}

#[derive(Debug)]
struct FileState {
    sink: Sink,
    family: Family,
    /// Bytes produced for it and not written yet (empty between operations).
    batch: Batch,
    /// Whose unterminated line the file ends with.
    open_line: Option<StreamKey>,
    /// One route, raw, no timestamp: any chunk boundary is fine for a rotation.
    passthrough: bool,
    /// What the last saved ledger says of this file; a file opened with another identity
    /// must be recorded before anything is written to it.
    record: Option<FileRecord>,
    /// After a failed rotation (reported once): not tried again before then.
    rotate_after: Option<Instant>,
}

#[derive(Debug, Default)]
struct Stream {
    routes: Vec<usize>,
    /// Every byte below it was received; `None` before the first chunk.
    seen: Option<u64>,
    /// The routes' offsets are meaningful. Not yet for a stream never fetched nor
    /// recorded: its first chunk places them.
    placed: bool,
    /// A stream without routes (no target for its app): its bytes from `hold_from` on are
    /// not acknowledged, since then, for [`Options::unknown_hold`]; then discarded.
    unknown_since: Option<Instant>,
    hold_from: u64,
    expired: bool,
}

impl Writer {
    /// A writer for `targets`, resuming from the ledger at `state_path` if there is one:
    /// files are brought back to what it recorded (see [`super::ledger`]) and routes
    /// resume from their recorded offsets. An unreadable ledger is reported in
    /// [`Writer::take_errors`] and the writer starts without it.
    pub fn open(state_path: &Path, targets: Vec<LogTarget>, options: Options) -> Self {
        let mut errors = Vec::new();
        let saved = ledger::load(state_path).unwrap_or_else(|e| {
            errors.push(LogError::new(LogErrorKind::Ledger, state_path, e));
            None
        });
        let now = Now::current();
        let mut writer = Self {
            state_path: state_path.to_path_buf(),
            options,
            zone: TimeZone::try_system().unwrap_or(TimeZone::UTC),
            targets: Vec::new(),
            routes: Vec::new(),
            files: Vec::new(),
            streams: BTreeMap::new(),
            background: Background::default(),
            errors,
            dropped: 0,
            discarded: 0,
            dirty: false,
            epoch: saved.as_ref().and_then(|l| l.epoch),
            now,
        };
        let positions = saved
            .as_ref()
            .map(build::Positions::from_ledger)
            .unwrap_or_default();
        writer.build(targets, &positions, Vec::new(), now);
        if let Some(saved) = &saved {
            writer.restore(&saved.files);
        }
        writer.resume_compression();
        writer
    }

    /// Writes the chunks of one fetch (complete lines; partial lines are held, see
    /// [`Options`]). Nothing written is acknowledged before [`Writer::save`]. Bytes a
    /// chunk reports as dropped by the spawner are skipped and counted
    /// ([`Writer::dropped`]). A file that fails is reported once ([`Writer::take_errors`])
    /// and its bytes are fetched again when it is retried. Errs only if the ledger could
    /// not record a newly opened file, which is then retried like a failed file.
    pub fn apply(&mut self, fetched: LogsFetched, now: Now) -> io::Result<()> {
        self.now = now;
        self.follow_epoch(fetched.epoch);
        for chunk in fetched.chunks {
            self.dropped += chunk.dropped;
            let key = (chunk.id, chunk.stream);
            let mut asked = chunk.offset.saturating_sub(chunk.dropped);
            let mut offset = chunk.offset;
            // In pieces, so a rotation can fall between them: a file never passes its
            // max_size by more than a piece, however large the chunk.
            for piece in pieces(&chunk.data) {
                self.take_chunk(key, (asked, offset), piece, now);
                offset += piece.len() as u64;
                asked = offset;
            }
        }
        self.expire_unknown(now);
        self.flush_files(now)
    }

    /// The offsets of the spawner's epoch, sent with every fetch.
    pub fn epoch(&self) -> Option<u64> {
        self.epoch
    }

    /// A new spawner numbers every stream from 0 again (its hub ignored our cursors and
    /// sends from the oldest byte): every route is placed anew by its next chunk.
    fn follow_epoch(&mut self, epoch: u64) {
        if epoch == 0 || self.epoch == Some(epoch) {
            return;
        }
        if self.epoch.is_some() {
            for stream in self.streams.values_mut() {
                stream.placed = false;
                stream.seen = None;
                stream.unknown_since = None;
                stream.hold_from = 0;
            }
        }
        self.epoch = Some(epoch);
        self.dirty = true;
    }

    fn take_chunk(&mut self, key: StreamKey, (asked, offset): (u64, u64), data: &[u8], now: Now) {
        let end = offset + data.len() as u64;
        let stream = self.streams.entry(key).or_default();
        stream.seen = Some(stream.seen.map_or(end, |seen| seen.max(end)));
        if stream.routes.is_empty() {
            if stream.unknown_since.is_none() || offset > asked {
                stream.unknown_since.get_or_insert(now.mono);
                stream.hold_from = stream.hold_from.max(offset);
            }
            return;
        }
        if !stream.placed {
            stream.placed = true;
            for &index in &stream.routes {
                let route = &mut self.routes[index];
                *route = Route::new(route.stream, route.file, route.style.clone(), offset);
            }
        }
        for &index in &stream.routes {
            let route = &mut self.routes[index];
            let file = &mut self.files[route.file];
            if file.sink.discard {
                if route.consumed >= asked {
                    route.discard_to(end);
                    self.dirty = true;
                }
            } else if file.sink.ready(now.mono) {
                let ctx = Ctx {
                    zone: &self.zone,
                    options: &self.options,
                    index,
                };
                route.take(&ctx, (asked, offset), data, now, &mut file.batch);
            }
        }
    }

    /// Writes the partial lines whose [`Options::flush_timeout`] has passed at `now`.
    pub fn flush_due(&mut self, now: Now) -> io::Result<()> {
        self.now = now;
        let due: Vec<usize> = (0..self.routes.len())
            .filter(|&i| {
                self.routes[i]
                    .due_at(&self.options)
                    .is_some_and(|at| at <= now.mono)
            })
            .collect();
        self.flush_held(&due, now);
        self.expire_unknown(now);
        self.flush_files(now)
    }

    /// Writes every partial line now (before a shutdown or a change of targets).
    pub fn flush_all(&mut self, now: Now) -> io::Result<()> {
        self.now = now;
        let holding: Vec<usize> = (0..self.routes.len())
            .filter(|&i| self.routes[i].holds())
            .collect();
        self.flush_held(&holding, now);
        self.flush_files(now)
    }

    fn flush_held(&mut self, routes: &[usize], now: Now) {
        for &index in routes {
            let route = &mut self.routes[index];
            let file = &mut self.files[route.file];
            if file.sink.ready(now.mono) {
                let ctx = Ctx {
                    zone: &self.zone,
                    options: &self.options,
                    index,
                };
                route.flush_held(&ctx, &mut file.batch);
            }
        }
    }

    /// Streams without a target held longer than [`Options::unknown_hold`]: discarded.
    fn expire_unknown(&mut self, now: Now) {
        for (&(id, stream), state) in &mut self.streams {
            let Some(since) = state.unknown_since else {
                continue;
            };
            if !state.expired
                && now.mono.saturating_duration_since(since) >= self.options.unknown_hold
            {
                state.expired = true;
                tracing::warn!(
                    id,
                    ?stream,
                    "log bytes of an app without a log target: discarded"
                );
            }
            let seen = state.seen.unwrap_or(state.hold_from);
            if state.expired && seen > state.hold_from {
                self.discarded += seen - state.hold_from;
                state.hold_from = seen;
            }
        }
    }

    /// Where the next fetch reads each stream from (`offset`: past everything taken in,
    /// held partial lines included) and what it acknowledges (`ack`: what the saved ledger
    /// has in the files, the least over the stream's routes). Streams never seen are left
    /// out, so the spawner sends them from their oldest byte.
    pub fn cursors(&self) -> Vec<LogCursor> {
        let now = self.now.mono;
        let mut cursors = Vec::with_capacity(self.streams.len());
        for (&(id, stream), state) in &self.streams {
            let (offset, ack) = if state.routes.is_empty() {
                let Some(seen) = state.seen else { continue };
                (seen, state.hold_from)
            } else if state.placed {
                let routes = || state.routes.iter().map(|&i| &self.routes[i]);
                let ready = routes()
                    .filter(|r| self.files[r.file].sink.ready(now))
                    .map(|r| r.consumed)
                    .min();
                let waiting = || routes().map(|r| r.consumed).min().unwrap_or(0);
                let offset = ready.unwrap_or_else(|| state.seen.unwrap_or_else(waiting));
                (offset, routes().map(|r| r.saved).min().unwrap_or(offset))
            } else {
                continue;
            };
            cursors.push(LogCursor {
                id,
                stream,
                offset,
                ack: (ack < offset).then_some(ack),
            });
        }
        cursors
    }

    /// The next instant something is due without new bytes: a partial line's flush
    /// timeout, a failed file's retry, an unknown stream's expiry.
    /// Only instants after the last operation count: one already past is due at the next
    /// operation, and must not make a caller spin.
    pub fn next_deadline(&self) -> Option<Instant> {
        let flushes = self.routes.iter().filter_map(|r| r.due_at(&self.options));
        let retries = self.files.iter().filter_map(|f| f.sink.retry_at());
        let expiries = self
            .streams
            .values()
            .filter(|s| !s.expired)
            .filter_map(|s| {
                s.unknown_since
                    .map(|since| since + self.options.unknown_hold)
            });
        let after = self.now.mono;
        flushes
            .chain(retries)
            .chain(expiries)
            .filter(|&at| at > after)
            .min()
    }

    /// Replaces the targets (apps added, removed, renamed, options changed). Partial lines
    /// are written first and the ledger saved; a route that stays (same app, stream and
    /// file) keeps its place, a new route of a known stream starts where the stream's
    /// routes were (so a renamed file continues exactly), a new app starts from the oldest
    /// byte the spawner holds.
    ///
    /// The new targets apply even when writing or saving fails (that is reported and
    /// retried like any failure): what is not written stays unacknowledged either way.
    pub fn set_targets(&mut self, targets: Vec<LogTarget>, now: Now) -> io::Result<()> {
        let flushed = self.flush_all(now).and_then(|()| self.save());
        let positions = build::Positions::from_routes(&self.routes, &self.files, &self.streams);
        let old_files = std::mem::take(&mut self.files);
        self.build(targets, &positions, old_files, now);
        self.dirty = true;
        flushed.and_then(|()| self.save())
    }

    pub fn targets(&self) -> &[LogTarget] {
        &self.targets
    }

    /// Closes every file, so the next write opens its path again: after an external tool
    /// moved the files away (`zpm reload-logs`). Also rereads the local time zone, and
    /// retries failed files at once.
    pub fn reopen_all(&mut self) {
        self.zone = TimeZone::try_system().unwrap_or(TimeZone::UTC);
        for file in &mut self.files {
            file.sink.close();
            file.sink.retry_now();
        }
    }

    /// Empties the files of the apps `ids` (all files if `ids` is empty) — `zpm flush` —
    /// and saves the ledger. Rotated files are left alone.
    pub fn truncate(&mut self, ids: &[u32], now: Now) -> io::Result<()> {
        self.flush_files(now)?;
        let mut chosen: Vec<usize> = self
            .routes
            .iter()
            .filter(|r| ids.is_empty() || ids.contains(&r.stream.0))
            .map(|r| r.file)
            .collect();
        chosen.sort_unstable();
        chosen.dedup();
        for index in chosen {
            self.truncate_file(index, now);
        }
        self.save()
    }

    fn truncate_file(&mut self, index: usize, now: Now) {
        let file = &mut self.files[index];
        if file.sink.discard {
            return;
        }
        match file.sink.truncate(now.mono) {
            Ok(()) => {
                file.open_line = None;
                file.batch.open_line = None;
                self.dirty = true;
            }
            Err(failure) => self.report(index, LogErrorKind::Truncate, failure),
        }
    }

    /// The failures since the last call, each outage of a file once.
    pub fn take_errors(&mut self) -> Vec<LogError> {
        let background = self.background.take_errors().into_iter();
        let background = background.map(|(path, e)| LogError::new(LogErrorKind::Rotated, path, e));
        let mut errors = std::mem::take(&mut self.errors);
        errors.extend(background);
        errors
    }

    /// Files whose last attempt failed and that nothing was written to since.
    pub fn failing(&self) -> Vec<&Path> {
        self.files
            .iter()
            .filter(|f| f.sink.in_outage())
            .map(|f| f.sink.path.as_path())
            .collect()
    }

    /// Bytes the spawner reported dropped (no consumer attached in time) so far.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Bytes of apps without a target discarded after [`Options::unknown_hold`].
    pub fn discarded(&self) -> u64 {
        self.discarded
    }

    /// Gzip and retention jobs not finished yet (they run on their own thread).
    pub fn background_jobs(&self) -> usize {
        self.background.pending()
    }

    pub fn state_path(&self) -> &Path {
        &self.state_path
    }

    fn report(&mut self, file: usize, kind: LogErrorKind, failure: super::sink::Failure) {
        if let super::sink::Failure::Io(_, source) = failure {
            let path = self.files[file].sink.path.clone();
            self.errors.push(LogError::new(kind, path, source));
        }
    }

    fn identity_recorded(&self, file: usize) -> bool {
        let state = &self.files[file];
        let recorded = state.record.as_ref().map(FileRecord::identity);
        state.sink.identity.is_none() || state.sink.identity == recorded
    }
}

/// Size of the pieces a chunk is taken in.
const PIECE: usize = 8 * 1024;

/// `data` in pieces of at most [`PIECE`] bytes, each ending after a newline where one is
/// in reach, so rotations fall between lines.
fn pieces(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = data;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let reach = rest.len().min(PIECE);
        let cut = if reach == rest.len() {
            reach
        } else {
            memchr::memrchr(b'\n', &rest[..reach]).map_or(reach, |at| at + 1)
        };
        let (piece, tail) = rest.split_at(cut);
        rest = tail;
        Some(piece)
    })
}

#[cfg(test)]
mod tests;

impl Identity {
    pub(crate) fn record(self, path: &Path, len: u64, open_line: Option<StreamKey>) -> FileRecord {
        FileRecord {
            path: path.to_string_lossy().into_owned(),
            dev: self.dev,
            ino: self.ino,
            len,
            open_line: open_line.map(Into::into),
        }
    }
}

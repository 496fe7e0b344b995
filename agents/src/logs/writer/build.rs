//! Targets → files and routes, placing each route where the ledger (or the routes it
//! replaces) left its stream.

use super::super::format::{RFC3339_MS, timestamp};
use super::super::ledger::{FileRecord, Ledger};
use super::super::rotate::{Family, Job};
use super::super::route::{Batch, Route, StreamKey, Style};
use super::super::sink::{self, Sink};
use super::{FileState, Now, Stream, Writer};
use crate::logs::error::{LogError, LogErrorKind};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::path::PathBuf;
use zpm_proto::LogStream;
use zpm_proto::logfiles::{LogFormat, LogTarget};

type RouteId = (u32, LogStream, String);

#[derive(Debug, Clone, Copy)]
struct Position {
    written: u64,
    mid_line: bool,
    saved: u64,
}

/// Where routes were: from the ledger at start, from the current routes on a change.
#[derive(Debug, Default)]
pub(super) struct Positions {
    routes: HashMap<RouteId, Position>,
}

impl Positions {
    pub(super) fn from_ledger(ledger: &Ledger) -> Self {
        let routes = ledger.routes.iter().map(|r| {
            let position = Position {
                written: r.written,
                mid_line: r.mid_line,
                saved: r.written,
            };
            ((r.id, r.stream, r.file.clone()), position)
        });
        Self {
            routes: routes.collect(),
        }
    }

    /// Routes of streams not placed yet have no position to keep.
    pub(super) fn from_routes(
        routes: &[Route],
        files: &[FileState],
        streams: &BTreeMap<StreamKey, Stream>,
    ) -> Self {
        let placed = |r: &&Route| streams.get(&r.stream).is_some_and(|s| s.placed);
        let routes = routes.iter().filter(placed).map(|r| {
            let path = files[r.file].sink.path.to_string_lossy().into_owned();
            let position = Position {
                written: r.written,
                mid_line: r.mid_line,
                saved: r.saved,
            };
            ((r.stream.0, r.stream.1, path), position)
        });
        Self {
            routes: routes.collect(),
        }
    }

    /// The least acknowledged offset of a stream's routes: everything from there on is
    /// still held by the spawner.
    fn floor(&self, (id, stream): StreamKey) -> Option<u64> {
        self.routes
            .iter()
            .filter(|((i, s, _), _)| *i == id && *s == stream)
            .map(|(_, p)| p.saved)
            .min()
    }
}

/// The (stream, file) pairs of a target.
fn route_paths(target: &LogTarget) -> Vec<(LogStream, &str)> {
    let mut paths = vec![
        (LogStream::Out, target.out_file.as_str()),
        (LogStream::Err, target.error_file.as_str()),
    ];
    if let Some(log) = &target.log_file {
        paths.extend([
            (LogStream::Out, log.as_str()),
            (LogStream::Err, log.as_str()),
        ]);
    }
    paths
}

impl Writer {
    /// Rebuilds files, routes and streams for `targets`. `old_files` keep their open file,
    /// length and line state when their path stays.
    pub(super) fn build(
        &mut self,
        targets: Vec<LogTarget>,
        positions: &Positions,
        old_files: Vec<FileState>,
        now: Now,
    ) {
        let mut old_files: HashMap<PathBuf, FileState> = old_files
            .into_iter()
            .map(|f| (f.sink.path.clone(), f))
            .collect();
        let old_streams = std::mem::take(&mut self.streams);
        self.routes.clear();
        self.files.clear();
        let mut by_path: HashMap<String, usize> = HashMap::new();
        let mut specs: Vec<(usize, RouteId)> = Vec::new();
        let mut unique = HashSet::new();
        for (t, target) in targets.iter().enumerate() {
            for (stream, path) in route_paths(target) {
                let id = (target.id, stream, path.to_owned());
                if !unique.insert(id.clone()) {
                    continue;
                }
                let index = *by_path.entry(path.to_owned()).or_insert_with(|| {
                    let file = old_files.remove(&PathBuf::from(path));
                    self.files
                        .push(file.unwrap_or_else(|| new_file(path, target)));
                    self.files.len() - 1
                });
                self.files[index].sink.rotation = target.rotation;
                specs.push((t, id));
            }
        }
        let mut sources = vec![0usize; self.files.len()];
        for (_, (_, _, path)) in &specs {
            sources[by_path[path]] += 1;
        }
        for (t, (id, stream, path)) in specs {
            let file = by_path[&path];
            let style = self.style_for(&targets[t], sources[file] > 1, file, now);
            self.files[file].passthrough = sources[file] == 1 && style == Style::Passthrough;
            self.place_route((id, stream), file, style, positions, &old_streams);
        }
        for file in &mut self.files {
            file.batch.open_line = file.open_line;
        }
        // Streams still without a target keep their hold (and its clock).
        for (key, old) in old_streams {
            if old.unknown_since.is_some() && !self.streams.contains_key(&key) {
                self.streams.insert(key, old);
            }
        }
        self.targets = targets;
    }

    fn place_route(
        &mut self,
        key: StreamKey,
        file: usize,
        style: Style,
        positions: &Positions,
        old_streams: &BTreeMap<StreamKey, Stream>,
    ) {
        let path = self.files[file].sink.path.to_string_lossy().into_owned();
        let old = old_streams.get(&key);
        let stream = self.streams.entry(key).or_default();
        stream.seen = stream.seen.or(old.and_then(|s| s.seen));
        let route = if let Some(p) = positions.routes.get(&(key.0, key.1, path)) {
            stream.placed = true;
            let mut route = Route::new(key, file, style, p.written).with_mid_line(p.mid_line);
            route.saved = p.saved.min(p.written);
            route
        } else if let Some(from) = positions.floor(key).or_else(|| {
            old.filter(|s| s.unknown_since.is_some())
                .map(|s| s.hold_from)
        }) {
            stream.placed = true;
            Route::new(key, file, style, from)
        } else {
            Route::new(key, file, style, 0)
        };
        stream.routes.push(self.routes.len());
        self.routes.push(route);
    }

    fn style_for(&mut self, target: &LogTarget, shared: bool, file: usize, now: Now) -> Style {
        if self.files[file].sink.discard {
            return Style::Passthrough;
        }
        if target.format == LogFormat::Json {
            return Style::Json {
                app_name: target.name.clone(),
            };
        }
        let date = target.date_format.as_ref().map(|pattern| {
            if let Err(e) = timestamp(pattern, &self.zone, now.wall) {
                let reason = format!("date_format {pattern:?} of {}: {e}", target.name);
                let path = self.files[file].sink.path.clone();
                self.errors.push(LogError::new(
                    LogErrorKind::Config,
                    path,
                    io::Error::other(reason),
                ));
                return RFC3339_MS.to_owned();
            }
            pattern.clone()
        });
        match (date, shared) {
            (None, false) => Style::Passthrough,
            (date, _) => Style::Lines { date },
        }
    }

    /// Brings the files back to what the ledger recorded (see [`super::super::ledger`]).
    pub(super) fn restore(&mut self, records: &[FileRecord]) {
        for record in records {
            let Some(file) = self
                .files
                .iter_mut()
                .find(|f| !f.sink.discard && f.sink.path.as_os_str() == record.path.as_str())
            else {
                continue;
            };
            file.record = Some(record.clone());
            match sink::restore(&file.sink.path, record.identity(), record.len) {
                Ok(exact) => {
                    file.open_line = record.open_line.filter(|_| exact).map(Into::into);
                    file.batch.open_line = file.open_line;
                }
                Err(e) => {
                    file.sink.restore_later(record.identity(), record.len);
                    let path = file.sink.path.clone();
                    self.errors.push(LogError::new(LogErrorKind::Open, path, e));
                }
            }
        }
    }

    /// Rotated files a previous run left uncompressed (killed while compressing), and
    /// retention, are taken care of again.
    pub(super) fn resume_compression(&mut self) {
        for file in &self.files {
            let rotation = file.sink.rotation;
            if file.sink.discard || rotation.max_size.is_none() {
                continue;
            }
            let Ok(rotated) = file.family.list() else {
                continue;
            };
            if rotation.compress {
                for plain in rotated.into_iter().filter_map(|r| r.plain) {
                    self.background.submit(Job::Compress(plain));
                }
            }
            self.background.submit(Job::Prune {
                family: file.family.clone(),
                retain: rotation.retain,
            });
        }
    }
}

fn new_file(path: &str, target: &LogTarget) -> FileState {
    let sink = Sink::new(path, target.rotation);
    FileState {
        family: Family::of(&sink.path),
        sink,
        batch: Batch::default(),
        open_line: None,
        passthrough: false,
        record: None,
        rotate_after: None,
    }
}

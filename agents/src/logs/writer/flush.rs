//! Writing batches into files: rotation at line boundaries, failures rewound, and the
//! ledger saved whenever a restart must find a file as it is now.

use super::super::ledger::{self, FileRecord, LedgerOut, RouteRecord};
use super::super::rotate::Job;
use super::super::route::{Batch, Mark};
use super::super::sink::Failure;
use super::{Now, Writer};
use crate::logs::error::{LogError, LogErrorKind};
use std::io;
use std::ops::Range;

/// A batch buffer bigger than this is not kept between writes.
const KEEP_CAPACITY: usize = 64 * 1024;

impl Writer {
    /// Writes every file's batch.
    pub(super) fn flush_files(&mut self, now: Now) -> io::Result<()> {
        let pending: Vec<usize> = (0..self.files.len())
            .filter(|&i| !self.files[i].batch.marks.is_empty())
            .collect();
        // Open them all first, so that one save records every newly opened file.
        let pending: Vec<usize> = pending
            .into_iter()
            .filter(|&i| self.open_file(i, now))
            .collect();
        if pending.iter().any(|&i| !self.identity_recorded(i))
            && let Err(e) = self.save_now()
        {
            for &i in &pending {
                let keep = self.files[i].sink.len;
                self.fail_file(i, now, keep, None);
            }
            return Err(e);
        }
        for i in pending {
            self.write_batch(i, now);
        }
        Ok(())
    }

    /// Opens file `index` if needed; on failure its batch is dropped and its routes rewound.
    fn open_file(&mut self, index: usize, now: Now) -> bool {
        match self.files[index].sink.open(now.mono) {
            Ok(_) => true,
            Err(Failure::Waiting) => {
                self.rewind_file(index);
                false
            }
            Err(Failure::Io(kind, e)) => {
                let keep = self.files[index].sink.len;
                self.fail_file(index, now, keep, Some((kind, e)));
                false
            }
        }
    }

    /// Writes file `index`'s batch, rotating before a piece that would take the file past
    /// its `max_size`, where that splits no line.
    fn write_batch(&mut self, index: usize, now: Now) {
        let batch = std::mem::take(&mut self.files[index].batch);
        let (mut start, mut done) = (0, 0);
        for (i, mark) in batch.marks.iter().enumerate() {
            let (piece_start, boundary) = match i.checked_sub(1).map(|p| &batch.marks[p]) {
                Some(previous) => (previous.end, previous.boundary),
                None => {
                    let file = &self.files[index];
                    (0, file.passthrough || file.open_line.is_none())
                }
            };
            let sink = &self.files[index].sink;
            let len_then = sink.len + (piece_start - start) as u64;
            let due = sink.rotation_due(len_then, (mark.end - piece_start) as u64);
            if boundary && due && self.rotation_allowed(index, now) {
                if !self.write_range(index, &batch, start..piece_start, (&mut done, i), now) {
                    return;
                }
                start = piece_start;
                self.rotate(index, now);
            }
        }
        let (end, marks) = (batch.bytes.len(), batch.marks.len());
        if self.write_range(index, &batch, start..end, (&mut done, marks), now) {
            self.recycle(index, batch);
        }
    }

    /// Appends `batch.bytes[range]`, committing the marks `done..upto` that landed.
    fn write_range(
        &mut self,
        index: usize,
        batch: &Batch,
        range: Range<usize>,
        (done, upto): (&mut usize, usize),
        now: Now,
    ) -> bool {
        if !self.ensure_recorded(index, now) {
            return false;
        }
        let before = self.files[index].sink.len;
        let marks = &batch.marks[*done..upto];
        match self.files[index].sink.append(&batch.bytes[range.clone()]) {
            Ok(()) => {
                self.commit(index, marks);
                *done = upto;
                true
            }
            Err((landed, e)) => {
                let reached = range.start + landed;
                let landed_marks = marks.iter().take_while(|m| m.end <= reached).count();
                self.commit(index, &marks[..landed_marks]);
                let kept_end = landed_marks
                    .checked_sub(1)
                    .map_or(range.start, |m| marks[m].end);
                let keep = before + (kept_end - range.start) as u64;
                self.fail_file(index, now, keep, Some((LogErrorKind::Write, e)));
                false
            }
        }
    }

    /// Opens file `index` and, if it is not the file the ledger knows, records it before
    /// anything is written to it: a restart then finds it as recorded (or cuts it back).
    fn ensure_recorded(&mut self, index: usize, now: Now) -> bool {
        if !self.open_file(index, now) {
            return false;
        }
        if self.identity_recorded(index) {
            return true;
        }
        match self.save_now() {
            Ok(()) => true,
            Err(e) => {
                let keep = self.files[index].sink.len;
                self.fail_file(index, now, keep, Some((LogErrorKind::Ledger, e)));
                false
            }
        }
    }

    fn commit(&mut self, index: usize, marks: &[Mark]) {
        for mark in marks {
            self.routes[mark.route].commit(mark);
            self.files[index].open_line = mark.open_line;
        }
        self.dirty |= !marks.is_empty();
    }

    /// Puts the emptied batch back, keeping its buffer unless it grew big.
    fn recycle(&mut self, index: usize, mut batch: Batch) {
        if batch.bytes.capacity() > KEEP_CAPACITY {
            batch = Batch::default();
        }
        batch.bytes.clear();
        batch.marks.clear();
        batch.open_line = self.files[index].open_line;
        self.files[index].batch = batch;
    }

    /// File `index` failed: it keeps its first `keep` bytes, is tried again after
    /// [`super::Options::retry_every`], and its routes forget what is not in it.
    fn fail_file(
        &mut self,
        index: usize,
        now: Now,
        keep: u64,
        error: Option<(LogErrorKind, io::Error)>,
    ) {
        let retry = self.options.retry_every;
        let first = self.files[index].sink.failed(now.mono, retry, keep);
        self.rewind_file(index);
        if let (true, Some((kind, source))) = (first, error) {
            let path = self.files[index].sink.path.clone();
            tracing::warn!(path = %path.display(), error = %source, "log file failed");
            self.errors.push(LogError::new(kind, path, source));
        }
    }

    fn rewind_file(&mut self, index: usize) {
        let file = &mut self.files[index];
        file.batch = Batch {
            open_line: file.open_line,
            ..Batch::default()
        };
        for route in self.routes.iter_mut().filter(|r| r.file == index) {
            route.rewind();
        }
    }

    fn rotation_allowed(&self, index: usize, now: Now) -> bool {
        self.files[index]
            .rotate_after
            .is_none_or(|after| now.mono >= after)
    }

    /// Moves file `index` to its rotated name; the next write opens a fresh file. Gzip and
    /// retention run in the background.
    fn rotate(&mut self, index: usize, now: Now) {
        // Saved first: once the file has moved, a restart finds another file at the path,
        // and must know that everything in the moved one is recorded.
        if let Err(e) = self.save_now() {
            self.rotation_failed(index, now, LogErrorKind::Ledger, e);
            return;
        }
        let file = &mut self.files[index];
        let to = file.family.new_name(&self.zone, now.wall);
        if let Err(e) = file.sink.rotate(&to) {
            self.rotation_failed(index, now, LogErrorKind::Rotate, e);
            return;
        }
        file.rotate_after = None;
        file.open_line = None;
        if file.sink.rotation.compress {
            self.background.submit(Job::Compress(to));
        }
        let (family, retain) = (file.family.clone(), file.sink.rotation.retain);
        self.background.submit(Job::Prune { family, retain });
    }

    /// The file stays and grows past its size until the next try.
    fn rotation_failed(&mut self, index: usize, now: Now, kind: LogErrorKind, e: io::Error) {
        let file = &mut self.files[index];
        if file.rotate_after.is_none() {
            self.errors
                .push(LogError::new(kind, file.sink.path.clone(), e));
        }
        file.rotate_after = Some(now.mono + self.options.retry_every);
    }

    /// Saves the ledger if anything changed since the last save. Only what a saved ledger
    /// covers is acknowledged by [`Writer::cursors`].
    pub fn save(&mut self) -> io::Result<()> {
        if self.dirty {
            self.save_now()?;
        }
        Ok(())
    }

    fn save_now(&mut self) -> io::Result<()> {
        let routes = self
            .routes
            .iter()
            .filter(|r| self.streams.get(&r.stream).is_some_and(|s| s.placed))
            .map(|r| RouteRecord {
                id: r.stream.0,
                stream: r.stream.1,
                file: self.files[r.file].sink.path.to_string_lossy().into_owned(),
                written: r.written,
                mid_line: r.mid_line,
            })
            .collect();
        let files: Vec<Option<FileRecord>> = self
            .files
            .iter()
            .map(|f| match f.sink.identity {
                Some(identity) => Some(identity.record(&f.sink.path, f.sink.len, f.open_line)),
                None => f.record.clone(),
            })
            .collect();
        let ledger = LedgerOut {
            version: ledger::VERSION,
            epoch: self.epoch,
            targets: &self.targets,
            routes,
            files: files.iter().flatten().collect(),
        };
        ledger::save(&self.state_path, &ledger)?;
        for route in &mut self.routes {
            route.saved = route.written;
        }
        for (file, record) in self.files.iter_mut().zip(files) {
            file.record = record;
        }
        self.dirty = false;
        Ok(())
    }
}

//! One log file: opened lazily in append mode, its length and identity tracked for the
//! ledger, failures remembered and retried after a pause.

use super::error::LogErrorKind;
use serde::{Deserialize, Serialize};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use zpm_proto::logfiles::{DISCARD, Rotation};

/// Which file a path named: a file moved away and replaced has another identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Identity {
    pub dev: u64,
    pub ino: u64,
}

impl Identity {
    fn of(meta: &fs::Metadata) -> Self {
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
}

/// Why nothing can be written now.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Failed recently; not tried again before its retry time.
    Waiting,
    /// Failed now.
    Io(LogErrorKind, io::Error),
}

#[derive(Debug)]
pub(crate) struct Sink {
    pub path: PathBuf,
    /// `/dev/null`: never opened, never rotated.
    pub discard: bool,
    pub rotation: Rotation,
    file: Option<File>,
    /// Bytes in the file, as far as this sink knows (exact while it is the only writer).
    pub len: u64,
    /// The open file's identity.
    pub identity: Option<Identity>,
    /// After a failed write: cut the file back to this length, if it is still this file,
    /// before appending again, so a half-written line is not left behind.
    cut_back: Option<(Identity, u64)>,
    /// The ledger's record of this file, not applied yet ([`restore`] failed at start).
    restore: Option<(Identity, u64)>,
    /// While failing: not before then.
    retry_at: Option<Instant>,
    /// The current failure was reported.
    reported: bool,
}

impl Sink {
    pub(crate) fn new(path: &str, rotation: Rotation) -> Self {
        Self {
            path: PathBuf::from(path),
            discard: path == DISCARD,
            rotation,
            file: None,
            len: 0,
            identity: None,
            cut_back: None,
            restore: None,
            retry_at: None,
            reported: false,
        }
    }

    /// Not waiting for a retry.
    pub(crate) fn ready(&self, now: Instant) -> bool {
        self.retry_at.is_none_or(|at| now >= at)
    }

    /// The last attempt failed and nothing was written since: the outage goes on.
    pub(crate) fn in_outage(&self) -> bool {
        self.reported
    }

    /// When a failed file will be tried again.
    pub(crate) fn retry_at(&self) -> Option<Instant> {
        self.retry_at
    }

    /// Opens the file if it is not open. `Ok(true)` when it was opened now.
    pub(crate) fn open(&mut self, now: Instant) -> Result<bool, Failure> {
        if self.file.is_some() {
            return Ok(false);
        }
        if !self.ready(now) {
            return Err(Failure::Waiting);
        }
        let (file, identity, len) = self
            .open_file()
            .map_err(|e| Failure::Io(LogErrorKind::Open, e))?;
        self.file = Some(file);
        self.identity = Some(identity);
        self.len = len;
        self.retry_at = None;
        Ok(true)
    }

    fn open_file(&mut self) -> io::Result<(File, Identity, u64)> {
        if let Some((identity, len)) = self.restore {
            restore(&self.path, identity, len)?;
            self.restore = None;
        }
        if let Some(dir) = self.path.parent() {
            fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o640)
            .open(&self.path)?;
        let meta = file.metadata()?;
        let identity = Identity::of(&meta);
        let mut len = meta.len();
        if let Some((cut_identity, cut_len)) = self.cut_back.take()
            && cut_identity == identity
            && len > cut_len
        {
            file.set_len(cut_len)?;
            len = cut_len;
        }
        Ok((file, identity, len))
    }

    /// Appends all of `bytes`; on failure, how many landed before it.
    pub(crate) fn append(&mut self, bytes: &[u8]) -> Result<(), (usize, io::Error)> {
        let Some(file) = self.file.as_mut() else {
            return Err((0, io::Error::other("log file not open")));
        };
        let mut landed = 0;
        while landed < bytes.len() {
            match file.write(&bytes[landed..]) {
                Ok(0) => return Err((landed, io::ErrorKind::WriteZero.into())),
                Ok(n) => {
                    landed += n;
                    self.len += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err((landed, e)),
            }
        }
        self.reported = false;
        Ok(())
    }

    /// Records a failure: the file is closed, to be opened again at the next try after
    /// `retry`, cut back to `keep` bytes first. True when this failure is to be reported
    /// (the first since the file last worked).
    pub(crate) fn failed(&mut self, now: Instant, retry: Duration, keep: u64) -> bool {
        if let Some(identity) = self.identity {
            self.cut_back = Some((identity, keep));
        }
        self.len = keep;
        self.file = None;
        self.retry_at = Some(now + retry);
        !std::mem::replace(&mut self.reported, true)
    }

    /// Applies the ledger's record at the next open (it could not be applied at start).
    pub(crate) fn restore_later(&mut self, identity: Identity, len: u64) {
        self.restore = Some((identity, len));
    }

    /// A failed file is tried again at the next write.
    pub(crate) fn retry_now(&mut self) {
        self.retry_at = None;
    }

    /// Closes the file; the next write opens the path again (after an external rotation).
    pub(crate) fn close(&mut self) {
        self.file = None;
        self.identity = None;
        self.cut_back = None;
    }

    /// Empties the file (`zpm flush`).
    pub(crate) fn truncate(&mut self, now: Instant) -> Result<(), Failure> {
        self.open(now)?;
        if let Some(file) = &self.file {
            file.set_len(0)
                .map_err(|e| Failure::Io(LogErrorKind::Truncate, e))?;
        }
        self.len = 0;
        Ok(())
    }

    /// Whether appending `add` bytes to a file of `len` bytes calls for a rotation first.
    pub(crate) fn rotation_due(&self, len: u64, add: u64) -> bool {
        !self.discard && len > 0 && self.rotation.max_size.is_some_and(|max| len + add > max)
    }

    /// Moves the file to `to`; the next write opens a fresh one.
    pub(crate) fn rotate(&mut self, to: &Path) -> io::Result<()> {
        self.close();
        fs::rename(&self.path, to)?;
        self.len = 0;
        Ok(())
    }
}

/// Brings the file at `path` back to what the ledger recorded of it: the same file longer
/// than `len` is cut to `len`; another file (the recorded one was rotated or replaced after
/// the save, so everything in this one came later) is emptied; a shorter or missing file is
/// left as is. Returns whether the file now is exactly the recorded one.
pub(crate) fn restore(path: &Path, identity: Identity, len: u64) -> io::Result<bool> {
    let meta = match fs::metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        other => other?,
    };
    let keep = if Identity::of(&meta) == identity {
        len
    } else {
        0
    };
    if meta.len() > keep {
        OpenOptions::new().write(true).open(path)?.set_len(keep)?;
    }
    Ok(keep == len && meta.len() >= len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_lazily_creating_dirs_with_mode_0640_and_appends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/out.log");
        let mut sink = Sink::new(path.to_str().unwrap(), Rotation::default());
        assert!(!path.exists());
        let now = Instant::now();
        assert!(sink.open(now).unwrap());
        assert!(!sink.open(now).unwrap());
        sink.append(b"one\n").unwrap();
        sink.close();
        sink.open(now).unwrap();
        sink.append(b"two\n").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"one\ntwo\n");
        assert_eq!(sink.len, 8);
        let mode = fs::metadata(&path).unwrap().mode() & 0o777;
        assert_eq!(mode & !0o640, 0, "mode {mode:o}");
    }

    #[test]
    fn restore_cuts_the_same_file_and_empties_a_replaced_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.log");
        fs::write(&path, b"0123456789").unwrap();
        let identity = Identity::of(&fs::metadata(&path).unwrap());
        assert!(restore(&path, identity, 4).unwrap());
        assert_eq!(fs::read(&path).unwrap(), b"0123");
        assert!(!restore(&path, identity, 8).unwrap(), "shorter: as is");
        assert_eq!(fs::read(&path).unwrap(), b"0123");
        fs::rename(&path, dir.path().join("moved")).unwrap();
        assert!(!restore(&path, identity, 4).unwrap(), "missing: as is");
        fs::write(&path, b"later").unwrap();
        assert!(!restore(&path, identity, 4).unwrap());
        assert_eq!(
            fs::read(&path).unwrap(),
            b"",
            "another file: all of it came later"
        );
    }
}

//! One God (and one agent per role) per home: an exclusive flock held for the process's
//! life. The kernel releases it when the process dies, however it dies.

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another process holds {0} (already running)")]
    Held(PathBuf),
    #[error("cannot lock {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Held while alive; dropping it releases the lock.
#[derive(Debug)]
pub struct HomeLock {
    _file: File,
}

impl HomeLock {
    pub fn acquire(path: &Path) -> Result<Self, LockError> {
        let io = |source| LockError::Io {
            path: path.to_owned(),
            source,
        };
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file }),
            Err(TryLockError::WouldBlock) => Err(LockError::Held(path.to_owned())),
            Err(TryLockError::Error(e)) => Err(io(e)),
        }
    }
}

/// True if nobody holds the lock at `path` (probing takes it for a moment: never probe a
/// lock a process may be taking right now). An unreadable lock counts as held.
pub fn is_free(path: &Path) -> bool {
    HomeLock::acquire(path).is_ok()
}

/// The pid holding the flock on `path`, from `/proc/locks` (read-only: it never disturbs
/// the holder). `None` if nobody holds it or it cannot be told.
pub fn holder(path: &Path) -> Option<u32> {
    use std::os::unix::fs::MetadataExt as _;
    let inode = std::fs::metadata(path).ok()?.ino();
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    locks.lines().find_map(|line| {
        // "1: FLOCK  ADVISORY  WRITE 1234 00:2e:5678 0 EOF"; blocked waiters are "-> ..."
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.get(1) != Some(&"FLOCK") {
            return None;
        }
        let file_inode = fields.get(5)?.rsplit(':').next()?.parse::<u64>().ok()?;
        (file_inode == inode).then(|| fields.get(4)?.parse().ok())?
    })
}

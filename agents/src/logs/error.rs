//! What went wrong writing logs, reported once per outage.

use std::io;
use std::path::PathBuf;

/// What was being done when a [`LogError`] happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogErrorKind {
    Open,
    Write,
    Rotate,
    Truncate,
    /// Gzip or retention of rotated files (in the background).
    Rotated,
    /// Saving or reading the ledger.
    Ledger,
    /// A target that cannot be honoured as given (e.g. an invalid `date_format`).
    Config,
}

/// A failure of the log writer. A file that fails is reported once, then retried quietly
/// (every [`super::Options::retry_every`]) until it works again; its bytes stay
/// unacknowledged meanwhile, so nothing is lost.
#[derive(Debug, thiserror::Error)]
#[error("log {kind:?} failed for {}: {source}", path.display())]
pub struct LogError {
    pub kind: LogErrorKind,
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

impl LogError {
    pub(crate) fn new(kind: LogErrorKind, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self {
            kind,
            path: path.into(),
            source,
        }
    }
}

//! The ledger: what is in the log files, saved atomically after every batch of writes and
//! before the next fetch acknowledges those bytes. A JSON document:
//!
//! ```json
//! {"version": 1,
//!  "targets": [<LogTarget>...],
//!  "routes": [{"id": 4, "stream": "out", "file": "/logs/api-out.log",
//!              "written": 1234, "mid_line": false}],
//!  "files": [{"path": "/logs/api-out.log", "dev": 2049, "ino": 77, "len": 5678,
//!             "open_line": {"id": 4, "stream": "out"}}]}
//! ```
//!
//! - `routes[].written`: every byte of the stream below this offset is in `file`;
//!   `mid_line`: the file holds the start of a line of this route, whose rest follows
//!   without a prefix.
//! - `files[]`: the file (device and inode) and its length after the last write; and
//!   whose unterminated line it ends with, if any. On start, the same file longer than
//!   `len` is cut back to `len`; a different file at that path (the recorded one was
//!   rotated or replaced after the save, so all of this one came later) is emptied; a
//!   shorter or missing file is taken as is. Every route then resumes from `written`.
//! - `targets`: the last targets set, so a restarted agent can write before God answers.

use super::route::StreamKey;
use super::sink::Identity;
use serde::{Deserialize, Serialize};
use std::io;
use std::path::Path;
use zpm_proto::LogStream;
use zpm_proto::logfiles::LogTarget;

pub(crate) const VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Ledger {
    pub version: u32,
    /// The spawner epoch the route offsets are in.
    #[serde(default)]
    pub epoch: Option<u64>,
    #[serde(default)]
    pub targets: Vec<LogTarget>,
    #[serde(default)]
    pub routes: Vec<RouteRecord>,
    #[serde(default)]
    pub files: Vec<FileRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RouteRecord {
    pub id: u32,
    pub stream: LogStream,
    pub file: String,
    pub written: u64,
    #[serde(default)]
    pub mid_line: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FileRecord {
    pub path: String,
    pub dev: u64,
    pub ino: u64,
    pub len: u64,
    #[serde(default)]
    pub open_line: Option<LineOwner>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LineOwner {
    pub id: u32,
    pub stream: LogStream,
}

impl FileRecord {
    pub(crate) fn identity(&self) -> Identity {
        Identity {
            dev: self.dev,
            ino: self.ino,
        }
    }
}

impl From<StreamKey> for LineOwner {
    fn from((id, stream): StreamKey) -> Self {
        Self { id, stream }
    }
}

impl From<LineOwner> for StreamKey {
    fn from(owner: LineOwner) -> Self {
        (owner.id, owner.stream)
    }
}

/// The saved ledger; `None` if there is none yet.
pub(crate) fn load(path: &Path) -> io::Result<Option<Ledger>> {
    let bytes = match std::fs::read(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        other => other?,
    };
    let ledger: Ledger = serde_json::from_slice(&bytes).map_err(io::Error::other)?;
    if ledger.version != VERSION {
        return Err(io::Error::other(format!(
            "ledger version {} (this build reads {VERSION})",
            ledger.version
        )));
    }
    Ok(Some(ledger))
}

/// What is saved: a [`Ledger`] borrowing what it can from the writer.
#[derive(Debug, Serialize)]
pub(crate) struct LedgerOut<'a> {
    pub version: u32,
    pub epoch: Option<u64>,
    pub targets: &'a [LogTarget],
    pub routes: Vec<RouteRecord>,
    pub files: Vec<&'a FileRecord>,
}

pub(crate) fn save(path: &Path, ledger: &LedgerOut<'_>) -> io::Result<()> {
    let bytes = serde_json::to_vec(ledger).map_err(io::Error::other)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    zpm_host::atomic::write(path, &bytes)
}

/// The targets recorded in the ledger at `path`, to start writing with after a restart
/// before God has sent the current ones.
pub fn saved_targets(path: &Path) -> io::Result<Option<Vec<LogTarget>>> {
    Ok(load(path)?.map(|ledger| ledger.targets))
}

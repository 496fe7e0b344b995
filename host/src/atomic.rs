//! Replacing a file atomically, with one durability rule for all of zpm: write a temp file
//! beside it, fsync it, rename it over the target, fsync the directory. A reader (or a
//! process started after a crash or power loss) sees the old file or the new one, whole.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// Replaces `path` with `bytes`. The temp name is unique per process and call, so writers
/// in different threads or processes never share one (the last rename wins, whole).
pub fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let temp = temp_beside(path);
    let written = write_synced(&temp, bytes).and_then(|()| std::fs::rename(&temp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(e);
    }
    sync_dir(path)
}

fn write_synced(temp: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::File::create(temp)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Makes the rename itself durable.
fn sync_dir(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => std::fs::File::open(dir)?.sync_all(),
        _ => std::fs::File::open(".")?.sync_all(),
    }
}

fn temp_beside(path: &Path) -> PathBuf {
    static CALLS: AtomicU32 = AtomicU32::new(0);
    let n = CALLS.fetch_add(1, Ordering::Relaxed);
    let name = path
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy());
    path.with_file_name(format!(".{name}.{}-{n}.tmp", std::process::id()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn replaces_whole_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write(&path, b"old").unwrap();
        write(&path, b"new and longer").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new and longer");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["state.json"]);
    }

    #[test]
    fn a_failed_write_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gone").join("x");
        assert!(write(&path, b"x").is_err());
        let target = dir.path().join("t");
        write(&target, b"keep").unwrap();
        std::fs::create_dir(dir.path().join("t2")).unwrap();
        // Renaming a file over a directory fails: the directory must stay as it was.
        assert!(write(&dir.path().join("t2"), b"x").is_err());
        assert_eq!(std::fs::read(&target).unwrap(), b"keep");
        assert!(dir.path().join("t2").is_dir());
    }
}

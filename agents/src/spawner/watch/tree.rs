//! Watches a tree one directory at a time (non-recursive inotify watches), skipping the
//! directories the filter ignores, so `node_modules` or `.git` cost no watch at all —
//! notify's own recursive mode would watch every directory beneath.

use super::filter::Filter;
use notify::{RecursiveMode, Watcher as _};
use std::path::{Path, PathBuf};

/// Most directories one app's watch covers; past it the rest is left unwatched (and said
/// so), a bound on memory and on the kernel's per-user inotify watches.
pub const MAX_DIRECTORIES: usize = 100_000;
/// Problems kept for the report; more are counted.
const MAX_PROBLEMS: usize = 4;

#[derive(Default)]
pub struct Problems {
    pub messages: Vec<String>,
    pub more: usize,
}

impl Problems {
    fn push(&mut self, message: String) {
        if self.messages.len() < MAX_PROBLEMS {
            self.messages.push(message);
        } else {
            self.more += 1;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    pub fn summary(&self) -> String {
        let text = self.messages.join("; ");
        if self.more == 0 {
            return text;
        }
        format!("{text}; and {} more", self.more)
    }
}

/// Watches `root` (a file, or a directory and the directories beneath it that the filter
/// does not ignore). `directories` counts directories across calls, for [`MAX_DIRECTORIES`].
pub fn add(
    watcher: &mut notify::RecommendedWatcher,
    root: &Path,
    filter: &Filter,
    directories: &mut usize,
    problems: &mut Problems,
) {
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        if *directories >= MAX_DIRECTORIES {
            problems.push(format!(
                "more than {MAX_DIRECTORIES} directories under {}; the rest is not directories",
                root.display()
            ));
            return;
        }
        if let Err(e) = watcher.watch(&dir, RecursiveMode::NonRecursive) {
            let limit = matches!(e.kind, notify::ErrorKind::MaxFilesWatch);
            problems.push(describe(&dir, &e));
            if limit {
                return;
            }
            continue;
        }
        *directories += 1;
        pending.extend(subdirectories(&dir, filter));
    }
}

fn describe(path: &Path, e: &notify::Error) -> String {
    match &e.kind {
        notify::ErrorKind::MaxFilesWatch => format!(
            "cannot watch {}: the inotify watch limit is reached (fs.inotify.max_user_watches)",
            path.display()
        ),
        notify::ErrorKind::Io(io) => format!("cannot watch {}: {io}", path.display()),
        other => format!("cannot watch {}: {other:?}", path.display()),
    }
}

/// The directories right under `dir` not ignored (symbolic links are not followed: a
/// link to `/` must not watch the whole disk). Unreadable ones are skipped.
fn subdirectories(dir: &Path, filter: &Filter) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_dir()))
        .map(|entry| entry.path())
        .filter(|path| !filter.ignored(path))
        .collect()
}

//! Which changed paths matter: not zpm's own files ([`OwnFiles`]), not under an
//! always-ignored directory (`node_modules`, `.git`), not matching an `ignore_watch` glob
//! (against the path relative to the watched root, and against each of its components),
//! and not mere reads.

use globset::{Glob, GlobSet, GlobSetBuilder};
use notify::EventKind;
use std::path::{Component, Path, PathBuf};
use zpm_proto::watch::ALWAYS_IGNORED;

pub struct Filter {
    roots: Vec<PathBuf>,
    globs: GlobSet,
    own: OwnFiles,
}

/// Files zpm itself writes, which may lie inside a watched tree: never a change, or every
/// line the app logs would restart it (PM2's classic loop). The files directly in
/// `$ZPM_HOME` (state, daemon logs, sockets), its `logs/` and `notify/` directories, and the
/// app's own log files under their per-instance and rotated names (`out.log` →
/// `out-3.log`, `out.log.1.gz`: same directory, same stem, same extension after it). An
/// app's own directories inside `$ZPM_HOME` are still watched.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OwnFiles {
    pub home: PathBuf,
    pub dirs: Vec<PathBuf>,
    pub logs: Vec<PathBuf>,
}

impl OwnFiles {
    pub fn of(logs: &zpm_proto::logfiles::AppLogs, home: &zpm_host::home::Home) -> Self {
        let files = [&logs.out_file, &logs.error_file, &logs.log_file];
        Self {
            home: home.root().to_path_buf(),
            dirs: vec![home.logs_dir(), home.notify_dir()],
            logs: files.into_iter().flatten().map(PathBuf::from).collect(),
        }
    }

    fn covers(&self, path: &Path) -> bool {
        self.dirs.iter().any(|dir| path.starts_with(dir))
            || (path.parent() == Some(self.home.as_path()) && !path.is_dir())
            || self.logs.iter().any(|log| is_log_of(path, log))
    }
}

/// `path` is `log` or one of its per-instance or rotated names.
fn is_log_of(path: &Path, log: &Path) -> bool {
    let (Some(name), Some(stem)) = (
        path.file_name().and_then(|n| n.to_str()),
        log.file_stem().and_then(|s| s.to_str()),
    ) else {
        return false;
    };
    let extension = log
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| format!(".{e}"))
        .unwrap_or_default();
    path.parent() == log.parent()
        && name
            .strip_prefix(stem)
            .is_some_and(|rest| rest.is_empty() || rest.contains(extension.as_str()))
}

impl Filter {
    /// A glob that does not parse is left out (and said so in `bad`): validation only
    /// bounds them, so a typo must not stop the watch.
    pub fn new(roots: Vec<PathBuf>, ignore: &[String], own: OwnFiles) -> (Self, Vec<String>) {
        let mut builder = GlobSetBuilder::new();
        let mut bad = Vec::new();
        for pattern in ignore {
            match Glob::new(pattern) {
                Ok(glob) => {
                    builder.add(glob);
                }
                Err(e) => bad.push(format!("ignore_watch {pattern:?}: {e}")),
            }
        }
        let globs = builder.build().unwrap_or_else(|e| {
            bad.push(format!("ignore_watch: {e}"));
            GlobSet::empty()
        });
        (Self { roots, globs, own }, bad)
    }

    pub fn roots(&self) -> &[PathBuf] {
        &self.roots
    }

    /// True for a path not to react to (nor to descend into, for a directory).
    pub fn ignored(&self, path: &Path) -> bool {
        if self.own.covers(path) {
            return true;
        }
        let relative = self
            .roots
            .iter()
            .filter_map(|root| path.strip_prefix(root).ok())
            .min_by_key(|rel| rel.as_os_str().len());
        // Outside every root (a root file's own path, or a stale event): its name decides.
        let relative = relative
            .filter(|rel| !rel.as_os_str().is_empty())
            .unwrap_or_else(|| path.file_name().map_or(path, Path::new));
        if self.globs.is_match(relative) {
            return true;
        }
        relative.components().any(|component| match component {
            Component::Normal(name) => {
                ALWAYS_IGNORED.iter().any(|i| name == *i) || self.globs.is_match(name)
            }
            _ => false,
        })
    }

    /// The first path of `event` that counts as a change, if any.
    pub fn relevant<'e>(&self, event: &'e notify::Event) -> Option<&'e Path> {
        if matches!(event.kind, EventKind::Access(_)) {
            return None;
        }
        event
            .paths
            .iter()
            .map(PathBuf::as_path)
            .find(|path| !self.ignored(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(ignore: &[&str]) -> Filter {
        let ignore: Vec<String> = ignore.iter().map(|s| (*s).to_owned()).collect();
        let own = OwnFiles::of(
            &zpm_proto::logfiles::AppLogs {
                out_file: Some("/app/logs/out.log".into()),
                ..Default::default()
            },
            &zpm_host::home::Home::new("/app/.zpm"),
        );
        let (filter, bad) = Filter::new(vec![PathBuf::from("/app")], &ignore, own);
        assert!(bad.is_empty(), "{bad:?}");
        filter
    }

    #[test]
    fn node_modules_and_git_are_ignored_at_any_depth() {
        let f = filter(&[]);
        assert!(f.ignored(Path::new("/app/node_modules/x/index.js")));
        assert!(f.ignored(Path::new("/app/lib/node_modules")));
        assert!(f.ignored(Path::new("/app/.git/HEAD")));
        assert!(!f.ignored(Path::new("/app/src/main.js")));
        assert!(!f.ignored(Path::new("/app/node_modules_not/x")));
    }

    #[test]
    fn globs_match_the_relative_path_or_a_component() {
        let f = filter(&["*.log", "tmp", "build/**"]);
        assert!(f.ignored(Path::new("/app/out.log")));
        assert!(f.ignored(Path::new("/app/deep/er/out.log")));
        assert!(f.ignored(Path::new("/app/a/tmp/b.js")));
        assert!(f.ignored(Path::new("/app/build/x/y.js")));
        assert!(!f.ignored(Path::new("/app/src/build.js")));
        assert!(!f.ignored(Path::new("/app/src/main.js")));
    }

    #[test]
    fn a_bad_glob_is_reported_and_skipped() {
        let (f, bad) = Filter::new(
            vec![PathBuf::from("/app")],
            &["a[".to_owned(), "*.tmp".to_owned()],
            OwnFiles::default(),
        );
        assert_eq!(bad.len(), 1, "{bad:?}");
        assert!(f.ignored(Path::new("/app/x.tmp")));
    }

    #[test]
    fn zpm_home_and_the_apps_own_logs_are_never_changes() {
        let f = filter(&[]);
        assert!(f.ignored(Path::new("/app/.zpm/logs/app-out-0.log")));
        assert!(f.ignored(Path::new("/app/.zpm/notify/3-1")));
        assert!(f.ignored(Path::new("/app/.zpm/state.json")));
        assert!(
            !f.ignored(Path::new("/app/.zpm/src/main.js")),
            "an app's files there"
        );
        for log in ["out.log", "out-3.log", "out.log.1", "out-0.log.2.gz", "out"] {
            assert!(f.ignored(&Path::new("/app/logs").join(log)), "{log}");
        }
        for other in [
            "/app/logs/out.js",
            "/app/logs/other.log",
            "/app/out.log",
            "/app/src/a.js",
        ] {
            assert!(!f.ignored(Path::new(other)), "{other}");
        }
    }

    #[test]
    fn reads_are_not_changes() {
        let f = filter(&[]);
        let read = notify::Event::new(EventKind::Access(notify::event::AccessKind::Any))
            .add_path(PathBuf::from("/app/a.js"));
        assert!(f.relevant(&read).is_none());
        let write = notify::Event::new(EventKind::Modify(notify::event::ModifyKind::Any))
            .add_path(PathBuf::from("/app/node_modules/a.js"))
            .add_path(PathBuf::from("/app/a.js"));
        assert_eq!(f.relevant(&write), Some(Path::new("/app/a.js")));
    }
}

//! God's desired state on disk: written atomically (temp file, fsync, rename, fsync of the
//! directory) after every change, read at start. A file that does not parse is kept aside
//! (`state.json.corrupt-<ms>`) and reported, never silently replaced by nothing.

use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::path::{Path, PathBuf};
use zpm_proto::AppSpec;

pub const STATE_VERSION: u32 = 1;

/// What the user asked for an app instance to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Desired {
    Running,
    Stopped,
}

/// One app instance as saved. Borrowed from the table when written (a fleet's specs are
/// not copied for each write), owned when read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedApp<'a> {
    pub id: u32,
    pub instance: u32,
    pub desired: Desired,
    pub restarts: u32,
    pub spec: Cow<'a, AppSpec>,
    /// The host it runs on; absent in older files (God's own host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<Cow<'a, str>>,
    /// The dependencies it was waiting for when saved: never spawned yet.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waiting: Vec<zpm_proto::depends::Dependency>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SavedState<'a> {
    pub version: u32,
    pub next_id: u32,
    pub apps: Vec<SavedApp<'a>>,
}

/// What loading found.
#[derive(Debug)]
pub struct Loaded {
    pub state: SavedState<'static>,
    /// Set when the file was unreadable and moved aside: say so to the user.
    pub warning: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot write {path}: {source}")]
pub struct PersistError {
    path: PathBuf,
    #[source]
    source: std::io::Error,
}

pub fn load(path: &Path) -> Loaded {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Loaded {
                state: SavedState::default(),
                warning: None,
            };
        }
        Err(e) => return set_aside(path, &format!("unreadable: {e}")),
    };
    match serde_json::from_slice::<SavedState>(&bytes) {
        Ok(state) if state.version == STATE_VERSION => Loaded {
            state,
            warning: None,
        },
        Ok(state) => set_aside(path, &format!("unknown state version {}", state.version)),
        Err(e) => set_aside(path, &format!("corrupt: {e}")),
    }
}

fn set_aside(path: &Path, why: &str) -> Loaded {
    let aside = path.with_extension(format!("json.corrupt-{}", zpm_bus::now_ms()));
    let moved = std::fs::rename(path, &aside);
    let warning = match moved {
        Ok(()) => format!(
            "{} was {why}; kept as {} and started empty",
            path.display(),
            aside.display()
        ),
        Err(e) => format!(
            "{} was {why} and could not be moved aside ({e}); started empty",
            path.display()
        ),
    };
    tracing::error!("{warning}");
    Loaded {
        state: SavedState::default(),
        warning: Some(warning),
    }
}

/// Replaces `path` with `state` atomically: readers see the old or the new file, whole.
/// The file's bytes. Compact: with thousands of apps the pretty form is half again as
/// large, for nobody.
pub fn encode(state: &SavedState<'_>) -> std::io::Result<Vec<u8>> {
    serde_json::to_vec(state).map_err(std::io::Error::other)
}

/// Replaces `path` with `bytes` (from [`encode`]) atomically.
pub fn write(path: &Path, bytes: &[u8]) -> Result<(), PersistError> {
    zpm_host::atomic::write(path, bytes).map_err(|source| PersistError {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> SavedState<'static> {
        let spec = AppSpec::new("api", vec!["node".into(), "api.js".into()], "/srv");
        SavedState {
            version: STATE_VERSION,
            next_id: 4,
            apps: vec![SavedApp {
                id: 3,
                instance: 0,
                desired: Desired::Running,
                restarts: 2,
                spec: Cow::Owned(spec),
                host: Some("h2".into()),
                waiting: vec![zpm_proto::depends::Dependency {
                    name: "db".into(),
                    condition: zpm_proto::depends::Condition::Healthy,
                }],
            }],
        }
    }

    #[test]
    fn round_trip_and_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        assert_eq!(load(&path).state, SavedState::default());
        write(&path, &encode(&state()).unwrap()).unwrap();
        let loaded = load(&path);
        assert_eq!(loaded.state, state());
        assert!(loaded.warning.is_none());
        assert!(!dir.path().join("state.json.tmp").exists());
    }

    #[test]
    fn corrupt_file_is_kept_aside_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::write(&path, b"{\"version\": 1, \"apps\": [tru").unwrap();
        let loaded = load(&path);
        assert_eq!(loaded.state.apps.len(), 0);
        let warning = loaded.warning.unwrap();
        assert!(warning.contains("corrupt"), "{warning}");
        let aside: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(Result::ok)
            .collect();
        assert_eq!(aside.len(), 1);
        assert_eq!(
            std::fs::read(aside[0].path()).unwrap(),
            b"{\"version\": 1, \"apps\": [tru"
        );
    }
}

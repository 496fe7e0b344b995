//! `$ZPM_HOME/remote.toml`: this home belongs to a God on another host. Written by
//! `zpm agent … --connect` and removed when it stops cleanly, so whoever starts "the
//! daemon" of this home later (the CLI, the spawner relaunching it after a crash) starts
//! the stand-in that joins that God again, never a God of its own.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Joined {
    /// God's `tcp://HOST:PORT`.
    pub connect: String,
    /// Absolute path of the tunnel key.
    pub key_file: PathBuf,
    /// The name this host's agents report.
    pub host: String,
    /// The agent roles kept on this host.
    pub roles: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum JoinedError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is damaged ({message}); remove it to make this home local again")]
    Invalid { path: PathBuf, message: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Joined {
    /// The file's settings; `None` if this home is not joined to another host's God.
    pub fn load(path: &Path) -> Result<Option<Self>, JoinedError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(JoinedError::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        toml::from_str(&text)
            .map(Some)
            .map_err(|e| JoinedError::Invalid {
                path: path.to_owned(),
                message: e.to_string().trim().to_owned(),
            })
    }

    pub fn save(&self, path: &Path) -> Result<(), JoinedError> {
        let text = toml::to_string(self).map_err(|e| JoinedError::Invalid {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        crate::atomic::write(path, text.as_bytes()).map_err(|source| JoinedError::Write {
            path: path.to_owned(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn round_trips_and_absent_means_local() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("remote.toml");
        assert_eq!(Joined::load(&path).unwrap(), None);
        let joined = Joined {
            connect: "tcp://10.0.0.1:7100".into(),
            key_file: "/etc/zpm/key".into(),
            host: "h2".into(),
            roles: vec!["spawner".into(), "logs".into()],
        };
        joined.save(&path).unwrap();
        assert_eq!(Joined::load(&path).unwrap(), Some(joined));
        std::fs::write(&path, "connect = 3\n").unwrap();
        let err = Joined::load(&path).unwrap_err().to_string();
        assert!(err.contains("remove it"), "{err}");
    }
}

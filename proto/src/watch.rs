//! `watch`: restart (or reload, if ready-gated) an app when files under its paths change;
//! watched by the spawner that runs it (agents/src/spawner/watch/).

use serde::{Deserialize, Serialize};

/// Quiet time after a change before the app is restarted (one restart per burst).
pub const DEFAULT_DELAY_MS: u64 = 500;
/// Ignored under every watched path, whatever `ignore_watch` says.
pub const ALWAYS_IGNORED: [&str; 2] = ["node_modules", ".git"];

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watch {
    /// Off keeps the paths for `zpm watch` to turn it back on.
    pub enabled: bool,
    /// Absolute paths (files or directories, watched recursively); empty: the app's cwd.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    /// Globs of paths not to react to, matched against the path relative to the watched
    /// one and against each of its components.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore: Vec<String>,
    /// Debounce: quiet time after the last change of a burst.
    #[serde(default = "default_delay")]
    pub delay_ms: u64,
}

fn default_delay() -> u64 {
    DEFAULT_DELAY_MS
}

impl Default for Watch {
    fn default() -> Self {
        Self {
            enabled: false,
            paths: Vec::new(),
            ignore: Vec::new(),
            delay_ms: DEFAULT_DELAY_MS,
        }
    }
}

impl Watch {
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// The paths watched for an app whose cwd is `cwd`.
    pub fn paths_or(&self, cwd: &str) -> Vec<String> {
        if self.paths.is_empty() {
            vec![cwd.to_owned()]
        } else {
            self.paths.clone()
        }
    }
}

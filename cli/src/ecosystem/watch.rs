//! File watching, before resolution: PM2's `watch` (true, or a path or list of paths
//! relative to the app's cwd), `ignore_watch` (a glob or a list) and `watch_delay` (ms or a
//! duration), and `--watch [PATH…]`, `--ignore-watch`, `--watch-delay` on top.

use super::fields::Field;
use std::path::{Component, Path, PathBuf};
use zpm_proto::AppSpec;
use zpm_proto::validate as rules;
use zpm_proto::watch::{DEFAULT_DELAY_MS, Watch};

/// What the file or the command line said; `None` = not said.
#[derive(Debug, Default, Clone)]
pub struct WatchDraft {
    /// `watch: true|false`, or paths given (on).
    pub enabled: Option<bool>,
    /// As written (relative to the app's cwd, or absolute); empty: the cwd.
    pub paths: Vec<String>,
    pub ignore: Option<Vec<String>>,
    pub delay_ms: Option<u64>,
}

impl WatchDraft {
    /// What `other` says wins (command-line options over the file).
    pub(super) fn overlay(&mut self, other: &Self) {
        if other.enabled.is_some() {
            self.enabled = other.enabled;
            self.paths.clone_from(&other.paths);
        }
        if other.ignore.is_some() {
            self.ignore.clone_from(&other.ignore);
        }
        self.delay_ms = other.delay_ms.or(self.delay_ms);
    }

    /// Reads `field` if it is one of these keys; false if it is not.
    pub(super) fn read(&mut self, field: &Field<'_>) -> anyhow::Result<bool> {
        match field.key {
            "watch" => {
                if let Some(on) = field.value.as_bool() {
                    self.enabled = Some(on);
                    self.paths.clear();
                } else {
                    self.paths = field
                        .paths()
                        .map_err(|_| field.error("true, false, a path or an array of paths"))?;
                    self.enabled = Some(true);
                }
            }
            "ignore_watch" => {
                self.ignore = Some(
                    field
                        .paths()
                        .map_err(|_| field.error("a glob or an array of globs"))?,
                );
            }
            "watch_delay" => self.delay_ms = Some(field.duration_ms()?),
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Sets `spec.watch` (`spec.cwd` is absolute): paths made absolute against it, every
    /// value checked by the rule God applies too.
    pub(super) fn resolve(&self, spec: &mut AppSpec) -> anyhow::Result<()> {
        if self.enabled.is_none() && self.ignore.is_none() && self.delay_ms.is_none() {
            return Ok(());
        }
        let cwd = Path::new(&spec.cwd);
        spec.watch = Watch {
            enabled: self.enabled.unwrap_or(false),
            paths: self
                .paths
                .iter()
                .map(|p| normal(&cwd.join(p)).to_string_lossy().into_owned())
                .collect(),
            ignore: self.ignore.clone().unwrap_or_default(),
            delay_ms: self.delay_ms.unwrap_or(DEFAULT_DELAY_MS),
        };
        rules::watch(&spec.watch)?;
        Ok(())
    }
}

/// `path` without `.` and with `..` applied, lexically (it may not exist yet).
fn normal(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

//! What the host's logs agent writes for each app: which files, in which format, rotated
//! how. God derives one [`LogTarget`] per app instance from its spec and the log defaults;
//! the logs agent writes the bytes it pulls from the spawner (`logs.fetch`) accordingly.

use crate::AppSpec;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// A file path meaning "discard": such a file is never opened nor rotated.
pub const DISCARD: &str = "/dev/null";

/// The timestamp pattern of PM2's `--time` (and `time: true`) when no `log_date_format`
/// is given, and of `zpm logs --timestamp`: ISO 8601 / RFC 3339 with milliseconds and the
/// local offset, e.g. `2026-11-30T09:06:29.123+01:00`.
pub const TIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.3f%:z";

/// Where and how one app instance's output is written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogTarget {
    /// The process id, as in `logs.fetch` chunks.
    pub id: u32,
    /// The app name, written in json lines.
    pub name: String,
    /// The instance number within the app (cluster / multi-instance apps).
    pub instance: u32,
    /// Where stdout goes ([`DISCARD`] to drop it).
    pub out_file: String,
    /// Where stderr goes ([`DISCARD`] to drop it).
    pub error_file: String,
    /// A file receiving both stdout and stderr, line by line (PM2's `--log`).
    #[serde(default)]
    pub log_file: Option<String>,
    #[serde(default)]
    pub format: LogFormat,
    /// strftime-like pattern of the timestamp prefixed to each line (e.g.
    /// `"%Y-%m-%d %H:%M:%S%.3f"`); `None`: no timestamp.
    #[serde(default)]
    pub date_format: Option<String>,
    #[serde(default)]
    pub rotation: Rotation,
}

impl LogTarget {
    /// Makes relative paths (the default files of an app on a host other than God's)
    /// relative to `logs_dir`, this host's logs directory.
    pub fn anchor(&mut self, logs_dir: &Path) {
        let anchor = |path: &mut String| {
            if *path != DISCARD && !Path::new(path.as_str()).is_absolute() {
                *path = logs_dir.join(path.as_str()).display().to_string();
            }
        };
        anchor(&mut self.out_file);
        anchor(&mut self.error_file);
        if let Some(path) = &mut self.log_file {
            anchor(path);
        }
    }
}

/// How lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// The bytes as the app wrote them (with a timestamp prefix if `date_format` is set).
    #[default]
    Raw,
    /// One json object per line.
    Json,
}

/// Size-based rotation of each file of a target.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rotation {
    /// Rotate when a write would take the file past this many bytes; `None`: never.
    #[serde(default)]
    pub max_size: Option<u64>,
    /// Rotated files kept per file; older ones are deleted.
    #[serde(default)]
    pub retain: u32,
    /// Gzip rotated files.
    #[serde(default)]
    pub compress: bool,
}

/// An app's own log options (PM2's `out_file`, `error_file`, `log_file`, `merge_logs`,
/// `log_date_format`, `log_type`, plus rotation); unset means the defaults of
/// `config.toml` and `$ZPM_HOME/logs/`. Paths are absolute (the CLI resolves them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppLogs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_file: Option<String>,
    /// Both streams, line by line, in one more file (PM2's `--log`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_file: Option<String>,
    /// Every instance writes the same files (no `-ID` suffix).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub merge_logs: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<LogFormat>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retain: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compress: Option<bool>,
}

impl AppLogs {
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// The defaults an app's unset log options take (`[logs]` of `config.toml`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogDefaults {
    pub rotation: Rotation,
    pub date_format: Option<String>,
}

/// Where and how instance `instance` (id `id`) of `spec` writes its output: PM2's layout,
/// `LOGS_DIR/NAME-out.log` and `NAME-error.log`, with `-ID` before the extension when the
/// app has several instances and does not merge its logs (also for paths it names).
pub fn resolve(
    spec: &AppSpec,
    id: u32,
    instance: u32,
    logs_dir: &Path,
    defaults: &LogDefaults,
) -> LogTarget {
    let logs = &spec.logs;
    let split = spec.instances > 1 && !logs.merge_logs;
    let place = |given: &Option<String>, default: String| {
        let path = given
            .clone()
            .unwrap_or_else(|| logs_dir.join(default).display().to_string());
        if split && path != DISCARD {
            with_id(&path, id)
        } else {
            path
        }
    };
    LogTarget {
        id,
        name: spec.name.clone(),
        instance,
        out_file: place(&logs.out_file, format!("{}-out.log", spec.name)),
        error_file: place(&logs.error_file, format!("{}-error.log", spec.name)),
        // An empty path (`--log` without a file) is the default `NAME.log`.
        log_file: logs.log_file.as_ref().map(|path| {
            let given = Some(path.clone()).filter(|p| !p.is_empty());
            place(&given, format!("{}.log", spec.name))
        }),
        format: logs.format.unwrap_or_default(),
        date_format: logs
            .date_format
            .clone()
            .or_else(|| defaults.date_format.clone()),
        rotation: Rotation {
            max_size: logs.max_size.or(defaults.rotation.max_size),
            retain: logs.retain.unwrap_or(defaults.rotation.retain),
            compress: logs.compress.unwrap_or(defaults.rotation.compress),
        },
    }
}

/// `dir/api-out.log` → `dir/api-out-3.log` (PM2's naming of per-instance files).
fn with_id(path: &str, id: u32) -> String {
    let p = Path::new(path);
    match (p.file_stem(), p.extension()) {
        (Some(stem), Some(ext)) => p
            .with_file_name(format!(
                "{}-{id}.{}",
                stem.to_string_lossy(),
                ext.to_string_lossy()
            ))
            .display()
            .to_string(),
        _ => format!("{path}-{id}"),
    }
}

/// `logs.tail` (served by the logs agent): the last `lines` lines of each app in `ids`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TailRequest {
    pub ids: Vec<u32>,
    pub lines: u32,
    /// Only this stream; absent: both (or the app's combined `log_file`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<crate::LogStream>,
}

/// One app's part of a `logs.tail` reply: oldest line first, each without its newline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TailLines {
    pub id: u32,
    pub name: String,
    /// Which stream the lines are from; absent: the combined `log_file`.
    #[serde(default)]
    pub stream: Option<crate::LogStream>,
    pub lines: Vec<serde_bytes::ByteBuf>,
}

/// `logs.flush`: empty the log files of `ids` (all apps when empty).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlushRequest {
    #[serde(default)]
    pub ids: Vec<u32>,
}

/// A log file the logs agent cannot write now (it retries by itself; the app keeps
/// running, its output held by the spawner meanwhile).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogProblem {
    pub path: String,
    pub error: String,
}

/// Logs agent → God notification `logs.problems`: every file failing now (empty: none).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogProblems {
    pub problems: Vec<LogProblem>,
}

/// God → logs agent push `logs.targets`: every app instance of this host, and its files.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Targets {
    pub targets: Vec<LogTarget>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_with_named_fields_and_snake_case() {
        let target = LogTarget {
            id: 3,
            name: "api".into(),
            instance: 1,
            out_file: "/l/api-out.log".into(),
            error_file: DISCARD.into(),
            log_file: Some("/l/api.log".into()),
            format: LogFormat::Json,
            date_format: Some("%Y-%m-%d".into()),
            rotation: Rotation {
                max_size: Some(10 << 20),
                retain: 5,
                compress: true,
            },
        };
        let bytes = rmp_serde::to_vec_named(&target).unwrap();
        let back: LogTarget = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(back, target);
        let has = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
        assert!(has(b"\xa6format\xa4json"), "named field, snake_case value");
        assert!(has(b"\xa8max_size"));
    }
}

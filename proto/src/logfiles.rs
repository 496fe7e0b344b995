//! What the host's logs agent writes for each app: which files, in which format, rotated
//! how. God derives one [`LogTarget`] per app instance from its spec and the log defaults;
//! the logs agent writes the bytes it pulls from the spawner (`logs.fetch`) accordingly.

use serde::{Deserialize, Serialize};

/// A file path meaning "discard": such a file is never opened nor rotated.
pub const DISCARD: &str = "/dev/null";

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

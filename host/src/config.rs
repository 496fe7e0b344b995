//! `$ZPM_HOME/config.toml`: what an auto-launched daemon cannot get from a command line.
//! Optional; every key has a default. God, the agents and the CLI read it when they start,
//! so a relaunched process reads it again. README.md lists every key.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `tcp://ADDR:PORT`: God also serves remote agents and CLIs there, through the keyed
    /// tunnel. Unset = ipc only.
    pub listen: Option<String>,
    /// The tunnel's pre-shared key (`zpm keygen`); unset = `$ZPM_HOME/key`.
    pub key_file: Option<PathBuf>,
    pub logs: LogsConfig,
    pub metrics: MetricsConfig,
}

/// Defaults for every app's log files (an app's own options win).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogsConfig {
    /// Rotate a file when a write would take it past this many bytes; `None` = never.
    #[serde(with = "size_option")]
    pub max_size: Option<u64>,
    /// Rotated files kept per log file.
    pub retain: u32,
    /// Gzip rotated files.
    pub compress: bool,
    /// Prefix each line with its time in this strftime format; `None` = no prefix.
    pub date_format: Option<String>,
}

impl Default for LogsConfig {
    fn default() -> Self {
        Self {
            max_size: None,
            retain: 30,
            compress: false,
            date_format: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// How often apps are sampled.
    #[serde(with = "humantime_serde_like")]
    pub interval: Duration,
    /// Where to serve Prometheus text (`/metrics`); `None` = off. Loopback only.
    pub prometheus: Option<SocketAddr>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(1),
            prometheus: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl Config {
    /// Reads `path`; a missing file is the defaults.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        Self::parse(&text).map_err(|message| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        })
    }

    /// Parses and checks the file's text; the message names the key at fault.
    pub fn parse(text: &str) -> Result<Self, String> {
        let config: Self = toml::from_str(text).map_err(|e| e.to_string().trim().to_owned())?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), String> {
        if let Some(listen) = &self.listen {
            zpm_tunnel::tcp_address(listen).map_err(|e| format!("listen: {e}"))?;
        }
        if self.metrics.interval < Duration::from_millis(100) {
            return Err("metrics.interval must be at least 100ms".into());
        }
        if let Some(addr) = self.metrics.prometheus
            && !addr.ip().is_loopback()
        {
            return Err(format!(
                "metrics.prometheus = \"{addr}\": zpm serves Prometheus on a loopback address \
                 only (it has no authentication); put a proxy in front to expose it"
            ));
        }
        Ok(())
    }

    /// The effective configuration as TOML; keys that are unset show as comments.
    pub fn to_toml(&self) -> String {
        let logs = &self.logs;
        let max_size = logs.max_size.map_or_else(
            || "# max_size: unset (never rotate)".to_owned(),
            |bytes| format!("max_size = \"{}\"", bytesize::ByteSize(bytes)),
        );
        let date_format = logs.date_format.as_ref().map_or_else(
            || "# date_format: unset (no timestamps)".to_owned(),
            |format| format!("date_format = {}", toml_string(format)),
        );
        let prometheus = self.metrics.prometheus.map_or_else(
            || "# prometheus: unset (off)".to_owned(),
            |addr| format!("prometheus = \"{addr}\""),
        );
        let interval = humantime::format_duration(self.metrics.interval);
        let listen = self.listen.as_ref().map_or_else(
            || "# listen: unset (ipc only)".to_owned(),
            |listen| format!("listen = {}", toml_string(listen)),
        );
        let key_file = self.key_file.as_ref().map_or_else(
            || "# key_file: unset ($ZPM_HOME/key)".to_owned(),
            |path| format!("key_file = {}", toml_string(&path.display().to_string())),
        );
        [
            listen,
            key_file,
            String::new(),
            "[logs]".to_owned(),
            max_size,
            format!("retain = {}", logs.retain),
            format!("compress = {}", logs.compress),
            date_format,
            String::new(),
            "[metrics]".to_owned(),
            format!("interval = \"{interval}\""),
            prometheus,
        ]
        .join("\n")
            + "\n"
    }
}

fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

/// Parses a size: `10M` (K, M, G are powers of 1024, as in PM2), `10MB` (powers of 1000),
/// `10MiB`, or plain bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let pm2_style = trimmed
        .strip_suffix(['K', 'M', 'G', 'k', 'm', 'g'])
        .filter(|n| !n.is_empty() && n.trim().parse::<f64>().is_ok());
    let normalized = match pm2_style {
        Some(_) => format!("{trimmed}iB"),
        None => trimmed.to_owned(),
    };
    normalized
        .parse::<bytesize::ByteSize>()
        .map(|b| b.as_u64())
        .map_err(|_| format!("{text:?} is not a size (e.g. 10M, 512K, 1G, 1048576)"))
}

/// `max_size = "10M"` or a number of bytes; absent, `""`, `"0"` or `0` = never.
mod size_option {
    use serde::{Deserialize, Deserializer, Serializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Given {
        Bytes(u64),
        Text(String),
    }

    #[allow(clippy::ref_option)] // serde's `with` hands the field by reference
    pub fn serialize<S: Serializer>(size: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        match size {
            Some(bytes) => s.serialize_str(&bytesize::ByteSize(*bytes).to_string()),
            None => s.serialize_str("0"),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        let bytes = match Given::deserialize(d)? {
            Given::Bytes(bytes) => bytes,
            Given::Text(text) if text.trim().is_empty() => 0,
            Given::Text(text) => super::parse_size(&text).map_err(serde::de::Error::custom)?,
        };
        Ok((bytes > 0).then_some(bytes))
    }
}

/// Durations as humantime text: `interval = "1s"`, `"500ms"`.
mod humantime_serde_like {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(duration: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*duration).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(|e| {
            serde::de::Error::custom(format!(
                "{text:?} is not a duration ({e}); e.g. \"1s\", \"500ms\""
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn missing_file_and_empty_text_are_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            Config::load(&dir.path().join("config.toml")).unwrap(),
            Config::default()
        );
        assert_eq!(Config::parse("").unwrap(), Config::default());
    }

    #[test]
    fn every_key_is_read() {
        let config = Config::parse(
            "listen = \"tcp://127.0.0.1:7100\"\nkey_file = \"/etc/zpm/key\"\n\
             [logs]\nmax_size = \"10M\"\nretain = 3\ncompress = true\ndate_format = \"%H:%M\"\n\
             [metrics]\ninterval = \"2s\"\nprometheus = \"127.0.0.1:9615\"\n",
        )
        .unwrap();
        assert_eq!(config.logs.max_size, Some(10 * 1024 * 1024));
        assert_eq!((config.logs.retain, config.logs.compress), (3, true));
        assert_eq!(config.logs.date_format.as_deref(), Some("%H:%M"));
        assert_eq!(config.metrics.interval, Duration::from_secs(2));
        assert_eq!(config.metrics.prometheus.unwrap().port(), 9615);
        assert_eq!(config.listen.as_deref(), Some("tcp://127.0.0.1:7100"));
        assert_eq!(config.key_file.as_deref(), Some(Path::new("/etc/zpm/key")));
        assert_eq!(Config::parse(&config.to_toml()).unwrap(), config);
    }

    #[test]
    fn errors_name_the_key() {
        for (text, key) in [
            ("[logs]\nmax_size = \"ten\"\n", "max_size"),
            ("[logs]\nretian = 3\n", "retian"),
            ("[metrics]\ninterval = \"soon\"\n", "interval"),
            ("[metrics]\ninterval = \"1ms\"\n", "metrics.interval"),
            (
                "[metrics]\nprometheus = \"0.0.0.0:9615\"\n",
                "metrics.prometheus",
            ),
            ("[metrics]\nprometheus = \"nowhere\"\n", "prometheus"),
            ("[logz]\n", "logz"),
            ("listen = \"0.0.0.0:7100\"\n", "listen"),
            ("listen = \"tcp://0.0.0.0\"\n", "listen"),
        ] {
            let message = Config::parse(text).unwrap_err();
            assert!(message.contains(key), "{text:?} → {message}");
        }
    }

    #[test]
    fn sizes_follow_pm2() {
        assert_eq!(parse_size("200M").unwrap(), 200 * 1024 * 1024);
        assert_eq!(parse_size("512K").unwrap(), 512 * 1024);
        assert_eq!(parse_size("1G").unwrap(), 1024 * 1024 * 1024);
        assert_eq!(parse_size("10MB").unwrap(), 10_000_000);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("lots").is_err());
        assert!(parse_size("-1M").is_err());
    }
}

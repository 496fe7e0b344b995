//! How an app says it is ready to serve (its instance stays `launching` until then), and
//! how it is run: fork or cluster mode. Parsed and checked once here for the CLI, God and
//! the spawner.

use serde::{Deserialize, Serialize};

/// PM2's `listen_timeout` default.
pub const DEFAULT_READY_TIMEOUT_MS: u64 = 3000;

/// An app's readiness gate. Without `wait_ready` or a probe there is no gate: an instance
/// is online once spawned (a Node app in cluster mode: once it listens).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Readiness {
    /// Wait for `READY=1` on `NOTIFY_SOCKET` (systemd's sd_notify) or Node's
    /// `process.send('ready')`.
    #[serde(default)]
    pub wait_ready: bool,
    /// Not ready by then: considered ready (as PM2 does), unless `strict`.
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    /// Not ready by `timeout_ms`: the start fails and the instance is stopped.
    #[serde(default)]
    pub strict: bool,
    /// Ready when a GET of this `http://` URL answers 2xx.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<String>,
    /// Ready when `PORT` or `HOST:PORT` accepts a TCP connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<String>,
    /// Ready when this shell command exits 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<String>,
    /// Ready when an output line matches this regex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
    /// sd_notify's watchdog: no `WATCHDOG=1` for this long → restarted (reason `watchdog`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watchdog_ms: Option<u64>,
}

fn default_timeout() -> u64 {
    DEFAULT_READY_TIMEOUT_MS
}

impl Default for Readiness {
    fn default() -> Self {
        Self {
            wait_ready: false,
            timeout_ms: DEFAULT_READY_TIMEOUT_MS,
            strict: false,
            http: None,
            tcp: None,
            cmd: None,
            log: None,
            watchdog_ms: None,
        }
    }
}

impl Readiness {
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// True if a probe is configured.
    pub fn has_probe(&self) -> bool {
        self.http.is_some() || self.tcp.is_some() || self.cmd.is_some() || self.log.is_some()
    }

    /// True if instances wait in `launching` until ready.
    pub fn gated(&self) -> bool {
        self.wait_ready || self.has_probe()
    }

    /// True if the app is told `NOTIFY_SOCKET` (systemd's `Type=notify`, or a watchdog).
    pub fn notify(&self) -> bool {
        self.wait_ready || self.watchdog_ms.is_some()
    }
}

/// PM2's `exec_mode`. In cluster mode a Node app's `listen(port)` is served from a socket
/// the spawner holds and shares between its instances.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecMode {
    #[default]
    Fork,
    Cluster,
}

impl ExecMode {
    pub fn is_fork(&self) -> bool {
        *self == Self::Fork
    }
}

/// A `ready_http` URL, parsed: `http://HOST[:PORT][/PATH]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpUrl {
    pub host: String,
    pub port: u16,
    pub path: String,
}

impl HttpUrl {
    /// `field` names the key in errors (`ready_http`, `health_http`).
    pub fn parse(field: &str, url: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("invalid {field} {url:?}: {why}");
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| bad("only http:// URLs are probed"))?;
        let (authority, path) = match rest.find('/') {
            Some(at) => (&rest[..at], &rest[at..]),
            None => (rest, "/"),
        };
        if path.chars().any(|c| c.is_control() || c == ' ') {
            return Err(bad("the path has spaces or control characters"));
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(']') || authority.starts_with('[') => {
                let port = port
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| bad("the port must be a number from 1 to 65535"))?;
                (host, port)
            }
            _ => (authority, 80),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '_');
        if host.is_empty() || !host.chars().all(allowed) {
            return Err(bad(
                "no host, or a host with characters a host name cannot have",
            ));
        }
        Ok(Self {
            host: host.to_owned(),
            port,
            path: path.to_owned(),
        })
    }
}

/// A `ready_tcp`/`health_tcp` target (`field`), parsed: `PORT` (on 127.0.0.1) or
/// `HOST:PORT`.
pub fn tcp_target(field: &str, target: &str) -> Result<(String, u16), String> {
    let bad = || format!("invalid {field} {target:?}: expected PORT or HOST:PORT");
    let (host, port) = match target.rsplit_once(':') {
        Some((host, port)) => (host.trim_start_matches('[').trim_end_matches(']'), port),
        None => ("127.0.0.1", target),
    };
    let port = port
        .parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(bad)?;
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad());
    }
    Ok((host.to_owned(), port))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn urls_and_tcp_targets_parse() {
        let url = HttpUrl::parse("ready_http", "http://127.0.0.1:8080/health").unwrap();
        assert_eq!(
            (url.host.as_str(), url.port, url.path.as_str()),
            ("127.0.0.1", 8080, "/health")
        );
        let url = HttpUrl::parse("ready_http", "http://localhost").unwrap();
        assert_eq!((url.port, url.path.as_str()), (80, "/"));
        let url = HttpUrl::parse("ready_http", "http://[::1]:81/").unwrap();
        assert_eq!((url.host.as_str(), url.port), ("::1", 81));
        assert!(
            HttpUrl::parse("ready_http", "https://x/")
                .unwrap_err()
                .contains("only http://")
        );
        assert!(
            HttpUrl::parse("ready_http", "http://x:0/")
                .unwrap_err()
                .contains("port")
        );
        assert!(
            HttpUrl::parse("ready_http", "http:///a")
                .unwrap_err()
                .contains("no host")
        );
        assert_eq!(
            tcp_target("ready_tcp", "8000").unwrap(),
            ("127.0.0.1".into(), 8000)
        );
        assert_eq!(
            tcp_target("ready_tcp", "10.0.0.1:53").unwrap(),
            ("10.0.0.1".into(), 53)
        );
        assert!(tcp_target("ready_tcp", "x").is_err());
    }

    #[test]
    fn a_gate_needs_wait_ready_or_a_probe() {
        assert!(!Readiness::default().gated());
        let probe = Readiness {
            tcp: Some("80".into()),
            ..Readiness::default()
        };
        assert!(probe.gated() && !probe.notify());
    }
}

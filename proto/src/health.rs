//! Liveness checks (`health_http`, `health_tcp`, `health_cmd`): run by the spawner while an
//! instance is up and ready; `retries` failures in a row restart it with reason `health`.

use serde::{Deserialize, Serialize};

pub const DEFAULT_INTERVAL_MS: u64 = 10_000;
pub const DEFAULT_TIMEOUT_MS: u64 = 5_000;
pub const DEFAULT_RETRIES: u32 = 3;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// Healthy when a GET of this `http://` URL answers 2xx.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<String>,
    /// Healthy when `PORT` or `HOST:PORT` accepts a TCP connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<String>,
    /// Healthy when this shell command exits 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<String>,
    /// From the end of one check's start to the next's.
    #[serde(default = "default_interval")]
    pub interval_ms: u64,
    /// A check taking longer has failed.
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    /// Failures in a row that restart the instance.
    #[serde(default = "default_retries")]
    pub retries: u32,
}

fn default_interval() -> u64 {
    DEFAULT_INTERVAL_MS
}

fn default_timeout() -> u64 {
    DEFAULT_TIMEOUT_MS
}

fn default_retries() -> u32 {
    DEFAULT_RETRIES
}

impl Default for Health {
    fn default() -> Self {
        Self {
            http: None,
            tcp: None,
            cmd: None,
            interval_ms: DEFAULT_INTERVAL_MS,
            timeout_ms: DEFAULT_TIMEOUT_MS,
            retries: DEFAULT_RETRIES,
        }
    }
}

impl Health {
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// True if some check is configured.
    pub fn enabled(&self) -> bool {
        self.http.is_some() || self.tcp.is_some() || self.cmd.is_some()
    }
}

/// What an instance's health checks found (`ProcessInfo.health`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthStatus {
    /// Failed checks in a row.
    pub failures: u32,
    /// Checks not run because the one before was still running.
    pub skipped: u64,
    /// Checks passed since the run became ready (`depends_on: healthy` waits for one).
    #[serde(default)]
    pub passed: u64,
    /// Why the last check failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<String>,
}

use serde::{Deserialize, Serialize};

/// Where an app is in its life, as `zpm ls` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProcessStatus {
    Launching,
    Online,
    Stopping,
    Stopped,
    Errored,
    WaitingRestart,
    /// Its host is down (its spawner's connection to God is lost): God cannot tell. Its
    /// spawner goes on running it; the status comes back when the host reconnects.
    Unknown,
}

/// What happened to an app, the `event` field of `process:event`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProcessEventKind {
    Start,
    Online,
    Exit,
    Restart,
    Stop,
    Delete,
    Errored,
}

/// Body of a `process:event` bus event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessEvent {
    pub event: ProcessEventKind,
    pub id: u32,
    pub name: String,
    pub pid: Option<u32>,
    pub exit_code: Option<i32>,
    /// Signal name (`SIGKILL`) when the process was killed by one.
    pub signal: Option<String>,
}

/// One row of `zpm ls --json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessInfo {
    pub id: u32,
    pub name: String,
    pub namespace: String,
    pub instance: u32,
    pub host: String,
    pub pid: Option<u32>,
    pub status: ProcessStatus,
    pub restarts: u32,
    pub uptime_ms: Option<u64>,
    pub exit_code: Option<i32>,
    pub signal: Option<String>,
    /// Percent of one core; `None` until a metrics agent reports.
    pub cpu: Option<f32>,
    /// Resident bytes; `None` until a metrics agent reports.
    pub memory: Option<u64>,
    /// The app's memory limit (`max_memory_restart`), if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_memory_restart: Option<u64>,
    /// Why its last launch failed, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The app's own status line (sd_notify `STATUS=`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_text: Option<String>,
    /// What its health checks found, once they did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<crate::health::HealthStatus>,
    /// The dependencies it waits for before it starts (`db (ready)`), while it waits.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waiting: Vec<String>,
}

/// What a spawner reports about one app after every change (`proc.report`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessReport {
    pub id: u32,
    pub status: ProcessStatus,
    pub pid: Option<u32>,
    pub restarts: u32,
    /// When the current run started, ms since the epoch.
    pub started_at_ms: Option<u64>,
    pub exit_code: Option<i32>,
    pub signal: Option<String>,
    /// Orders reports: God ignores a report older than the one it holds (notifications
    /// may be handled out of order). Increases across spawner restarts; 0 = unordered.
    #[serde(default)]
    pub seq: u64,
    /// Why the last launch failed or was given up (a socket that cannot be bound, not
    /// ready in time with `ready_strict`, a program that cannot be spawned).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Why the current run replaced the previous one, when the spawner decided it (a
    /// reload, a missed watchdog); God records its own reasons.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<RestartReason>,
    /// The app's own status line (sd_notify `STATUS=`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_text: Option<String>,
    /// What its health checks found, once they did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<crate::health::HealthStatus>,
}

/// Why an app instance was restarted (or gave up), for `zpm describe`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RestartReason {
    /// It exited by itself (or was killed by someone else) and the policy restarted it.
    Exited {
        code: Option<i32>,
        signal: Option<String>,
    },
    /// Its process tree held more than its `max_memory_restart`.
    MaxMemory { memory: u64, limit: u64 },
    /// `zpm restart` (or `start` of an existing app, `resurrect`…).
    User,
    /// Its spawner died; the new one started it again.
    SpawnerReplaced,
    /// Too many unstable restarts in a row: it is `errored` and stays down.
    Errored { restarts: u32 },
    /// `zpm reload`: replaced by a new run once that one was ready.
    Reload,
    /// It sent no sd_notify `WATCHDOG=1` for `timeout_ms`.
    Watchdog { timeout_ms: u64 },
    /// Its health check failed `failures` times in a row.
    Health { failures: u32, last: String },
    /// Its `cron_restart` schedule came due.
    Cron,
    /// Files under its `watch` paths changed (`path`: one of them).
    Watch { path: String },
}

/// One entry of an instance's restart history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestartRecord {
    /// Milliseconds since the epoch.
    pub at_ms: u64,
    pub reason: RestartReason,
}

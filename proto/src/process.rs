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

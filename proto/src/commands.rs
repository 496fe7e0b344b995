//! rpc params and results between the CLI, God and agents (see PROTOCOL.md).

use crate::{AgentHello, AppSpec, ProcessInfo, ProcessReport};
use serde::{Deserialize, Serialize};

/// `app.start`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartApps {
    pub apps: Vec<AppSpec>,
}

/// `app.stop`, `app.restart`, `app.delete`, `app.describe`: an id, a name, a namespace, or `all`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub target: String,
}

/// `app.signal`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignalApps {
    pub target: String,
    /// Signal name, e.g. `SIGUSR2`.
    pub signal: String,
}

/// `app.scale`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scale {
    pub name: String,
    pub instances: u32,
}

/// One entry of `app.describe`: the row plus the spec it runs (env values of secret-looking
/// names masked by God).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppDescription {
    pub info: ProcessInfo,
    pub spec: AppSpec,
}

/// `agent.hello`: who the agent is and what it already holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub agent: AgentHello,
    pub holding: Vec<Held>,
}

/// An app instance an agent runs: enough for a God that lost its state to adopt it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Held {
    pub report: ProcessReport,
    pub instance: u32,
    pub spec: AppSpec,
}

/// God → spawner push `proc.spawn`: run this app instance under this id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpawnCommand {
    pub id: u32,
    pub instance: u32,
    pub spec: AppSpec,
    /// Restart count to continue from (kept across spawner replacements).
    #[serde(default)]
    pub restarts: u32,
}

/// God → spawner pushes `proc.stop`, `proc.restart`, `proc.delete`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcCommand {
    pub id: u32,
}

/// God → spawner push `proc.signal`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignalCommand {
    pub id: u32,
    pub signal: String,
}

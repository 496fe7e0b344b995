use serde::{Deserialize, Serialize};

/// Result of `ping`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pong {
    pub version: String,
    /// Process id of the server that answered (God).
    pub pid: u32,
    pub uptime_ms: u64,
    /// Problems God wants the user to know about (e.g. a corrupt state file set aside).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Per endpoint (`rpc`, `bus`): what its frame guard counted — connections, peers
    /// refused and cut off, and why (PROTOCOL.md, "Limits").
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub guards: std::collections::BTreeMap<String, std::collections::BTreeMap<String, u64>>,
}

/// What an agent says when it dials in: params of `agent.hello`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentHello {
    /// `spawner`, `logs`, `metrics`, or a third party's own role name.
    pub role: String,
    pub host: String,
    pub pid: u32,
    /// The agent's software version.
    pub version: String,
    /// The protocol version it speaks.
    pub protocol: u32,
}

/// One row of `zpm agents --json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentInfo {
    pub role: String,
    pub host: String,
    pub pid: u32,
    pub version: String,
    pub connected: bool,
}

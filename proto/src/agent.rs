use serde::{Deserialize, Serialize};

/// Result of `ping`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pong {
    pub version: String,
    /// Process id of the server that answered (God).
    pub pid: u32,
    /// God's own host: where apps go unless placed elsewhere.
    #[serde(default)]
    pub host: String,
    pub uptime_ms: u64,
    /// Problems God wants the user to know about (e.g. a corrupt state file set aside).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Events the bus dropped for subscribers out of credit, since God started.
    #[serde(default)]
    pub bus_dropped: u64,
    /// Per endpoint (`rpc`, `bus`): what its frame guard counted — connections, peers
    /// refused and cut off, and why (PROTOCOL.md, "Limits").
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub guards: std::collections::BTreeMap<String, std::collections::BTreeMap<String, u64>>,
    /// The `tcp://` address God serves other hosts on (through the keyed tunnel), if any;
    /// its counters are `guards["tcp"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listening: Option<String>,
}

/// The agent roles God launches and keeps alive on its own host, one process each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Owns the apps: spawns, reaps, restarts; buffers their output.
    Spawner,
    /// Writes the apps' output to files; serves `logs.tail`.
    Logs,
    /// Samples cpu and memory; serves Prometheus.
    Metrics,
}

impl Role {
    /// Every local role, in launch order (the spawner first: the others read from it).
    pub const ALL: [Self; 3] = [Self::Spawner, Self::Logs, Self::Metrics];

    /// The name in hellos, lock files and `zpm agent ROLE`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Spawner => "spawner",
            Self::Logs => "logs",
            Self::Metrics => "metrics",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Params of `agent.heartbeat`: how the agent is doing (absent from older agents).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vitals {
    /// Resident memory in bytes.
    pub rss: u64,
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
    /// Since its (latest) hello was accepted.
    #[serde(default)]
    pub uptime_ms: u64,
    /// Resident memory from its last heartbeat, if it reports one.
    #[serde(default)]
    pub memory: Option<u64>,
    /// Since God last heard from it (hello, heartbeat, report).
    #[serde(default)]
    pub last_seen_ms: u64,
}

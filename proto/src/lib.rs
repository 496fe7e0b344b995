//! The zpm domain protocol: its version, bus topics, and the messages God, agents and the
//! CLI exchange as rpc params/results and bus event bodies. `bus` and `rpc` own their
//! envelopes; this crate owns what goes inside them.

mod agent;
mod app;
pub mod apply;
pub mod commands;
pub mod depends;
pub mod health;
mod listen;
pub mod logfiles;
pub mod logline;
mod logs;
pub mod method;
pub mod metrics;
mod process;
pub mod ready;
pub mod topics;
pub mod tunnel;
pub mod validate;
pub mod watch;

pub use agent::{AgentHello, AgentInfo, Pong, Role, Vitals};
pub use app::{AppSpec, EnvOrigin, runs_node};
pub use listen::{BadListenAddr, ListenAddr, MAX_UNIX_PATH_BYTES};
pub use logs::{
    LogChunk, LogCursor, LogEvent, LogStream, LogsAnswer, LogsAsk, LogsFetch, LogsFetched,
    LogsQuery,
};
pub use process::{
    ProcessEvent, ProcessEventKind, ProcessInfo, ProcessReport, ProcessStatus, RestartReason,
    RestartRecord,
};

/// The version in every rpc and bus envelope (`v`). Bumped only for incompatible changes;
/// new methods, topics and optional fields do not bump it.
pub const PROTOCOL_VERSION: u32 = 1;

/// This build's version string, reported by `ping` and agent hellos.
pub const ZPM_VERSION: &str = env!("CARGO_PKG_VERSION");

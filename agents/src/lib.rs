//! zpm's agents: separate processes that dial in to God (DESIGN.md). `agent` is what every
//! agent process shares (lock, hello, heartbeat); the spawner owns the children, the logs
//! agent writes their output to files, the metrics agent samples them.

pub mod agent;
pub mod god_keeper;
pub mod link;
pub mod logs;
pub mod metrics;
pub mod remote;
pub mod spawner;

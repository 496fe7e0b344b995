//! zpm's agents: separate processes that dial in to God (DESIGN.md). The spawner owns the
//! children; `metrics` holds the metrics agent's sampling and Prometheus pieces (not yet
//! a process). `link` is an agent's connection to God.

pub mod god_keeper;
pub mod link;
pub mod metrics;
pub mod spawner;

//! zpm's agents: separate processes that dial in to God (DESIGN.md). The spawner owns the
//! children; `logs` is the logs agent's writing side (its process comes later, as does the
//! metrics agent). `link` is an agent's connection to God.

pub mod god_keeper;
pub mod link;
pub mod logs;
pub mod spawner;

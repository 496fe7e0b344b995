//! zpm's agents: separate processes that dial in to God (DESIGN.md). The spawner owns the
//! children; logs and metrics agents come later. `link` is an agent's connection to God.

pub mod god_keeper;
pub mod link;
pub mod logs;
pub mod spawner;

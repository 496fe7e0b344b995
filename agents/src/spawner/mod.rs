//! The spawner agent: owns this host's app processes. Layout:
//! `run` (the process: commands from God), `supervisor` (one task per app instance),
//! `policy` (the restart policy), `child` (spawn, signal, stop a process group),
//! `reaper` (orphaned grandchildren), `record` (what a
//! successor needs to replace our processes if we die), `report` (what goes back to God), `watch` (file-change
//! restarts), `logs` (output
//! buffers and the host-local `logs.fetch` endpoint).

mod child;
pub mod logs;
mod policy;
mod reaper;
mod record;
pub mod report;
mod run;
mod schedule;
pub mod serve;
mod supervisor;
pub mod watch;

pub use run::{SpawnerError, SpawnerOptions, run};

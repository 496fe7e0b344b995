//! The metrics agent: samples cpu and memory of this host's apps. `run` is the process.

mod run;

pub use run::{MetricsOptions, run};

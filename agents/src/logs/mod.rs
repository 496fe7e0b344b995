//! The logs agent: writes this host's app output to files (DESIGN.md, "The log data
//! path"). `run` is the process.

mod run;

pub use run::{LogsOptions, run};

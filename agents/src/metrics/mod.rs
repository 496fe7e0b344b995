//! The metrics agent: samples cpu and memory of this host's apps' process trees and the
//! host, publishes `metrics`, applies the memory-limit rule, and serves Prometheus text
//! over a small HTTP server. `run` is the process.

mod http;
mod limit;
mod prom;
mod run;
mod sampler;
pub mod tree;

pub use http::{Limits, ServeError, serve, serve_with};
pub use limit::{RestartDebounce, over_limit};
pub use prom::{AppLabel, CONTENT_TYPE, render};
pub use run::{MetricsError, MetricsOptions, run};
pub use sampler::Sampler;

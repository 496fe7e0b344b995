//! The metrics agent's pieces (not yet a process): sampling apps' process trees and the
//! host from /proc, the memory-limit rule, and Prometheus text over a small HTTP server.

mod http;
mod limit;
pub mod procfs;
mod prom;
mod sampler;
pub mod tree;

pub use http::{Limits, ServeError, serve, serve_with};
pub use limit::{RestartDebounce, over_limit};
pub use prom::{AppLabel, CONTENT_TYPE, render};
pub use sampler::Sampler;

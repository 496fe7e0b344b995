//! Request/reply over zeromq for zpm.
//!
//! A [`Server`] binds a ROUTER on one or more endpoints and dispatches requests to async
//! handlers by method name, each request in its own task so a slow handler never holds up a
//! fast one. A [`Client`] is a DEALER that multiplexes concurrent calls by id on one socket,
//! puts a deadline on every call, and recreates its socket when the connection is lost
//! (zmq.rs does not reconnect a DEALER over ipc). Plain REQ sockets work too.
//!
//! The wire format is documented in PROTOCOL.md at the project root.

mod client;
mod endpoint;
mod envelope;
mod error;
pub mod guard;
mod handler;
mod lanes;
mod method;
mod scan;
mod server;
mod typed;

pub use client::{Client, ClientOptions, Push};
pub use endpoint::{bind_ipc_listener, is_loopback_or_ipc};
pub use envelope::{ENVELOPE_VERSION, NoParams};
pub use error::{BindError, CallError, ErrorCode, RpcError};
pub use guard::{Guard, GuardCounters, GuardLimits, GuardStats, Ledger, bind_endpoint};
pub use handler::Ctx;
pub use method::Method;
pub use scan::ScanLimits;
pub use server::{PeerId, Pusher, Server, ServerBuilder, ServerStats};
pub use typed::{from_value, to_value};

/// msgpack value, re-exported so callers need not depend on rmpv directly.
pub use rmpv::Value;

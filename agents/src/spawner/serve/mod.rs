//! How an app serves and talks to us while it runs: the sockets the spawner holds for it
//! (`sockets`), and per run the channels through which it says it is ready or sends
//! messages (`links`): sd_notify (`notify`), Node's IPC channel (`ipc`), and readiness
//! probes (`probe`).

mod health;
mod ipc;
mod links;
mod notify;
mod probe;
mod sockets;

pub use links::{LineWatch, RunLinks, RunSignal};
pub use sockets::{AppKey, Listener, Sockets};

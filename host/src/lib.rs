//! What God, the agents and the CLI need from the host they run on, written once: the
//! `$ZPM_HOME` layout, flocks, launching a detached zpm process, keeping one alive by its
//! flock, atomic file writes with one durability rule, and reading `/proc`.
//! Nothing here knows the protocol.

pub mod atomic;
pub mod config;
pub mod home;
pub mod joined;
pub mod keeper;
pub mod launch;
mod lock;
pub mod procfs;

pub use lock::{HomeLock, LockError, holder, is_free};

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report
//! Integration tests: they run the real `zpm` binary. One test binary, so it links once.

mod agents;
mod apply;
mod autolaunch;
mod cli;
mod cluster;
mod crash;
mod cron;
mod depends;
mod ecosystem_files;
mod first_hour;
mod harness;
mod health;
mod hostile;
mod lifecycle;
mod logs_agent;
mod logs_cli;
mod logs_fetch;
mod metrics;
mod monit;
mod netns;
mod readiness;
mod remote;
mod remote_hostile;
mod restart_policy;
mod stop_tree;
mod validation;
mod watch;

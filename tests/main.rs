#![allow(clippy::unwrap_used)] // test code: a panic is the failure report
//! Integration tests: they run the real `zpm` binary. One test binary, so it links once.

mod cli;

//! A small rpc server for interop checks: `cargo run -p zpm-rpc --example ping_server -- ENDPOINT`.
//! Serves `ping` (returns `{message: "pong", pid, uptime_ms}`) and `echo` (returns its params).

use serde::Serialize;
use std::time::Instant;
use zpm_rpc::{NoParams, RpcError, Server, Value};

#[derive(Serialize)]
struct Pong {
    message: &'static str,
    pid: u32,
    uptime_ms: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    use anyhow::Context as _;
    let endpoint = std::env::args()
        .nth(1)
        .context("usage: ping_server ENDPOINT (e.g. ipc:///tmp/zpm-ping.sock)")?;
    let started = Instant::now();
    let server = Server::builder()
        .method("ping", move |_: NoParams, _| async move {
            Ok::<_, RpcError>(Pong {
                message: "pong",
                pid: std::process::id(),
                uptime_ms: started.elapsed().as_millis() as u64,
            })
        })
        .method("echo", |params: Value, _| async move {
            Ok::<_, RpcError>(params)
        })
        .bind(&[&endpoint])
        .await
        .with_context(|| format!("binding {endpoint}"))?;
    println!("listening on {}", server.endpoints().join(", "));
    tokio::signal::ctrl_c()
        .await
        .context("waiting for ctrl-c")?;
    Ok(())
}

//! `ping` round trips to a real God: over its ipc socket, and from "another host" through
//! the keyed tunnel on loopback TCP (an ordinary rpc client on the local end that
//! `expose_god` makes, as a remote host's agents and CLI use it). The two are measured in
//! alternating blocks in one run, so a noisy neighbour hits both alike.

use super::homes::{GodHome, client, ping};
use crate::rpc::{Latency, latency};
use anyhow::Context as _;
use std::time::{Duration, Instant};
use zpm_rpc::Client;

pub const TARGET_TUNNEL_P50_US: f64 = 100.0;
const CONNECT: Duration = Duration::from_secs(10);
/// Calls per block; blocks alternate ipc / tunnel.
const BLOCK: u64 = 1000;

pub struct Pair {
    pub ipc: Latency,
    pub tunnel: Latency,
}

pub async fn measure(god: &GodHome, warmup: u64, calls: u64) -> anyhow::Result<Pair> {
    let ipc = client(&god.rpc_endpoint());
    let dir = tempfile::Builder::new()
        .prefix("zbt")
        .tempdir()
        .context("creating the tunnel's local directory")?;
    let _exposed = zpm_agents::remote::expose_god(dir.path(), &god.remote()?)
        .context("exposing God through the tunnel")?;
    let tunnel = client(&format!("ipc://{}/rpc.sock", dir.path().display()));
    for (name, c) in [("ipc", &ipc), ("tunnel", &tunnel)] {
        anyhow::ensure!(
            c.wait_connected(CONNECT).await,
            "{name} client did not connect"
        );
        for _ in 0..warmup {
            ping(c).await?;
        }
    }
    let (mut ipc_ns, mut tunnel_ns) = (Vec::new(), Vec::new());
    let mut left = calls;
    while left > 0 {
        let n = left.min(BLOCK);
        block(&ipc, n, &mut ipc_ns).await?;
        block(&tunnel, n, &mut tunnel_ns).await?;
        left -= n;
    }
    Ok(Pair {
        ipc: latency(ipc_ns, warmup, None),
        tunnel: latency(tunnel_ns, warmup, Some(TARGET_TUNNEL_P50_US)),
    })
}

async fn block(client: &Client, n: u64, out: &mut Vec<u64>) -> anyhow::Result<()> {
    for _ in 0..n {
        let started = Instant::now();
        ping(client).await?;
        out.push(started.elapsed().as_nanos() as u64);
    }
    Ok(())
}

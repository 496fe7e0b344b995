//! The bus from another host: one paced publisher, one subscriber (the `bus` benchmark's
//! 1→1 case), the subscriber either on the publisher's ipc socket or on the local end of
//! the keyed tunnel. The tunnel's server is the one God runs on its TCP port
//! (`zpm_tunnel::serve`, default limits) in front of the benchmark's publisher: God's own
//! bus publishes only what agents relay, and the fleet benchmark measures that relay.

use crate::bus::feed::{Bus, Feed, subscribe};
use crate::bus::{Delivery, summarize};
use anyhow::Context as _;
use std::sync::Arc;
use zpm_agents::remote::{RemoteGod, expose_god};
use zpm_tunnel::{Key, Limits, Services, TunnelStats};

pub const TARGET_TUNNEL_EVENTS_PER_S: f64 = 150_000.0;

pub struct Pair {
    pub event_bytes: usize,
    pub ipc: Delivery,
    pub tunnel: Delivery,
}

pub async fn measure(events: u64, credit: u32) -> anyhow::Result<Pair> {
    eprintln!("remote: bus 1→1 over ipc…");
    let (ipc, event_bytes) = one(events, credit, false).await?;
    eprintln!("remote: bus 1→1 through the keyed tunnel…");
    let (tunnel, _) = one(events, credit, true).await?;
    Ok(Pair {
        event_bytes,
        ipc,
        tunnel,
    })
}

/// A tunnel server on loopback TCP carrying `bus` connections to `bus`'s socket.
struct Tunnel {
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
    _exposed: zpm_agents::remote::Exposed,
    endpoint: String,
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn tunnel_to(bus: &Bus) -> anyhow::Result<Tunnel> {
    let key = Key::generate().context("generating a key")?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding the tunnel's port")?;
    let addr = listener.local_addr()?;
    let services = Services::from([(zpm_proto::tunnel::BUS.to_owned(), bus.socket())]);
    let server = tokio::spawn(zpm_tunnel::serve(
        listener,
        key.clone().into(),
        services,
        Limits::default(),
        Arc::new(TunnelStats::default()),
    ));
    let dir = tempfile::Builder::new()
        .prefix("zbt")
        .tempdir()
        .context("creating the tunnel's local directory")?;
    let god = RemoteGod::new(&format!("tcp://{addr}"), key).context("tunnel address")?;
    let exposed = expose_god(dir.path(), &god).context("the tunnel's local end")?;
    let endpoint = format!("ipc://{}/bus.sock", dir.path().display());
    Ok(Tunnel {
        server,
        _dir: dir,
        _exposed: exposed,
        endpoint,
    })
}

async fn one(events: u64, credit: u32, via_tunnel: bool) -> anyhow::Result<(Delivery, usize)> {
    let bus = Bus::start().await?;
    let tunnel = if via_tunnel {
        Some(tunnel_to(&bus).await?)
    } else {
        None
    };
    let subscriber = match &tunnel {
        Some(tunnel) => subscribe(&tunnel.endpoint, credit).await?,
        None => bus.subscriber(credit).await?,
    };
    let mut feed = Feed::new(0);
    feed.read(subscriber, events);
    bus.wait_for_subscribers(1).await?;
    let window = u64::from(credit / 2);
    let paced = feed
        .publish_paced(&bus.publisher, events, window, 0, |_| {})
        .await?;
    let outcomes = feed.finish(events).await?;
    let event_bytes = outcomes.first().map_or(0, |o| o.event_bytes);
    let target = via_tunnel.then_some(TARGET_TUNNEL_EVENTS_PER_S);
    let delivery = summarize(&bus, events, paced, &outcomes, target);
    drop(tunnel);
    Ok((delivery, event_bytes))
}

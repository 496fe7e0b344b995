//! God's relay at saturation: every fake host floods `process:event` through `bus.publish`
//! while one subscriber on God's bus counts what arrives, and checks each host's `seq`.

use super::fake::FakeHost;
use crate::remote::homes::{GodHome, agents, ping, poll};
use anyhow::Context as _;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use zpm_bus::{Subscriber, SubscriberOptions, SubscriberStats};
use zpm_proto::topics::PROCESS_EVENT;
use zpm_rpc::Client;

const WARMUP: Duration = Duration::from_millis(500);
const DRAIN_IDLE: Duration = Duration::from_millis(500);

#[derive(Serialize, Default)]
pub struct Relay {
    pub window_s: f64,
    /// Events the fake hosts handed to their rpc clients, per second, in the window.
    pub offered_per_s: f64,
    /// Events the subscriber received, per second, in the window.
    pub delivered_per_s: f64,
    /// Events God's relay handed to its bus publisher, per second, in the window: those
    /// the subscriber received plus those the publisher dropped for it out of credit.
    pub relayed_per_s: f64,
    pub sent_total: u64,
    pub received_total: u64,
    /// Sent and never received.
    pub lost: u64,
    /// Gaps in each host's `seq` as the subscriber saw them (the lost events before the
    /// last one received from each host).
    pub seq_gaps: u64,
    /// Of those, dropped by God's bus publisher for the subscriber out of credit
    /// (`bus_dropped` in ping); the rest were dropped inside God before the bus (a peer's
    /// notification lane full at 1024, or the bus queue full at 4096 — not exposed apart).
    pub dropped_out_of_credit: u64,
    /// An event older than the one before it from the same host.
    pub out_of_order: u64,
    /// The subscriber's own gap count (it tracks `seq` per source and topic).
    pub subscriber_gaps: u64,
    pub subscriber_dropped_reported: u64,
    /// Most fake spawners God listed as not connected at one sample during the flood.
    pub hosts_down_max: usize,
    pub heartbeats_failed: u64,
    pub outbox_full: u64,
    /// God's cpu in the window, in % of one core (all its threads).
    pub god_cpu_pct: f64,
    /// This process's (fake hosts, their tunnels, the subscriber) in the window.
    pub bench_cpu_pct: f64,
}

fn cpu_ticks(pid: u32) -> u64 {
    zpm_host::procfs::stat(pid).map_or(0, |s| s.cpu_ticks())
}

fn cpu_pct(ticks: u64, seconds: f64) -> f64 {
    ticks as f64 / zpm_host::procfs::ticks_per_second() as f64 / seconds * 100.0
}

#[derive(Default)]
struct Tally {
    received: AtomicU64,
    lost: AtomicU64,
    out_of_order: AtomicU64,
}

/// Counts `process:event`s and per-host `seq` gaps until `stop`.
async fn read(
    mut subscriber: Subscriber,
    tally: Arc<Tally>,
    stop: Arc<AtomicBool>,
) -> SubscriberStats {
    let mut last: HashMap<String, u64> = HashMap::new();
    loop {
        match subscriber.recv_raw(Duration::from_millis(100)).await {
            Ok(Some(event)) => {
                if event.topic.as_ref() != PROCESS_EVENT.as_bytes() {
                    continue;
                }
                tally.received.fetch_add(1, Ordering::Relaxed);
                let seq = event.header.seq;
                let before = last.get(&event.header.host).copied().unwrap_or(0);
                if seq > before {
                    tally.lost.fetch_add(seq - before - 1, Ordering::Relaxed);
                    last.insert(event.header.host, seq);
                } else {
                    tally.out_of_order.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok(None) if stop.load(Ordering::Relaxed) => break,
            Ok(None) => {}
            Err(e) => {
                eprintln!("  subscriber failed: {e}");
                break;
            }
        }
    }
    subscriber.stats()
}

/// The subscriber on a thread and runtime of its own, like a `zpm events` process: the
/// fake hosts' tasks do not hold it up on this process's runtime (the cores are shared
/// all the same).
async fn subscribe_apart(
    endpoint: String,
    options: SubscriberOptions,
    tally: Arc<Tally>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<tokio::sync::oneshot::Receiver<anyhow::Result<SubscriberStats>>> {
    let (connected_tx, connected) = tokio::sync::oneshot::channel();
    let (done_tx, done) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("subscriber".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    let _ = connected_tx.send(Err(anyhow::Error::from(e)));
                    return;
                }
            };
            runtime.block_on(async move {
                match Subscriber::connect(&endpoint, options).await {
                    Ok(subscriber) => {
                        let _ = connected_tx.send(Ok(()));
                        let _ = done_tx.send(Ok(read(subscriber, tally, stop).await));
                    }
                    Err(e) => {
                        let _ = connected_tx.send(Err(anyhow::Error::from(e)));
                    }
                }
            });
        })
        .context("starting the subscriber's thread")?;
    connected
        .await
        .context("the subscriber's thread ended")?
        .context("subscribing to God's bus")?;
    Ok(done)
}

fn total(hosts: &[FakeHost], counter: fn(&super::fake::Counters) -> &AtomicU64) -> u64 {
    hosts
        .iter()
        .map(|h| counter(&h.counters).load(Ordering::Relaxed))
        .sum()
}

fn sent(hosts: &[FakeHost]) -> u64 {
    total(hosts, |c| &c.sent)
}

/// Waits until nothing more arrives for a while.
async fn drain(tally: &Tally) {
    let mut seen = tally.received.load(Ordering::Relaxed);
    loop {
        tokio::time::sleep(DRAIN_IDLE).await;
        let now = tally.received.load(Ordering::Relaxed);
        if now == seen {
            return;
        }
        seen = now;
    }
}

pub async fn measure(
    god: &GodHome,
    client: &Client,
    hosts: &mut [FakeHost],
    apps: usize,
    credit: u32,
    window: Duration,
) -> anyhow::Result<Relay> {
    let options = SubscriberOptions {
        prefixes: vec![PROCESS_EVENT.to_owned()],
        credit,
        ..SubscriberOptions::default()
    };
    let tally = Arc::new(Tally::default());
    let reader_stop = Arc::new(AtomicBool::new(false));
    let reader = subscribe_apart(
        god.bus_endpoint(),
        options,
        Arc::clone(&tally),
        Arc::clone(&reader_stop),
    )
    .await?;
    // God tells every agent the bus's interest once the subscription is in place.
    poll(
        "God's bus.interest naming process:event",
        Duration::from_secs(10),
        Duration::from_millis(5),
        || async {
            Ok(hosts
                .iter()
                .all(|h| h.counters.wanted.load(Ordering::Relaxed))
                .then_some(()))
        },
    )
    .await?;
    let dropped_before = ping(client).await?.bus_dropped;
    let stop = Arc::new(AtomicBool::new(false));
    for (k, host) in hosts.iter_mut().enumerate() {
        host.start_flood(k, apps, Arc::clone(&stop));
    }
    tokio::time::sleep(WARMUP).await;
    let dropped0 = ping(client).await?.bus_dropped;
    let (god0, bench0) = (cpu_ticks(god.pid), cpu_ticks(std::process::id()));
    let (sent0, received0, started) = (
        sent(hosts),
        tally.received.load(Ordering::Relaxed),
        Instant::now(),
    );
    let mut hosts_down_max = 0;
    while started.elapsed() < window {
        tokio::time::sleep(Duration::from_millis(500).min(window)).await;
        let down = agents(client)
            .await?
            .iter()
            .filter(|a| a.role == "spawner" && a.host.starts_with("fake-") && !a.connected)
            .count();
        hosts_down_max = hosts_down_max.max(down);
    }
    let (sent1, received1, elapsed) = (
        sent(hosts),
        tally.received.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64(),
    );
    let (god1, bench1) = (cpu_ticks(god.pid), cpu_ticks(std::process::id()));
    let dropped1 = ping(client).await?.bus_dropped;
    stop.store(true, Ordering::Relaxed);
    for host in hosts.iter_mut() {
        host.stop_flood().await;
    }
    drain(&tally).await;
    reader_stop.store(true, Ordering::Relaxed);
    let stats = reader.await.context("the subscriber's thread failed")??;
    let dropped_after = ping(client).await?.bus_dropped;
    let sent_total = sent(hosts);
    let received_total = tally.received.load(Ordering::Relaxed);
    Ok(Relay {
        window_s: elapsed,
        offered_per_s: (sent1 - sent0) as f64 / elapsed,
        delivered_per_s: (received1 - received0) as f64 / elapsed,
        relayed_per_s: ((received1 - received0) + dropped1.saturating_sub(dropped0)) as f64
            / elapsed,
        sent_total,
        received_total,
        lost: sent_total.saturating_sub(received_total),
        seq_gaps: tally.lost.load(Ordering::Relaxed),
        dropped_out_of_credit: dropped_after.saturating_sub(dropped_before),
        out_of_order: tally.out_of_order.load(Ordering::Relaxed),
        subscriber_gaps: stats.gaps,
        subscriber_dropped_reported: stats.dropped_reported,
        hosts_down_max,
        heartbeats_failed: total(hosts, |c| &c.heartbeats_failed),
        outbox_full: total(hosts, |c| &c.outbox_full),
        god_cpu_pct: cpu_pct(god1.saturating_sub(god0), elapsed),
        bench_cpu_pct: cpu_pct(bench1.saturating_sub(bench0), elapsed),
    })
}

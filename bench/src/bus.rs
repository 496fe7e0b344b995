//! zpm-bus: delivery rate and loss to one and to many subscribers that keep up, and the
//! memory and loss picture when one subscriber stalls. Publisher and subscribers share this
//! process, so memory is the whole process's RSS.

pub mod feed;
mod table;

use crate::report::{mib, thousands};
use crate::rss::Rss;
use anyhow::Context;
use clap::Args;
use feed::{Bus, Feed, ReaderOutcome};
use serde::Serialize;
use std::time::Instant;

pub use table::print;

const TARGET_EVENTS_PER_S: f64 = 300_000.0;
const TARGET_RSS_GROWTH_KIB: i64 = 16 * 1024;
const STALL_PROGRESS_EVERY: u64 = 1_000_000;

#[derive(Args)]
pub struct Settings {
    /// Events published in the 1→1 case.
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// Events published in the 1→many case [default: --events / 4].
    #[arg(long)]
    fanout_events: Option<u64>,
    /// Subscribers in the 1→many case.
    #[arg(long, default_value_t = 8)]
    subscribers: usize,
    /// Events published in the stalled-subscriber case.
    #[arg(long, default_value_t = 10_000_000)]
    stall_events: u64,
    /// Credit window of every subscriber; the publisher stays within half of it.
    #[arg(long, default_value_t = 4096)]
    credit: u32,
    /// Make each reader yield to the runtime after this many events (0: never). Reading
    /// without ever yielding is what the plain `recv_raw` loop does.
    #[arg(long, default_value_t = 0)]
    reader_yield_every: u64,
}

#[derive(Serialize)]
pub struct Results {
    pub event_bytes: usize,
    pub credit: u32,
    pub reader_yield_every: u64,
    pub pacing_window: u64,
    pub one_to_one: Delivery,
    pub fan_out: Delivery,
    pub stalled: Stall,
}

#[derive(Serialize)]
pub struct Delivery {
    pub subscribers: usize,
    pub events_published: u64,
    /// Summed over subscribers.
    pub events_received: u64,
    pub elapsed_s: f64,
    /// Received events (all subscribers) per second, first publish to last receive.
    pub events_per_s: f64,
    /// Summed over subscribers: published minus received.
    pub loss: u64,
    pub gaps: u64,
    pub dropped_reported: u64,
    pub publisher_dropped: u64,
    pub pacing_timeouts: u64,
    pub target_events_per_s: Option<f64>,
    pub meets_target: bool,
}

#[derive(Serialize)]
pub struct Stall {
    pub note: &'static str,
    pub events_published: u64,
    pub stalled_credit: u32,
    pub stalled_sent: u64,
    pub stalled_dropped: u64,
    pub stalled_lag: u32,
    pub live: Delivery,
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
    pub rss_growth_kib: i64,
    /// Highest RSS sampled during the run, minus the RSS before it.
    pub rss_peak_growth_kib: i64,
    pub target_rss_growth_kib: i64,
    pub meets_target: bool,
}

pub async fn run(settings: &Settings) -> anyhow::Result<Results> {
    let window = u64::from(settings.credit / 2);
    eprintln!("bus: 1→1, {} events…", thousands(settings.events));
    let (one_to_one, event_bytes) = delivery(settings, 1, settings.events).await?;
    let fanout_events = settings.fanout_events.unwrap_or(settings.events / 4);
    eprintln!(
        "bus: 1→{}, {} events…",
        settings.subscribers,
        thousands(fanout_events)
    );
    let (fan_out, _) = delivery(settings, settings.subscribers, fanout_events).await?;
    eprintln!(
        "bus: stalled subscriber, {} events…",
        thousands(settings.stall_events)
    );
    let stalled = stall(settings).await?;
    Ok(Results {
        event_bytes,
        credit: settings.credit,
        reader_yield_every: settings.reader_yield_every,
        pacing_window: window,
        one_to_one,
        fan_out,
        stalled,
    })
}

/// One publisher, `subscribers` paced readers; also returns the size of one event.
async fn delivery(
    settings: &Settings,
    subscribers: usize,
    events: u64,
) -> anyhow::Result<(Delivery, usize)> {
    let bus = Bus::start().await?;
    let mut feed = Feed::new(settings.reader_yield_every);
    for _ in 0..subscribers {
        feed.read(bus.subscriber(settings.credit).await?, events);
    }
    bus.wait_for_subscribers(subscribers).await?;
    let window = u64::from(settings.credit / 2);
    let paced = feed
        .publish_paced(&bus.publisher, events, window, 0, |_| {})
        .await?;
    let outcomes = feed.finish(events).await?;
    let event_bytes = outcomes.first().map_or(0, |o| o.event_bytes);
    let target = (subscribers == 1).then_some(TARGET_EVENTS_PER_S);
    let delivery = summarize(&bus, events, paced, &outcomes, target);
    Ok((delivery, event_bytes))
}

pub fn summarize(
    bus: &Bus,
    events: u64,
    paced: feed::Paced,
    outcomes: &[ReaderOutcome],
    target: Option<f64>,
) -> Delivery {
    let received: u64 = outcomes.iter().map(|o| o.received).sum();
    let last = outcomes.iter().filter_map(|o| o.last_receive).max();
    let elapsed_s = last.map_or(0.0, |last| last.duration_since(paced.started).as_secs_f64());
    let events_per_s = if elapsed_s > 0.0 {
        received as f64 / elapsed_s
    } else {
        0.0
    };
    let loss: u64 = outcomes
        .iter()
        .map(|o| events.saturating_sub(o.received))
        .sum();
    let stats = bus.publisher.stats();
    Delivery {
        subscribers: outcomes.len(),
        events_published: events,
        events_received: received,
        elapsed_s,
        events_per_s,
        loss,
        gaps: outcomes.iter().map(|o| o.stats.gaps).sum(),
        dropped_reported: outcomes.iter().map(|o| o.stats.dropped_reported).sum(),
        publisher_dropped: stats.dropped.load(std::sync::atomic::Ordering::Relaxed),
        pacing_timeouts: paced.pacing_timeouts,
        target_events_per_s: target,
        meets_target: loss == 0 && target.is_none_or(|t| events_per_s >= t),
    }
}

/// One subscriber that never reads, one paced live reader.
async fn stall(settings: &Settings) -> anyhow::Result<Stall> {
    let bus = Bus::start().await?;
    let stalled = bus.subscriber(settings.credit).await?;
    let mut feed = Feed::new(settings.reader_yield_every);
    let events = settings.stall_events;
    feed.read(bus.subscriber(settings.credit).await?, events);
    bus.wait_for_subscribers(2).await?;
    let before = Rss::now()?;
    let mut peak_kib = before.rss_kib;
    let mut progress = |published: u64| {
        if let Ok(now) = Rss::now() {
            peak_kib = peak_kib.max(now.rss_kib);
            eprintln!(
                "  stall: {} / {} published, process RSS growth {}",
                thousands(published),
                thousands(events),
                mib(growth(before.rss_kib, now.rss_kib)),
            );
        }
    };
    let window = u64::from(settings.credit / 2);
    let started = Instant::now();
    let paced = feed
        .publish_paced(
            &bus.publisher,
            events,
            window,
            STALL_PROGRESS_EVERY,
            &mut progress,
        )
        .await?;
    let outcomes = feed.finish(events).await?;
    let after = Rss::now()?;
    eprintln!("  stall: done in {:.1} s", started.elapsed().as_secs_f64());
    let infos = bus
        .publisher
        .subscribers()
        .await
        .context("asking the publisher for its subscribers")?;
    // The stalled one is the subscriber that was sent only about its credit.
    let stalled_info = infos
        .iter()
        .filter(|info| info.sent <= u64::from(settings.credit))
        .min_by_key(|info| info.sent)
        .context("the publisher no longer knows the stalled subscriber")?;
    let live = summarize(&bus, events, paced, &outcomes, None);
    let rss_growth_kib = growth(before.rss_kib, after.rss_kib);
    let result = Stall {
        note: "process RSS growth (publisher + subscribers in one process)",
        events_published: events,
        stalled_credit: settings.credit,
        stalled_sent: stalled_info.sent,
        stalled_dropped: stalled_info.dropped,
        stalled_lag: stalled_info.lag,
        rss_before_kib: before.rss_kib,
        rss_after_kib: after.rss_kib,
        rss_growth_kib,
        rss_peak_growth_kib: growth(before.rss_kib, peak_kib.max(after.rss_kib)),
        target_rss_growth_kib: TARGET_RSS_GROWTH_KIB,
        meets_target: rss_growth_kib <= TARGET_RSS_GROWTH_KIB && live.loss == 0,
        live,
    };
    drop(stalled);
    Ok(result)
}

fn growth(before_kib: u64, after_kib: u64) -> i64 {
    after_kib.cast_signed() - before_kib.cast_signed()
}

//! A bus under test (publisher on an ipc socket in a temporary directory), the reader tasks
//! that count what each subscriber receives, and the publisher loop paced against them.

use anyhow::{Context, bail};
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tempfile::TempDir;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use zpm_bus::{
    BUS_TOPIC_PREFIX, Publisher, PublisherOptions, Subscriber, SubscriberOptions, SubscriberStats,
};

pub const TOPIC: &str = "process:event";
/// How long one `recv_raw` waits before the reader checks whether it should stop.
const READ_TIMEOUT: Duration = Duration::from_millis(250);
/// A wait for readers ends after this long without any progress.
const IDLE: Duration = Duration::from_secs(2);
const SETUP_TIMEOUT: Duration = Duration::from_secs(5);
const MESSAGE: &str = "worker 3 restarted after exit code 137 (killed: out of memory); \
                       backing off 1500 ms before the next start attempt.";

/// The body of every published event: what a process manager would announce.
#[derive(Serialize)]
struct ProcessEvent<'a> {
    app: &'a str,
    pid: u32,
    kind: &'a str,
    restarts: u32,
    message: &'a str,
}

fn event(n: u64) -> ProcessEvent<'static> {
    ProcessEvent {
        app: "billing-api",
        pid: 40_000 + (n % 20_000) as u32,
        kind: "restart",
        restarts: (n % 100) as u32,
        message: MESSAGE,
    }
}

/// A publisher bound on `ipc://<tempdir>/bus.sock`.
pub struct Bus {
    dir: TempDir,
    endpoint: String,
    pub publisher: Publisher,
}

impl Bus {
    pub async fn start() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir().context("creating a temporary directory for the bus")?;
        let endpoint = format!("ipc://{}", dir.path().join("bus.sock").display());
        let options = PublisherOptions {
            source: "zpm-bench".into(),
            ..PublisherOptions::default()
        };
        let publisher = Publisher::bind(&[&endpoint], options)
            .await
            .with_context(|| format!("binding the bus publisher on {endpoint}"))?;
        Ok(Self {
            dir,
            endpoint,
            publisher,
        })
    }

    /// A subscriber to every topic with `credit`.
    pub async fn subscriber(&self, credit: u32) -> anyhow::Result<Subscriber> {
        subscribe(&self.endpoint, credit).await
    }

    /// The publisher's ipc socket, e.g. for a tunnel to carry connections to.
    pub fn socket(&self) -> std::path::PathBuf {
        self.dir.path().join("bus.sock")
    }

    /// Waits until the publisher has registered `n` subscriptions.
    pub async fn wait_for_subscribers(&self, n: usize) -> anyhow::Result<()> {
        let deadline = Instant::now() + SETUP_TIMEOUT;
        loop {
            let known = self
                .publisher
                .subscribers()
                .await
                .context("asking the publisher for its subscribers")?;
            if known.len() >= n {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!("the publisher saw {} of {n} subscribers", known.len());
            }
            // Each query is a round trip through the publisher task: poll without sleeping.
            tokio::task::yield_now().await;
        }
    }
}

/// A subscriber to every topic of the publisher at `endpoint`, with `credit`.
pub async fn subscribe(endpoint: &str, credit: u32) -> anyhow::Result<Subscriber> {
    let options = SubscriberOptions {
        prefixes: vec![String::new()],
        credit,
        ..SubscriberOptions::default()
    };
    Subscriber::connect(endpoint, options)
        .await
        .with_context(|| format!("subscribing to {endpoint}"))
}

/// What one reader saw.
pub struct ReaderOutcome {
    /// Events on the benchmark topic (bus control events not included).
    pub received: u64,
    pub last_receive: Option<Instant>,
    pub stats: SubscriberStats,
    /// Topic plus payload bytes of one event on the wire.
    pub event_bytes: usize,
}

/// How the paced publishing went.
pub struct Paced {
    pub started: Instant,
    /// Times the publisher waited `IDLE` for a reader and then stopped waiting for it.
    pub pacing_timeouts: u64,
}

/// Reader tasks and the counters the publisher paces against. A reader's counter is the
/// events it received plus those it knows it lost, so events the publisher dropped do not
/// keep holding the publisher back once the subscriber has been told they are gone.
#[derive(Default)]
pub struct Feed {
    /// Readers yield to the runtime after every this many events; 0 never.
    yield_every: u64,
    counters: Vec<Arc<AtomicU64>>,
    readers: Vec<JoinHandle<anyhow::Result<ReaderOutcome>>>,
    wake: Arc<Notify>,
    stop: Arc<AtomicBool>,
}

impl Feed {
    pub fn new(yield_every: u64) -> Self {
        Self {
            yield_every,
            ..Self::default()
        }
    }

    /// Starts a task reading `subscriber` until it has `expected` events or is stopped.
    pub fn read(&mut self, subscriber: Subscriber, expected: u64) {
        let counter = Arc::new(AtomicU64::new(0));
        self.counters.push(Arc::clone(&counter));
        let reader = Reader {
            yield_every: self.yield_every,
            counter,
            wake: Arc::clone(&self.wake),
            stop: Arc::clone(&self.stop),
        };
        self.readers
            .push(tokio::spawn(reader.run(subscriber, expected)));
    }

    fn slowest(&self) -> u64 {
        self.counters
            .iter()
            .map(|c| c.load(Ordering::Acquire))
            .min()
            .unwrap_or(0)
    }

    /// Publishes `events` events, never more than `window` ahead of the slowest reader's
    /// count (received plus known lost). If that count stalls for `IDLE` the publisher stops
    /// waiting for the missing events, counts a pacing timeout and carries on.
    /// `progress` is called with the count published after every `every` events.
    pub async fn publish_paced(
        &self,
        publisher: &Publisher,
        events: u64,
        window: u64,
        every: u64,
        mut progress: impl FnMut(u64),
    ) -> anyhow::Result<Paced> {
        let started = Instant::now();
        let (mut slowest, mut forgiven, mut pacing_timeouts) = (0, 0, 0);
        for n in 0..events {
            while n.saturating_sub(slowest + forgiven) > window {
                let woken = tokio::time::timeout(IDLE, self.wake.notified()).await;
                slowest = self.slowest();
                if woken.is_err() && n.saturating_sub(slowest + forgiven) > window {
                    // Events lost without a report or a later gap: stop waiting for them.
                    pacing_timeouts += 1;
                    forgiven = n - slowest;
                }
            }
            publisher
                .publish(TOPIC, &event(n))
                .await
                .context("publishing a bus event")?;
            if every > 0 && (n + 1).is_multiple_of(every) {
                progress(n + 1);
            }
        }
        Ok(Paced {
            started,
            pacing_timeouts,
        })
    }

    /// Waits until every reader accounted for `events` events or none made progress for `IDLE`,
    /// then stops the readers and collects what they saw.
    pub async fn finish(self, events: u64) -> anyhow::Result<Vec<ReaderOutcome>> {
        loop {
            let before = self.slowest();
            if before >= events {
                break;
            }
            let woken = tokio::time::timeout(IDLE, self.wake.notified()).await;
            if woken.is_err() && self.slowest() == before {
                break;
            }
        }
        self.stop.store(true, Ordering::Release);
        let mut outcomes = Vec::with_capacity(self.readers.len());
        for reader in self.readers {
            outcomes.push(reader.await.context("a bus reader task failed")??);
        }
        Ok(outcomes)
    }
}

struct Reader {
    yield_every: u64,
    counter: Arc<AtomicU64>,
    wake: Arc<Notify>,
    stop: Arc<AtomicBool>,
}

impl Reader {
    async fn run(self, mut subscriber: Subscriber, expected: u64) -> anyhow::Result<ReaderOutcome> {
        let (mut received, mut last_receive, mut event_bytes) = (0, None, 0);
        while received + lost(&subscriber) < expected {
            let next = subscriber
                .recv_raw(READ_TIMEOUT)
                .await
                .context("receiving a bus event")?;
            let Some(event) = next else {
                if self.stop.load(Ordering::Acquire) {
                    break;
                }
                continue;
            };
            // Drop reports carry no benchmark event but still move the count on.
            if !event.topic.starts_with(BUS_TOPIC_PREFIX.as_bytes()) {
                received += 1;
                if self.yield_every > 0 && received.is_multiple_of(self.yield_every) {
                    tokio::task::yield_now().await;
                }
                last_receive = Some(Instant::now());
                if event_bytes == 0 {
                    event_bytes = event.topic.len() + event.payload.len();
                }
            }
            self.counter
                .store(received + lost(&subscriber), Ordering::Release);
            self.wake.notify_one();
        }
        Ok(ReaderOutcome {
            received,
            last_receive,
            stats: subscriber.stats(),
            event_bytes,
        })
    }
}

/// Events the subscriber knows it lost: from sequence gaps or the publisher's drop reports,
/// which count the same events (the reports arrive first, the gaps when the next event does).
fn lost(subscriber: &Subscriber) -> u64 {
    let stats = subscriber.stats();
    stats.gaps.max(stats.dropped_reported)
}

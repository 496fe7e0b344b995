//! A fake host: one tokio task set speaking the real agent protocol to God through a real
//! keyed tunnel of its own (`expose_god` into a temporary directory, an ordinary rpc
//! client on its `rpc.sock`). It says `agent.hello` as role `spawner` on every new
//! connection, holding `apps` apps that are "online", heartbeats every 500 ms, and on
//! demand floods `process:event` events through God's relay (`bus.publish`
//! notifications). Of God's pushes it answers only `proc.stop` and `proc.delete` (with a
//! `stopped` report, so `zpm kill` can finish) and keeps `bus.interest`.

use anyhow::Context as _;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use zpm_agents::remote::{Exposed, RemoteGod, expose_god};
use zpm_bus::{EventSource, RelayEvent};
use zpm_proto::commands::{Held, Hello};
use zpm_proto::method::{agent, proc};
use zpm_proto::topics::PROCESS_EVENT;
use zpm_proto::{
    AgentHello, AppSpec, PROTOCOL_VERSION, ProcessEvent, ProcessEventKind, ProcessReport,
    ProcessStatus, Vitals,
};
use zpm_rpc::{Client, ClientOptions, Push};

const HEARTBEAT: Duration = Duration::from_millis(500);
const HELLO_TIMEOUT: Duration = Duration::from_secs(30);
/// A fake host gives up joining after this long (God may take a while with many hosts).
const JOIN_WITHIN: Duration = Duration::from_secs(120);
/// Pause after the client's outbox was found full, before trying the same event again.
const FULL_PAUSE: Duration = Duration::from_millis(1);

/// What the whole fleet counted: how the hellos went, and every fake host's tunnel end.
#[derive(Default)]
pub struct Fleet {
    pub accepted: AtomicU64,
    /// The connection dropped while the hello was in flight (God may have handled it).
    pub lost: AtomicU64,
    /// No reply within the hello's 30 s deadline.
    pub timed_out: AtomicU64,
    /// Refused by God, or anything else.
    pub other: AtomicU64,
    /// Each fake host's tunnel counters (its `expose_god` end).
    tunnels: std::sync::Mutex<Vec<Arc<zpm_tunnel::TunnelStats>>>,
}

impl Fleet {
    /// The fake hosts' tunnel counters, summed.
    pub fn tunnels(&self) -> BTreeMap<String, u64> {
        let mut total = BTreeMap::new();
        let tunnels = self
            .tunnels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for stats in tunnels.iter() {
            for (name, n) in stats.snapshot().by_name() {
                *total.entry(name).or_insert(0) += n;
            }
        }
        total
    }

    pub fn failed(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
            + self.timed_out.load(Ordering::Relaxed)
            + self.other.load(Ordering::Relaxed)
    }

    fn count(&self, error: &zpm_rpc::CallError) {
        let counter = match error {
            zpm_rpc::CallError::ConnectionLost { .. } => &self.lost,
            zpm_rpc::CallError::Timeout { .. } => &self.timed_out,
            _ => &self.other,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// What a fake host counted.
#[derive(Default)]
pub struct Counters {
    pub heartbeats_failed: AtomicU64,
    /// Events handed to the rpc client (each exactly once, in `seq` order).
    pub sent: AtomicU64,
    /// Times the client's outbox was full and the event had to wait.
    pub outbox_full: AtomicU64,
    /// God's latest `bus.interest` wants `process:event`.
    pub wanted: AtomicBool,
}

pub struct FakeHost {
    pub name: String,
    pub counters: Arc<Counters>,
    client: Arc<Client>,
    tasks: Vec<JoinHandle<()>>,
    flood: Option<JoinHandle<()>>,
    /// Declared after the tasks: the tunnel's local end goes last.
    _exposed: Exposed,
    _dir: tempfile::TempDir,
}

impl Drop for FakeHost {
    fn drop(&mut self) {
        for task in self.tasks.iter().chain(&self.flood) {
            task.abort();
        }
    }
}

/// An environment like the one `zpm start` captures from a login shell (the complete
/// environment goes into every spec), about 1 KB.
fn environment(app: &str, port: u32) -> BTreeMap<String, String> {
    let pairs = [
        ("HOME", "/home/deploy".to_owned()),
        ("USER", "deploy".to_owned()),
        ("LOGNAME", "deploy".to_owned()),
        ("SHELL", "/bin/bash".to_owned()),
        (
            "PATH",
            "/home/deploy/.nvm/versions/node/v22.11.0/bin:/usr/local/sbin:/usr/local/bin:\
             /usr/sbin:/usr/bin:/sbin:/bin"
                .to_owned(),
        ),
        ("LANG", "en_US.UTF-8".to_owned()),
        ("LC_ALL", "en_US.UTF-8".to_owned()),
        ("TERM", "xterm-256color".to_owned()),
        ("PWD", format!("/srv/{app}")),
        ("OLDPWD", "/home/deploy".to_owned()),
        ("SHLVL", "1".to_owned()),
        ("XDG_RUNTIME_DIR", "/run/user/1001".to_owned()),
        ("XDG_SESSION_ID", "412".to_owned()),
        ("SSH_CONNECTION", "10.0.4.17 51234 10.0.4.31 22".to_owned()),
        ("SSH_CLIENT", "10.0.4.17 51234 22".to_owned()),
        ("MAIL", "/var/mail/deploy".to_owned()),
        ("NODE_ENV", "production".to_owned()),
        ("PORT", port.to_string()),
        (
            "DATABASE_URL",
            format!("postgres://{app}@db.internal:5432/{app}"),
        ),
        ("LOG_LEVEL", "info".to_owned()),
        (
            "_",
            "/home/deploy/.nvm/versions/node/v22.11.0/bin/zpm".to_owned(),
        ),
    ];
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// What fake host `k` holds: apps `app-K-I`, ids from `k * apps`, online since `now`.
pub fn holding(k: usize, host: &str, apps: usize) -> Vec<Held> {
    let now = zpm_bus::now_ms();
    (0..apps)
        .map(|i| {
            let id = (k * apps + i) as u32;
            let name = format!("app-{k}-{i}");
            let mut spec = AppSpec::new(
                name.clone(),
                vec![
                    "/home/deploy/.nvm/versions/node/v22.11.0/bin/node".into(),
                    format!("/srv/{name}/dist/server.js"),
                ],
                format!("/srv/{name}"),
            );
            spec.env = environment(&name, 3000 + i as u32);
            spec.env_explicit = vec!["NODE_ENV".into(), "PORT".into(), "DATABASE_URL".into()];
            spec.hosts = vec![host.to_owned()];
            Held {
                report: ProcessReport {
                    id,
                    status: ProcessStatus::Online,
                    pid: Some(1_000_000 + id),
                    restarts: 0,
                    started_at_ms: Some(now),
                    exit_code: None,
                    signal: None,
                    seq: 1,
                    error: None,
                    reason: None,
                    status_text: None,
                    health: None,
                },
                instance: 0,
                spec,
            }
        })
        .collect()
}

impl FakeHost {
    /// Opens the tunnel, connects, and returns once God accepted the first hello.
    pub async fn join(
        god: &RemoteGod,
        k: usize,
        apps: usize,
        fleet: Arc<Fleet>,
    ) -> anyhow::Result<Self> {
        let name = format!("fake-{k}");
        let dir = tempfile::Builder::new()
            .prefix("zbf")
            .tempdir()
            .context("creating a fake host's directory")?;
        let exposed = expose_god(dir.path(), god).context("a fake host's tunnel end")?;
        fleet
            .tunnels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Arc::clone(&exposed.stats));
        let options = ClientOptions {
            version: PROTOCOL_VERSION,
            max_backoff: Duration::from_millis(10),
            ..ClientOptions::default()
        };
        let endpoint = format!("ipc://{}/rpc.sock", dir.path().display());
        let client = Arc::new(Client::with_options(&endpoint, options));
        let pushes = client
            .take_pushes()
            .context("a fresh client has its pushes")?;
        let counters = Arc::new(Counters::default());
        let held = Arc::new(holding(k, &name, apps));
        let hello = AgentHello {
            role: "spawner".into(),
            host: name.clone(),
            pid: std::process::id(),
            version: "zpm-bench fake host".into(),
            protocol: PROTOCOL_VERSION,
        };
        let accepted = Arc::new(Notify::new());
        let tasks = vec![
            tokio::spawn(say_hello(
                Arc::clone(&client),
                hello,
                held,
                fleet,
                Arc::clone(&accepted),
            )),
            tokio::spawn(heartbeat(Arc::clone(&client), Arc::clone(&counters))),
            tokio::spawn(obey(Arc::clone(&client), pushes, Arc::clone(&counters))),
        ];
        let host = Self {
            name,
            counters,
            client,
            tasks,
            flood: None,
            _exposed: exposed,
            _dir: dir,
        };
        tokio::time::timeout(JOIN_WITHIN, accepted.notified())
            .await
            .with_context(|| format!("{}: no hello accepted within {JOIN_WITHIN:?}", host.name))?;
        Ok(host)
    }

    /// Starts publishing `process:event` events as fast as the client takes them.
    pub fn start_flood(&mut self, k: usize, apps: usize, stop: Arc<AtomicBool>) {
        let task = flood(
            Arc::clone(&self.client),
            self.name.clone(),
            k,
            apps,
            Arc::clone(&self.counters),
            stop,
        );
        self.flood = Some(tokio::spawn(task));
    }

    pub async fn stop_flood(&mut self) {
        if let Some(task) = self.flood.take() {
            let _ = task.await;
        }
    }
}

/// Hello on every new connection, as a real agent must (the guard gives each connection
/// its own identity). `accepted` is told after each accepted hello.
async fn say_hello(
    client: Arc<Client>,
    agent: AgentHello,
    holding: Arc<Vec<Held>>,
    fleet: Arc<Fleet>,
    accepted: Arc<Notify>,
) {
    let mut connections = client.connections();
    connections.mark_changed();
    loop {
        if connections.changed().await.is_err() {
            return;
        }
        if *connections.borrow_and_update() == 0 {
            continue;
        }
        loop {
            let hello = Hello {
                agent: agent.clone(),
                holding: holding.as_ref().clone(),
            };
            match client
                .call_method::<agent::Hello>(&hello, HELLO_TIMEOUT)
                .await
            {
                Ok(_) => {
                    fleet.accepted.fetch_add(1, Ordering::Relaxed);
                    accepted.notify_one();
                    break;
                }
                Err(e) => {
                    fleet.count(&e);
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
            if connections.has_changed().unwrap_or(false) {
                break;
            }
        }
    }
}

async fn heartbeat(client: Arc<Client>, counters: Arc<Counters>) {
    let mut ticks = tokio::time::interval(HEARTBEAT);
    let vitals = Some(Vitals { rss: 9 << 20 });
    loop {
        ticks.tick().await;
        if client.notify_method::<agent::Heartbeat>(&vitals).is_err() {
            counters.heartbeats_failed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Keeps `bus.interest`; answers `proc.stop`/`proc.delete` with a `stopped` report;
/// ignores everything else (`agent.exit` included: the bench drops the host itself).
async fn obey(client: Arc<Client>, mut pushes: mpsc::Receiver<Push>, counters: Arc<Counters>) {
    while let Some(push) = pushes.recv().await {
        if push.is::<agent::Interest>() {
            if let Ok(interest) = push.params::<agent::Interest>() {
                let wanted = interest
                    .prefixes
                    .iter()
                    .any(|p| PROCESS_EVENT.starts_with(p.as_str()));
                counters.wanted.store(wanted, Ordering::Relaxed);
            }
        } else if (push.is::<proc::Stop>() || push.is::<proc::Delete>())
            && let Ok(command) = push.params::<proc::Stop>()
        {
            let report = ProcessReport {
                id: command.id,
                status: ProcessStatus::Stopped,
                pid: None,
                restarts: 0,
                started_at_ms: None,
                exit_code: None,
                signal: Some("SIGTERM".into()),
                seq: 2,
                error: None,
                reason: None,
                status_text: None,
                health: None,
            };
            // With the outbox full, wait a moment rather than lose the report.
            while client.notify_method::<agent::Report>(&report).is_err() {
                tokio::time::sleep(FULL_PAUSE).await;
            }
        }
    }
}

/// Publishes `process:event` events (source `spawner`, like the real spawner) until
/// `stop`; an event the full outbox refuses is retried, never skipped, so the `seq`s God
/// receives from this host are contiguous and any gap a subscriber sees is God's or the
/// bus's drop.
async fn flood(
    client: Arc<Client>,
    host: String,
    k: usize,
    apps: usize,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
) {
    let mut source = EventSource::new("spawner", host, PROTOCOL_VERSION);
    let names: Vec<String> = (0..apps).map(|i| format!("app-{k}-{i}")).collect();
    let mut n: usize = 0;
    let started = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let i = n % apps.max(1);
        let id = (k * apps + i) as u32;
        let event = ProcessEvent {
            event: ProcessEventKind::Restart,
            id,
            name: names.get(i).cloned().unwrap_or_default(),
            pid: Some(1_000_000 + id + (started.elapsed().as_millis() as u32 % 1000)),
            exit_code: Some(137),
            signal: Some("SIGKILL".into()),
        };
        let Ok(payload) = source.encode(PROCESS_EVENT, &event) else {
            return;
        };
        let relay = RelayEvent::new(PROCESS_EVENT, payload.to_vec());
        loop {
            if client.notify_method::<agent::Publish>(&relay).is_ok() {
                counters.sent.fetch_add(1, Ordering::Relaxed);
                break;
            }
            counters.outbox_full.fetch_add(1, Ordering::Relaxed);
            if stop.load(Ordering::Relaxed) {
                return;
            }
            tokio::time::sleep(FULL_PAUSE).await;
        }
        n += 1;
        if n.is_multiple_of(32) {
            tokio::task::yield_now().await;
        }
    }
}

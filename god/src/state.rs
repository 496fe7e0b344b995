//! God's state and the waiting primitives its handlers share.

use crate::registry::Registry;
use crate::table::Table;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, watch};
use zpm_host::keeper::{Health, KeeperStatus};
use zpm_proto::logfiles::{LogDefaults, LogTarget, Rotation};
use zpm_proto::{Pong, Role, ZPM_VERSION};
use zpm_rpc::{ErrorCode, PeerId, RpcError};

/// Instance reloads in flight at once, over every `app.reload`.
const MAX_RELOADS: usize = 4096;

pub struct God {
    pub host: String,
    state_file: std::path::PathBuf,
    /// Where `zpm save` writes and `zpm resurrect` reads.
    pub dump_file: std::path::PathBuf,
    warnings: Vec<String>,
    /// Set by `god.kill`: keepers must not relaunch anything any more.
    pub stopping: std::sync::atomic::AtomicBool,
    started: Instant,
    table: Mutex<Table>,
    registry: Mutex<Registry>,
    /// Bumped on every change of the table or registry; handlers wait on it.
    changes: watch::Sender<u64>,
    publisher: zpm_bus::Publisher,
    /// The rpc server's guard counters, once it is bound.
    pub rpc_guard: std::sync::OnceLock<std::sync::Arc<zpm_rpc::GuardStats>>,
    /// The TCP address God serves other hosts on and its tunnel's counters, if it does.
    pub tcp: std::sync::OnceLock<(String, std::sync::Arc<zpm_tunnel::TunnelStats>)>,
    pub shutdown: Notify,
    /// One per local agent role: its health (told when its hello is accepted, which
    /// resets its keeper's backoff) and what its keeper last knew.
    keepers: BTreeMap<Role, KeeperSlot>,
    spawner_lock: PathBuf,
    spawner_log: PathBuf,
    logs_dir: PathBuf,
    log_defaults: LogDefaults,
    /// Log files the logs agent cannot write now.
    log_problems: Mutex<Vec<zpm_proto::logfiles::LogProblem>>,
    /// Each host's latest sample, by host name.
    hosts: Mutex<BTreeMap<String, zpm_proto::metrics::HostInfo>>,
    /// `logs.ask` requests waiting for their logs agent's answer.
    queries: Mutex<crate::logs::Queries>,
    /// `proc.reload`s pushed and not answered yet: the error, if the reload was given up.
    reloads: Mutex<crate::pending::Pending<Option<String>>>,
    /// Apps (name, namespace) being reloaded because their watched files changed: one
    /// such reload at a time per app, the other instances' notices of the same burst
    /// ignored meanwhile.
    watch_reloads: Mutex<std::collections::HashSet<(String, String)>>,
    /// Writes of the state file asked for, the writer woken for them, and done.
    persist_wanted: AtomicU64,
    persist_asked: Notify,
    persist_written: watch::Sender<u64>,
}

/// What God shares with the keeper of one agent role.
#[derive(Default)]
pub struct KeeperSlot {
    pub health: Health,
    pub status: KeeperStatus,
}

fn relock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves the data consistent, so a poisoned lock is usable.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl God {
    pub fn new(
        host: String,
        publisher: zpm_bus::Publisher,
        home: &zpm_host::home::Home,
        config: &zpm_host::config::Config,
    ) -> Self {
        let state_file = home.state_file();
        let loaded = crate::persist::load(&state_file);
        Self {
            dump_file: home.dump_file(),
            table: Mutex::new(Table::from_saved(loaded.state, &host)),
            host,
            state_file,
            warnings: loaded.warning.into_iter().collect(),
            stopping: std::sync::atomic::AtomicBool::new(false),
            started: Instant::now(),
            registry: Mutex::new(Registry::default()),
            changes: watch::Sender::new(0),
            publisher,
            rpc_guard: std::sync::OnceLock::new(),
            tcp: std::sync::OnceLock::new(),
            shutdown: Notify::new(),
            keepers: Role::ALL
                .into_iter()
                .map(|role| (role, KeeperSlot::default()))
                .collect(),
            spawner_lock: home.agent_lock("spawner"),
            spawner_log: home.agent_log("spawner"),
            logs_dir: home.logs_dir(),
            log_problems: Mutex::new(Vec::new()),
            hosts: Mutex::new(BTreeMap::new()),
            queries: Mutex::new(crate::logs::Queries::default()),
            watch_reloads: Mutex::default(),
            reloads: Mutex::new(crate::pending::Pending::new(
                MAX_RELOADS,
                "instance reloads",
            )),
            persist_wanted: AtomicU64::new(0),
            persist_asked: Notify::new(),
            persist_written: watch::Sender::new(0),
            log_defaults: LogDefaults {
                rotation: Rotation {
                    max_size: config.logs.max_size,
                    retain: config.logs.retain,
                    compress: config.logs.compress,
                },
                date_format: config.logs.date_format.clone(),
            },
        }
    }

    /// What the user should know: the state file's troubles, log files failing now.
    fn warnings(&self) -> Vec<String> {
        let problems = relock(&self.log_problems);
        self.warnings
            .iter()
            .cloned()
            .chain(problems.iter().map(|p| {
                format!(
                    "cannot write the log file {}: {} (the app keeps running; its output is held and written once the file can be)",
                    p.path, p.error
                )
            }))
            .collect()
    }

    pub fn set_host(&self, info: zpm_proto::metrics::HostInfo) {
        let mut hosts = relock(&self.hosts);
        // Bounded: a host is one metrics agent, and agents are bounded by connections.
        if hosts.len() < 1024 || hosts.contains_key(&info.host) {
            hosts.insert(info.host.clone(), info);
        }
    }

    pub fn hosts(&self) -> Vec<zpm_proto::metrics::HostInfo> {
        relock(&self.hosts).values().cloned().collect()
    }

    pub fn set_log_problems(&self, problems: Vec<zpm_proto::logfiles::LogProblem>) {
        *relock(&self.log_problems) = problems;
    }

    /// Notes that the agent behind `peer` is alive; `None` if it never said hello. A
    /// spawner heard again after its host was marked down brings the host back (its
    /// connection stalled rather than broke, so no new hello comes).
    pub fn heard_from(
        &self,
        peer: &PeerId,
        vitals: Option<zpm_proto::Vitals>,
    ) -> Option<crate::registry::Sender> {
        let sender = self.registry().seen(peer, vitals)?;
        if sender.back && sender.is_spawner_of(&sender.host) {
            tracing::info!(host = %sender.host, "host back");
            self.table().set_host_down(&sender.host, false);
            self.changed();
        }
        Some(sender)
    }

    /// Where and how app instance `proc` writes its output. Default files of an app on
    /// another host are relative: that host's logs agent puts them in its own logs
    /// directory (PROTOCOL.md, `logs.targets`).
    pub fn log_target(&self, proc: &crate::table::Proc) -> LogTarget {
        let logs_dir = if proc.host == self.host {
            self.logs_dir.as_path()
        } else {
            Path::new("")
        };
        zpm_proto::logfiles::resolve(
            &proc.spec,
            proc.id,
            proc.instance,
            logs_dir,
            &self.log_defaults,
        )
    }

    /// The log target of every app instance on `host`.
    pub fn log_targets_on(&self, host: &str) -> Vec<LogTarget> {
        let table = self.table();
        table
            .procs()
            .filter(|p| p.host == host)
            .map(|p| self.log_target(p))
            .collect()
    }

    pub fn keeper(&self, role: Role) -> &KeeperSlot {
        &self.keepers[&role]
    }

    pub fn watch_reloads(&self) -> MutexGuard<'_, std::collections::HashSet<(String, String)>> {
        relock(&self.watch_reloads)
    }

    pub fn reloads(&self) -> MutexGuard<'_, crate::pending::Pending<Option<String>>> {
        relock(&self.reloads)
    }

    pub fn queries(&self) -> MutexGuard<'_, crate::logs::Queries> {
        relock(&self.queries)
    }

    pub fn table(&self) -> MutexGuard<'_, Table> {
        relock(&self.table)
    }

    pub fn registry(&self) -> MutexGuard<'_, Registry> {
        relock(&self.registry)
    }

    /// Bumped on every change of the table or registry.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    pub fn changed(&self) {
        self.changes.send_modify(|n| *n += 1);
    }

    pub fn pong(&self) -> Pong {
        Pong {
            version: ZPM_VERSION.to_owned(),
            pid: std::process::id(),
            host: self.host.clone(),
            uptime_ms: self.started.elapsed().as_millis() as u64,
            warnings: self.warnings(),
            bus_dropped: self
                .publisher
                .stats()
                .dropped
                .load(std::sync::atomic::Ordering::Relaxed),
            guards: self.guard_counters(),
            listening: self.tcp.get().map(|(endpoint, _)| endpoint.clone()),
        }
    }

    fn guard_counters(
        &self,
    ) -> std::collections::BTreeMap<String, std::collections::BTreeMap<String, u64>> {
        let mut guards = std::collections::BTreeMap::new();
        if let Some(rpc) = self.rpc_guard.get() {
            guards.insert("rpc".to_owned(), rpc.snapshot().by_name());
        }
        guards.insert("bus".to_owned(), self.publisher.guard_counters().by_name());
        if let Some((_, tcp)) = self.tcp.get() {
            guards.insert("tcp".to_owned(), tcp.snapshot().by_name());
        }
        guards
    }

    /// Writes the desired state to disk. Called after every change of it.
    /// Returns once the desired state as it is now is on disk. One writer task writes
    /// (`write_state`): callers arriving during a write share the next one, so a burst of
    /// changes (a fleet of hosts saying hello) costs one or two writes, not one each, and
    /// writes never race each other to the rename.
    pub async fn persist(&self) {
        let wanted = self.persist_wanted.fetch_add(1, Ordering::SeqCst) + 1;
        self.persist_asked.notify_one();
        let mut written = self.persist_written.subscribe();
        let _ = written.wait_for(|done| *done >= wanted).await;
    }

    /// The one writer of the state file; runs for God's life.
    pub async fn write_state(self: std::sync::Arc<Self>) {
        loop {
            self.persist_asked.notified().await;
            let wanted = self.persist_wanted.load(Ordering::SeqCst);
            // Encoded under the lock from the table itself: no copy of every spec.
            let encoded = crate::persist::encode(&self.table().snapshot());
            let bytes = match encoded {
                Ok(bytes) => bytes,
                Err(e) => {
                    tracing::error!(error = %e, "cannot encode the state");
                    self.persist_written.send_replace(wanted);
                    continue;
                }
            };
            let path = self.state_file.clone();
            let saved =
                tokio::task::spawn_blocking(move || crate::persist::write(&path, &bytes)).await;
            match saved {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "cannot persist state"),
                Err(e) => tracing::error!(error = %e, "the state writer failed"),
            }
            // Waiters go on even after a failure: it is logged, and the next change retries.
            self.persist_written.send_replace(wanted);
        }
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub async fn announce_up(&self) {
        let pong = self.pong();
        self.publish(zpm_proto::topics::GOD_UP, &pong).await;
    }

    pub async fn publish<T: Serialize + ?Sized>(&self, topic: &str, data: &T) {
        if let Err(e) = self.publisher.publish(topic, data).await {
            tracing::warn!(topic, error = %e, "publish failed");
        }
    }

    /// Re-publishes a peer's event without waiting: a full bus queue drops it (counted).
    /// The topic prefixes the bus's subscribers want now, and as they change.
    pub fn interest(&self) -> tokio::sync::watch::Receiver<Vec<String>> {
        self.publisher.interest()
    }

    pub fn relay(&self, event: zpm_bus::RelayEvent) -> Result<(), RpcError> {
        self.publisher.relay(event).map_err(|e| match e {
            zpm_bus::BusError::Decode(_) => RpcError::bad_params(e.to_string()),
            _ => RpcError::new(ErrorCode::Unavailable, e.to_string()),
        })
    }

    /// Waits until `done` holds for the table, or fails with `timeout` after `limit`.
    pub async fn wait_table(
        &self,
        limit: Duration,
        what: &str,
        mut done: impl FnMut(&Table) -> bool,
    ) -> Result<(), RpcError> {
        let mut changes = self.changes.subscribe();
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if done(&self.table()) {
                return Ok(());
            }
            let waited = tokio::time::timeout_at(deadline, changes.changed()).await;
            if !matches!(waited, Ok(Ok(()))) {
                return Err(RpcError::new(
                    ErrorCode::Timeout,
                    format!("{what} did not finish within {limit:?}"),
                ));
            }
        }
    }

    /// The connection to `host`'s spawner, waiting for it to dial in if needed. A host
    /// that never joined is refused at once.
    pub async fn spawner(&self, host: &str, limit: Duration) -> Result<PeerId, RpcError> {
        let spawner = Role::Spawner.as_str();
        if host != self.host && !self.registry().knows(spawner, host) {
            return Err(RpcError::not_found(format!(
                "no host named {host:?} has joined (hosts: {}); run `zpm agent all --connect … \
                 --host {host}` there",
                self.known_hosts().join(", ")
            )));
        }
        let mut changes = self.changes.subscribe();
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(peer) = self.registry().peer_of(spawner, host) {
                return Ok(peer);
            }
            let waited = tokio::time::timeout_at(deadline, changes.changed()).await;
            if !matches!(waited, Ok(Ok(()))) {
                let why = if host == self.host {
                    self.spawner_diagnosis()
                } else {
                    format!("host {host} is down (its agents lost their connection to God)")
                };
                return Err(RpcError::new(
                    ErrorCode::Unavailable,
                    format!("no spawner agent of host {host} connected within {limit:?}: {why}"),
                ));
            }
        }
    }

    /// God's own host and every host a spawner joined from.
    pub fn known_hosts(&self) -> Vec<String> {
        let mut hosts = self.registry().hosts_with(Role::Spawner.as_str());
        if !hosts.contains(&self.host) {
            hosts.insert(0, self.host.clone());
        }
        hosts
    }

    /// Why no spawner may be connected: who holds its lock, what the keeper last did, the
    /// last problem in its log, and where to look.
    fn spawner_diagnosis(&self) -> String {
        let lock = self.spawner_lock.display();
        let holder = match zpm_host::holder(&self.spawner_lock) {
            Some(pid) => format!("spawner pid {pid} holds {lock} but has not said hello"),
            None => format!("no spawner process holds {lock}"),
        };
        let problem = last_problem(&self.spawner_log)
            .map(|line| format!("; its last problem: {line}"))
            .unwrap_or_default();
        format!(
            "{holder}; keeper: {}{problem}; see {}",
            self.keeper(Role::Spawner).status.get(),
            self.spawner_log.display()
        )
    }
}

/// The last warning or error line in the tail of a log file.
fn last_problem(log: &Path) -> Option<String> {
    use std::io::{Read as _, Seek as _, SeekFrom};
    const TAIL: u64 = 16 * 1024;
    let mut file = std::fs::File::open(log).ok()?;
    let len = file.metadata().ok()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(TAIL))).ok()?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail).ok()?;
    String::from_utf8_lossy(&tail)
        .lines()
        .rev()
        .find(|line| line.contains(" WARN ") || line.contains(" ERROR "))
        .map(|line| line.trim().to_owned())
}

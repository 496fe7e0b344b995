//! The spawner process: owns this host's apps, takes commands from God, serves their
//! output on the host-local endpoint.

use super::logs::{LogHub, LogLimits, serve_logs};
use super::reaper::{self, Leaders};
use super::record::{self, Record};
use super::report::{Outbound, Reporter};
use super::serve::Sockets;
use super::supervisor::{AppCommand, ReloadOrder, Shared, Supervisor};
use crate::agent;
use crate::god_keeper::GodKeeper;
use crate::link::{Holdings, Link};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use zpm_host::home::Home;
use zpm_proto::commands::{
    ProcCommand, ProcInput, ReloadCommand, SignalCommand, SpawnCommand, WatchCommand,
};
use zpm_proto::method::proc::SpawnerCommand;
use zpm_proto::{ProcessReport, ProcessStatus, Role};

#[derive(Debug, thiserror::Error)]
pub enum SpawnerError {
    #[error(transparent)]
    Lock(#[from] zpm_host::LockError),
    #[error("cannot serve logs: {0}")]
    Bind(#[from] zpm_rpc::BindError),
}

#[derive(Debug, Clone)]
pub struct SpawnerOptions {
    pub home: Home,
    pub host: String,
    /// The zpm executable, to relaunch God (`zpm daemon`) when it dies.
    pub exe: std::path::PathBuf,
}

/// The module `node --require` loads into Node apps in cluster mode (see its header).
const NODE_PRELOAD: &str = include_str!("node/preload.js");

/// How long a predecessor's leftover apps get to exit on SIGTERM before SIGKILL.
const LEFTOVER_GRACE: Duration = Duration::from_millis(500);

struct Apps {
    commands: HashMap<u32, mpsc::Sender<AppCommand>>,
    tasks: JoinSet<()>,
    out: mpsc::Sender<Outbound>,
    dropped: Arc<AtomicU64>,
    shared: Shared,
}

/// Runs the spawner until God orders it to exit.
pub async fn run(options: SpawnerOptions) -> Result<(), SpawnerError> {
    let holdings = Holdings::default();
    let joined = agent::join(
        &options.home,
        Role::Spawner,
        &options.host,
        holdings.clone(),
    )?;
    reaper::become_subreaper();
    record::replace_leftovers(&options.home.spawner_record(), LEFTOVER_GRACE).await;
    let record = Record::new(options.home.spawner_record());
    let leaders = Leaders::default();
    tokio::spawn(reaper::run(leaders.clone()));
    let logs = LogHub::new(LogLimits::default());
    let _log_server = serve_logs(Arc::clone(&logs), &options.home.spawner_endpoint()).await?;
    let (out, outbound) = mpsc::channel(4096);
    let link = Link {
        client: Arc::clone(&joined.client),
        holdings,
        source: joined.source,
        interest: joined.interest.clone(),
    };
    tokio::spawn(link.run(outbound));
    let mut pushes = joined.pushes;
    let god_health = joined.god_health;
    let stopped = Arc::new(AtomicBool::new(false));
    let keeper = GodKeeper {
        home: options.home.clone(),
        exe: options.exe.clone(),
        stopped: Arc::clone(&stopped),
        health: god_health,
    };
    tokio::spawn(keeper.run());
    let node_preload = options.home.node_preload();
    if let Err(e) = zpm_host::atomic::write(&node_preload, NODE_PRELOAD.as_bytes()) {
        tracing::warn!(path = %node_preload.display(), error = %e, "cannot write the Node preload module; Node cluster mode will fail");
    }
    let shared = Shared {
        home: zpm_host::home::Home::new(
            std::fs::canonicalize(options.home.root())
                .unwrap_or_else(|_| options.home.root().to_path_buf()),
        ),
        logs,
        leaders,
        record,
        sockets: Sockets::default(),
        notify_dir: options.home.notify_dir(),
        node_preload,
    };
    let mut apps = Apps {
        commands: HashMap::new(),
        tasks: JoinSet::new(),
        out,
        dropped: Arc::default(),
        shared,
    };
    let terminated = terminate_signal();
    tokio::pin!(terminated);
    loop {
        let push = tokio::select! {
            push = pushes.recv() => push,
            () = &mut terminated => {
                // `systemctl stop`, or a remote host's stand-in stopping: an order, not a
                // crash — stop the apps, and relaunch nothing.
                tracing::info!("SIGTERM: stopping every app");
                stopped.store(true, Ordering::SeqCst);
                break;
            }
        };
        let Some(push) = push else { break };
        match SpawnerCommand::from_push(&push) {
            Ok(SpawnerCommand::Exit) => {
                stopped.store(true, Ordering::SeqCst);
                break;
            }
            Ok(SpawnerCommand::Interest(wanted)) => joined.interest.set(wanted),
            Ok(command) => apps.dispatch(command),
            Err(e) => tracing::warn!(method = %push.method, error = %e, "bad command from God"),
        }
    }
    apps.shutdown().await;
    tracing::info!("spawner exiting");
    Ok(())
}

/// Resolves on SIGTERM; never, if it cannot be watched.
async fn terminate_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            term.recv().await;
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch SIGTERM");
            std::future::pending::<()>().await;
        }
    }
}

impl Apps {
    fn dispatch(&mut self, command: SpawnerCommand) {
        match command {
            SpawnerCommand::Spawn(command) => self.spawn(*command),
            SpawnerCommand::Stop(ProcCommand { id }) => self.send(id, AppCommand::Stop),
            SpawnerCommand::Restart(ProcCommand { id }) => self.send(id, AppCommand::Restart),
            SpawnerCommand::Delete(ProcCommand { id }) => self.send(id, AppCommand::Delete),
            SpawnerCommand::Reset(ProcCommand { id }) => self.send(id, AppCommand::Reset),
            SpawnerCommand::Signal(SignalCommand { id, signal }) => {
                match super::child::parse_signal(&signal) {
                    Some(signal) => self.send(id, AppCommand::Signal(signal)),
                    None => tracing::warn!(%signal, "unknown signal"),
                }
            }
            SpawnerCommand::Reload(command) => {
                let ReloadCommand {
                    id,
                    token,
                    spec,
                    reason,
                } = *command;
                if !self.commands.contains_key(&id) {
                    let error = Some("this spawner does not run it".to_owned());
                    let reloaded = zpm_proto::commands::Reloaded { id, token, error };
                    let _ = self.out.try_send(Outbound::Reloaded(reloaded));
                    return;
                }
                let spec = spec.map(Box::new);
                self.send(
                    id,
                    AppCommand::Reload(ReloadOrder {
                        token,
                        spec,
                        reason,
                    }),
                );
            }
            SpawnerCommand::Msg(ProcInput { id, text }) => self.send(id, AppCommand::Msg(text)),
            SpawnerCommand::Stdin(ProcInput { id, text }) => {
                self.send(id, AppCommand::Stdin(text));
            }
            SpawnerCommand::Watch(WatchCommand { id, watch }) => {
                self.send(id, AppCommand::Watch(watch));
            }
            // Handled by the loop that owns them.
            SpawnerCommand::Exit | SpawnerCommand::Interest(_) => {}
        }
    }

    fn spawn(&mut self, command: SpawnCommand) {
        if self.commands.contains_key(&command.id) {
            tracing::warn!(id = command.id, "already running this id; spawn ignored");
            return;
        }
        let (tx, rx) = mpsc::channel(64);
        let reporter = Reporter::new(
            command.id,
            &command.spec.name,
            command.restarts,
            self.out.clone(),
            Arc::clone(&self.dropped),
        );
        let id = command.id;
        let supervisor = Supervisor::new(command, reporter, self.shared.clone());
        self.commands.insert(id, tx);
        self.tasks.spawn(supervisor.run(rx));
    }

    fn send(&mut self, id: u32, command: AppCommand) {
        let Some(tx) = self.commands.get(&id) else {
            // God believes in an app this spawner does not hold: say it is not running.
            let report = ProcessReport {
                id,
                status: ProcessStatus::Stopped,
                pid: None,
                restarts: 0,
                started_at_ms: None,
                exit_code: None,
                signal: None,
                seq: super::report::next_seq(),
                error: None,
                reason: None,
                status_text: None,
                health: None,
            };
            let _ = self.out.try_send(Outbound::Report(report));
            return;
        };
        let delete = command == AppCommand::Delete;
        if let Err(e) = tx.try_send(command) {
            tracing::warn!(id, command = ?e.into_inner(), "app command queue full; command dropped");
        }
        if delete {
            self.commands.remove(&id);
        }
    }

    /// Stops every app and waits for their supervisors to finish.
    async fn shutdown(mut self) {
        for tx in self.commands.values() {
            let _ = tx.send(AppCommand::Shutdown).await;
        }
        self.commands.clear();
        while self.tasks.join_next().await.is_some() {}
    }
}

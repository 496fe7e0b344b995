//! The stand-in: on a host other than God's, the process that takes God's place in this
//! home. It holds the home's God lock (so no God of its own starts here), exposes the
//! remote God's endpoints in the home (`rpc.sock`, `bus.sock`: the agents and the CLI of
//! this home dial them as if God were local), and keeps this host's agents alive with the
//! same keeper God uses. The spawner keeps it alive in return: `zpm daemon` in a joined
//! home runs the stand-in (`zpm_host::joined`).
//!
//! It stops keeping a role when that agent exits cleanly (God ordered it, `zpm kill`), and
//! stops everything on SIGINT/SIGTERM: each agent is sent SIGTERM (the spawner stops its
//! apps first) and the home becomes local again. SIGHUP reloads the key file.

use super::expose::{RemoteGod, expose_god};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use zpm_host::home::Home;
use zpm_host::keeper::{Health, Keeper, KeeperStatus, Kept};
use zpm_host::launch::daemon_command;
use zpm_host::{HomeLock, LockError};
use zpm_proto::Role;

/// How long agents get to exit (the spawner stops its apps first) when the stand-in stops.
const AGENTS_EXIT_WITHIN: Duration = Duration::from_secs(30);
/// How long a keeper waits, after an agent's lock is freed, for its exit status.
const EXIT_STATUS_WITHIN: Duration = Duration::from_secs(2);
/// How often a launched agent is checked for having taken its lock.
const LOCK_CHECK: Duration = Duration::from_millis(10);

#[derive(Debug, thiserror::Error)]
pub enum StandInError {
    #[error("this home already has a God or a stand-in: {0}")]
    Lock(#[from] LockError),
    #[error("cannot expose the remote God in this home: {0}")]
    Expose(#[from] zpm_rpc::BindError),
    #[error(transparent)]
    Joined(#[from] zpm_host::joined::JoinedError),
    #[error(
        "host {host:?} already has a live {role} agent (pid {pid}) that is not this home's; \
         stop it first or give this one another --host"
    )]
    Claimed {
        host: String,
        role: String,
        pid: u32,
    },
    #[error("the remote God did not answer agent.list: {0}")]
    Unanswered(String),
}

pub struct StandIn {
    pub home: Home,
    pub god: RemoteGod,
    /// Where the key was read: SIGHUP reads it again (rotation, SECURITY.md).
    pub key_file: PathBuf,
    /// The name this host's agents report (`--host`).
    pub host: String,
    pub roles: Vec<Role>,
    /// Written to the home's `remote.toml` once the God lock is held (a relaunched
    /// stand-in already has it).
    pub record: Option<zpm_host::joined::Joined>,
    /// The zpm executable, run as `zpm agent ROLE`.
    pub exe: PathBuf,
}

/// Runs until every kept agent was ordered to exit, or SIGINT/SIGTERM.
pub async fn run(standin: StandIn) -> Result<(), StandInError> {
    let _lock = HomeLock::acquire(&standin.home.god_lock())?;
    if let Some(record) = &standin.record {
        record.save(&standin.home.joined_file())?;
    }
    let _exposed = expose_god(standin.home.root(), &standin.god)?;
    tokio::spawn(zpm_tunnel::reload_on_hangup(
        standin.god.key.clone(),
        standin.key_file.clone(),
    ));
    if let Err(e) = check_claims(&standin).await {
        let _ = std::fs::remove_file(standin.home.joined_file());
        return Err(e);
    }
    tracing::info!(god = %standin.god.endpoint, roles = ?standin.roles, "standing in for God");
    let stopping = Arc::new(AtomicBool::new(false));
    let mut keepers = tokio::task::JoinSet::new();
    for &role in &standin.roles {
        let lock = standin.home.agent_lock(role.as_str());
        let already_running = !zpm_host::is_free(&lock);
        let kept = KeptAgent {
            role,
            home: standin.home.clone(),
            exe: standin.exe.clone(),
            stopping: Arc::clone(&stopping),
            ordered_out: Arc::new(AtomicBool::new(false)),
            health: Health::default(),
            launched: 0,
            exits: Arc::new(tokio::sync::watch::Sender::new(0)),
        };
        let keeper = Keeper {
            name: role.as_str(),
            lock,
            health: kept.health.clone(),
            status: KeeperStatus::default(),
        };
        keepers.spawn(async move { keeper.run(kept, !already_running).await });
    }
    tokio::select! {
        () = async { while keepers.join_next().await.is_some() {} } => {
            tracing::info!("every agent of this host was ordered to exit");
        }
        () = stop_signal() => {
            stopping.store(true, Ordering::SeqCst);
            stop_agents(&standin.home, &standin.roles).await;
        }
    }
    let _ = std::fs::remove_file(standin.home.joined_file());
    tracing::info!("stand-in exiting; this home is local again");
    Ok(())
}

/// Refuses to keep a role that another live agent already holds for this host name on
/// God (another machine given the same `--host`). An agent of this home (its lock's
/// holder, e.g. left running by a previous stand-in) is ours.
async fn check_claims(standin: &StandIn) -> Result<(), StandInError> {
    let client = zpm_rpc::Client::new(&standin.home.rpc_endpoint());
    let agents = client
        .call_method::<zpm_proto::method::agent::List>(
            &zpm_rpc::NoParams {},
            Duration::from_secs(10),
        )
        .await
        .map_err(|e| StandInError::Unanswered(e.to_string()))?;
    for agent in agents {
        let Some(role) = Role::parse(&agent.role) else {
            continue;
        };
        let ours = zpm_host::holder(&standin.home.agent_lock(role.as_str())) == Some(agent.pid);
        if agent.connected && agent.host == standin.host && standin.roles.contains(&role) && !ours {
            return Err(StandInError::Claimed {
                host: agent.host,
                role: agent.role,
                pid: agent.pid,
            });
        }
    }
    Ok(())
}

async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM"),
                _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT"),
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// SIGTERM to each agent (the holder of its lock, so only this home's), then waits until
/// every lock is free, within [`AGENTS_EXIT_WITHIN`].
async fn stop_agents(home: &Home, roles: &[Role]) {
    // The spawner last: the logs agent still reads what the apps printed while it stops them.
    let mut order = roles.to_vec();
    order.sort_by_key(|role| *role == Role::Spawner);
    for role in order {
        let lock = home.agent_lock(role.as_str());
        let Some(pid) = zpm_host::holder(&lock) else {
            continue;
        };
        tracing::info!(%role, pid, "stopping agent");
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid.cast_signed()),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = tokio::time::Instant::now() + AGENTS_EXIT_WITHIN;
        while !zpm_host::is_free(&lock) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(LOCK_CHECK).await;
        }
    }
}

struct KeptAgent {
    role: Role,
    home: Home,
    exe: PathBuf,
    /// The stand-in is stopping: relaunch nothing.
    stopping: Arc<AtomicBool>,
    /// The agent exited with success and left its lock free: God ordered it out.
    ordered_out: Arc<AtomicBool>,
    health: Health,
    /// Processes this keeper launched, and how many of them it has seen exit.
    launched: u32,
    exits: Arc<tokio::sync::watch::Sender<u32>>,
}

impl Kept for KeptAgent {
    fn stopped(&self) -> bool {
        self.stopping.load(Ordering::SeqCst) || self.ordered_out.load(Ordering::SeqCst)
    }

    /// The lock is freed a moment before the exit status can be read: wait (bounded) for
    /// the status of what we launched, so an ordered exit is not taken for a death.
    async fn gone(&mut self) {
        let mut exits = self.exits.subscribe();
        let launched = self.launched;
        let _ = tokio::time::timeout(EXIT_STATUS_WITHIN, exits.wait_for(|n| *n >= launched)).await;
    }

    fn launch(&mut self) -> Result<u32, String> {
        let role = self.role.as_str();
        let log = self.home.agent_log(role);
        let command = daemon_command(&self.exe, &self.home, &["agent", role], &log)
            .map_err(|e| format!("opening {}: {e}", log.display()))?;
        let mut child = tokio::process::Command::from(command)
            .spawn()
            .map_err(|e| format!("launching {} agent {role}: {e}", self.exe.display()))?;
        let pid = child.id().unwrap_or(0);
        self.launched += 1;
        let lock = self.home.agent_lock(role);
        let (health, ordered_out) = (self.health.clone(), Arc::clone(&self.ordered_out));
        let exits = Arc::clone(&self.exits);
        tokio::spawn(async move {
            // Healthy once it holds its lock: its hello goes through the tunnel, which this
            // process only carries as bytes.
            let took_lock = async {
                while zpm_host::holder(&lock) != Some(pid) {
                    tokio::time::sleep(LOCK_CHECK).await;
                }
                health.healthy();
                std::future::pending::<()>().await;
            };
            let status = tokio::select! {
                status = child.wait() => status,
                () = took_lock => unreachable!("pending never returns"),
            };
            let clean = status.as_ref().is_ok_and(std::process::ExitStatus::success);
            if clean && zpm_host::is_free(&lock) {
                tracing::info!(role = %lock.display(), "agent exited as ordered; no longer kept");
                ordered_out.store(true, Ordering::SeqCst);
            }
            exits.send_modify(|n| *n += 1);
        });
        Ok(pid)
    }
}

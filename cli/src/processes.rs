//! `zpm daemon` and `zpm agent <role>`: long-running processes, detached from the
//! terminal (own session), logging to stderr, which their launcher points at a log file.

use anyhow::Context as _;
use zpm_host::home::Home;
use zpm_proto::Role;

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ZPM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
}

fn detach() {
    // Fails only if already a session leader, which is fine.
    let _ = nix::unistd::setsid();
}

fn host_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into())
}

/// Four workers although the daemons are mostly idle: zmq.rs blocks a worker thread
/// (a synchronous map lock) when a peer disconnects, so two simultaneous disconnects must
/// not be able to take every worker.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

pub fn daemon(
    home: Home,
    listen: Option<String>,
    key_file: Option<std::path::PathBuf>,
) -> anyhow::Result<()> {
    // Checked before detaching, so `zpm daemon --listen …` in a terminal shows the error.
    let listen = crate::remote::god_listen(&home, listen, key_file)?;
    detach();
    init_logging();
    let exe = std::env::current_exe().context("finding the zpm executable")?;
    let options = zpm_god::GodOptions {
        host: host_name(),
        launcher: zpm_god::AgentLauncher {
            exe,
            home: home.clone(),
        },
        home,
        listen,
    };
    match runtime()?.block_on(zpm_god::run(options)) {
        Err(zpm_god::GodError::Lock(zpm_host::LockError::Held(path))) => {
            tracing::info!(lock = %path.display(), "another God already runs on this home; exiting");
            Ok(())
        }
        other => other.context("running God"),
    }
}

pub fn agent(home: Home, role: &str) -> anyhow::Result<()> {
    let Some(role) = Role::parse(role) else {
        let known: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
        anyhow::bail!("unknown agent role {role:?} (known: {})", known.join(", "));
    };
    detach();
    init_logging();
    let host = host_name();
    let ran = match role {
        Role::Spawner => {
            let exe = std::env::current_exe().context("finding the zpm executable")?;
            let options = zpm_agents::spawner::SpawnerOptions { home, host, exe };
            match runtime()?.block_on(zpm_agents::spawner::run(options)) {
                Err(zpm_agents::spawner::SpawnerError::Lock(e)) => Err(e),
                other => return other.context("running the spawner"),
            }
        }
        Role::Logs => {
            let options = zpm_agents::logs::LogsOptions { home, host };
            match runtime()?.block_on(zpm_agents::logs::run(options)) {
                Err(zpm_agents::logs::LogsError::Lock(e)) => Err(e),
                other => return other.context("running the logs agent"),
            }
        }
        Role::Metrics => {
            let options = zpm_agents::metrics::MetricsOptions { home, host };
            match runtime()?.block_on(zpm_agents::metrics::run(options)) {
                Err(zpm_agents::metrics::MetricsError::Lock(e)) => Err(e),
                other => return other.context("running the metrics agent"),
            }
        }
    };
    match ran {
        Err(zpm_host::LockError::Held(path)) => {
            tracing::info!(lock = %path.display(), "a {role} agent already runs on this home; exiting");
            Ok(())
        }
        other => other.with_context(|| format!("running the {role} agent")),
    }
}

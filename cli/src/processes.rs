//! `zpm daemon` and `zpm agent <role>`: long-running processes, detached from the
//! terminal (own session), logging to stderr, which their launcher points at a log file.

use crate::cli::RemoteArgs;
use anyhow::{Context as _, bail};
use zpm_agents::remote::standin::{StandIn, StandInError};
use zpm_host::home::Home;
use zpm_host::joined::Joined;
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

fn machine_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into())
}

/// The host name this home's God and agents report: the one a joined home was given
/// (`--host`), else the machine's.
fn host_name(home: &Home) -> String {
    match Joined::load(&home.joined_file()) {
        Ok(Some(joined)) => joined.host,
        _ => machine_name(),
    }
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
    if let Some(joined) = Joined::load(&home.joined_file())? {
        if listen.is_some() {
            bail!(
                "this home belongs to the God at {} ({}); it cannot run a God of its own",
                joined.connect,
                home.joined_file().display()
            );
        }
        return relaunched_standin(home, joined);
    }
    // Checked before detaching, so `zpm daemon --listen …` in a terminal shows the error.
    let listen = crate::remote::god_listen(&home, listen, key_file)?;
    detach();
    init_logging();
    let exe = std::env::current_exe().context("finding the zpm executable")?;
    let options = zpm_god::GodOptions {
        host: host_name(&home),
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
    if role == "all" {
        bail!(
            "`zpm agent all` runs this host's agents for a God on another host: add --connect tcp://GOD:PORT (and --key-file FILE)"
        );
    }
    let Some(role) = Role::parse(role) else {
        let known: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
        anyhow::bail!("unknown agent role {role:?} (known: {})", known.join(", "));
    };
    detach();
    init_logging();
    let host = host_name(&home);
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

/// `zpm agent ROLE|all --connect …`: this home joins the God at `--connect` as host
/// `--host`, and this process stands in for God here, in the foreground.
pub fn joined_agents(
    home: Home,
    role: &str,
    host: Option<String>,
    remote: &RemoteArgs,
) -> anyhow::Result<()> {
    let roles = match role {
        "all" => Role::ALL.to_vec(),
        one => vec![Role::parse(one).with_context(|| {
            format!("unknown agent role {one:?} (spawner, logs, metrics or all)")
        })?],
    };
    let host = host.unwrap_or_else(machine_name);
    zpm_proto::validate::host_name("--host", &host)?;
    let god = crate::remote::remote_god(remote, &home)?
        .context("zpm agent … --connect needs the key too")?;
    let key_file = crate::remote::key_path(remote.key_file.clone(), &home)
        .map(|path| std::path::absolute(&path).unwrap_or(path))
        .context("finding the key file")?;
    init_logging();
    let record = Joined {
        connect: god.endpoint.clone(),
        key_file: key_file.clone(),
        host: host.clone(),
        roles: roles.iter().map(|r| r.as_str().to_owned()).collect(),
    };
    let runtime = runtime()?;
    runtime.block_on(god.check())?;
    let standin = StandIn {
        home,
        god,
        key_file,
        host,
        roles,
        record: Some(record),
        exe: std::env::current_exe().context("finding the zpm executable")?,
    };
    run_standin(&runtime, standin)
}

/// `zpm daemon` in a joined home (the spawner relaunching a stand-in that died): stand in
/// again with the recorded settings.
fn relaunched_standin(home: Home, joined: Joined) -> anyhow::Result<()> {
    detach();
    init_logging();
    let key = zpm_tunnel::Key::load(&joined.key_file)
        .with_context(|| format!("loading the tunnel key {}", joined.key_file.display()))?;
    let god = zpm_agents::remote::RemoteGod::new(&joined.connect, key)?;
    let roles = joined
        .roles
        .iter()
        .map(|r| Role::parse(r).with_context(|| format!("unknown role {r:?} in remote.toml")))
        .collect::<anyhow::Result<Vec<Role>>>()?;
    let standin = StandIn {
        home,
        god,
        key_file: joined.key_file,
        host: joined.host,
        roles,
        record: None,
        exe: std::env::current_exe().context("finding the zpm executable")?,
    };
    run_standin(&runtime()?, standin)
}

fn run_standin(runtime: &tokio::runtime::Runtime, standin: StandIn) -> anyhow::Result<()> {
    match runtime.block_on(zpm_agents::remote::standin::run(standin)) {
        Err(StandInError::Lock(zpm_host::LockError::Held(path))) => bail!(
            "this home already runs a God or a stand-in ({} is held); use another ZPM_HOME",
            path.display()
        ),
        other => other.context("standing in for the remote God"),
    }
}

//! God: zpm's thin coordinator. It keeps the desired state (app specs and ids) and a view
//! of the actual state built from what agents report, routes commands to agents, and
//! re-publishes their events on the bus. It never forks apps, reads their pipes or
//! touches /proc: that is the spawner's job (DESIGN.md).

mod error;
mod handlers;
mod keeper;
mod launcher;
mod logs;
mod order;
mod pending;
mod persist;
mod registry;
mod state;
mod table;
mod tcp;

pub use error::GodError;
pub use launcher::AgentLauncher;
pub use tcp::Listen;

use state::God;
use std::sync::Arc;
use std::time::Duration;
use zpm_host::HomeLock;
use zpm_host::home::Home;

/// How a God is run.
#[derive(Debug, Clone)]
pub struct GodOptions {
    pub home: Home,
    pub host: String,
    /// Starts local agents as separate processes (`zpm agent <role>`).
    pub launcher: AgentLauncher,
    /// Also serve other hosts on TCP, through the keyed tunnel.
    pub listen: Option<Listen>,
}

/// Runs God until `zpm kill` or SIGTERM/SIGINT. Fails fast if another God holds the home.
pub async fn run(options: GodOptions) -> Result<(), GodError> {
    let _lock = HomeLock::acquire(&options.home.god_lock())?;
    // A bad file stops God here, with the key named in its log.
    let config = zpm_host::config::Config::load(&options.home.config_file())?;
    let bus_options = zpm_bus::PublisherOptions {
        source: "god".into(),
        host: options.host.clone(),
        version: zpm_proto::PROTOCOL_VERSION,
        ..zpm_bus::PublisherOptions::default()
    };
    let publisher = zpm_bus::Publisher::bind(&[&options.home.bus_endpoint()], bus_options).await?;
    let god = Arc::new(God::new(
        options.host.clone(),
        publisher,
        &options.home,
        &config,
    ));
    let server = handlers::register(Arc::clone(&god))
        .bind(&[&options.home.rpc_endpoint()])
        .await?;
    let _ = god.rpc_guard.set(server.guard_stats());
    if let Some(listen) = &options.listen {
        let stats = tcp::serve(listen, &options.home).await?;
        let _ = god.tcp.set((listen.endpoint.clone(), stats));
    }
    tracing::info!(endpoints = ?server.endpoints(), pid = std::process::id(), "God up");
    tokio::spawn(Arc::clone(&god).write_state());
    god.announce_up().await;
    tokio::spawn(registry::watch_liveness(Arc::clone(&god)));
    tokio::spawn(logs::keep_logs_agent_told(
        Arc::clone(&god),
        server.pusher(),
    ));
    tokio::spawn(registry::announce_interest(
        Arc::clone(&god),
        server.pusher(),
    ));
    keeper::keep_agents(&god, &options.launcher);
    wait_for_shutdown(&god).await;
    // Give the reply to `god.kill` a moment to leave before the socket closes.
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(server);
    tracing::info!("God exiting");
    Ok(())
}

async fn wait_for_shutdown(god: &God) {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch SIGTERM");
            god.shutdown.notified().await;
            return;
        }
    };
    tokio::select! {
        () = god.shutdown.notified() => {}
        _ = term.recv() => tracing::info!("SIGTERM"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT"),
    }
}

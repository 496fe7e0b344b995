//! God's TCP port for other hosts. Only the keyed tunnel listens there: a connection is
//! carried to God's rpc or bus ipc endpoint (behind its frame guard) once its peer proved
//! the key, so no unauthenticated byte reaches zmq.rs (DESIGN.md, shortcoming 2).

use crate::error::GodError;
use std::sync::Arc;
use tokio::net::TcpListener;
use zpm_host::home::Home;
use zpm_tunnel::{Key, Limits, Services, SharedKey, TunnelStats};

/// Where God listens for other hosts, and the key they must hold.
#[derive(Debug, Clone)]
pub struct Listen {
    /// As the user wrote it: `tcp://ADDR:PORT`.
    pub endpoint: String,
    pub key: Key,
    /// Where the key was read: SIGHUP reads it again (rotation, SECURITY.md).
    pub key_file: std::path::PathBuf,
}

/// Binds the port (an error names the address) and serves the tunnel on it.
pub async fn serve(listen: &Listen, home: &Home) -> Result<Arc<TunnelStats>, GodError> {
    let refused = |source| GodError::Listen {
        endpoint: listen.endpoint.clone(),
        source,
    };
    let addr = zpm_tunnel::tcp_address(&listen.endpoint)
        .map_err(|e| refused(std::io::Error::new(std::io::ErrorKind::InvalidInput, e)))?;
    let listener = TcpListener::bind(&addr).await.map_err(refused)?;
    let services = Services::from([
        (zpm_proto::tunnel::RPC.to_owned(), home.rpc_socket()),
        (zpm_proto::tunnel::BUS.to_owned(), home.bus_socket()),
    ]);
    let stats = Arc::new(TunnelStats::default());
    let key = SharedKey::new(listen.key.clone());
    tokio::spawn(zpm_tunnel::reload_on_hangup(
        key.clone(),
        listen.key_file.clone(),
    ));
    let serving = zpm_tunnel::serve(
        listener,
        key,
        services,
        Limits::default(),
        Arc::clone(&stats),
    );
    let endpoint = listen.endpoint.clone();
    tokio::spawn(async move {
        if let Err(e) = serving.await {
            tracing::error!(%endpoint, error = %e, "the tcp listener failed; other hosts cannot reach God");
        }
    });
    tracing::info!(endpoint = %listen.endpoint, "serving other hosts through the keyed tunnel");
    Ok(stats)
}

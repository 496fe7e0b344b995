//! God's endpoints in a local directory, carried to a God on another host through the
//! keyed tunnel: `DIR/rpc.sock` and `DIR/bus.sock`, the names they have in `$ZPM_HOME`, so
//! whatever speaks to a local God (agents, the CLI, a third-party agent) speaks to a remote
//! one unchanged.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::task::JoinHandle;
use zpm_tunnel::{Key, Limits, Remote, SharedKey, TunnelStats};

/// A God on another host: its `tcp://` address and the key it wants.
#[derive(Debug, Clone)]
pub struct RemoteGod {
    /// As the user wrote it: `tcp://HOST:PORT`.
    pub endpoint: String,
    addr: String,
    /// Shared by every end exposed for this God: replacing it (SIGHUP) reaches them all.
    pub key: SharedKey,
}

impl RemoteGod {
    pub fn new(endpoint: &str, key: Key) -> Result<Self, zpm_tunnel::AddrError> {
        Ok(Self {
            endpoint: endpoint.to_owned(),
            addr: zpm_tunnel::tcp_address(endpoint)?,
            key: SharedKey::new(key),
        })
    }

    /// One handshake that reaches no endpoint: fails, saying why, if God is not there or
    /// holds another key.
    pub async fn check(&self) -> Result<(), Unreachable> {
        let limits = zpm_tunnel::HandshakeLimits::default();
        zpm_tunnel::probe(self.addr.as_str(), &self.key.current(), limits)
            .await
            .map_err(|e| Unreachable {
                endpoint: self.endpoint.clone(),
                why: explain(&e),
            })
    }

    fn remote(&self, service: &str) -> Remote {
        Remote {
            addr: self.addr.clone(),
            service: service.to_owned(),
        }
    }
}

/// Why a remote God cannot be reached, in the user's terms.
#[derive(Debug, thiserror::Error)]
#[error("cannot reach the God at {endpoint}: {why}")]
pub struct Unreachable {
    pub endpoint: String,
    pub why: String,
}

fn explain(error: &zpm_tunnel::Error) -> String {
    use std::io::ErrorKind;
    use zpm_tunnel::Error;
    match error {
        Error::HandshakeClosed | Error::Handshake(_) => {
            "it refused the handshake: it holds a different key (or is not a zpm tunnel)".into()
        }
        Error::HandshakeTimeout(t) => format!("no answer to the handshake within {t:?}"),
        Error::Io(e) if e.kind() == ErrorKind::ConnectionRefused => {
            "connection refused: is God running there with --listen (or `listen` in config.toml)?"
                .into()
        }
        other => other.to_string(),
    }
}

/// The local ends while they serve; dropping it stops them and removes their files.
#[derive(Debug)]
pub struct Exposed {
    tasks: Vec<JoinHandle<()>>,
    paths: Vec<PathBuf>,
    pub stats: Arc<TunnelStats>,
}

impl Drop for Exposed {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        for path in &self.paths {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Binds `dir/rpc.sock` and `dir/bus.sock` (refused if a live server owns either) and
/// carries every connection to `god` through its own tunnel. Needs a tokio runtime.
pub fn expose_god(dir: &Path, god: &RemoteGod) -> Result<Exposed, zpm_rpc::BindError> {
    let stats = Arc::new(TunnelStats::default());
    let mut exposed = Exposed {
        tasks: Vec::new(),
        paths: Vec::new(),
        stats: Arc::clone(&stats),
    };
    for (service, file) in [
        (zpm_proto::tunnel::RPC, "rpc.sock"),
        (zpm_proto::tunnel::BUS, "bus.sock"),
    ] {
        let path = dir.join(file);
        let listener = zpm_rpc::bind_ipc_listener(&path)?;
        exposed.paths.push(path.clone());
        let listener = listener
            .set_nonblocking(true)
            .and_then(|()| tokio::net::UnixListener::from_std(listener))
            .map_err(|source| zpm_rpc::BindError::Io {
                what: format!("listen on {}", path.display()),
                source,
            })?;
        let serving = zpm_tunnel::expose(
            listener,
            god.remote(service),
            god.key.clone(),
            Limits::default(),
            Arc::clone(&stats),
        );
        exposed.tasks.push(tokio::spawn(async move {
            if let Err(e) = serving.await {
                tracing::error!(path = %path.display(), error = %e, "the local end of the tunnel failed");
            }
        }));
    }
    Ok(exposed)
}

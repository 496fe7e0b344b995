//! Binding listeners safely (the guard in `guard/` binds through these).
//!
//! zmq.rs fails to bind over a leftover ipc socket file, and blindly unlinking it would
//! steal the path from a live server. So an existing file is removed only after a connect
//! probe is refused, and the probe, unlink and bind happen under an exclusive flock on a
//! sibling `.lock` file, so two processes racing for one path cannot both win.
//! TCP is accepted only on loopback: zpm never lets an unauthenticated peer reach zmq.rs.
//!
//! zmq.rs also unlinks the path a listener was bound to when that listener stops, even if
//! another server has bound the same path since. So the listener is bound under a private
//! temporary name and then renamed onto the public path: zmq.rs only ever unlinks the
//! temporary name, and a stopped server leaves a stale file the next bind cleans up.

use crate::error::BindError;
use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

/// True for `ipc://…` endpoints and for `tcp://` endpoints whose host is a loopback address.
pub fn is_loopback_or_ipc(endpoint: &str) -> bool {
    if endpoint.starts_with("ipc://") {
        return true;
    }
    endpoint
        .strip_prefix("tcp://")
        .and_then(|addr| addr.to_socket_addrs().ok())
        .is_some_and(|mut addrs| addrs.all(|a| a.ip().is_loopback()))
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BindError {
    let what = what.into();
    move |source| BindError::Io { what, source }
}

pub(crate) fn bind_tcp_listener(addr: &str, endpoint: &str) -> Result<TcpListener, BindError> {
    let addrs: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .map_err(|_| BindError::BadEndpoint(endpoint.to_owned()))?
        .collect();
    if addrs.is_empty() || !addrs.iter().all(|a| a.ip().is_loopback()) {
        return Err(BindError::NotLoopback(endpoint.to_owned()));
    }
    TcpListener::bind(&addrs[..]).map_err(io_err(format!("bind {endpoint}")))
}

fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Binds a unix listener at `path` by the rules above (stale file removed only if dead,
/// under a lock, bound under a temporary name and renamed): for whoever serves an ipc path
/// without zmq.rs, e.g. the tunnel's local ends.
pub fn bind_ipc_listener(path: &Path) -> Result<UnixListener, BindError> {
    let lock_file_path = lock_path(path);
    let lock_file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_file_path)
        .map_err(io_err(format!("open {}", lock_file_path.display())))?;
    lock_file
        .lock()
        .map_err(io_err(format!("lock {}", lock_file_path.display())))?;
    remove_if_stale(path)?;
    let temp = temp_path(path);
    let _ = std::fs::remove_file(&temp);
    let listener = UnixListener::bind(&temp).map_err(io_err(format!("bind {}", temp.display())))?;
    std::fs::rename(&temp, path).map_err(io_err(format!("rename onto {}", path.display())))?;
    drop(lock_file);
    Ok(listener)
}

/// A short sibling name: unix socket paths are limited to ~107 bytes.
fn temp_path(path: &Path) -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = format!(".b{}-{n}", std::process::id());
    path.parent()
        .map_or_else(|| PathBuf::from(&name), |dir| dir.join(&name))
}

/// Removes `path` if it is a socket nobody accepts on. Fails if a live server owns it.
pub(crate) fn remove_if_stale(path: &Path) -> Result<(), BindError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err(format!("stat {}", path.display()))(e)),
    };
    if !meta.file_type().is_socket() {
        return Err(BindError::NotASocket {
            path: path.display().to_string(),
        });
    }
    match UnixStream::connect(path) {
        Ok(_) => Err(BindError::InUse(format!("ipc://{}", path.display()))),
        Err(e) if matches!(e.kind(), ErrorKind::ConnectionRefused | ErrorKind::NotFound) => {
            tracing::info!(path = %path.display(), "removing stale ipc socket file");
            match std::fs::remove_file(path) {
                Err(e) if e.kind() != ErrorKind::NotFound => {
                    Err(io_err(format!("remove {}", path.display()))(e))
                }
                _ => Ok(()),
            }
        }
        Err(e) => Err(io_err(format!("probe {}", path.display()))(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_detection() {
        assert!(is_loopback_or_ipc("ipc:///tmp/x.sock"));
        assert!(is_loopback_or_ipc("tcp://127.0.0.1:5555"));
        assert!(is_loopback_or_ipc("tcp://[::1]:5555"));
        assert!(!is_loopback_or_ipc("tcp://0.0.0.0:5555"));
        assert!(!is_loopback_or_ipc("tcp://10.1.2.3:5555"));
    }

    #[test]
    fn non_loopback_tcp_is_refused() {
        assert!(matches!(
            bind_tcp_listener("0.0.0.0:0", "tcp://0.0.0.0:0"),
            Err(BindError::NotLoopback(_))
        ));
    }

    #[test]
    fn regular_file_is_not_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plain");
        std::fs::write(&path, b"keep me").unwrap();
        assert!(matches!(
            remove_if_stale(&path),
            Err(BindError::NotASocket { .. })
        ));
        assert_eq!(std::fs::read(&path).unwrap(), b"keep me");
    }
}

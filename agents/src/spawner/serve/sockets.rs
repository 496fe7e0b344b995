//! The listening sockets the spawner holds for apps (`listen`, and a Node cluster app's
//! `listen(port)`): bound once, handed to every instance, kept open across restarts and
//! reloads (so the kernel queues connections while no instance accepts), closed when the
//! last instance of the app stops or is deleted.

use nix::sys::socket::{Backlog, listen};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::{Arc, Mutex};
use zpm_proto::ListenAddr;

/// The kernel caps it at `net.core.somaxconn` (4096 on current kernels): connections that
/// arrive while every instance is busy, or being replaced, wait here instead of failing.
const BACKLOG: i32 = 4096;

/// Most sockets a Node cluster app may have bound for it at run time (a hostile app must
/// not make the spawner bind every port).
pub const MAX_DYNAMIC: usize = 16;

/// One app: its namespace and name.
pub type AppKey = (String, String);

struct Held {
    fd: Arc<OwnedFd>,
    /// Instance ids using it.
    holders: BTreeSet<u32>,
    dynamic: bool,
}

/// Every socket held, per app.
#[derive(Clone, Default)]
pub struct Sockets {
    apps: Arc<Mutex<BTreeMap<AppKey, BTreeMap<ListenAddr, Held>>>>,
}

/// A socket handed to an instance.
#[derive(Clone)]
pub struct Listener {
    pub addr: ListenAddr,
    pub fd: Arc<OwnedFd>,
}

impl Listener {
    #[cfg(test)]
    pub fn raw(&self) -> std::os::fd::RawFd {
        std::os::fd::AsRawFd::as_raw_fd(&*self.fd)
    }
}

impl Sockets {
    fn with<R>(&self, f: impl FnOnce(&mut BTreeMap<AppKey, BTreeMap<ListenAddr, Held>>) -> R) -> R {
        let mut apps = self
            .apps
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut apps)
    }

    /// The sockets of `addrs` for instance `id` of `app`, binding those not held yet, plus
    /// every socket bound at run time for the app. On failure nothing new stays bound.
    pub fn acquire(
        &self,
        app: &AppKey,
        id: u32,
        addrs: &[ListenAddr],
    ) -> Result<Vec<Listener>, String> {
        self.with(|apps| {
            let held = apps.entry(app.clone()).or_default();
            let mut fresh = Vec::new();
            for addr in addrs {
                if held.contains_key(addr) {
                    continue;
                }
                match bind(addr) {
                    Ok(fd) => fresh.push((addr.clone(), fd)),
                    Err(e) => {
                        drop(fresh);
                        if held.is_empty() {
                            apps.remove(app);
                        }
                        return Err(e);
                    }
                }
            }
            for (addr, fd) in fresh {
                let fd = Arc::new(fd);
                held.insert(
                    addr,
                    Held {
                        fd,
                        holders: BTreeSet::new(),
                        dynamic: false,
                    },
                );
            }
            let mut out = Vec::new();
            for (addr, socket) in held.iter_mut() {
                if socket.dynamic || addrs.contains(addr) {
                    socket.holders.insert(id);
                    out.push(Listener {
                        addr: addr.clone(),
                        fd: Arc::clone(&socket.fd),
                    });
                }
            }
            Ok(out)
        })
    }

    /// A socket a Node cluster app asked for at run time (`listen(port)` of a port not in
    /// its `listen`), bound on first request and then kept like the others.
    pub fn dynamic(&self, app: &AppKey, id: u32, addr: &ListenAddr) -> Result<Listener, String> {
        self.with(|apps| {
            let held = apps.entry(app.clone()).or_default();
            if let Some(socket) = held.get_mut(addr) {
                socket.holders.insert(id);
                return Ok(Listener {
                    addr: addr.clone(),
                    fd: Arc::clone(&socket.fd),
                });
            }
            if held.values().filter(|s| s.dynamic).count() >= MAX_DYNAMIC {
                return Err(format!("at most {MAX_DYNAMIC} ports are bound for one app"));
            }
            let fd = Arc::new(bind(addr)?);
            held.insert(
                addr.clone(),
                Held {
                    fd: Arc::clone(&fd),
                    holders: BTreeSet::from([id]),
                    dynamic: true,
                },
            );
            Ok(Listener {
                addr: addr.clone(),
                fd,
            })
        })
    }

    /// Instance `id` of `app` no longer runs: sockets nobody else uses are closed.
    pub fn release(&self, app: &AppKey, id: u32) {
        self.keep_only(app, id, &[], false);
    }

    /// Instance `id` of `app` now listens on `addrs` only (a reload changed `listen`): it
    /// lets go of the other addresses, and of those bound at run time unless
    /// `keep_dynamic`. Sockets nobody else uses are closed.
    pub fn keep_only(&self, app: &AppKey, id: u32, addrs: &[ListenAddr], keep_dynamic: bool) {
        self.with(|apps| {
            let Some(held) = apps.get_mut(app) else {
                return;
            };
            held.retain(|addr, socket| {
                let kept = addrs.contains(addr) || (keep_dynamic && socket.dynamic);
                if !kept {
                    socket.holders.remove(&id);
                }
                let keep = !socket.holders.is_empty();
                if !keep && let ListenAddr::Unix(path) = addr {
                    let _ = std::fs::remove_file(path);
                }
                keep
            });
            if held.is_empty() {
                apps.remove(app);
            }
        });
    }
}

/// Binds and listens, with the error a user can act on.
fn bind(addr: &ListenAddr) -> Result<OwnedFd, String> {
    let fd = match addr {
        ListenAddr::AnyTcp { port } => bind_any(*port),
        ListenAddr::Tcp(socket) => TcpListener::bind(socket).map(OwnedFd::from),
        ListenAddr::Unix(path) => bind_unix(path),
    }
    .map_err(|e| format!("cannot bind {addr}: {e}"))?;
    listen(
        &fd.as_fd(),
        Backlog::new(BACKLOG).unwrap_or(Backlog::MAXCONN),
    )
    .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    Ok(fd)
}

/// Every interface: IPv6 and IPv4 on one socket where the host has IPv6 (Linux's default
/// `bindv6only=0`), IPv4 alone where it has not.
fn bind_any(port: u16) -> std::io::Result<OwnedFd> {
    match TcpListener::bind(SocketAddr::from((Ipv6Addr::UNSPECIFIED, port))) {
        Ok(listener) => Ok(listener.into()),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Err(e),
        Err(_) => {
            TcpListener::bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port))).map(Into::into)
        }
    }
}

/// A stale socket file (nobody accepts on it) is replaced; a live one is an error.
fn bind_unix(path: &str) -> std::io::Result<OwnedFd> {
    let is_socket = std::fs::symlink_metadata(path)
        .is_ok_and(|m| std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()));
    if is_socket && UnixStream::connect(path).is_err() {
        std::fs::remove_file(path)?;
    }
    UnixListener::bind(path).map(Into::into)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn app() -> AppKey {
        ("default".into(), "web".into())
    }

    fn free_port() -> u16 {
        TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    #[test]
    fn a_socket_lives_while_any_instance_holds_it() {
        let sockets = Sockets::default();
        let addr: ListenAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let a = sockets
            .acquire(&app(), 1, std::slice::from_ref(&addr))
            .unwrap();
        let b = sockets
            .acquire(&app(), 2, std::slice::from_ref(&addr))
            .unwrap();
        assert_eq!(a[0].raw(), b[0].raw(), "one socket shared");
        let SocketAddr::V4(v4) = (match &addr {
            ListenAddr::Tcp(s) => *s,
            _ => unreachable!(),
        }) else {
            unreachable!()
        };
        sockets.release(&app(), 1);
        drop((a, b));
        assert!(
            std::net::TcpStream::connect(v4).is_ok(),
            "still listening for instance 2"
        );
        sockets.release(&app(), 2);
        assert!(
            std::net::TcpStream::connect(v4).is_err(),
            "closed with its last holder"
        );
    }

    #[test]
    fn a_taken_port_is_a_clear_error_and_binds_nothing() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        let free: ListenAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let busy: ListenAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let e = sockets_err(&[free.clone(), busy]);
        assert!(e.contains(&format!("cannot bind 127.0.0.1:{port}")), "{e}");
        assert!(e.contains("in use"), "{e}");
        let ListenAddr::Tcp(free) = free else {
            unreachable!()
        };
        assert!(
            std::net::TcpStream::connect(free).is_err(),
            "the first address was not kept"
        );
    }

    fn sockets_err(addrs: &[ListenAddr]) -> String {
        match Sockets::default().acquire(&app(), 1, addrs) {
            Err(e) => e,
            Ok(_) => panic!("bound a taken port"),
        }
    }

    #[test]
    fn a_reload_to_other_addresses_lets_go_of_the_old_ones() {
        let sockets = Sockets::default();
        let old = ListenAddr::Tcp(format!("127.0.0.1:{}", free_port()).parse().unwrap());
        let new = ListenAddr::Tcp(format!("127.0.0.1:{}", free_port()).parse().unwrap());
        drop(
            sockets
                .acquire(&app(), 1, std::slice::from_ref(&old))
                .unwrap(),
        );
        drop(
            sockets
                .acquire(&app(), 1, &[old.clone(), new.clone()])
                .unwrap(),
        );
        sockets.keep_only(&app(), 1, std::slice::from_ref(&new), true);
        let (ListenAddr::Tcp(old), ListenAddr::Tcp(new)) = (old, new) else {
            unreachable!()
        };
        assert!(
            std::net::TcpStream::connect(old).is_err(),
            "old address closed"
        );
        assert!(
            std::net::TcpStream::connect(new).is_ok(),
            "new address kept"
        );
    }

    #[test]
    fn dynamic_sockets_are_capped_and_shared_with_later_instances() {
        let sockets = Sockets::default();
        let addr = ListenAddr::Tcp(format!("127.0.0.1:{}", free_port()).parse().unwrap());
        let first = sockets.dynamic(&app(), 1, &addr).unwrap();
        let later = sockets.acquire(&app(), 2, &[]).unwrap();
        assert_eq!(later.len(), 1);
        assert_eq!(later[0].raw(), first.raw());
    }
}

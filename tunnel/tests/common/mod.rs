//! An echo server at an ipc path and a tunnel server in front of it.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream, UnixListener};
use zpm_tunnel::{HandshakeLimits, Key, Limits, TunnelStats};

/// The one service the test server offers.
pub const ECHO: &str = "echo";

pub struct Setup {
    pub dir: tempfile::TempDir,
    pub addr: std::net::SocketAddr,
    pub key: Key,
    pub stats: Arc<TunnelStats>,
    /// Connections the echo server accepted.
    pub echo_accepted: Arc<AtomicUsize>,
}

impl Setup {
    pub fn echo_count(&self) -> usize {
        self.echo_accepted.load(Ordering::SeqCst)
    }
}

pub async fn start(handshake_deadline: Duration) -> Setup {
    start_with(Limits {
        handshake: HandshakeLimits {
            deadline: handshake_deadline,
            ..HandshakeLimits::default()
        },
        ..Limits::default()
    })
    .await
}

pub async fn start_with(limits: Limits) -> Setup {
    let dir = tempfile::tempdir().expect("temp dir");
    let ipc: PathBuf = dir.path().join("echo.sock");
    let echo = UnixListener::bind(&ipc).expect("bind echo");
    let echo_accepted = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&echo_accepted);
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = echo.accept().await else {
                return;
            };
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let (mut r, mut w) = conn.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    let key = Key::generate().expect("key");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind tcp");
    let addr = listener.local_addr().expect("addr");
    let stats = Arc::new(TunnelStats::default());
    tokio::spawn(zpm_tunnel::serve(
        listener,
        key.clone().into(),
        zpm_tunnel::Services::from([(ECHO.to_owned(), ipc)]),
        limits,
        Arc::clone(&stats),
    ));
    Setup {
        dir,
        addr,
        key,
        stats,
        echo_accepted,
    }
}

/// Waits until the server closes `stream` (EOF or reset), discarding what it sends.
pub async fn wait_cut(stream: &mut TcpStream) {
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// A legitimate client's echo round trip of `data`.
pub async fn echo_round_trip(setup: &Setup, data: &[u8]) -> Vec<u8> {
    let mut sealed = zpm_tunnel::connect(setup.addr, &setup.key, ECHO)
        .await
        .expect("connect");
    sealed.send(data).await.expect("send");
    let mut got = Vec::with_capacity(data.len());
    while got.len() < data.len() {
        assert!(sealed.recv(&mut got).await.expect("recv"), "early end");
    }
    got
}

pub async fn write_raw(stream: &mut TcpStream, bytes: &[u8]) {
    // The server may cut us mid-write; that is the point of these tests.
    let _ = stream.write_all(bytes).await;
}

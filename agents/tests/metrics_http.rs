//! The metrics HTTP server against a real client on a raw socket, well-behaved and hostile.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::time::timeout;
use zpm_agents::metrics::{CONTENT_TYPE, Limits, ServeError, serve, serve_with};

const PATIENCE: Duration = Duration::from_secs(20);

struct Reply {
    status: u16,
    head: String,
    body: String,
}

/// Sends `request` and reads until the server closes (it serves one request per connection).
async fn exchange(addr: SocketAddr, request: &[u8]) -> std::io::Result<Reply> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(request).await?;
    read_reply(&mut stream).await
}

async fn read_reply(stream: &mut TcpStream) -> std::io::Result<Reply> {
    let mut raw = Vec::new();
    timeout(PATIENCE, stream.read_to_end(&mut raw))
        .await
        .expect("the server never closed the connection")?;
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok(Reply {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    })
}

async fn get(addr: SocketAddr, path: &str) -> Reply {
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
    exchange(addr, request.as_bytes()).await.unwrap()
}

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

#[tokio::test]
async fn metrics_are_served_and_nothing_else() {
    let scrapes = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&scrapes);
    let (server, addr) = serve(loopback(), move || {
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
        format!("zpm_test_scrapes {n}\n")
    })
    .await
    .unwrap();

    for n in 1..=2 {
        let reply = get(addr, "/metrics").await;
        assert_eq!(reply.status, 200, "{}", reply.head);
        assert!(
            reply
                .head
                .to_ascii_lowercase()
                .contains(&format!("content-type: {CONTENT_TYPE}")),
            "{}",
            reply.head
        );
        assert!(CONTENT_TYPE.starts_with("text/plain; version=0.0.4"));
        // Rendered per scrape, not cached.
        assert_eq!(reply.body, format!("zpm_test_scrapes {n}\n"));
    }
    assert_eq!(get(addr, "/metrics?x=1").await.status, 200);
    assert_eq!(get(addr, "/").await.status, 404);
    assert_eq!(get(addr, "/metricsx").await.status, 404);
    let post = exchange(
        addr,
        b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    )
    .await
    .unwrap();
    assert_eq!(post.status, 404);
    assert_eq!(scrapes.load(Ordering::SeqCst), 3);
    server.abort();
}

#[tokio::test]
async fn only_loopback_addresses_are_bound() {
    for addr in [
        "0.0.0.0:0",
        "192.0.2.7:9100",
        "[::]:0",
        "[2001:db8::1]:9100",
    ] {
        let addr: SocketAddr = addr.parse().unwrap();
        let refused = serve(addr, String::new).await;
        assert!(
            matches!(refused, Err(ServeError::NotLoopback(a)) if a == addr),
            "{addr} was not refused"
        );
    }
    let err = serve("0.0.0.0:9100".parse().unwrap(), String::new)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("loopback"), "{err}");
}

#[tokio::test]
async fn a_slow_loris_is_cut_after_the_read_timeout() {
    let limits = Limits {
        read_timeout: Duration::from_millis(500),
        ..Limits::default()
    };
    let (server, addr) = serve_with(loopback(), limits, || "x 1\n".to_owned())
        .await
        .unwrap();
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let started = Instant::now();
    // A header that never ends, one byte every 50 ms: never idle, never done.
    let trickle = tokio::spawn(async move {
        let mut sent = writer.write_all(b"GET /metrics HTTP/1.1\r\nX-Slow: ").await;
        // Until the server hangs up on us.
        while sent.is_ok() {
            tokio::time::sleep(Duration::from_millis(50)).await;
            sent = writer.write_all(b"a").await;
        }
    });
    let mut raw = Vec::new();
    let read = timeout(PATIENCE, reader.read_to_end(&mut raw))
        .await
        .expect("the slow client was never cut");
    let elapsed = started.elapsed();
    assert!(elapsed >= limits.read_timeout, "cut after {elapsed:?}");
    // Closed, possibly with a 408; never a page.
    let text = String::from_utf8_lossy(&raw);
    assert!(read.is_err() || !text.contains(" 200 "), "{text}");
    trickle.abort();
    // The server still serves.
    assert_eq!(get(addr, "/metrics").await.status, 200);
    server.abort();
}

#[tokio::test]
async fn a_client_that_sends_nothing_is_cut_after_the_read_timeout() {
    let limits = Limits {
        read_timeout: Duration::from_millis(300),
        connection_timeout: Duration::from_secs(60),
        ..Limits::default()
    };
    let (server, addr) = serve_with(loopback(), limits, String::new).await.unwrap();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    let mut raw = Vec::new();
    timeout(PATIENCE, stream.read_to_end(&mut raw))
        .await
        .expect("a silent client was never cut")
        .unwrap();
    assert!(started.elapsed() < limits.connection_timeout);
    server.abort();
}

#[tokio::test]
async fn a_one_megabyte_header_is_refused() {
    let (server, addr) = serve(loopback(), || "x 1\n".to_owned()).await.unwrap();
    let mut request = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    request.resize(request.len() + (1 << 20), b'a');
    request.extend_from_slice(b"\r\n\r\n");
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    // The server stops reading long before the end: the write may fail, that is fine.
    let sender = tokio::spawn(async move { writer.write_all(&request).await });
    let mut raw = Vec::new();
    let read = timeout(PATIENCE, reader.read_to_end(&mut raw))
        .await
        .expect("the server kept reading a 1 MB header");
    let text = String::from_utf8_lossy(&raw);
    // Either a 431 reached us, or the connection was reset under our unread bytes.
    assert!(
        text.starts_with("HTTP/1.1 431") || (read.is_err() && raw.is_empty()),
        "{read:?} {text}"
    );
    let _ = sender.await;
    assert_eq!(get(addr, "/metrics").await.status, 200);
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_connections_at_once_are_all_served() {
    let (server, addr) = serve(loopback(), || "x 1\n".repeat(1000)).await.unwrap();
    let mut streams = Vec::new();
    for _ in 0..100 {
        streams.push(TcpStream::connect(addr).await.unwrap());
    }
    let clients: Vec<_> = streams
        .into_iter()
        .map(|mut stream| {
            tokio::spawn(async move {
                stream
                    .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                    .await
                    .unwrap();
                read_reply(&mut stream).await.unwrap()
            })
        })
        .collect();
    for client in clients {
        let reply = client.await.unwrap();
        assert_eq!(reply.status, 200, "{}", reply.head);
        assert_eq!(reply.body.len(), 4000);
    }
    assert_eq!(get(addr, "/metrics").await.status, 200);
    server.abort();
}

#[tokio::test]
async fn past_the_cap_a_client_waits_for_a_free_slot() {
    let limits = Limits {
        max_connections: 2,
        read_timeout: Duration::from_millis(500),
        ..Limits::default()
    };
    let (server, addr) = serve_with(loopback(), limits, || "x 1\n".to_owned())
        .await
        .unwrap();
    // Two silent clients take both slots.
    let mut silent = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\n").await.unwrap();
        silent.push(s);
    }
    // The kernel queues connections in order: the third is accepted only after a slot frees.
    let started = Instant::now();
    let reply = get(addr, "/metrics").await;
    assert_eq!(reply.status, 200);
    // Served only once a silent client was cut: the cap held.
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "served after {:?} with both slots taken",
        started.elapsed()
    );
    drop(silent);
    server.abort();
}

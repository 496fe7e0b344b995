//! The tunnel end to end: a tokio echo server at an ipc path behind `serve`.

mod common;

use common::{ECHO, echo_round_trip, start, wait_cut, write_raw};
use std::time::Duration;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;
use zpm_tunnel::{HandshakeLimits, Key, seal};

const DEADLINE: Duration = Duration::from_secs(5);

#[tokio::test]
async fn one_mebibyte_round_trips_byte_exact() {
    let setup = start(DEADLINE).await;
    let data: Vec<u8> = (0..1024 * 1024u32).map(|i| (i * 31 % 251) as u8).collect();
    let sealed = zpm_tunnel::connect(setup.addr, &setup.key, ECHO)
        .await
        .expect("connect");
    // Send and receive concurrently: the echo writes back while we still write.
    let (mut rx, mut tx) = sealed.split();
    let writer = async {
        for chunk in data.chunks(100_000) {
            tx.send(chunk).await.expect("send");
        }
    };
    let reader = async {
        let mut got = Vec::new();
        while got.len() < data.len() {
            assert!(rx.recv(&mut got).await.expect("recv"), "early end");
        }
        got
    };
    let ((), got) = tokio::join!(writer, reader);
    assert!(got == data, "echo differs");
    assert_eq!(setup.echo_count(), 1);
    let stats = setup.stats.snapshot();
    assert_eq!(stats.handshakes_failed, 0);
    assert_eq!(stats.frames_rejected, 0);
}

#[tokio::test]
async fn wrong_key_fails_the_handshake_and_never_reaches_the_endpoint() {
    let setup = start(DEADLINE).await;
    let wrong = Key::generate().expect("key");
    let err = zpm_tunnel::connect(setup.addr, &wrong, ECHO)
        .await
        .expect_err("handshake must fail");
    assert!(
        matches!(
            err,
            zpm_tunnel::Error::HandshakeClosed | zpm_tunnel::Error::Io(_)
        ),
        "{err}"
    );
    // The server counts before it closes, and we saw the close.
    assert_eq!(setup.stats.snapshot().handshakes_failed, 1);
    assert_eq!(setup.echo_count(), 0);
    // A legitimate client afterwards is the only one the endpoint ever saw.
    assert_eq!(echo_round_trip(&setup, b"hello").await, b"hello");
    assert_eq!(setup.echo_count(), 1);
}

#[tokio::test]
async fn garbage_and_cleartext_zmtp_are_cut_before_the_endpoint() {
    let setup = start(DEADLINE).await;
    // A ZMTP 3.1 greeting (signature, version, NULL mechanism): its first two bytes
    // announce 0xff00 bytes, far over the handshake cap.
    let mut zmtp = vec![0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 3, 1];
    zmtp.extend_from_slice(b"NULL");
    zmtp.resize(64, 0);
    // Within the cap but not a Noise message: fails to decrypt.
    let mut garbage = vec![0, 48];
    garbage.extend((0..48u8).map(|i| i.wrapping_mul(97)));
    for (n, bytes) in [zmtp, garbage].iter().enumerate() {
        let mut stream = TcpStream::connect(setup.addr).await.expect("connect");
        write_raw(&mut stream, bytes).await;
        wait_cut(&mut stream).await;
        assert_eq!(setup.stats.snapshot().handshakes_failed, n as u64 + 1);
    }
    assert_eq!(echo_round_trip(&setup, b"ok").await, b"ok");
    assert_eq!(setup.echo_count(), 1);
}

#[tokio::test]
async fn a_silent_peer_is_cut_at_the_handshake_deadline() {
    let setup = start(Duration::from_millis(200)).await;
    let mut stream = TcpStream::connect(setup.addr).await.expect("connect");
    wait_cut(&mut stream).await;
    let stats = setup.stats.snapshot();
    assert_eq!(stats.timeouts, 1);
    assert_eq!(stats.handshakes_failed, 0);
    assert_eq!(setup.echo_count(), 0);
}

/// A raw TCP stream that completed a valid handshake, with its cipher state.
async fn handshaken(setup: &common::Setup) -> (TcpStream, snow::TransportState) {
    let stream = TcpStream::connect(setup.addr).await.expect("connect");
    zpm_tunnel::handshake::initiate(stream, &setup.key, ECHO, HandshakeLimits::default())
        .await
        .expect("handshake")
        .into_parts()
}

#[tokio::test]
async fn a_maximal_frame_of_garbage_is_rejected() {
    let setup = start(DEADLINE).await;
    let (mut stream, _noise) = handshaken(&setup).await;
    let mut frame = vec![0xff, 0xff];
    frame.extend((0..65535u32).map(|i| (i * 7 + 3) as u8));
    write_raw(&mut stream, &frame).await;
    wait_cut(&mut stream).await;
    assert_eq!(setup.stats.snapshot().frames_rejected, 1);
}

#[tokio::test]
async fn a_replayed_frame_is_rejected() {
    let setup = start(DEADLINE).await;
    let (mut stream, mut noise) = handshaken(&setup).await;
    let mut frame = Vec::new();
    seal::seal(&mut noise, b"once", &mut frame).expect("seal");
    stream.write_all(&frame).await.expect("first copy");
    write_raw(&mut stream, &frame).await;
    wait_cut(&mut stream).await;
    assert_eq!(setup.stats.snapshot().frames_rejected, 1);
}

#[tokio::test]
async fn abandoned_connections_do_not_block_a_legitimate_client() {
    let setup = start(DEADLINE).await;
    let mut abandoned = Vec::new();
    for _ in 0..200 {
        abandoned.push(TcpStream::connect(setup.addr).await.expect("connect"));
    }
    // Half stay open and silent, half are dropped mid-nothing.
    abandoned.truncate(100);
    assert_eq!(echo_round_trip(&setup, b"still here").await, b"still here");
    assert_eq!(setup.echo_count(), 1);
}

#[tokio::test]
async fn a_silent_peer_after_the_handshake_is_cut_and_counted() {
    let setup = common::start_with(zpm_tunnel::Limits {
        liveness: zpm_tunnel::Liveness {
            keepalive: Duration::from_millis(50),
            silent: Duration::from_millis(200),
        },
        ..zpm_tunnel::Limits::default()
    })
    .await;
    let (mut stream, _noise) = handshaken(&setup).await;
    wait_cut(&mut stream).await;
    let stats = setup.stats.snapshot();
    assert_eq!(stats.timeouts, 1);
    assert_eq!(stats.frames_rejected, 0);
}

#[tokio::test]
async fn expose_carries_a_local_ipc_connection_through_the_tunnel() {
    use tokio::io::AsyncReadExt as _;
    let setup = start(DEADLINE).await;
    let (path, stats) = expose_echo(&setup, "local.sock", zpm_tunnel::Limits::default());
    let mut local = tokio::net::UnixStream::connect(&path)
        .await
        .expect("connect local");
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    let (mut r, mut w) = local.split();
    let writer = async { w.write_all(&data).await.expect("write") };
    let reader = async {
        let mut got = vec![0u8; data.len()];
        r.read_exact(&mut got).await.expect("read");
        got
    };
    let ((), got) = tokio::join!(writer, reader);
    assert!(got == data, "echo differs");
    assert_eq!(setup.echo_count(), 1);
    assert_eq!(stats.snapshot().connections, 1);
}

#[tokio::test]
async fn an_unknown_service_is_refused_after_the_handshake_and_counted() {
    let setup = start(DEADLINE).await;
    let sealed = zpm_tunnel::connect(setup.addr, &setup.key, "nope").await;
    // The initiator's handshake completes (the responder answers before it checks the
    // service); the connection is then closed without reaching any endpoint.
    if let Ok(sealed) = sealed {
        let (mut stream, _) = sealed.into_parts();
        wait_cut(&mut stream).await;
    }
    assert_eq!(setup.stats.snapshot().handshakes_failed, 1);
    assert_eq!(setup.echo_count(), 0);
    assert_eq!(
        echo_round_trip(&setup, b"still serving").await,
        b"still serving"
    );
}

#[tokio::test]
async fn a_bad_service_name_is_refused_before_any_byte_is_sent() {
    let setup = start(DEADLINE).await;
    for bad in ["", "with space", "../rpc", &"x".repeat(65)] {
        let err = zpm_tunnel::connect(setup.addr, &setup.key, bad)
            .await
            .expect_err("bad name");
        assert!(
            matches!(err, zpm_tunnel::Error::BadService(_)),
            "{bad:?}: {err}"
        );
    }
    assert_eq!(setup.stats.snapshot().handshakes_failed, 0);
}

#[tokio::test]
async fn a_probe_checks_the_key_and_reaches_no_endpoint() {
    let setup = start(DEADLINE).await;
    zpm_tunnel::probe(setup.addr, &setup.key, HandshakeLimits::default())
        .await
        .expect("probe with the key");
    let wrong = Key::generate().expect("key");
    zpm_tunnel::probe(setup.addr, &wrong, HandshakeLimits::default())
        .await
        .expect_err("probe with another key");
    assert_eq!(setup.echo_count(), 0);
    assert_eq!(setup.stats.snapshot().handshakes_failed, 1);
}

#[tokio::test]
async fn keepalives_hold_a_quiet_connection_open_past_the_silence_limit() {
    use tokio::io::AsyncReadExt as _;
    // Eight keepalives per silence limit: a loaded 2-core machine can stall a task for
    // more than 100 ms (CI once cut this connection with 30 / 150 ms).
    let liveness = zpm_tunnel::Liveness {
        keepalive: Duration::from_millis(100),
        silent: Duration::from_millis(800),
    };
    let limits = zpm_tunnel::Limits {
        liveness,
        ..zpm_tunnel::Limits::default()
    };
    let setup = common::start_with(limits).await;
    let (path, stats) = expose_echo(&setup, "quiet.sock", limits);
    let mut local = tokio::net::UnixStream::connect(&path)
        .await
        .expect("connect");
    local.write_all(b"a").await.expect("write");
    let mut got = [0u8; 1];
    local.read_exact(&mut got).await.expect("echo");
    // Quiet for three times the silence limit: only keepalives cross, in both directions.
    tokio::time::sleep(liveness.silent * 3).await;
    local
        .write_all(b"b")
        .await
        .expect("write after a quiet spell");
    local
        .read_exact(&mut got)
        .await
        .expect("echo after a quiet spell");
    assert_eq!(&got, b"b");
    assert_eq!(setup.stats.snapshot().timeouts, 0);
    assert_eq!(stats.snapshot().timeouts, 0);
    assert_eq!(setup.echo_count(), 1, "one connection throughout");
}

/// `expose` of the test server's echo service at `name` in its directory.
fn expose_echo(
    setup: &common::Setup,
    name: &str,
    limits: zpm_tunnel::Limits,
) -> (std::path::PathBuf, std::sync::Arc<zpm_tunnel::TunnelStats>) {
    let path = setup.dir.path().join(name);
    let listener = tokio::net::UnixListener::bind(&path).expect("bind local");
    let stats = std::sync::Arc::new(zpm_tunnel::TunnelStats::default());
    tokio::spawn(zpm_tunnel::expose(
        listener,
        zpm_tunnel::Remote {
            addr: setup.addr.to_string(),
            service: ECHO.to_owned(),
        },
        setup.key.clone().into(),
        limits,
        std::sync::Arc::clone(&stats),
    ));
    (path, stats)
}

#[tokio::test]
async fn a_local_peer_that_says_nothing_costs_no_tunnel_connection() {
    use tokio::io::AsyncReadExt as _;
    let setup = start(DEADLINE).await;
    let (path, _) = expose_echo(&setup, "probed.sock", zpm_tunnel::Limits::default());
    // An rpc client's check that the path accepts: connect, close.
    for _ in 0..5 {
        drop(
            tokio::net::UnixStream::connect(&path)
                .await
                .expect("connect"),
        );
    }
    let mut local = tokio::net::UnixStream::connect(&path)
        .await
        .expect("connect");
    local.write_all(b"x").await.expect("write");
    let mut got = [0u8; 1];
    local.read_exact(&mut got).await.expect("echo");
    assert_eq!(
        setup.stats.snapshot().connections,
        1,
        "only the one that spoke"
    );
    assert_eq!(setup.echo_count(), 1);
}

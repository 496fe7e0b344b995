//! Real sockets: ipc in a tempdir, tcp on 127.0.0.1 with a free port.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use zeromq::{DealerSocket, ReqSocket, Socket, SocketRecv, SocketSend, ZmqMessage};
use zpm_rpc::{BindError, CallError, Client, ErrorCode, NoParams, RpcError, Server, Value};

const T: Duration = Duration::from_secs(5);

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Work {
    n: u64,
    delay_ms: u64,
}

fn ipc(dir: &tempfile::TempDir, name: &str) -> String {
    format!("ipc://{}", dir.path().join(name).display())
}

async fn test_server(endpoint: &str, notified: Arc<AtomicU64>) -> Result<Server, BindError> {
    Server::builder()
        .method("ping", |_: NoParams, _| async { Ok::<_, RpcError>("pong") })
        .method("work", |w: Work, _| async move {
            tokio::time::sleep(Duration::from_millis(w.delay_ms)).await;
            Ok::<_, RpcError>(w.n * 2)
        })
        .method("fail", |_: NoParams, _| async {
            Err::<(), _>(RpcError::not_found("nothing here"))
        })
        .method("event", move |n: u64, _| {
            let notified = Arc::clone(&notified);
            async move {
                notified.fetch_add(n, Ordering::SeqCst);
                Ok::<_, RpcError>(())
            }
        })
        .method("push_me", |text: String, ctx: zpm_rpc::Ctx| async move {
            ctx.pusher.push(&ctx.peer, "pushed", &text).await?;
            Ok::<_, RpcError>(true)
        })
        .bind(&[endpoint])
        .await
}

async fn poll_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + T;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_reply_over_ipc_and_tcp() {
    let dir = tempfile::tempdir().unwrap();
    let server = test_server(&ipc(&dir, "rpc.sock"), Arc::default())
        .await
        .unwrap();
    let tcp = test_server("tcp://127.0.0.1:0", Arc::default())
        .await
        .unwrap();
    for endpoint in [&server.endpoints()[0], &tcp.endpoints()[0]] {
        let client = Client::new(endpoint);
        let pong: String = client.call("ping", &NoParams {}, T).await.unwrap();
        assert_eq!(pong, "pong");
        let doubled: u64 = client
            .call("work", &Work { n: 21, delay_ms: 0 }, T)
            .await
            .unwrap();
        assert_eq!(doubled, 42);
        let err = client
            .call::<_, ()>("fail", &NoParams {}, T)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, CallError::Remote(e) if e.code == ErrorCode::NotFound && e.message == "nothing here"),
            "{err:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_concurrent_calls_finish_out_of_order_with_their_own_answers() {
    let dir = tempfile::tempdir().unwrap();
    let server = test_server(&ipc(&dir, "rpc.sock"), Arc::default())
        .await
        .unwrap();
    let client = Arc::new(Client::new(&server.endpoints()[0]));
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut calls = Vec::new();
    for n in 0..100u64 {
        let (client, order) = (Arc::clone(&client), Arc::clone(&order));
        // Every even call is slow: it must not hold up the odd ones behind it.
        let delay_ms = if n % 2 == 0 { 300 } else { 0 };
        calls.push(tokio::spawn(async move {
            let answer: u64 = client.call("work", &Work { n, delay_ms }, T).await.unwrap();
            order.lock().unwrap().push(n);
            (n, answer)
        }));
    }
    for call in calls {
        let (n, answer) = call.await.unwrap();
        assert_eq!(answer, n * 2, "call {n} got someone else's answer");
    }
    let order = order.lock().unwrap();
    let first_half: Vec<_> = order[..50].to_vec();
    assert!(
        first_half.iter().all(|n| n % 2 == 1),
        "fast calls should all finish before the slow ones: {order:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_times_out_and_client_keeps_working() {
    let dir = tempfile::tempdir().unwrap();
    let server = test_server(&ipc(&dir, "rpc.sock"), Arc::default())
        .await
        .unwrap();
    let client = Client::new(&server.endpoints()[0]);
    let started = Instant::now();
    let err = client
        .call::<_, u64>(
            "work",
            &Work {
                n: 1,
                delay_ms: 2000,
            },
            Duration::from_millis(100),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, CallError::Timeout { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_millis(1500));
    let pong: String = client.call("ping", &NoParams {}, T).await.unwrap();
    assert_eq!(pong, "pong");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_recovers_when_server_restarts_mid_stream() {
    let dir = tempfile::tempdir().unwrap();
    let endpoint = ipc(&dir, "rpc.sock");
    let server = test_server(&endpoint, Arc::default()).await.unwrap();
    let client = Client::new(&endpoint);
    for _ in 0..20 {
        let _: String = client.call("ping", &NoParams {}, T).await.unwrap();
    }
    let connections = client.connections();
    assert_eq!(*connections.borrow(), 1);
    drop(server);
    // The old listener closes asynchronously; a restarted server retries its bind.
    let server = rebind(&endpoint).await;
    // The first call after the restart may be slower; none may fail.
    let deadline = Instant::now() + T;
    let mut ok = 0;
    while ok < 20 {
        match client
            .call::<_, String>("ping", &NoParams {}, Duration::from_secs(3))
            .await
        {
            Ok(pong) => {
                assert_eq!(pong, "pong");
                ok += 1;
            }
            Err(CallError::ConnectionLost { .. }) if ok == 0 => {}
            Err(e) => panic!("call after restart failed: {e}"),
        }
        assert!(Instant::now() < deadline, "client did not recover");
    }
    assert!(
        *client.connections().borrow() >= 2,
        "client never reconnected"
    );
    assert!(server.stats().requests.load(Ordering::Relaxed) >= 20);
}

async fn rebind(endpoint: &str) -> Server {
    let deadline = Instant::now() + T;
    loop {
        match test_server(endpoint, Arc::default()).await {
            Ok(server) => return server,
            Err(BindError::InUse(_)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err(e) => panic!("rebind failed: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn req_socket_client_works() {
    let dir = tempfile::tempdir().unwrap();
    let server = test_server(&ipc(&dir, "rpc.sock"), Arc::default())
        .await
        .unwrap();
    let mut req = ReqSocket::new();
    req.connect(&server.endpoints()[0]).await.unwrap();
    let request = rmp_serde::to_vec_named(&serde_json_map(7, "ping")).unwrap();
    req.send(ZmqMessage::from(request)).await.unwrap();
    let reply = tokio::time::timeout(T, req.recv()).await.unwrap().unwrap();
    let reply: Value = rmpv::decode::read_value(&mut &reply.get(0).unwrap()[..]).unwrap();
    assert_eq!(field(&reply, "id"), Some(&Value::from(7)));
    assert_eq!(field(&reply, "result"), Some(&Value::from("pong")));
}

fn serde_json_map(id: u64, method: &str) -> std::collections::BTreeMap<&'static str, Value> {
    std::collections::BTreeMap::from([
        ("v", Value::from(1)),
        ("id", Value::from(id)),
        ("method", Value::from(method)),
        ("params", Value::Map(vec![])),
    ])
}

fn field<'a>(map: &'a Value, key: &str) -> Option<&'a Value> {
    map.as_map()?
        .iter()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(_, v)| v)
}

async fn raw_roundtrip(dealer: &mut DealerSocket, payload: Vec<u8>) -> Value {
    dealer.send(ZmqMessage::from(payload)).await.unwrap();
    let reply = tokio::time::timeout(T, dealer.recv())
        .await
        .unwrap()
        .unwrap();
    rmpv::decode::read_value(&mut &reply.get(0).unwrap()[..]).unwrap()
}

fn error_code(reply: &Value) -> Option<&str> {
    field(field(reply, "error")?, "code")?.as_str()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_input_gets_error_replies_or_counted_drops_and_server_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let server = test_server(&ipc(&dir, "rpc.sock"), Arc::default())
        .await
        .unwrap();
    let mut dealer = DealerSocket::new();
    dealer.connect(&server.endpoints()[0]).await.unwrap();

    // Not msgpack at all, and a map without an id: nothing to answer, counted.
    dealer
        .send(ZmqMessage::from(vec![0xc1u8, 0xff, 0x00]))
        .await
        .unwrap();
    dealer
        .send(ZmqMessage::from(
            rmp_serde::to_vec_named(&[("x", 1)]).unwrap(),
        ))
        .await
        .unwrap();
    poll_until("two counted drops", || {
        server.stats().dropped_unreadable.load(Ordering::Relaxed) == 2
    })
    .await;

    let mut bad = serde_json_map(1, "ping");
    bad.remove("method");
    let reply = raw_roundtrip(&mut dealer, rmp_serde::to_vec_named(&bad).unwrap()).await;
    assert_eq!(error_code(&reply), Some("bad_request"));
    assert_eq!(field(&reply, "id"), Some(&Value::from(1)));

    let reply = raw_roundtrip(
        &mut dealer,
        rmp_serde::to_vec_named(&serde_json_map(2, "nope")).unwrap(),
    )
    .await;
    assert_eq!(error_code(&reply), Some("unknown_method"));

    let mut old = serde_json_map(3, "ping");
    old.insert("v", Value::from(99));
    let reply = raw_roundtrip(&mut dealer, rmp_serde::to_vec_named(&old).unwrap()).await;
    assert_eq!(error_code(&reply), Some("version"));

    let mut wrong = serde_json_map(4, "work");
    wrong.insert("params", Value::from("not a map"));
    let reply = raw_roundtrip(&mut dealer, rmp_serde::to_vec_named(&wrong).unwrap()).await;
    assert_eq!(error_code(&reply), Some("bad_params"));

    // An empty multipart message (identity only) is dropped too.
    let reply = raw_roundtrip(
        &mut dealer,
        rmp_serde::to_vec_named(&serde_json_map(5, "ping")).unwrap(),
    )
    .await;
    assert_eq!(field(&reply, "result"), Some(&Value::from("pong")));
    assert_eq!(server.stats().dropped_unreadable.load(Ordering::Relaxed), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_and_pushes() {
    let dir = tempfile::tempdir().unwrap();
    let notified = Arc::new(AtomicU64::new(0));
    let server = test_server(&ipc(&dir, "rpc.sock"), Arc::clone(&notified))
        .await
        .unwrap();
    let client = Client::new(&server.endpoints()[0]);
    let mut pushes = client.take_pushes().unwrap();
    assert!(client.take_pushes().is_none());
    client.notify("event", &5u64).unwrap();
    client.notify("event", &7u64).unwrap();
    poll_until("notifications handled", || {
        notified.load(Ordering::SeqCst) == 12
    })
    .await;
    let acked: bool = client.call("push_me", "hello", T).await.unwrap();
    assert!(acked);
    let push = tokio::time::timeout(T, pushes.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(push.method, "pushed");
    assert_eq!(push.params, Value::from("hello"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_socket_file_is_cleaned_but_live_server_is_not_stolen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rpc.sock");
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(
        path.exists(),
        "a dead listener leaves its socket file behind"
    );
    let endpoint = ipc(&dir, "rpc.sock");
    let live = test_server(&endpoint, Arc::default()).await.unwrap();

    let second = test_server(&endpoint, Arc::default()).await;
    assert!(
        matches!(second, Err(BindError::InUse(_))),
        "second bind must fail"
    );
    let client = Client::new(&endpoint);
    let pong: String = client.call("ping", &NoParams {}, T).await.unwrap();
    assert_eq!(pong, "pong");
    assert_eq!(live.stats().requests.load(Ordering::Relaxed), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_binds_leave_exactly_one_server() {
    let dir = tempfile::tempdir().unwrap();
    let endpoint = ipc(&dir, "rpc.sock");
    let results =
        futures::future::join_all((0..4).map(|_| test_server(&endpoint, Arc::default()))).await;
    let winners = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(
        winners,
        1,
        "exactly one bind wins: {:?}",
        results.iter().map(Result::is_ok).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_loopback_tcp_is_refused() {
    let refused = test_server("tcp://0.0.0.0:0", Arc::default()).await;
    assert!(matches!(refused, Err(BindError::NotLoopback(_))));
}

/// zmq.rs lets a new peer that names an identity already in use take over the old peer's
/// queue; the guard gives every connection its own identity, so both keep their replies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_claiming_one_identity_each_get_their_own_replies() {
    let dir = tempfile::tempdir().unwrap();
    let endpoint = ipc(&dir, "rpc.sock");
    let _server = test_server(&endpoint, Arc::default()).await.unwrap();
    let mut peers = Vec::new();
    for _ in 0..2 {
        let mut options = zeromq::SocketOptions::default();
        options.peer_identity("same-identity".parse().unwrap());
        let mut dealer = DealerSocket::with_options(options);
        dealer.connect(&endpoint).await.unwrap();
        peers.push(dealer);
    }
    for (n, dealer) in peers.iter_mut().enumerate() {
        let request = work_request(n as u64 + 10, 21 + n as u64);
        dealer.send(ZmqMessage::from(request)).await.unwrap();
    }
    for (n, dealer) in peers.iter_mut().enumerate() {
        let reply = tokio::time::timeout(T, dealer.recv())
            .await
            .unwrap()
            .unwrap();
        let reply: Value = rmpv::decode::read_value(&mut &reply.get(0).unwrap()[..]).unwrap();
        let id = reply["id"].as_u64();
        let result = reply["result"].as_u64();
        assert_eq!(
            (id, result),
            (Some(n as u64 + 10), Some(2 * (21 + n as u64))),
            "peer {n} got {reply}"
        );
    }
}

/// A `work` request `{v, id, method, params: {n, delay_ms: 0}}` as raw msgpack.
fn work_request(id: u64, n: u64) -> Vec<u8> {
    #[derive(Serialize)]
    struct Request {
        v: u32,
        id: u64,
        method: &'static str,
        params: Work,
    }
    rmp_serde::to_vec_named(&Request {
        v: 1,
        id,
        method: "work",
        params: Work { n, delay_ms: 0 },
    })
    .unwrap()
}

//! The real thing: a child process prints a lot to its pipes, the spawner's log hub pumps
//! them (with backpressure: the buffers are much smaller than the output), serves them on
//! an ipc endpoint, and a consumer pulling with `logs.fetch` over zpm-rpc gets every byte,
//! in order, nothing dropped.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};
use zpm_agents::spawner::logs::{LogHub, LogLimits, fetch_logs, serve_logs};
use zpm_proto::method::logs::Fetch;
use zpm_proto::{LogCursor, LogStream, LogsFetch};
use zpm_rpc::Method as _;
use zpm_rpc::Value;
use zpm_rpc::{CallError, Client, ClientOptions, ErrorCode};

const LINES: u32 = 200_000;
const ID: u32 = 4;

fn client(endpoint: &str) -> Client {
    let options = ClientOptions {
        version: zpm_proto::PROTOCOL_VERSION,
        ..ClientOptions::default()
    };
    Client::with_options(endpoint, options)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_gets_every_byte_of_a_real_child_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let endpoint = format!("ipc://{}", dir.path().join("spawner.sock").display());
    let hub = LogHub::new(LogLimits {
        per_stream_bytes: 64 * 1024,
        // Generous, so a stalled test machine cannot turn backpressure into dropping.
        consumer_ttl: Duration::from_secs(30),
    });
    hub.register(ID);
    let _server = serve_logs(Arc::clone(&hub), &endpoint).await.unwrap();
    // Claim the consumer role before the child writes: without a consumer attached, a full
    // buffer drops its oldest bytes, and a loaded machine may fill it before our first fetch.
    let client = client(&endpoint);
    claim_consumer(&client).await;

    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(common::SCRIPT)
        .arg("zpm-test")
        .arg(LINES.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let out_pump =
        tokio::spawn(Arc::clone(&hub).pump(ID, LogStream::Out, child.stdout.take().unwrap(), None));
    let err_pump =
        tokio::spawn(Arc::clone(&hub).pump(ID, LogStream::Err, child.stderr.take().unwrap(), None));
    let exited = tokio::spawn(async move { child.wait().await.unwrap() });

    let mut cursors: HashMap<LogStream, u64> = HashMap::new();
    let mut got: HashMap<LogStream, Vec<u8>> = HashMap::new();
    let mut fetches = 0u64;
    let mut most_held = 0u64;
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        assert!(Instant::now() < deadline, "consumer did not finish in time");
        // Decided before the fetch: if the pipes were at EOF and the child gone before it,
        // an empty answer means everything has been received.
        let all_in = out_pump.is_finished() && err_pump.is_finished() && exited.is_finished();
        let request = LogsFetch {
            epoch: None,
            after: cursors
                .iter()
                .map(|(&stream, &offset)| LogCursor {
                    id: ID,
                    stream,
                    offset,
                    ack: None,
                })
                .collect(),
            max_bytes: 64 * 1024,
            wait_ms: 200,
            consume: true, // the registered consumer: acknowledges, and is backpressure
        };
        let answer = fetch_logs(&client, &request, Duration::from_secs(30))
            .await
            .unwrap();
        fetches += 1;
        for stream in [LogStream::Out, LogStream::Err] {
            let held = hub.held(ID, stream).unwrap();
            most_held = most_held.max(held.end - held.start);
        }
        let total: usize = answer.chunks.iter().map(|c| c.data.len()).sum();
        assert!(total <= 64 * 1024, "max_bytes exceeded: {total}");
        if answer.chunks.is_empty() && all_in {
            break;
        }
        for chunk in answer.chunks {
            assert_eq!(chunk.id, ID);
            assert_eq!(chunk.dropped, 0, "bytes were dropped: {chunk:?}");
            let cursor = cursors.entry(chunk.stream).or_insert(0);
            assert_eq!(chunk.offset, *cursor, "chunk does not continue the stream");
            *cursor += chunk.data.len() as u64;
            got.entry(chunk.stream)
                .or_default()
                .extend_from_slice(&chunk.data);
        }
    }

    let status = exited.await.unwrap();
    assert!(status.success(), "script failed: {status}");
    let (out, err) = common::script_output(LINES);
    assert!(
        out.len() > 4 * 64 * 1024,
        "the output must exceed the buffers many times"
    );
    common::assert_same(
        "stdout",
        got.get(&LogStream::Out).map_or(&[][..], Vec::as_slice),
        &out,
    );
    common::assert_same(
        "stderr",
        got.get(&LogStream::Err).map_or(&[][..], Vec::as_slice),
        &err,
    );
    assert_eq!(hub.dropped(ID, LogStream::Out), 0);
    assert_eq!(hub.dropped(ID, LogStream::Err), 0);
    assert!(most_held <= 64 * 1024, "a buffer held {most_held} bytes");
    eprintln!(
        "{} + {} bytes in {fetches} fetches; most held in one buffer: {most_held}",
        out.len(),
        err.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_params_get_an_error_reply_and_the_server_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let endpoint = format!("ipc://{}", dir.path().join("spawner.sock").display());
    let hub = LogHub::new(LogLimits::default());
    hub.register(1);
    let _server = serve_logs(Arc::clone(&hub), &endpoint).await.unwrap();
    let client = Client::new(&endpoint);
    let bad = Value::Map(vec![
        (
            Value::from("after"),
            Value::Array(vec![Value::Map(vec![
                (Value::from("id"), Value::from(1)),
                (Value::from("stream"), Value::from("sideways")),
                (Value::from("offset"), Value::from(0)),
            ])]),
        ),
        (Value::from("max_bytes"), Value::from(10)),
        (Value::from("wait_ms"), Value::from(0)),
    ]);
    let err = client
        .call_value(Fetch::NAME, &bad, Duration::from_secs(10))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, CallError::Remote(e) if e.code == ErrorCode::BadParams),
        "{err:?}"
    );
    // The same shape with a real stream name, as any msgpack peer would write it.
    let good = Value::Map(vec![
        (
            Value::from("after"),
            Value::Array(vec![Value::Map(vec![
                (Value::from("id"), Value::from(1)),
                (Value::from("stream"), Value::from("err")),
                (Value::from("offset"), Value::from(0)),
            ])]),
        ),
        (Value::from("max_bytes"), Value::from(10)),
        (Value::from("wait_ms"), Value::from(0)),
    ]);
    let answer = client
        .call_value(Fetch::NAME, &good, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(
        field(&answer, "chunks"),
        Some(&Value::Array(vec![])),
        "{answer}"
    );
    assert!(
        field(&answer, "epoch").is_some_and(Value::is_u64),
        "{answer}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_claimant_gets_conflict_and_a_plain_reader_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let endpoint = format!("ipc://{}", dir.path().join("spawner.sock").display());
    let hub = LogHub::new(LogLimits {
        per_stream_bytes: 1024,
        consumer_ttl: Duration::from_secs(60),
    });
    hub.register(1);
    let _server = serve_logs(Arc::clone(&hub), &endpoint).await.unwrap();
    let (first, second) = (client(&endpoint), client(&endpoint));
    let claim = LogsFetch {
        epoch: None,
        after: vec![],
        max_bytes: 100,
        wait_ms: 0,
        consume: true,
    };
    let timeout = Duration::from_secs(10);
    fetch_logs(&first, &claim, timeout).await.unwrap();
    let err = fetch_logs(&second, &claim, timeout).await.unwrap_err();
    assert!(
        matches!(&err, CallError::Remote(e) if e.code == ErrorCode::Conflict
            && e.message.contains("consumer")),
        "{err:?}"
    );
    // The holder keeps its role.
    fetch_logs(&first, &claim, timeout).await.unwrap();
    // Without `consume` (absent on the wire, as an older peer writes it) anyone reads.
    let plain = Value::Map(vec![
        (Value::from("after"), Value::Array(vec![])),
        (Value::from("max_bytes"), Value::from(1)),
        (Value::from("wait_ms"), Value::from(0)),
    ]);
    let answer = second
        .call_value(Fetch::NAME, &plain, timeout)
        .await
        .unwrap();
    assert_eq!(
        field(&answer, "chunks"),
        Some(&Value::Array(vec![])),
        "{answer}"
    );
    assert!(
        field(&answer, "epoch").is_some_and(Value::is_u64),
        "{answer}"
    );
}

/// The value of `key` in a msgpack map.
fn field<'a>(map: &'a Value, key: &str) -> Option<&'a Value> {
    map.as_map()?
        .iter()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(_, v)| v)
}

/// One fetch with `consume` that returns at once: the role is ours from then on.
async fn claim_consumer(client: &Client) {
    let claim = LogsFetch {
        epoch: None,
        after: vec![],
        max_bytes: 1,
        wait_ms: 0,
        consume: true,
    };
    fetch_logs(client, &claim, Duration::from_secs(30))
        .await
        .unwrap();
}

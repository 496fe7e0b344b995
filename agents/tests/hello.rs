//! The spawner's first hello: it must be sent even when the connection to God is up before
//! the hello task first runs (the fresh-home race: God then waited 10 s for a spawner that
//! was connected but had never said hello).
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use zpm_agents::link::{Holdings, say_hello_on_connect};
use zpm_host::keeper::Health;
use zpm_proto::commands::Hello;
use zpm_proto::method::agent;
use zpm_proto::{AgentHello, PROTOCOL_VERSION, Pong};
use zpm_rpc::{Client, ClientOptions, RpcError, Server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_is_said_on_a_connection_made_before_the_task_ran() {
    let dir = tempfile::tempdir().unwrap();
    let endpoint = format!("ipc://{}", dir.path().join("rpc.sock").display());
    let (hellos, mut heard) = mpsc::unbounded_channel();
    let _server = Server::builder()
        .version(PROTOCOL_VERSION)
        .handle::<agent::Hello, _, _>(move |hello: Hello, _ctx| {
            let hellos = hellos.clone();
            async move {
                let _ = hellos.send(hello.agent.pid);
                Ok::<_, RpcError>(Pong {
                    bus_dropped: 0,
                    version: "test".into(),
                    pid: 1,
                    host: "h".into(),
                    uptime_ms: 0,
                    warnings: vec![],
                    guards: std::collections::BTreeMap::new(),
                    listening: None,
                })
            }
        })
        .bind(&[&endpoint])
        .await
        .unwrap();
    let options = ClientOptions {
        version: PROTOCOL_VERSION,
        ..ClientOptions::default()
    };
    let client = Arc::new(Client::with_options(&endpoint, options));
    // The race, made certain: connected before the hello task subscribes.
    assert!(client.wait_connected(Duration::from_secs(10)).await);
    let agent = AgentHello {
        role: "spawner".into(),
        host: "here".into(),
        pid: 4242,
        version: "test".into(),
        protocol: PROTOCOL_VERSION,
    };
    let health = Health::default();
    let mut healthy = health.subscribe();
    tokio::spawn(say_hello_on_connect(
        Arc::clone(&client),
        agent,
        Holdings::default(),
        health,
    ));
    let pid = tokio::time::timeout(Duration::from_secs(10), heard.recv())
        .await
        .expect("no hello within 10 s")
        .unwrap();
    assert_eq!(pid, 4242);
    tokio::time::timeout(Duration::from_secs(10), healthy.changed())
        .await
        .expect("the accepted hello did not signal health")
        .unwrap();
}

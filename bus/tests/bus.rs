//! Real sockets in a tempdir: prefix routing, credit, drops, gaps, stalls, departures.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use bytes::Bytes;
use std::time::{Duration, Instant};
use zpm_bus::{
    EventSource, Publisher, PublisherOptions, RelayEvent, Subscriber, SubscriberOptions,
    TOPIC_DROPPED,
};

const T: Duration = Duration::from_secs(5);

fn ipc(dir: &tempfile::TempDir) -> String {
    format!("ipc://{}", dir.path().join("bus.sock").display())
}

async fn publisher(dir: &tempfile::TempDir, silence: Duration) -> Publisher {
    let options = PublisherOptions {
        source: "test".into(),
        silence_timeout: silence,
        ..PublisherOptions::default()
    };
    Publisher::bind(&[&ipc(dir)], options).await.unwrap()
}

async fn subscriber(dir: &tempfile::TempDir, prefixes: &[&str], credit: u32) -> Subscriber {
    let options = SubscriberOptions {
        prefixes: prefixes.iter().map(ToString::to_string).collect(),
        credit,
        ..SubscriberOptions::default()
    };
    Subscriber::connect(&ipc(dir), options).await.unwrap()
}

async fn wait_subscribers(publisher: &Publisher, n: usize) {
    let deadline = Instant::now() + T;
    while publisher.subscribers().await.unwrap().len() != n {
        assert!(
            Instant::now() < deadline,
            "publisher never saw {n} subscribers"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn next_topic(sub: &mut Subscriber) -> String {
    let event = sub.recv_raw(T).await.unwrap().expect("an event in time");
    event.topic_str().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_get_only_their_prefixes() {
    let dir = tempfile::tempdir().unwrap();
    let publisher = publisher(&dir, Duration::from_secs(10)).await;
    let mut logs = subscriber(&dir, &["log:"], 100).await;
    let mut procs = subscriber(&dir, &["process:", "agent:"], 100).await;
    wait_subscribers(&publisher, 2).await;
    for topic in ["log:out", "process:event", "log:err", "metrics", "agent:up"] {
        publisher.publish(topic, &topic).await.unwrap();
    }
    assert_eq!(next_topic(&mut logs).await, "log:out");
    assert_eq!(next_topic(&mut logs).await, "log:err");
    assert_eq!(next_topic(&mut procs).await, "process:event");
    let event = procs.recv::<String>(T).await.unwrap().unwrap();
    assert_eq!(
        (event.topic.as_str(), event.data.as_str()),
        ("agent:up", "agent:up")
    );
    assert!(
        logs.recv_raw(Duration::from_millis(100))
            .await
            .unwrap()
            .is_none(),
        "nothing else for logs"
    );
    assert_eq!(logs.stats().gaps, 0);
}

async fn wait_interest(publisher: &Publisher, want: &[&str]) {
    let mut interest = publisher.interest();
    let deadline = Instant::now() + T;
    while *interest.borrow_and_update() != want {
        let left = deadline.saturating_duration_since(Instant::now());
        let changed = tokio::time::timeout(left, interest.changed()).await;
        assert!(
            matches!(changed, Ok(Ok(()))),
            "interest never became {want:?}: {:?}",
            *interest.borrow()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interest_is_the_union_of_current_prefixes() {
    let dir = tempfile::tempdir().unwrap();
    let publisher = publisher(&dir, Duration::from_secs(10)).await;
    assert!(publisher.interest().borrow().is_empty());
    let logs = subscriber(&dir, &["log:", "metrics"], 10).await;
    wait_interest(&publisher, &["log:", "metrics"]).await;
    let procs = subscriber(&dir, &["process:", "log:"], 10).await;
    wait_interest(&publisher, &["log:", "metrics", "process:"]).await;
    drop(logs);
    wait_interest(&publisher, &["log:", "process:"]).await;
    drop(procs);
    wait_interest(&publisher, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_credit_events_are_dropped_counted_reported_and_seen_as_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let publisher = publisher(&dir, Duration::from_secs(10)).await;
    let mut sub = subscriber(&dir, &[""], 10).await;
    wait_subscribers(&publisher, 1).await;
    for n in 0..50u32 {
        publisher.publish("work", &n).await.unwrap();
    }
    let info = &publisher.subscribers().await.unwrap()[0];
    assert_eq!(
        (info.sent, info.dropped, info.credit, info.lag),
        (10, 40, 0, 10)
    );

    let mut seen = Vec::new();
    let mut reported = None;
    while seen.len() < 10 || reported.is_none() {
        let event = sub.recv_raw(T).await.unwrap().expect("event in time");
        if event.topic_str() == TOPIC_DROPPED {
            reported = Some(event.decode::<zpm_bus::DroppedReport>().unwrap().data);
        } else {
            seen.push(event.decode::<u32>().unwrap().data);
        }
    }
    assert_eq!(seen, (0..10).collect::<Vec<_>>());
    assert_eq!(
        reported,
        Some(zpm_bus::DroppedReport {
            dropped: 40,
            total: 40
        })
    );
    assert_eq!(sub.stats().dropped_reported, 40);
    assert_eq!(
        publisher
            .stats()
            .dropped
            .load(std::sync::atomic::Ordering::Relaxed),
        40
    );

    publisher.publish("work", &50u32).await.unwrap();
    let event = sub.recv::<u32>(T).await.unwrap().unwrap();
    assert_eq!((event.data, event.seq), (50, 51));
    assert_eq!(
        sub.stats().gaps,
        40,
        "the subscriber sees the 40 missing seqs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_subscriber_is_bounded_and_live_one_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let publisher = publisher(&dir, Duration::from_secs(10)).await;
    let stalled = subscriber(&dir, &[""], 100).await;
    let mut live = subscriber(&dir, &[""], 1000).await;
    wait_subscribers(&publisher, 2).await;
    let (count_tx, mut count_rx) = tokio::sync::watch::channel(0u64);
    let reader = tokio::spawn(async move {
        let mut received = 0u64;
        while received < 20_000 {
            if live.recv_raw(T).await.unwrap().is_some() {
                received += 1;
                let _ = count_tx.send(received);
            } else {
                break;
            }
        }
        live.stats()
    });
    for batch in 0..40u64 {
        for n in 0..500u64 {
            publisher.publish("tick", &(batch * 500 + n)).await.unwrap();
        }
        // Feed the live subscriber no faster than it consumes.
        let target = (batch + 1) * 500;
        tokio::time::timeout(T, count_rx.wait_for(|c| *c >= target))
            .await
            .unwrap()
            .unwrap();
    }
    let live_stats = reader.await.unwrap();
    assert_eq!(live_stats.received, 20_000);
    assert_eq!(live_stats.gaps, 0);
    assert_eq!(live_stats.dropped_reported, 0);
    let infos = publisher.subscribers().await.unwrap();
    let stalled_info = infos
        .iter()
        .find(|i| i.sent == 100)
        .expect("the stalled subscriber");
    assert_eq!(stalled_info.dropped, 19_900);
    assert_eq!(
        stalled_info.lag, 100,
        "never more than its credit in flight"
    );
    drop(stalled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn departed_and_silent_subscribers_are_forgotten() {
    let dir = tempfile::tempdir().unwrap();
    let publisher = publisher(&dir, Duration::from_millis(400)).await;
    let sub = subscriber(&dir, &[""], 10).await;
    wait_subscribers(&publisher, 1).await;
    drop(sub);
    wait_subscribers(&publisher, 0).await;

    // A peer that subscribes and then never speaks again is forgotten after the timeout.
    let mut silent = <zeromq::DealerSocket as zeromq::Socket>::new();
    zeromq::Socket::connect(&mut silent, &ipc(&dir))
        .await
        .unwrap();
    let subscribe = rmp_serde::to_vec_named(&std::collections::BTreeMap::from([
        ("t", rmpv_str("subscribe")),
        ("v", rmpv::Value::from(1)),
        ("prefixes", rmpv::Value::Array(vec![rmpv_str("")])),
        ("credit", rmpv::Value::from(5)),
    ]))
    .unwrap();
    zeromq::SocketSend::send(&mut silent, zeromq::ZmqMessage::from(subscribe))
        .await
        .unwrap();
    wait_subscribers(&publisher, 1).await;
    wait_subscribers(&publisher, 0).await;
    assert!(
        publisher
            .stats()
            .subscribers_forgotten
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 2
    );
}

fn rmpv_str(s: &str) -> rmpv::Value {
    rmpv::Value::from(s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relayed_events_arrive_byte_for_byte_and_bad_ones_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let publisher = publisher(&dir, Duration::from_secs(10)).await;
    let mut sub = subscriber(&dir, &["process:"], 10).await;
    wait_subscribers(&publisher, 1).await;
    let mut spawner = EventSource::new("spawner", "host-a", 1);
    let payload = spawner.encode("process:event", &("start", 3u32)).unwrap();
    let relay = RelayEvent::new("process:event", payload.to_vec());
    let wire = rmp_serde::to_vec_named(&relay).unwrap();
    let relay: RelayEvent = rmp_serde::from_slice(&wire).unwrap();
    publisher.relay(relay).unwrap();
    let event = sub.recv_raw(T).await.unwrap().unwrap();
    assert_eq!(event.payload, payload, "payload must not be re-encoded");
    assert_eq!(
        (event.header.source.as_str(), event.header.host.as_str()),
        ("spawner", "host-a")
    );

    let bad = publisher
        .publish_raw(
            Bytes::from_static(b"process:event"),
            Bytes::from_static(b"\xc1"),
        )
        .await;
    assert!(bad.is_err());
    assert_eq!(
        publisher
            .stats()
            .malformed
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriber_follows_a_restarted_publisher() {
    let dir = tempfile::tempdir().unwrap();
    let first = publisher(&dir, Duration::from_secs(10)).await;
    let mut sub = subscriber(&dir, &[""], 10).await;
    wait_subscribers(&first, 1).await;
    first.publish("a", &1u8).await.unwrap();
    assert_eq!(next_topic(&mut sub).await, "a");
    drop(first);
    let deadline = Instant::now() + T;
    let second = loop {
        let options = PublisherOptions {
            source: "test".into(),
            ..PublisherOptions::default()
        };
        match Publisher::bind(&[&ipc(&dir)], options).await {
            Ok(p) => break p,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err(e) => panic!("rebind: {e}"),
        }
    };
    // recv notices the lost link, reconnects and resubscribes.
    let reader = tokio::spawn(async move {
        let event = sub.recv_raw(T).await.unwrap().expect("event after restart");
        (event.topic_str().to_owned(), sub.stats().connections)
    });
    wait_subscribers(&second, 1).await;
    second.publish("b", &2u8).await.unwrap();
    let (topic, connections) = reader.await.unwrap();
    assert_eq!(topic, "b");
    assert_eq!(connections, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_events_keep_flowing_under_a_large_event_credit() {
    let dir = tempfile::tempdir().unwrap();
    let publisher = publisher(&dir, Duration::from_secs(10)).await;
    // The byte window (8 MiB) fills after ~32 of these, long before 4096 events: credit
    // must go back by bytes too, or the stream stops for good.
    let mut sub = subscriber(&dir, &["big"], 4096).await;
    wait_subscribers(&publisher, 1).await;
    let body = serde_bytes::ByteBuf::from(vec![7_u8; 256 * 1024]);
    // In lock-step: the subscriber keeps up, so every event must arrive.
    for got in 0..200 {
        publisher.publish("big", &body).await.unwrap();
        let event = sub.recv_raw(T).await.unwrap();
        assert!(event.is_some(), "stalled after {got} events");
    }
    assert_eq!(sub.stats().gaps, 0);
}

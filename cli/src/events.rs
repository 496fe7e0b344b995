//! `zpm events`: the CLI as a bus subscriber, printing events as they come — what any
//! third-party subscriber sees.

use crate::connect::ensure_daemon;
use crate::output::{print_json, print_line};
use anyhow::Context as _;
use std::time::{Duration, UNIX_EPOCH};
use zpm_bus::{Event, Subscriber, SubscriberOptions};
use zpm_host::home::Home;

/// How long one wait for an event lasts before looking at Ctrl-C again.
const POLL: Duration = Duration::from_millis(500);

pub async fn run(home: &Home, prefixes: Vec<String>, json: bool) -> anyhow::Result<()> {
    ensure_daemon(home).await?;
    let options = SubscriberOptions {
        prefixes: if prefixes.is_empty() {
            vec![String::new()]
        } else {
            prefixes
        },
        version: zpm_proto::PROTOCOL_VERSION,
        ..SubscriberOptions::default()
    };
    let endpoint = home.bus_endpoint();
    let mut subscriber = Subscriber::connect(&endpoint, options)
        .await
        .with_context(|| format!("subscribing to {endpoint}"))?;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            _ = &mut ctrl_c => return Ok(()),
            event = subscriber.recv::<serde_json::Value>(POLL) => {
                if let Some(event) = event.context("reading the bus")? {
                    show(&event, json)?;
                }
            }
        }
    }
}

fn show(event: &Event<serde_json::Value>, json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(&serde_json::json!({
            "topic": event.topic,
            "seq": event.seq,
            "at": event.at,
            "host": event.host,
            "source": event.source,
            "data": event.data,
        }));
    }
    let at = UNIX_EPOCH + Duration::from_millis(event.at);
    let data = serde_json::to_string(&event.data).context("encoding the event as JSON")?;
    print_line(&format!(
        "{} {} {}@{} {data}",
        humantime::format_rfc3339_millis(at),
        crate::output::printable(&event.topic),
        crate::output::printable(&event.source),
        crate::output::printable(&event.host),
    ))
}

//! The bus side of the dashboard: one subscriber to `process:`, `metrics` and `log:`, read
//! by its own task into a small bounded queue. When the screen falls behind, the task stops
//! reading, the subscriber stops returning credit and God drops (and counts) at the source:
//! nothing here grows.

use anyhow::Context as _;
use tokio::sync::mpsc;
use zpm_bus::{RawEvent, Subscriber, SubscriberOptions};
use zpm_host::home::Home;
use zpm_proto::metrics::MetricsReport;
use zpm_proto::{LogEvent, topics};

/// Updates waiting for the screen.
const QUEUE: usize = 256;
/// Credit: a log flood beyond this many undrawn events is dropped by God, not buffered here.
const CREDIT: u32 = 512;
/// One wait for an event; the subscriber relinks by itself in between.
const WAIT: std::time::Duration = std::time::Duration::from_secs(1);

#[derive(Debug)]
pub enum Update {
    /// An app changed (or events were lost): the list is to be fetched again.
    AppsChanged,
    Metrics {
        host: String,
        report: MetricsReport,
    },
    Log(LogEvent),
}

pub async fn subscribe(home: &Home) -> anyhow::Result<mpsc::Receiver<Update>> {
    let options = SubscriberOptions {
        prefixes: ["process:", topics::METRICS, "log:"]
            .map(String::from)
            .to_vec(),
        credit: CREDIT,
        version: zpm_proto::PROTOCOL_VERSION,
        ..SubscriberOptions::default()
    };
    let endpoint = home.bus_endpoint();
    let subscriber = Subscriber::connect(&endpoint, options)
        .await
        .with_context(|| format!("subscribing to {endpoint}"))?;
    let (updates, receiver) = mpsc::channel(QUEUE);
    tokio::spawn(forward(subscriber, updates));
    Ok(receiver)
}

/// Ends when the screen is gone (the receiver dropped).
async fn forward(mut subscriber: Subscriber, updates: mpsc::Sender<Update>) {
    loop {
        let event = match subscriber.recv_raw(WAIT).await {
            Ok(Some(event)) => event,
            Ok(None) if updates.is_closed() => return,
            Ok(None) => continue,
            Err(e) => {
                tracing::debug!(error = %e, "monit: bus read failed");
                continue;
            }
        };
        if let Some(update) = decode(&event)
            && updates.send(update).await.is_err()
        {
            return;
        }
    }
}

/// What an event means to the dashboard; `None` for what it does not show or cannot read
/// (a malformed body from a buggy peer is skipped, not fatal).
pub fn decode(event: &RawEvent) -> Option<Update> {
    match event.topic_str() {
        topics::PROCESS_EVENT | topics::BUS_DROPPED => Some(Update::AppsChanged),
        topics::METRICS => event
            .decode::<MetricsReport>()
            .ok()
            .map(|e| Update::Metrics {
                host: e.host,
                report: e.data,
            }),
        topics::LOG_OUT | topics::LOG_ERR => {
            event.decode::<LogEvent>().ok().map(|e| Update::Log(e.data))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zpm_bus::{EventHeader, EventSource};
    use zpm_proto::LogStream;

    fn raw<T: serde::Serialize>(topic: &'static str, body: &T) -> RawEvent {
        let payload = EventSource::new("test", "box", 1)
            .encode(topic, body)
            .unwrap();
        RawEvent {
            topic: topic.as_bytes().to_vec().into(),
            header: EventHeader::decode(&payload).unwrap(),
            payload,
        }
    }

    #[test]
    fn events_become_updates() {
        let log = LogEvent {
            line: 0,
            id: 2,
            name: "web".into(),
            stream: LogStream::Err,
            offset: 0,
            data: b"x\n".to_vec(),
        };
        assert!(matches!(decode(&raw(topics::LOG_ERR, &log)), Some(Update::Log(l)) if l == log));
        let report = crate::monit::state::tests::report(&[(1, 2.0, 3)]);
        let metrics = decode(&raw(topics::METRICS, &report));
        assert!(
            matches!(metrics, Some(Update::Metrics { host, report: r }) if host == "box" && r == report)
        );
        let changed = decode(&raw(topics::PROCESS_EVENT, &"anything"));
        assert!(matches!(changed, Some(Update::AppsChanged)));
    }

    #[test]
    fn malformed_and_unshown_events_are_skipped() {
        assert!(decode(&raw(topics::METRICS, &"not a report")).is_none());
        assert!(decode(&raw(topics::LOG_OUT, &42)).is_none());
        assert!(decode(&raw(topics::PROCESS_MSG, &"hi")).is_none());
    }
}

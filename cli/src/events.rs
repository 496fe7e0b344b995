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
            event = subscriber.recv::<zpm_rpc::Value>(POLL) => {
                if let Some(event) = event.context("reading the bus")? {
                    show(&event, json)?;
                }
            }
        }
    }
}

fn show(event: &Event<zpm_rpc::Value>, json: bool) -> anyhow::Result<()> {
    let data = to_json(&event.data);
    if json {
        return print_json(&serde_json::json!({
            "topic": event.topic,
            "seq": event.seq,
            "at": event.at,
            "host": event.host,
            "source": event.source,
            "data": data,
        }));
    }
    let at = UNIX_EPOCH + Duration::from_millis(event.at);
    let data = serde_json::to_string(&data).context("encoding the event as JSON")?;
    print_line(&format!(
        "{} {} {}@{} {data}",
        humantime::format_rfc3339_millis(at),
        crate::output::printable(&event.topic),
        crate::output::printable(&event.source),
        crate::output::printable(&event.host),
    ))
}

/// msgpack as JSON: binary data (log lines) as text when it is UTF-8, else
/// `{"base64": …}` (the bytes exactly); map keys as text.
fn to_json(value: &zpm_rpc::Value) -> serde_json::Value {
    use serde_json::Value as Json;
    use zpm_rpc::Value as Mp;
    match value {
        Mp::Nil | Mp::Ext(..) => Json::Null,
        Mp::Boolean(b) => Json::Bool(*b),
        Mp::Integer(i) => i
            .as_i64()
            .map(Json::from)
            .or_else(|| i.as_u64().map(Json::from))
            .unwrap_or(Json::Null),
        Mp::F32(f) => Json::from(f64::from(*f)),
        Mp::F64(f) => Json::from(*f),
        Mp::String(s) => Json::String(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        Mp::Binary(bytes) => match std::str::from_utf8(bytes) {
            Ok(text) => Json::String(text.to_owned()),
            Err(_) => serde_json::json!({ "base64": zpm_proto::logline::base64(bytes) }),
        },
        Mp::Array(items) => Json::Array(items.iter().map(to_json).collect()),
        Mp::Map(pairs) => Json::Object(
            pairs
                .iter()
                .map(|(k, v)| {
                    let key = match k {
                        Mp::String(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
                        other => other.to_string(),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_bytes_show_as_text_or_exact_base64() {
        let event = zpm_rpc::Value::Map(vec![
            ("data".into(), zpm_rpc::Value::Binary(b"line\n".to_vec())),
            ("raw".into(), zpm_rpc::Value::Binary(vec![0xff, 0x00])),
            ("n".into(), zpm_rpc::Value::from(7)),
        ]);
        assert_eq!(
            to_json(&event),
            serde_json::json!({"data": "line\n", "raw": {"base64": "/wA="}, "n": 7})
        );
    }
}

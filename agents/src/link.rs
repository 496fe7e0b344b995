//! An agent's connection to God: says hello on every (re)connection with what it holds,
//! heartbeats so God knows it is alive, and forwards the spawner's reports and events.
//! The rpc client recreates its socket when God restarts; this re-registers.

use crate::agent::Wanted;
use crate::spawner::report::Outbound;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use zpm_bus::{EventSource, RelayEvent};
use zpm_host::keeper::Health;
use zpm_proto::commands::{Held, Hello};
use zpm_proto::method::agent;
use zpm_proto::{AgentHello, Vitals};
use zpm_rpc::Client;

pub const HEARTBEAT: Duration = Duration::from_millis(500);
const HELLO_TIMEOUT: Duration = Duration::from_secs(2);
const HELLO_RETRY: Duration = Duration::from_millis(500);

/// Every app the agent holds, with its latest report; re-sent with each hello.
#[derive(Clone, Default)]
pub struct Holdings(Arc<Mutex<BTreeMap<u32, Held>>>);

impl Holdings {
    fn with<R>(&self, f: impl FnOnce(&mut BTreeMap<u32, Held>) -> R) -> R {
        f(&mut self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    pub fn all(&self) -> Vec<Held> {
        self.with(|h| h.values().cloned().collect())
    }
}

/// Forwards the spawner's reports and events to God, keeping `holdings` (re-sent with
/// each hello, see [`crate::agent::join`]) up to date.
pub struct Link {
    pub client: Arc<Client>,
    pub holdings: Holdings,
    pub source: EventSource,
    /// Events nobody subscribed to are not sent at all.
    pub interest: Wanted,
}

impl Link {
    pub async fn run(self, outbound: mpsc::Receiver<Outbound>) {
        forward(
            &self.client,
            outbound,
            &self.holdings,
            self.source,
            &self.interest,
        )
        .await;
    }
}

/// Says hello on every new connection to God, and tells `god_health` when one is accepted.
pub async fn say_hello_on_connect(
    client: Arc<Client>,
    agent: AgentHello,
    holdings: Holdings,
    god_health: Health,
) {
    let mut connections = client.connections();
    // `connections()` marks the current count as seen: a connection made before this task
    // first ran would never get its hello, and God would wait for a spawner forever (the
    // fresh-home race of issue 4). Look at the current count first.
    connections.mark_changed();
    loop {
        if connections.changed().await.is_err() {
            return;
        }
        if *connections.borrow_and_update() == 0 {
            continue; // not connected yet
        }
        loop {
            let hello = Hello {
                agent: agent.clone(),
                holding: holdings.all(),
            };
            match client
                .call_method::<agent::Hello>(&hello, HELLO_TIMEOUT)
                .await
            {
                Ok(god) => {
                    tracing::info!(god_pid = god.pid, "registered with God");
                    god_health.healthy();
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "hello to God failed; retrying");
                    // A refusal (e.g. another agent holds this host) would be repeated at
                    // once; pause before asking again.
                    tokio::time::sleep(HELLO_RETRY).await;
                }
            }
            if connections.has_changed().unwrap_or(false) {
                break;
            }
        }
    }
}

/// Tells God every [`HEARTBEAT`] that this agent lives, with its resident memory.
pub async fn heartbeat(client: Arc<Client>) {
    let mut ticks = tokio::time::interval(HEARTBEAT);
    let me = std::process::id();
    loop {
        ticks.tick().await;
        let vitals = zpm_host::procfs::rss_bytes(me).map(|rss| Vitals { rss });
        // Queued while God is away; a full queue just skips a beat.
        let _ = client.notify_method::<agent::Heartbeat>(&vitals);
    }
}

/// Sends `body` up to God's bus as `topic`, if some subscriber wants the topic.
fn publish(
    client: &Client,
    source: &mut EventSource,
    interest: &Wanted,
    topic: &str,
    body: &impl serde::Serialize,
) -> Result<(), zpm_rpc::CallError> {
    if !interest.wants(topic) {
        return Ok(());
    }
    match source.encode(topic, body) {
        Ok(payload) => {
            client.notify_method::<agent::Publish>(&RelayEvent::new(topic, payload.to_vec()))
        }
        Err(e) => {
            tracing::warn!(%topic, error = %e, "cannot encode an event");
            Ok(())
        }
    }
}

async fn forward(
    client: &Client,
    mut outbound: mpsc::Receiver<Outbound>,
    holdings: &Holdings,
    mut source: EventSource,
    interest: &Wanted,
) {
    while let Some(message) = outbound.recv().await {
        let sent = match message {
            Outbound::Hold(held) => {
                holdings.with(|h| h.insert(held.report.id, *held));
                Ok(())
            }
            Outbound::Report(report) => {
                holdings.with(|h| {
                    if let Some(held) = h.get_mut(&report.id) {
                        held.report = report.clone();
                    }
                });
                client.notify_method::<agent::Report>(&report)
            }
            Outbound::Event(event) => publish(
                client,
                &mut source,
                interest,
                zpm_proto::topics::PROCESS_EVENT,
                &event,
            ),
            Outbound::Message(message) => publish(
                client,
                &mut source,
                interest,
                zpm_proto::topics::PROCESS_MSG,
                &message,
            ),
            Outbound::Reloaded(reloaded) => client.notify_method::<agent::Reloaded>(&reloaded),
            Outbound::Changed(changed) => client.notify_method::<agent::Changed>(&changed),
            Outbound::Forget(id) => {
                holdings.with(|h| h.remove(&id));
                Ok(())
            }
        };
        if let Err(e) = sent {
            tracing::debug!(error = %e, "message to God dropped (queue full)");
        }
    }
}

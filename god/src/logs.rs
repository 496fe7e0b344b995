//! Tells each host's logs agent where each of its app instances' output goes: the whole
//! list of that host's log targets, pushed (`logs.targets`) whenever it or the agent's
//! connection changes. God owns the specs; an agent keeps the last list in its ledger, so
//! it goes on writing while God is away (or its host is cut off).

use crate::pending::Pending;
use crate::state::God;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::oneshot;
use zpm_proto::logfiles::{LogTarget, Targets};
use zpm_proto::method::logs;
use zpm_proto::{LogsAnswer, Role};
use zpm_rpc::{PeerId, Pusher, RpcError};

pub async fn keep_logs_agent_told(god: Arc<God>, pusher: Pusher) {
    let mut changes = god.changes();
    // By host: the connection last told, and what it was told.
    let mut told: BTreeMap<String, (PeerId, Vec<LogTarget>)> = BTreeMap::new();
    loop {
        let agents = god.registry().live_by_host(Role::Logs.as_str());
        told.retain(|host, _| agents.iter().any(|(h, _)| h == host));
        for (host, peer) in agents {
            let targets = god.log_targets_on(&host);
            let current = told
                .get(&host)
                .is_some_and(|(p, t)| *p == peer && *t == targets);
            if current {
                continue;
            }
            let params = Targets {
                targets: targets.clone(),
            };
            match pusher.push_method::<logs::Targets>(&peer, &params).await {
                Ok(()) => {
                    told.insert(host, (peer, targets));
                }
                Err(e) => tracing::warn!(%host, error = %e, "telling a logs agent its targets"),
            }
        }
        if changes.changed().await.is_err() {
            return;
        }
    }
}

/// Requests asked of logs agents through God (`logs.ask`) and not answered yet.
pub struct Queries(Pending<Result<zpm_rpc::Value, RpcError>>);

/// At most this many asked requests wait at once; more are refused.
const MAX_WAITING: usize = 64;

pub type Answer = oneshot::Receiver<Result<zpm_rpc::Value, RpcError>>;

impl Default for Queries {
    fn default() -> Self {
        Self(Pending::new(MAX_WAITING, "log requests for other hosts"))
    }
}

impl Queries {
    /// A new query to `host`'s logs agent: its id and where its answer will come.
    pub fn open(&mut self, host: &str) -> Result<(u64, Answer), RpcError> {
        self.0.open(host)
    }

    /// Forgets a query nobody waits for any more.
    pub fn close(&mut self, query: u64) {
        self.0.close(query);
    }

    /// Hands an answer to whoever waits for it, if it came from the host asked.
    pub fn answer(&mut self, answer: LogsAnswer, from_host: &str) {
        // No result is nil (msgpack does not tell an absent field from a nil one): the
        // answer of a method that returns nothing.
        let result = match answer.error {
            Some(error) => Err(error),
            None => Ok(answer.result.unwrap_or(zpm_rpc::Value::Nil)),
        };
        self.0.settle(answer.query, from_host, result);
    }
}

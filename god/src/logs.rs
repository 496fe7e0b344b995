//! Tells each host's logs agent where each of its app instances' output goes: the whole
//! list of that host's log targets, pushed (`logs.targets`) whenever it or the agent's
//! connection changes. God owns the specs; an agent keeps the last list in its ledger, so
//! it goes on writing while God is away (or its host is cut off).

use crate::state::God;
use std::collections::BTreeMap;
use std::sync::Arc;
use zpm_proto::Role;
use zpm_proto::logfiles::{LogTarget, Targets};
use zpm_proto::method::logs;
use zpm_rpc::{PeerId, Pusher};

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

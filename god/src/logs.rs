//! Tells the logs agent where each app instance's output goes: the whole list of log
//! targets, pushed (`logs.targets`) whenever it or the logs agent's connection changes.
//! God owns the specs; the agent keeps the last list in its ledger, so it goes on writing
//! while God is away.

use crate::state::God;
use std::sync::Arc;
use zpm_proto::Role;
use zpm_proto::logfiles::{LogTarget, Targets};
use zpm_proto::method::logs;
use zpm_rpc::{PeerId, Pusher};

pub async fn keep_logs_agent_told(god: Arc<God>, pusher: Pusher) {
    let mut changes = god.changes();
    let mut told: Option<(PeerId, Vec<LogTarget>)> = None;
    loop {
        let Some(peer) = god.registry().peer_of(Role::Logs.as_str()) else {
            told = None;
            if changes.changed().await.is_err() {
                return;
            }
            continue;
        };
        let targets = god.log_targets();
        let current = told
            .as_ref()
            .is_some_and(|(p, t)| *p == peer && *t == targets);
        if !current {
            let params = Targets {
                targets: targets.clone(),
            };
            match pusher.push_method::<logs::Targets>(&peer, &params).await {
                Ok(()) => told = Some((peer, targets)),
                Err(e) => tracing::warn!(error = %e, "telling the logs agent its targets"),
            }
        }
        if changes.changed().await.is_err() {
            return;
        }
    }
}

//! Agents that dialled in: who they are, where to push to, when they were last heard.

use crate::state::God;
use std::sync::Arc;
use std::time::{Duration, Instant};
use zpm_proto::{AgentHello, AgentInfo, Vitals};
use zpm_rpc::PeerId;

/// An agent not heard from for this long is down: three missed 500 ms heartbeats, so with
/// the 100 ms sweep a silent agent is marked down well within 2 s.
pub const AGENT_TIMEOUT: Duration = Duration::from_millis(1500);

pub struct AgentEntry {
    pub hello: AgentHello,
    pub peer: PeerId,
    pub last_seen: Instant,
    pub up: bool,
    /// When its latest hello was accepted.
    pub since: Instant,
    pub vitals: Option<Vitals>,
}

#[derive(Default)]
pub struct Registry {
    agents: Vec<AgentEntry>,
}

impl Registry {
    /// Records a hello; replaces an older entry of the same role and host.
    pub fn hello(&mut self, hello: AgentHello, peer: PeerId) {
        self.agents
            .retain(|a| !(a.hello.role == hello.role && a.hello.host == hello.host));
        self.agents.push(AgentEntry {
            hello,
            peer,
            last_seen: Instant::now(),
            up: true,
            since: Instant::now(),
            vitals: None,
        });
    }

    /// Marks the agent behind `peer` as alive; false if it never said hello.
    pub fn seen(&mut self, peer: &PeerId, vitals: Option<Vitals>) -> bool {
        match self.agents.iter_mut().find(|a| a.peer == peer) {
            Some(agent) => {
                agent.last_seen = Instant::now();
                agent.up = true;
                agent.vitals = vitals.or(agent.vitals);
                true
            }
            None => false,
        }
    }

    /// The connection of the live agent with `role`, if any.
    pub fn peer_of(&self, role: &str) -> Option<PeerId> {
        self.agents
            .iter()
            .find(|a| a.hello.role == role && a.up)
            .map(|a| a.peer.clone())
    }

    pub fn peers(&self) -> Vec<(String, PeerId)> {
        self.agents
            .iter()
            .filter(|a| a.up)
            .map(|a| (a.hello.role.clone(), a.peer.clone()))
            .collect()
    }

    /// The host of the agent behind `peer`.
    pub fn host_of(&self, peer: &PeerId) -> Option<String> {
        self.agents
            .iter()
            .find(|a| a.peer == peer)
            .map(|a| a.hello.host.clone())
    }

    pub fn pid_of(&self, role: &str) -> Option<u32> {
        self.agents
            .iter()
            .find(|a| a.hello.role == role)
            .map(|a| a.hello.pid)
    }

    /// Every agent, by host then role.
    pub fn list(&self) -> Vec<AgentInfo> {
        let mut agents: Vec<&AgentEntry> = self.agents.iter().collect();
        agents.sort_by(|a, b| (&a.hello.host, &a.hello.role).cmp(&(&b.hello.host, &b.hello.role)));
        agents
            .into_iter()
            .map(|a| AgentInfo {
                role: a.hello.role.clone(),
                host: a.hello.host.clone(),
                pid: a.hello.pid,
                version: a.hello.version.clone(),
                connected: a.up,
                uptime_ms: u64::try_from(a.since.elapsed().as_millis()).unwrap_or(u64::MAX),
                memory: a.vitals.map(|v| v.rss),
            })
            .collect()
    }

    /// Marks the agent of `role` down at once (its process is known dead).
    pub fn mark_down(&mut self, role: &str) -> Option<AgentHello> {
        let agent = self
            .agents
            .iter_mut()
            .find(|a| a.hello.role == role && a.up)?;
        agent.up = false;
        Some(agent.hello.clone())
    }

    /// Marks agents silent past the timeout as down; returns those newly down.
    pub fn sweep(&mut self) -> Vec<AgentHello> {
        let mut down = Vec::new();
        for agent in &mut self.agents {
            if agent.up && agent.last_seen.elapsed() > AGENT_TIMEOUT {
                agent.up = false;
                down.push(agent.hello.clone());
            }
        }
        down
    }
}

/// Publishes `agent:down` for agents that stopped heartbeating.
pub async fn watch_liveness(god: Arc<God>) {
    let mut ticks = tokio::time::interval(Duration::from_millis(100));
    loop {
        ticks.tick().await;
        let down = god.registry().sweep();
        for hello in down {
            tracing::warn!(role = %hello.role, pid = hello.pid, "agent down");
            god.publish(zpm_proto::topics::AGENT_DOWN, &hello).await;
            god.changed();
        }
    }
}

/// Tells every agent the bus's interest whenever it changes (a new agent is told right
/// after its hello), so agents publish only what someone wants.
pub async fn announce_interest(god: Arc<God>, pusher: zpm_rpc::Pusher) {
    let mut interest = god.interest();
    while interest.changed().await.is_ok() {
        let params = zpm_proto::commands::Interest {
            prefixes: interest.borrow_and_update().clone(),
        };
        let peers = god.registry().peers();
        for (role, peer) in peers {
            let sent = pusher
                .push_method::<zpm_proto::method::agent::Interest>(&peer, &params)
                .await;
            if let Err(e) = sent {
                tracing::debug!(%role, error = %e, "interest push failed");
            }
        }
    }
}

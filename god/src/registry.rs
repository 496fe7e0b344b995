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

/// Who sent a message, as its hello said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sender {
    pub role: String,
    pub host: String,
    /// It had been marked down (silent too long) and is heard again.
    pub back: bool,
}

impl Sender {
    pub fn is_spawner_of(&self, host: &str) -> bool {
        self.role == zpm_proto::Role::Spawner.as_str() && self.host == host
    }
}

/// A live agent of another process already holds this host and role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    pub pid: u32,
}

impl Registry {
    /// Records a hello; replaces an older entry of the same role and host. Refused while
    /// another process's agent of that role and host is live: two machines given the same
    /// `--host` must not both run its apps. The same process reconnecting is welcome.
    pub fn hello(&mut self, hello: AgentHello, peer: PeerId) -> Result<(), Claimed> {
        let holder = self.agents.iter().find(|a| {
            a.up && a.hello.role == hello.role && a.hello.host == hello.host && a.peer != peer
        });
        if let Some(holder) = holder
            && holder.hello.pid != hello.pid
        {
            return Err(Claimed {
                pid: holder.hello.pid,
            });
        }
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
        Ok(())
    }

    /// Marks the agent behind `peer` as alive; `None` if it never said hello.
    pub fn seen(&mut self, peer: &PeerId, vitals: Option<Vitals>) -> Option<Sender> {
        let agent = self.agents.iter_mut().find(|a| a.peer == peer)?;
        let back = !agent.up;
        agent.last_seen = Instant::now();
        agent.up = true;
        agent.vitals = vitals.or(agent.vitals);
        Some(Sender {
            role: agent.hello.role.clone(),
            host: agent.hello.host.clone(),
            back,
        })
    }

    fn live(&self, role: &str, host: &str) -> Option<&AgentEntry> {
        self.agents
            .iter()
            .find(|a| a.up && a.hello.role == role && a.hello.host == host)
    }

    /// The connection of the live agent with `role` on `host`, if any.
    pub fn peer_of(&self, role: &str, host: &str) -> Option<PeerId> {
        self.live(role, host).map(|a| a.peer.clone())
    }

    /// True if an agent of `role` ever said hello from `host` (live or not).
    pub fn knows(&self, role: &str, host: &str) -> bool {
        self.agents
            .iter()
            .any(|a| a.hello.role == role && a.hello.host == host)
    }

    /// Every host some agent of `role` said hello from, sorted.
    pub fn hosts_with(&self, role: &str) -> Vec<String> {
        let mut hosts: Vec<String> = self
            .agents
            .iter()
            .filter(|a| a.hello.role == role)
            .map(|a| a.hello.host.clone())
            .collect();
        hosts.sort();
        hosts.dedup();
        hosts
    }

    /// Every live agent as `(role, host, peer)`.
    pub fn peers(&self) -> Vec<(String, String, PeerId)> {
        self.agents
            .iter()
            .filter(|a| a.up)
            .map(|a| (a.hello.role.clone(), a.hello.host.clone(), a.peer.clone()))
            .collect()
    }

    /// The live agents of `role`, by host.
    pub fn live_by_host(&self, role: &str) -> Vec<(String, PeerId)> {
        self.agents
            .iter()
            .filter(|a| a.up && a.hello.role == role)
            .map(|a| (a.hello.host.clone(), a.peer.clone()))
            .collect()
    }

    pub fn pid_of(&self, role: &str, host: &str) -> Option<u32> {
        self.agents
            .iter()
            .find(|a| a.hello.role == role && a.hello.host == host)
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
                uptime_ms: millis(a.since.elapsed()),
                memory: a.vitals.map(|v| v.rss),
                last_seen_ms: millis(a.last_seen.elapsed()),
            })
            .collect()
    }

    /// Marks the agent of `role` on `host` down at once (its process is known dead).
    pub fn mark_down(&mut self, role: &str, host: &str) -> Option<AgentHello> {
        let agent = self
            .agents
            .iter_mut()
            .find(|a| a.hello.role == role && a.hello.host == host && a.up)?;
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

fn millis(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
}

/// Publishes `agent:down` for agents that stopped heartbeating; a remote host whose
/// spawner went silent is down: its apps show `unknown` until it says hello again.
pub async fn watch_liveness(god: Arc<God>) {
    let mut ticks = tokio::time::interval(Duration::from_millis(100));
    loop {
        ticks.tick().await;
        let down = god.registry().sweep();
        for hello in down {
            tracing::warn!(role = %hello.role, host = %hello.host, pid = hello.pid, "agent down");
            if hello.role == zpm_proto::Role::Spawner.as_str() && hello.host != god.host {
                god.table().set_host_down(&hello.host, true);
            }
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
        for (role, _, peer) in peers {
            let sent = pusher
                .push_method::<zpm_proto::method::agent::Interest>(&peer, &params)
                .await;
            if let Err(e) = sent {
                tracing::debug!(%role, error = %e, "interest push failed");
            }
        }
    }
}

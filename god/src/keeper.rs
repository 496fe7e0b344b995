//! Keeps every local agent role alive with the shared keeper (`zpm_host::keeper`): each is
//! launched when God starts, relaunched the moment its flock is free, with backoff only
//! while new ones die before their hello is accepted. A new spawner cleanly replaces what
//! the dead one left; the other roles resume from what they recorded.

use crate::launcher::AgentLauncher;
use crate::state::God;
use std::sync::Arc;
use zpm_host::keeper::{Keeper, Kept};
use zpm_proto::Role;

struct Agent {
    role: Role,
    god: Arc<God>,
    agents: AgentLauncher,
}

impl Kept for Agent {
    fn stopped(&self) -> bool {
        self.god.is_stopping()
    }

    fn launch(&mut self) -> Result<u32, String> {
        self.agents
            .launch(self.role.as_str())
            .map_err(|e| e.to_string())
    }

    /// Stops trusting what the dead agent reported; for the spawner, its apps are being
    /// replaced by the next one.
    async fn gone(&mut self) {
        let down = self
            .god
            .registry()
            .mark_down(self.role.as_str(), &self.god.host);
        if self.role == Role::Spawner {
            self.god.table().mark_replacing(&self.god.host);
        }
        self.god.changed();
        if let Some(hello) = down {
            self.god
                .publish(zpm_proto::topics::AGENT_DOWN, &hello)
                .await;
        }
    }
}

/// Launches every local agent role and keeps each alive until `zpm kill`.
pub fn keep_agents(god: &Arc<God>, agents: &AgentLauncher) {
    for role in Role::ALL {
        let slot = god.keeper(role);
        let keeper = Keeper {
            name: role.as_str(),
            lock: agents.home.agent_lock(role.as_str()),
            health: slot.health.clone(),
            status: slot.status.clone(),
        };
        let agent = Agent {
            role,
            god: Arc::clone(god),
            agents: agents.clone(),
        };
        tokio::spawn(async move { keeper.run(agent, true).await });
    }
}

//! Keeps this host's spawner alive with the shared keeper (`zpm_host::keeper`): launched at
//! once when God starts, relaunched the moment its flock is free, with backoff only while
//! new spawners die before their hello is accepted. A new spawner cleanly replaces what the
//! dead one left.

use crate::launcher::AgentLauncher;
use crate::state::God;
use std::sync::Arc;
use zpm_host::keeper::{Keeper, Kept};

struct Spawner {
    god: Arc<God>,
    agents: AgentLauncher,
}

impl Kept for Spawner {
    fn stopped(&self) -> bool {
        self.god.is_stopping()
    }

    fn launch(&mut self) -> Result<u32, String> {
        self.agents.launch("spawner").map_err(|e| e.to_string())
    }

    /// Stops trusting what the dead spawner reported: it is down, and its apps are being
    /// replaced by the next spawner.
    async fn gone(&mut self) {
        let down = self.god.registry().mark_down("spawner");
        self.god.table().mark_replacing();
        self.god.changed();
        if let Some(hello) = down {
            self.god
                .publish(zpm_proto::topics::AGENT_DOWN, &hello)
                .await;
        }
    }
}

/// Launches the spawner and keeps it alive until `zpm kill`.
pub async fn keep_spawner(god: Arc<God>, agents: AgentLauncher) {
    let keeper = Keeper {
        name: "spawner",
        lock: agents.home.agent_lock("spawner"),
        health: god.spawner_health.clone(),
        status: god.spawner_keeper.clone(),
    };
    keeper.run(Spawner { god, agents }, true).await;
}

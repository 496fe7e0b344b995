//! Brings God back when it dies, with the shared keeper (`zpm_host::keeper`): relaunched
//! the moment God's flock is free, with backoff only while new Gods die before accepting
//! this spawner's hello. Stops for good once God orders the agent to exit (`zpm kill`).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use zpm_host::home::Home;
use zpm_host::keeper::{Health, Keeper, KeeperStatus, Kept};
use zpm_host::launch::daemon_command;

pub struct GodKeeper {
    pub home: Home,
    /// The zpm executable, run as `zpm daemon`.
    pub exe: PathBuf,
    /// Set when God ordered this agent to exit: never relaunch after that.
    pub stopped: Arc<AtomicBool>,
    /// Told when God accepts this spawner's hello (see `link`).
    pub health: Health,
}

impl GodKeeper {
    pub async fn run(self) {
        let keeper = Keeper {
            name: "God",
            lock: self.home.god_lock(),
            health: self.health.clone(),
            status: KeeperStatus::default(),
        };
        keeper.run(self, false).await;
    }
}

impl Kept for GodKeeper {
    fn stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    /// Starts `zpm daemon` (its own session); the spawner's reaper collects it when it exits.
    fn launch(&mut self) -> Result<u32, String> {
        let spawn = || -> std::io::Result<u32> {
            let log = self.home.daemon_log();
            let mut command = daemon_command(&self.exe, &self.home, &["daemon"], &log)?;
            Ok(command.spawn()?.id())
        };
        spawn().map_err(|e| format!("launching {} daemon: {e}", self.exe.display()))
    }
}

//! Starts local agents as separate, detached processes and reaps them when they exit.

use crate::error::GodError;
use std::path::PathBuf;
use zpm_host::home::Home;
use zpm_host::launch::daemon_command;

/// Runs `<exe> agent <role>` with `ZPM_HOME` set, output to `$ZPM_HOME/agent-<role>.log`.
#[derive(Debug, Clone)]
pub struct AgentLauncher {
    pub exe: PathBuf,
    pub home: Home,
}

impl AgentLauncher {
    /// Starts `zpm agent ROLE`; returns its pid.
    pub fn launch(&self, role: &str) -> Result<u32, GodError> {
        let launch_err = |source| GodError::Launch {
            role: role.to_owned(),
            source,
        };
        let log = self.home.agent_log(role);
        let command =
            daemon_command(&self.exe, &self.home, &["agent", role], &log).map_err(launch_err)?;
        let mut child = tokio::process::Command::from(command)
            .spawn()
            .map_err(launch_err)?;
        // `None` only once reaped, which needs the wait below: 0 then reads as not alive.
        let pid = child.id().unwrap_or(0);
        tracing::info!(role, pid, "agent launched");
        let role = role.to_owned();
        tokio::spawn(async move {
            match child.wait().await {
                Ok(status) => tracing::info!(role, %status, "agent exited"),
                Err(e) => tracing::warn!(role, error = %e, "waiting for agent failed"),
            }
        });
        Ok(pid)
    }
}

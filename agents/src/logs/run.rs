//! The logs agent process: joins God, then writes app output pulled from the spawner.

use crate::agent;
use crate::link::Holdings;
use zpm_host::home::Home;
use zpm_proto::Role;

#[derive(Debug, Clone)]
pub struct LogsOptions {
    pub home: Home,
    pub host: String,
}

/// Runs the logs agent until God orders it to exit.
pub async fn run(options: LogsOptions) -> Result<(), zpm_host::LockError> {
    let mut joined = agent::join(
        &options.home,
        Role::Logs,
        &options.host,
        Holdings::default(),
    )?;
    agent::until_exit(
        &options.home,
        &mut joined.pushes,
        &joined.interest,
        |push| {
            tracing::warn!(method = %push.method, "unexpected push");
        },
    )
    .await;
    tracing::info!("logs agent exiting");
    Ok(())
}

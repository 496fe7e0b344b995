//! The metrics agent process: joins God, then samples the apps and publishes `metrics`.

use crate::agent;
use crate::link::Holdings;
use zpm_host::home::Home;
use zpm_proto::Role;

#[derive(Debug, Clone)]
pub struct MetricsOptions {
    pub home: Home,
    pub host: String,
}

/// Runs the metrics agent until God orders it to exit.
pub async fn run(options: MetricsOptions) -> Result<(), zpm_host::LockError> {
    let mut joined = agent::join(
        &options.home,
        Role::Metrics,
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
    tracing::info!("metrics agent exiting");
    Ok(())
}

//! `--update-env` on `zpm start` (existing apps), `restart` and `reload`: the CLI reads
//! each target app's environment again, since God never reads the CLI's shell or files.

use crate::ecosystem::FreshEnv;
use crate::verbs::call;
use anyhow::Context as _;
use std::collections::{BTreeMap, BTreeSet};
use zpm_proto::commands::{EnvUpdate, Target};
use zpm_proto::method::app;
use zpm_rpc::Client;

/// One [`EnvUpdate`] per app `targets` names.
pub async fn env_updates(client: &Client, targets: &Target) -> anyhow::Result<Vec<EnvUpdate>> {
    let apps = call::<app::Describe>(client, targets).await?;
    let cli_env: BTreeMap<String, String> = std::env::vars().collect();
    let cwd = std::env::current_dir().context("reading the current directory")?;
    let mut fresh = FreshEnv::new(&cli_env, &cwd);
    let mut seen = BTreeSet::new();
    let mut updates = Vec::new();
    for app in &apps {
        let spec = &app.spec;
        if !seen.insert((spec.namespace.clone(), spec.name.clone())) {
            continue;
        }
        let (env, env_explicit) = fresh.read(&spec.env_origin, &spec.name, &spec.namespace)?;
        updates.push(EnvUpdate {
            name: spec.name.clone(),
            namespace: spec.namespace.clone(),
            env,
            env_explicit,
        });
    }
    Ok(updates)
}

//! `zpm save` and `zpm resurrect`: the dump is the apps God runs, one spec per app with its
//! instance count, written atomically to `$ZPM_HOME/dump.json`.

use super::apps::start_specs;
use super::bad_params;
use crate::persist::Desired;
use crate::state::God;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use zpm_proto::commands::{SaveParams, Saved};
use zpm_proto::{AppSpec, ProcessInfo, validate};
use zpm_rpc::{Ctx, ErrorCode, NoParams, RpcError};

#[derive(Serialize, Deserialize)]
struct Dump {
    version: u32,
    apps: Vec<AppSpec>,
}

/// One spec per (name, namespace) among the apps that should run, instances counted.
fn running_specs(god: &God) -> Vec<AppSpec> {
    let table = god.table();
    let mut specs: Vec<AppSpec> = Vec::new();
    for proc in table.procs().filter(|p| p.desired == Desired::Running) {
        match specs
            .iter_mut()
            .find(|s| s.name == proc.spec.name && s.namespace == proc.spec.namespace)
        {
            Some(spec) => spec.instances += 1,
            None => specs.push(AppSpec {
                instances: 1,
                ..proc.spec.clone()
            }),
        }
    }
    specs
}

fn internal(what: &str, e: impl std::fmt::Display) -> RpcError {
    RpcError::internal(format!("{what}: {e}"))
}

/// Writes the dump. With no app running it refuses unless forced: after `zpm kill`, a save
/// would silently replace a good dump with an empty one.
pub async fn save(god: Arc<God>, params: Option<SaveParams>, _: Ctx) -> Result<Saved, RpcError> {
    let force = params.unwrap_or_default().force;
    let dump = Dump {
        version: 1,
        apps: running_specs(&god),
    };
    if dump.apps.is_empty() && !force {
        return Err(RpcError::new(
            ErrorCode::Conflict,
            format!(
                "no app is running: saving would leave an empty dump at {}; force it with `zpm save --force`",
                god.dump_file.display()
            ),
        ));
    }
    let path = god.dump_file.clone();
    let bytes = serde_json::to_vec_pretty(&dump).map_err(|e| internal("encoding dump", e))?;
    zpm_host::atomic::write(&path, &bytes)
        .map_err(|e| internal(&format!("writing {}", path.display()), e))?;
    Ok(Saved {
        path: path.display().to_string(),
        apps: dump.apps.len(),
    })
}

/// Starts every app of the dump whose name is not already taken: never a second copy.
pub async fn resurrect(god: Arc<God>, _: NoParams, ctx: Ctx) -> Result<Vec<ProcessInfo>, RpcError> {
    let path = god.dump_file.clone();
    let bytes = std::fs::read(&path).map_err(|e| {
        RpcError::new(
            ErrorCode::NotFound,
            format!(
                "no dump to resurrect from at {} ({e}); run `zpm save` first",
                path.display()
            ),
        )
    })?;
    let dump: Dump = serde_json::from_slice(&bytes).map_err(|e| {
        RpcError::new(
            ErrorCode::BadParams,
            format!("{} is not a zpm dump: {e}", path.display()),
        )
    })?;
    validate::each_app(&dump.apps)
        .map_err(|e| bad_params(e.within(&path.display().to_string())))?;
    let missing: Vec<AppSpec> = {
        let table = god.table();
        dump.apps
            .into_iter()
            .filter(|s| !table.name_taken(&s.name, &s.namespace))
            .collect()
    };
    if missing.is_empty() {
        return Ok(Vec::new());
    }
    start_specs(&god, &ctx, &missing).await
}

//! rpc params and results between the CLI, God and agents (see PROTOCOL.md).

use crate::{AgentHello, AppSpec, ProcessInfo, ProcessReport};
use serde::{Deserialize, Serialize};

/// `app.start`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartApps {
    pub apps: Vec<AppSpec>,
}

/// `app.stop`, `app.restart`, `app.delete`, `app.describe`: one or more targets, each an
/// id, a name, a namespace, or `all`. v1 peers send `target` (one); `targets` (several) was
/// added without a version bump, so a receiver takes both together.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
    /// `app.restart` (`zpm start`/`restart --with-deps`): also start the apps the targets
    /// depend on that are down, first.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub with_deps: bool,
    /// `app.restart`/`app.reload` with `--update-env`: each target app's environment read
    /// again by the CLI (one entry per app); God keeps the app's `--env-var` values on top.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub update_env: Vec<EnvUpdate>,
}

/// An app's environment as the CLI resolved it again for `--update-env`: its shell's
/// variables, then the files the app was started with, read now.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvUpdate {
    pub name: String,
    pub namespace: String,
    pub env: std::collections::BTreeMap<String, String>,
    /// The names that came from files (shown by `describe`).
    pub env_explicit: Vec<String>,
}

/// Env values may hold secrets: Debug shows only the variable names.
impl std::fmt::Debug for EnvUpdate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvUpdate")
            .field("name", &self.name)
            .field("namespace", &self.namespace)
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .field("env_explicit", &self.env_explicit)
            .finish()
    }
}

impl Target {
    /// One target as `target` (understood by every v1 God), several as `targets`.
    pub fn new(mut targets: Vec<String>) -> Self {
        if targets.len() == 1 {
            Self {
                target: targets.pop(),
                ..Self::default()
            }
        } else {
            Self {
                targets,
                ..Self::default()
            }
        }
    }

    /// Every target named, `target` first, in the order given.
    pub fn names(&self) -> Vec<&str> {
        self.target
            .iter()
            .chain(&self.targets)
            .map(String::as_str)
            .collect()
    }
}

/// `app.signal`: the targets as in [`Target`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignalApps {
    #[serde(flatten)]
    pub targets: Target,
    /// Signal name, e.g. `SIGUSR2`.
    pub signal: String,
}

/// `god.save`; absent params mean `{force: false}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaveParams {
    /// Write the dump even when no app is running (it would then be empty).
    #[serde(default)]
    pub force: bool,
}

/// Result of `god.save`: where the dump went and how many apps it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Saved {
    pub path: String,
    pub apps: usize,
}

/// `app.scale`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scale {
    pub name: String,
    pub instances: u32,
}

/// One entry of `app.describe`: the row plus the spec it runs (env values of secret-looking
/// names masked by God).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppDescription {
    pub info: ProcessInfo,
    pub spec: AppSpec,
    /// The last restarts of this instance (oldest first), with why.
    #[serde(default)]
    pub restarts: Vec<crate::RestartRecord>,
    /// Where its output is written (`out_file`, `error_file`, …), resolved.
    #[serde(default)]
    pub logs: Option<crate::logfiles::LogTarget>,
}

/// `agent.hello`: who the agent is and what it already holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub agent: AgentHello,
    pub holding: Vec<Held>,
}

/// An app instance an agent runs: enough for a God that lost its state to adopt it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Held {
    pub report: ProcessReport,
    pub instance: u32,
    pub spec: AppSpec,
}

/// `app.memory_restart`: the metrics agent saw `memory` resident bytes in app `id`'s tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryRestart {
    pub id: u32,
    pub memory: u64,
}

/// God → agent push `bus.interest`: topic prefixes with subscribers (`""` = every topic).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interest {
    pub prefixes: Vec<String>,
}

impl Interest {
    /// True if some subscriber wants events of `topic`.
    pub fn wants(&self, topic: &str) -> bool {
        self.prefixes.iter().any(|p| topic.starts_with(p.as_str()))
    }
}

/// God → spawner push `proc.spawn`: run this app instance under this id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpawnCommand {
    pub id: u32,
    pub instance: u32,
    pub spec: AppSpec,
    /// Restart count to continue from (kept across spawner replacements).
    #[serde(default)]
    pub restarts: u32,
}

/// God → spawner pushes `proc.stop`, `proc.restart`, `proc.delete`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcCommand {
    pub id: u32,
}

/// God → spawner push `proc.signal`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignalCommand {
    pub id: u32,
    pub signal: String,
}

/// `app.reload`: replace each instance of the targets by a new run, started and ready
/// before the old one stops. With `apps` (an ecosystem file), every app whose spec differs
/// from the one running is reloaded with the new spec, others untouched, new ones started.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadApps {
    #[serde(flatten)]
    pub targets: Target,
    /// Instances replaced at once; 0 means 1.
    #[serde(default)]
    pub parallel: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub apps: Vec<AppSpec>,
}

/// God → spawner push `proc.reload`: replace the run of `id` (with `spec` when it changed);
/// answered by a `proc.reloaded` notification carrying the same `token`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadCommand {
    pub id: u32,
    pub token: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<AppSpec>,
    /// Why, for the restart history (`watch`); absent: `reload`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<crate::RestartReason>,
}

/// Spawner → God notification `proc.reloaded`: how the reload of `id` ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reloaded {
    pub id: u32,
    pub token: u64,
    /// Why the replacement was given up (the old run still serves); `None`: replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `app.msg`: deliver a JSON value to each target's Node IPC channel
/// (`process.on('message')`), like PM2's `sendDataToProcessId`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MsgApps {
    #[serde(flatten)]
    pub targets: Target,
    /// The value, as JSON text.
    pub json: String,
}

/// `app.send`: write a line to each target's stdin, like `pm2 send`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendLine {
    #[serde(flatten)]
    pub targets: Target,
    pub line: String,
}

/// God → spawner pushes `proc.msg` (JSON for the IPC channel) and `proc.stdin` (a line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcInput {
    pub id: u32,
    pub text: String,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::collections::BTreeMap;

    fn decode<T: serde::de::DeserializeOwned>(map: &BTreeMap<&str, Vec<&str>>) -> T {
        rmp_serde::from_slice(&rmp_serde::to_vec_named(map).unwrap()).unwrap()
    }

    #[test]
    fn target_and_targets_are_taken_together() {
        let one: Target = rmp_serde::from_slice(
            &rmp_serde::to_vec_named(&Target::new(vec!["a".into()])).unwrap(),
        )
        .unwrap();
        assert_eq!(one.names(), vec!["a"]);
        let many: Target = decode(&BTreeMap::from([("targets", vec!["b", "3"])]));
        assert_eq!(many.names(), vec!["b", "3"]);
        let v1 = rmp_serde::to_vec_named(&BTreeMap::from([("target", "api")])).unwrap();
        assert_eq!(
            rmp_serde::from_slice::<Target>(&v1).unwrap().names(),
            vec!["api"]
        );
    }

    #[test]
    fn signal_params_keep_the_v1_shape() {
        let params = SignalApps {
            targets: Target::new(vec!["api".into()]),
            signal: "SIGUSR2".into(),
        };
        let bytes = rmp_serde::to_vec_named(&params).unwrap();
        let v1 =
            rmp_serde::to_vec_named(&BTreeMap::from([("target", "api"), ("signal", "SIGUSR2")]))
                .unwrap();
        let as_map: BTreeMap<String, String> = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(as_map.len(), 2, "only target and signal: {as_map:?}");
        assert_eq!(as_map["target"], "api");
        assert_eq!(rmp_serde::from_slice::<SignalApps>(&v1).unwrap(), params);
    }
}

/// `app.list`'s optional filter (nil or `{}`: every app).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListFilter {
    /// Only the apps on this host (a host's metrics agent lists its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// `app.watch`: turn file watching of the targets on or off (`zpm watch` / `zpm unwatch`),
/// without restarting them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchApps {
    #[serde(flatten)]
    pub targets: Target,
    pub enabled: bool,
}

/// God → spawner push `proc.watch`: the instance's `watch` settings are now these.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchCommand {
    pub id: u32,
    pub watch: crate::watch::Watch,
}

/// Spawner → God notification `proc.changed`: files under a watched path of `id` changed
/// (one debounced burst); God reloads the app (ready-gated apps only, see DESIGN.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Changed {
    pub id: u32,
    /// One path that changed.
    pub path: String,
}

use crate::depends::Dependency;
use crate::health::Health;
use crate::ready::{ExecMode, Readiness};
use crate::watch::Watch;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Everything needed to run one app, resolved by the CLI (paths, interpreter, env) so that
/// God and the spawner never look at the CLI's machine state. Sent in `app.start`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppSpec {
    pub name: String,
    pub namespace: String,
    /// Program and arguments; `argv[0]` is an absolute path or a name looked up on PATH.
    pub argv: Vec<String>,
    /// Absolute working directory.
    pub cwd: String,
    /// The complete environment of the child (CLI env, then file env, then `--env` pairs).
    /// `ZPM_ID`, `ZPM_NAME`, `ZPM_INSTANCE` are added by the spawner.
    pub env: BTreeMap<String, String>,
    /// Names of env variables that came from the file or the command line (shown by
    /// `describe`, values of secret-looking ones masked); the rest were inherited.
    pub env_explicit: Vec<String>,
    pub instances: u32,
    pub autorestart: bool,
    /// Consecutive unstable restarts before the app is `errored`.
    pub max_restarts: u32,
    /// A run shorter than this is unstable.
    pub min_uptime_ms: u64,
    pub restart_delay_ms: u64,
    /// 0 = off; otherwise the first backoff delay, ×1.5 per unstable restart up to 15 s.
    pub exp_backoff_restart_delay_ms: u64,
    /// Exit codes that mean "done": no restart.
    pub stop_exit_codes: Vec<i32>,
    pub kill_timeout_ms: u64,
    /// Signal name sent first on stop, e.g. `SIGTERM`.
    pub kill_signal: String,
    /// Restart the app when its process tree holds more resident bytes than this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_memory_restart: Option<u64>,
    /// Where and how its output is written (defaults when unset).
    #[serde(default, skip_serializing_if = "crate::logfiles::AppLogs::is_default")]
    pub logs: crate::logfiles::AppLogs,
    /// The hosts its instances run on, instance `i` on `hosts[i % len]`; empty = God's
    /// own host.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// Sockets the spawner binds once and hands to every instance with systemd's socket
    /// activation protocol; each a [`crate::ListenAddr`] (`8000`, `127.0.0.1:8000`,
    /// `unix:/path`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub listen: Vec<String>,
    #[serde(default, skip_serializing_if = "ExecMode::is_fork")]
    pub exec_mode: ExecMode,
    /// When an instance counts as ready (`launching` until then).
    #[serde(default, skip_serializing_if = "Readiness::is_default")]
    pub ready: Readiness,
    /// The variable holding the instance number (PM2's `instance_var`); unset:
    /// `NODE_APP_INSTANCE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_var: Option<String>,
    /// A numeric env variable each instance gets plus its number (PM2's `increment_var`:
    /// `PORT=3000` → 3000, 3001, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub increment_var: Option<String>,
    /// Liveness checks while it runs.
    #[serde(default, skip_serializing_if = "Health::is_default")]
    pub health: Health,
    /// Restart on this cron schedule (5 or 6 fields, the app's `TZ` or the host's local
    /// time); with `autorestart: false`, a job run at each tick.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron_restart: Option<String>,
    /// Apps of the same namespace this one starts after (and stops before).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<Dependency>,
    /// How long it waits for its dependencies; unset: [`crate::depends::DEFAULT_TIMEOUT_MS`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depends_timeout_ms: Option<u64>,
    /// Restart on file changes.
    #[serde(default, skip_serializing_if = "Watch::is_default")]
    pub watch: Watch,
    /// Where its environment came from, so `--update-env` can read it again.
    #[serde(default, skip_serializing_if = "EnvOrigin::is_empty")]
    pub env_origin: EnvOrigin,
}

/// The sources of an app's `env` besides the CLI's environment (which is read again from
/// the shell running `--update-env`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvOrigin {
    /// The ecosystem file it was started from (absolute).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// `--env NAME`: the `env_NAME` block used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_name: Option<String>,
    /// `--env-file` files given on the command line (absolute), read after the file's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_files: Vec<String>,
    /// `--env-var` names, kept with their values on `--update-env` (they win over files).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<String>,
}

impl EnvOrigin {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

impl AppSpec {
    pub const DEFAULT_MAX_RESTARTS: u32 = 16;
    pub const DEFAULT_MIN_UPTIME_MS: u64 = 1000;
    pub const DEFAULT_KILL_TIMEOUT_MS: u64 = 1600;
    pub const DEFAULT_NAMESPACE: &'static str = "default";
    pub const DEFAULT_KILL_SIGNAL: &'static str = "SIGTERM";

    /// A spec with PM2's defaults for everything but what identifies the app.
    pub fn new(name: impl Into<String>, argv: Vec<String>, cwd: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            namespace: Self::DEFAULT_NAMESPACE.into(),
            argv,
            cwd: cwd.into(),
            env: BTreeMap::new(),
            env_explicit: Vec::new(),
            instances: 1,
            autorestart: true,
            max_restarts: Self::DEFAULT_MAX_RESTARTS,
            min_uptime_ms: Self::DEFAULT_MIN_UPTIME_MS,
            restart_delay_ms: 0,
            exp_backoff_restart_delay_ms: 0,
            stop_exit_codes: Vec::new(),
            kill_timeout_ms: Self::DEFAULT_KILL_TIMEOUT_MS,
            kill_signal: Self::DEFAULT_KILL_SIGNAL.into(),
            max_memory_restart: None,
            logs: crate::logfiles::AppLogs::default(),
            hosts: Vec::new(),
            listen: Vec::new(),
            exec_mode: ExecMode::Fork,
            ready: Readiness::default(),
            instance_var: None,
            increment_var: None,
            health: Health::default(),
            cron_restart: None,
            depends_on: Vec::new(),
            depends_timeout_ms: None,
            watch: Watch::default(),
            env_origin: EnvOrigin::default(),
        }
    }

    /// The listen addresses, parsed (each was validated when the app was started).
    pub fn listen_addrs(&self) -> Vec<crate::ListenAddr> {
        self.listen.iter().filter_map(|a| a.parse().ok()).collect()
    }

    /// True if two runs of the app can serve side by side, so a reload overlaps them: its
    /// sockets are the spawner's (`listen`), or Node's cluster module holds them. A program
    /// that binds its own port cannot be overlapped (the second bind fails), so a reload of
    /// it is a restart gated on readiness.
    pub fn reload_overlaps(&self) -> bool {
        !self.listen.is_empty() || (runs_node(&self.argv) && self.exec_mode == ExecMode::Cluster)
    }

    /// The host instance `instance` runs on; `default` (God's host) when none is named.
    pub fn host_of(&self, instance: u32, default: &str) -> String {
        let n = self.hosts.len();
        match usize::try_from(instance) {
            Ok(i) if n > 0 => self.hosts[i % n].clone(),
            _ => default.to_owned(),
        }
    }
}

/// True if `argv` runs Node (`node` or `nodejs`, by file name).
pub fn runs_node(argv: &[String]) -> bool {
    argv.first()
        .and_then(|program| std::path::Path::new(program).file_name())
        .is_some_and(|name| name == "node" || name == "nodejs")
}

/// Env values may hold secrets: Debug shows only the variable names.
impl std::fmt::Debug for AppSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppSpec")
            .field("name", &self.name)
            .field("namespace", &self.namespace)
            .field("argv", &self.argv)
            .field("cwd", &self.cwd)
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .field("env_explicit", &self.env_explicit)
            .field("instances", &self.instances)
            .field("autorestart", &self.autorestart)
            .field("max_restarts", &self.max_restarts)
            .field("min_uptime_ms", &self.min_uptime_ms)
            .field("restart_delay_ms", &self.restart_delay_ms)
            .field(
                "exp_backoff_restart_delay_ms",
                &self.exp_backoff_restart_delay_ms,
            )
            .field("stop_exit_codes", &self.stop_exit_codes)
            .field("kill_timeout_ms", &self.kill_timeout_ms)
            .field("kill_signal", &self.kill_signal)
            .field("max_memory_restart", &self.max_memory_restart)
            .field("logs", &self.logs)
            .field("hosts", &self.hosts)
            .field("listen", &self.listen)
            .field("exec_mode", &self.exec_mode)
            .field("ready", &self.ready)
            .field("instance_var", &self.instance_var)
            .field("increment_var", &self.increment_var)
            .field("health", &self.health)
            .field("cron_restart", &self.cron_restart)
            .field("depends_on", &self.depends_on)
            .field("depends_timeout_ms", &self.depends_timeout_ms)
            .field("watch", &self.watch)
            .field("env_origin", &self.env_origin)
            .finish()
    }
}

//! An app before resolution: what the file or the command line said, command-line options
//! on top; `finish` turns it into an `AppSpec` (program, cwd, env, validation).

use super::{LogDraft, ServingDraft, StartOptions, WatchDraft, env_file, program, validate};
use anyhow::anyhow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use zpm_proto::ready::ExecMode;
use zpm_proto::{AppSpec, EnvOrigin};

#[derive(Debug, Default)]
pub(super) struct Draft {
    /// Prefix of error messages and warnings, e.g. `ecosystem.json: app "api"`;
    /// `None` for a command-line target.
    pub context: Option<String>,
    pub name: Option<String>,
    pub script: String,
    /// Directories where a relative `script` is looked for, in order.
    pub script_bases: Vec<PathBuf>,
    pub args: Vec<String>,
    pub interpreter: Option<String>,
    pub interpreter_args: Vec<String>,
    /// Absolute, not yet checked.
    pub cwd: PathBuf,
    /// Only the explicit variables (file, env block, `--env-var`).
    pub env: BTreeMap<String, String>,
    /// Absolute paths of dotenv files (`env_file`, then `--env-file`), below `env`.
    pub env_files: Vec<PathBuf>,
    /// 0 = one per CPU.
    pub instances: Option<u32>,
    pub autorestart: Option<bool>,
    pub max_restarts: Option<u32>,
    pub min_uptime_ms: Option<u64>,
    pub restart_delay_ms: Option<u64>,
    pub exp_backoff_restart_delay_ms: Option<u64>,
    pub kill_timeout_ms: Option<u64>,
    pub max_memory_restart: Option<u64>,
    /// `host:` / `--host`; empty = God's own host.
    pub hosts: Vec<String>,
    pub stop_exit_codes: Option<Vec<i32>>,
    pub kill_signal: Option<String>,
    pub namespace: Option<String>,
    pub logs: LogDraft,
    pub serving: ServingDraft,
    pub watch: WatchDraft,
    /// `-i` was given for this command-line target: a Node script then runs in cluster
    /// mode unless `exec_mode` says otherwise, as in PM2 (never for an ecosystem file's
    /// apps, whose mode is only their `exec_mode` key).
    pub cluster_if_node: bool,
    pub depends_on: Vec<zpm_proto::depends::Dependency>,
    pub depends_timeout_ms: Option<u64>,
    /// The ecosystem file it comes from (canonical), for `--update-env`.
    pub origin_file: Option<PathBuf>,
    /// What `--update-env` must read again or keep: `--env`, `--env-file`s, `--env-var`
    /// names.
    pub cli_env_name: Option<String>,
    pub cli_env_files: Vec<PathBuf>,
    pub cli_env_var_names: Vec<String>,
}

impl Draft {
    /// A script, executable or command given on the command line.
    pub fn from_target(target: &str, options: &StartOptions, cli_cwd: &Path) -> Self {
        let mut draft = Self {
            script: target.to_owned(),
            script_bases: vec![cli_cwd.to_path_buf()],
            cwd: cli_cwd.to_path_buf(),
            ..Self::default()
        };
        draft.apply_options(options, cli_cwd, true);
        draft.cluster_if_node = options.instances.is_some();
        if draft.cwd != cli_cwd {
            draft.script_bases.push(draft.cwd.clone());
        }
        draft
    }

    /// Command-line options win over the file; `--name` only when `with_name`.
    pub fn apply_options(&mut self, options: &StartOptions, cli_cwd: &Path, with_name: bool) {
        if with_name && options.name.is_some() {
            self.name.clone_from(&options.name);
        }
        if let Some(cwd) = &options.cwd {
            self.cwd = cli_cwd.join(cwd);
        }
        if options.interpreter.is_some() {
            self.interpreter.clone_from(&options.interpreter);
        }
        if options.namespace.is_some() {
            self.namespace.clone_from(&options.namespace);
        }
        if options.no_autorestart {
            self.autorestart = Some(false);
        }
        self.instances = options.instances.or(self.instances);
        self.max_restarts = options.max_restarts.or(self.max_restarts);
        self.min_uptime_ms = options.min_uptime_ms.or(self.min_uptime_ms);
        self.restart_delay_ms = options.restart_delay_ms.or(self.restart_delay_ms);
        self.kill_timeout_ms = options.kill_timeout_ms.or(self.kill_timeout_ms);
        self.max_memory_restart = options.max_memory_restart.or(self.max_memory_restart);
        if !options.hosts.is_empty() {
            self.hosts.clone_from(&options.hosts);
        }
        self.exp_backoff_restart_delay_ms = options
            .exp_backoff_restart_delay_ms
            .or(self.exp_backoff_restart_delay_ms);
        self.env.extend(options.env_vars.iter().cloned());
        self.cli_env_var_names = options.env_vars.iter().map(|(k, _)| k.clone()).collect();
        self.cli_env_files = options.env_files.iter().map(|p| cli_cwd.join(p)).collect();
        self.env_files.extend(self.cli_env_files.iter().cloned());
        self.cli_env_name.clone_from(&options.env_name);
        if !options.args.is_empty() {
            self.args.clone_from(&options.args);
        }
        self.logs.overlay(&options.logs);
        self.serving.overlay(&options.serving);
        self.watch.overlay(&options.watch);
    }

    /// The final spec; errors and warnings carry the draft's context.
    pub fn finish(
        self,
        cli_env: &BTreeMap<String, String>,
        warnings: &mut Vec<String>,
    ) -> anyhow::Result<AppSpec> {
        let mut own_warnings = Vec::new();
        let result = self.build(cli_env, &mut own_warnings);
        let prefix = |text: String| match &self.context {
            Some(context) => format!("{context}: {text}"),
            None => text,
        };
        warnings.extend(own_warnings.into_iter().map(prefix));
        result.map_err(|e| anyhow!(prefix(format!("{e:#}"))))
    }

    fn build(
        &self,
        cli_env: &BTreeMap<String, String>,
        warnings: &mut Vec<String>,
    ) -> anyhow::Result<AppSpec> {
        let cwd = validate::directory(&self.cwd)?;
        let program = program::resolve(self, cli_env.get("PATH").map(String::as_str), warnings)?;
        let inferred = if self.cluster_if_node && program.node {
            ExecMode::Cluster
        } else {
            ExecMode::Fork
        };
        let name = self.name.clone().unwrap_or(program.default_name);
        validate::name(&name)?;
        let mut spec = AppSpec::new(name, program.argv, cwd);
        let mut explicit = env_file::read_all(&self.env_files)?;
        explicit.extend(self.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        spec.env_explicit = explicit.keys().cloned().collect();
        spec.env = cli_env.clone();
        spec.env.extend(explicit);
        spec.env_origin = self.env_origin();
        spec.depends_on.clone_from(&self.depends_on);
        spec.depends_timeout_ms = self.depends_timeout_ms;
        spec.instances = validate::instances(self.instances);
        if let Some(namespace) = &self.namespace {
            validate::namespace(namespace)?;
            spec.namespace.clone_from(namespace);
        }
        if let Some(signal) = &self.kill_signal {
            spec.kill_signal = validate::signal(signal)?;
        }
        self.copy_restart_policy(&mut spec);
        spec.logs = self.logs.resolve(&spec.cwd)?;
        self.serving.resolve(&mut spec, inferred)?;
        self.watch.resolve(&mut spec)?;
        warnings.extend(self.serving.unused_health_settings());
        validate::spec(&spec)?;
        Ok(spec)
    }

    fn env_origin(&self) -> EnvOrigin {
        let text = |path: &PathBuf| path.display().to_string();
        let mut overrides = self.cli_env_var_names.clone();
        overrides.sort();
        overrides.dedup();
        EnvOrigin {
            file: self.origin_file.as_ref().map(text),
            env_name: self
                .cli_env_name
                .clone()
                .filter(|_| self.origin_file.is_some()),
            env_files: self.cli_env_files.iter().map(text).collect(),
            overrides,
        }
    }

    fn copy_restart_policy(&self, spec: &mut AppSpec) {
        spec.autorestart = self.autorestart.unwrap_or(spec.autorestart);
        spec.max_restarts = self.max_restarts.unwrap_or(spec.max_restarts);
        spec.min_uptime_ms = self.min_uptime_ms.unwrap_or(spec.min_uptime_ms);
        spec.restart_delay_ms = self.restart_delay_ms.unwrap_or(spec.restart_delay_ms);
        spec.exp_backoff_restart_delay_ms = self
            .exp_backoff_restart_delay_ms
            .unwrap_or(spec.exp_backoff_restart_delay_ms);
        spec.kill_timeout_ms = self.kill_timeout_ms.unwrap_or(spec.kill_timeout_ms);
        spec.max_memory_restart = self.max_memory_restart.or(spec.max_memory_restart);
        spec.hosts.clone_from(&self.hosts);
        if let Some(codes) = &self.stop_exit_codes {
            spec.stop_exit_codes.clone_from(codes);
        }
    }

    /// The error when `script` is neither a file nor a command.
    pub fn not_found(&self) -> String {
        let script = &self.script;
        if self.context.is_none() {
            return format!(
                "{script:?} is not a file, an ecosystem file, an app, or a command on PATH"
            );
        }
        let bases: Vec<String> = self
            .script_bases
            .iter()
            .map(|b| b.display().to_string())
            .collect();
        format!(
            "script {script:?} is not a file (looked in {}) or a command on PATH",
            bases.join(", ")
        )
    }
}

//! The command-line grammar (clap). Verbs and options mirror PM2's.

use crate::ecosystem::{parse_duration_ms, parse_env_pair};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "zpm",
    version,
    about = "A process manager built as a message-bus framework"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Start a script, an executable, a command, or every app of an ecosystem file; or
    /// start again (restart) existing apps named by id, name or namespace.
    Start(Box<StartArgs>),
    /// Stop apps (ids, names, namespaces or `all`).
    Stop(TargetArgs),
    /// Restart apps (ids, names, namespaces or `all`).
    Restart(TargetArgs),
    /// Zero the restart counters of apps (ids, names, namespaces or `all`), like `pm2 reset`.
    Reset(TargetArgs),
    /// Stop and forget apps (ids, names, namespaces or `all`).
    #[command(visible_alias = "del")]
    Delete(TargetArgs),
    /// List apps.
    #[command(visible_aliases = ["list", "status"])]
    Ls(JsonArg),
    /// Show everything about apps.
    Describe(TargetArgs),
    /// Send a signal to apps, e.g. `zpm signal SIGUSR2 api`.
    Signal {
        signal: String,
        /// App ids, names, namespaces or `all`.
        #[arg(required = true, value_name = "TARGET")]
        target: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// Run N instances of an app.
    Scale {
        name: String,
        instances: u32,
        #[arg(long)]
        json: bool,
    },
    /// Check that the daemon answers (starting it if needed).
    Ping(JsonArg),
    /// Stop every app, every agent and the daemon.
    Kill,
    /// Save the running apps to `$ZPM_HOME/dump.json` for `zpm resurrect`.
    Save(SaveArgs),
    /// Start the apps of the last `zpm save` that are not running.
    Resurrect(JsonArg),
    /// Print (or, as root, install) a systemd unit that runs `zpm resurrect` at boot.
    Startup {
        /// Write the unit to /etc/systemd/system and enable it (needs root).
        #[arg(long)]
        install: bool,
    },
    /// List the agents connected to the daemon.
    Agents(JsonArg),
    /// Print bus events as they come (all, or those whose topic starts with a PREFIX),
    /// e.g. `zpm events process:`; Ctrl-C to stop.
    Events {
        #[arg(value_name = "PREFIX")]
        prefixes: Vec<String>,
        /// One JSON object per event.
        #[arg(long)]
        json: bool,
    },
    /// A live dashboard of apps: cpu, memory, logs; ↑/↓ select, r restart, s stop, q quit.
    Monit,
    /// Print the effective configuration: `$ZPM_HOME/config.toml` over the defaults.
    Config(JsonArg),
    /// Print the zpm and protocol versions.
    Version(JsonArg),
    /// Print a shell completion script.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Run the daemon (God) in the foreground; the CLI starts it by itself.
    #[command(hide = true)]
    Daemon,
    /// Run a local agent; God starts them by itself.
    #[command(hide = true)]
    Agent { role: String },
}

#[derive(Args, Debug)]
pub struct JsonArg {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct SaveArgs {
    /// Save even when no app is running (the dump is then empty).
    #[arg(long)]
    pub force: bool,
    /// Print JSON (`{path, apps}`) instead of a sentence.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct TargetArgs {
    /// App ids, app names, namespaces, or `all`.
    #[arg(required = true, value_name = "TARGET")]
    pub target: Vec<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct StartArgs {
    /// Script, executable, command (quoted, with spaces), or ecosystem file (.json, .yaml,
    /// .toml, .config.js); or existing apps (ids, names, namespaces) to start again.
    #[arg(required = true, value_name = "TARGET")]
    pub target: Vec<String>,
    /// App name (default: the script's name).
    #[arg(long)]
    pub name: Option<String>,
    /// Number of instances, or `max` for one per CPU.
    #[arg(short = 'i', long)]
    pub instances: Option<String>,
    /// Working directory of the app (default: the current directory).
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    #[arg(long)]
    pub namespace: Option<String>,
    /// Do not restart the app when it exits.
    #[arg(long)]
    pub no_autorestart: bool,
    /// Consecutive unstable restarts before the app is marked errored (default 16).
    #[arg(long)]
    pub max_restarts: Option<u32>,
    /// A run shorter than this is unstable (ms, or e.g. `1s`; default 1000).
    #[arg(long, value_parser = parse_duration_ms)]
    pub min_uptime: Option<u64>,
    /// Wait this long before restarting (ms or e.g. `2s`).
    #[arg(long, value_parser = parse_duration_ms)]
    pub restart_delay: Option<u64>,
    /// Time between the stop signal and SIGKILL (ms or e.g. `3s`; default 1600).
    #[arg(long, value_parser = parse_duration_ms)]
    pub kill_timeout: Option<u64>,
    /// Restart the app when its processes hold more memory than this (e.g. `200M`; K, M,
    /// G are powers of 1024 as in PM2).
    #[arg(long, value_parser = zpm_host::config::parse_size, value_name = "SIZE")]
    pub max_memory_restart: Option<u64>,
    /// Exponential backoff between unstable restarts, starting at this delay.
    #[arg(long, value_parser = parse_duration_ms)]
    pub exp_backoff_restart_delay: Option<u64>,
    /// Program that runs the script (e.g. `python3`); `none` runs it directly.
    #[arg(long)]
    pub interpreter: Option<String>,
    /// Set one environment variable for the app: KEY=VALUE (repeatable).
    #[arg(long = "env-var", value_name = "KEY=VALUE", value_parser = parse_env_pair)]
    pub env_vars: Vec<(String, String)>,
    /// Read environment variables for the app from a dotenv file (repeatable; relative to
    /// the current directory). `env`, `env_<NAME>` and `--env-var` win over it.
    #[arg(long = "env-file", value_name = "PATH")]
    pub env_files: Vec<PathBuf>,
    /// Use the `env_<NAME>` block of the ecosystem file, as in PM2.
    #[arg(long = "env", value_name = "NAME")]
    pub env_name: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Arguments for the app.
    #[arg(last = true)]
    pub args: Vec<String>,
}

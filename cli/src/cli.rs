//! The command-line grammar (clap). Verbs and options mirror PM2's.

use crate::ecosystem::{parse_duration_ms, parse_env_pair, parse_seconds_ms};
use clap::builder::NonEmptyStringValueParser;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use zpm_proto::ready::ExecMode;

#[derive(Parser, Debug)]
#[command(
    name = "zpm",
    version,
    about = "A process manager built as a message-bus framework"
)]
pub struct Cli {
    #[command(flatten)]
    pub remote: RemoteArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Talking to a God on another host, through the keyed tunnel.
#[derive(Args, Debug, Clone, Default)]
pub struct RemoteArgs {
    /// Talk to the God serving tcp://HOST:PORT (`zpm daemon --listen`) instead of this
    /// host's.
    #[arg(
        long,
        global = true,
        env = "ZPM_CONNECT",
        value_name = "tcp://HOST:PORT"
    )]
    pub connect: Option<String>,
    /// The tunnel's pre-shared key [default: $ZPM_HOME/key].
    #[arg(long, global = true, env = "ZPM_KEY_FILE", value_name = "FILE")]
    pub key_file: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Start a script, an executable, a command, or every app of an ecosystem file; or
    /// start again (restart) existing apps named by id, name or namespace.
    Start(Box<StartArgs>),
    /// Stop apps (ids, names, namespaces or `all`).
    Stop(TargetArgs),
    /// Restart apps (ids, names, namespaces or `all`), dependencies first.
    Restart(RestartArgs),
    /// Replace each instance of apps (ids, names, namespaces or `all`) by a new run that is
    /// started and ready before the old one stops; or, given an ecosystem file, reload the
    /// apps whose settings changed, start the new ones and leave the others alone.
    Reload(ReloadArgs),
    /// Make an ecosystem file the truth: print the plan (apps to start, reload, restart,
    /// scale, and with --prune delete, with the settings that changed), then carry it out.
    Apply(ApplyArgs),
    /// Zero the restart counters of apps (ids, names, namespaces or `all`), like `pm2 reset`.
    Reset(TargetArgs),
    /// Restart apps (ids, names, namespaces or `all`) when their files change, from now on
    /// (their `watch` paths, else their cwd); the apps keep running.
    Watch(TargetArgs),
    /// Stop watching apps' files; the apps keep running.
    Unwatch(TargetArgs),
    /// Stop and forget apps (ids, names, namespaces or `all`).
    #[command(visible_alias = "del")]
    Delete(TargetArgs),
    /// List apps.
    #[command(visible_aliases = ["list", "status"])]
    Ls(JsonArg),
    /// Show everything about apps.
    Describe(TargetArgs),
    /// Print the last lines of apps' output (all apps without a target), then new lines
    /// as they come; Ctrl-C to stop.
    Logs(LogsArgs),
    /// Empty apps' log files (every app's without a target).
    Flush(FlushArgs),
    /// Reopen every log file, e.g. after an external logrotate moved them.
    ReloadLogs(JsonArg),
    /// Send a signal to apps, e.g. `zpm signal SIGUSR2 api`.
    Signal {
        signal: String,
        /// App ids, names, namespaces or `all`.
        #[arg(required = true, value_name = "TARGET")]
        target: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// Send a JSON value to apps' Node IPC channel (`process.on('message')`), e.g.
    /// `zpm msg api '{"cache":"flush"}'`.
    Msg {
        /// An app id, name, namespace or `all`.
        target: String,
        /// The value, as JSON text (sent as written).
        #[arg(value_name = "JSON", allow_hyphen_values = true)]
        message: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Write a line to apps' stdin, like `pm2 send`: the words joined by one space.
    Send {
        /// An app id, name, namespace or `all`.
        target: String,
        /// The line; everything after TARGET is part of it.
        #[arg(
            required = true,
            value_name = "LINE",
            trailing_var_arg = true,
            allow_hyphen_values = true
        )]
        words: Vec<String>,
        /// Print JSON instead of a table (put it before TARGET).
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
    /// Write a new pre-shared key for the tunnel between hosts (mode 0600); never
    /// overwrites one.
    Keygen {
        /// Where to write it [default: $ZPM_HOME/key].
        #[arg(long, value_name = "FILE")]
        out: Option<std::path::PathBuf>,
    },
    /// Print a shell completion script.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Run the daemon (God) in the foreground; the CLI starts it by itself.
    Daemon {
        /// Also serve other hosts on tcp://ADDR:PORT, through the keyed tunnel (default:
        /// `listen` in config.toml; unset = this host only).
        /// The key is `--key-file`, else `key_file` in config.toml, else $ZPM_HOME/key.
        #[arg(long, value_name = "tcp://ADDR:PORT")]
        listen: Option<String>,
    },
    /// Expose a remote God (`--connect`, `--key-file`) in a local directory, as
    /// DIR/rpc.sock and DIR/bus.sock (the names they have in $ZPM_HOME), for programs that
    /// speak zpm's protocol but not its tunnel; Ctrl-C to stop.
    Tunnel {
        /// ipc://DIR (or DIR): created 0700 if missing.
        #[arg(long, value_name = "ipc://DIR")]
        local: String,
    },
    /// Run this host's agents for the God at --connect: `zpm agent all --connect
    /// tcp://GOD:PORT --key-file K --host NAME` (in the foreground; Ctrl-C stops them and
    /// their apps). Without --connect, one local agent (God starts those by itself).
    Agent {
        /// spawner, logs, metrics, or all (with --connect).
        role: String,
        /// The name this host's apps are placed by (`zpm start --host NAME`)
        /// [default: the machine's host name].
        #[arg(long)]
        host: Option<String>,
    },
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
pub struct RestartArgs {
    #[command(flatten)]
    pub targets: TargetArgs,
    #[command(flatten)]
    pub env: RerunArgs,
}

/// What `zpm start` of existing apps and `zpm restart`/`reload` may do besides.
#[derive(Args, Debug, Clone, Copy)]
pub struct RerunArgs {
    /// Also start the apps they depend on (depends_on) that are stopped, first.
    #[arg(long)]
    pub with_deps: bool,
    /// Read the environment again (this shell's, then the app's env files and ecosystem
    /// file); without it an app keeps the environment it was started with.
    #[arg(long)]
    pub update_env: bool,
}

#[derive(Args, Debug)]
pub struct ReloadArgs {
    /// App ids, app names, namespaces or `all`; or one ecosystem file.
    #[arg(required = true, value_name = "TARGET")]
    pub target: Vec<String>,
    /// How many instances of an app are replaced at once.
    #[arg(long, default_value_t = 1, value_name = "N",
          value_parser = clap::value_parser!(u32)
              .range(1..=i64::from(zpm_proto::validate::MAX_INSTANCES)))]
    pub parallel: u32,
    /// With an ecosystem file: use its `env_<NAME>` block, as `zpm start` does.
    #[arg(long = "env", value_name = "NAME")]
    pub env_name: Option<String>,
    /// Read the environment again (this shell's, then the app's env files and ecosystem
    /// file); without it an app keeps the environment it was started with.
    #[arg(long)]
    pub update_env: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
#[allow(clippy::struct_excessive_bools)] // independent switches
pub struct ApplyArgs {
    /// The ecosystem file (read as `zpm start FILE` reads it).
    pub file: String,
    /// Only print the plan; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Also delete the apps of the file's namespaces that the file does not name.
    #[arg(long)]
    pub prune: bool,
    /// Use the file's `env_<NAME>` block, as `zpm start` does.
    #[arg(long = "env", value_name = "NAME")]
    pub env_name: Option<String>,
    /// Print the plan (and the apps' rows) as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
#[allow(clippy::struct_excessive_bools)] // PM2's flags, each a switch
pub struct LogsArgs {
    /// App ids, app names, namespaces or `all` (default: every app).
    #[arg(value_name = "TARGET")]
    pub target: Vec<String>,
    /// How many of the last lines of each file to print first.
    #[arg(long, default_value_t = 15, value_name = "N",
          value_parser = clap::value_parser!(u32).range(0..=10_000))]
    pub lines: u32,
    /// Print the last lines and exit, without following.
    #[arg(long)]
    pub nostream: bool,
    /// Only stdout.
    #[arg(long, conflicts_with = "err")]
    pub out: bool,
    /// Only stderr.
    #[arg(long)]
    pub err: bool,
    /// Lines only, without the `ID|NAME |` prefix and headers.
    #[arg(long, conflicts_with = "json")]
    pub raw: bool,
    /// One JSON object per line: {id, name, stream, message, message_b64?, timestamp?}.
    #[arg(long)]
    pub json: bool,
    /// Prefix each line with the time it was received (strftime FORMAT, default ISO 8601).
    #[arg(long, value_name = "FORMAT", num_args = 0..=1, require_equals = true,
          default_missing_value = zpm_proto::logfiles::TIME_FORMAT)]
    pub timestamp: Option<String>,
}

impl LogsArgs {
    /// `--out` / `--err`: one stream; neither: both.
    pub fn stream(&self) -> Option<zpm_proto::LogStream> {
        match (self.out, self.err) {
            (true, _) => Some(zpm_proto::LogStream::Out),
            (_, true) => Some(zpm_proto::LogStream::Err),
            _ => None,
        }
    }
}

#[derive(Args, Debug)]
pub struct FlushArgs {
    /// App ids, app names, namespaces or `all` (default: every app).
    #[arg(value_name = "TARGET")]
    pub target: Vec<String>,
    /// Print JSON (`{ids, files}`) instead of sentences.
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
    /// Run on these hosts (`zpm agents` lists them); with -i N, instance i goes to the
    /// i-th host, round robin [default: God's own host].
    #[arg(long = "host", value_name = "HOST[,HOST…]", value_delimiter = ',')]
    pub hosts: Vec<String>,
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
    #[command(flatten)]
    pub logs: LogArgs,
    #[command(flatten)]
    pub serving: ServingArgs,
    /// For existing apps only.
    #[command(flatten)]
    pub rerun: RerunArgs,
    #[command(flatten)]
    pub watch: WatchArgs,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Arguments for the app.
    #[arg(last = true)]
    pub args: Vec<String>,
}

/// PM2's log options of `zpm start`. Relative paths are relative to the app's cwd.
#[derive(Args, Debug, Default)]
pub struct LogArgs {
    /// Write the app's stdout to FILE (default `$ZPM_HOME/logs/NAME-out.log`;
    /// `/dev/null` discards it).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<String>,
    /// Write the app's stderr to FILE (default `$ZPM_HOME/logs/NAME-error.log`).
    #[arg(short = 'e', long = "error", value_name = "FILE")]
    pub error: Option<String>,
    /// Also write stdout and stderr, line by line, to one file: FILE, or without a value
    /// `$ZPM_HOME/logs/NAME.log` (put `--log` after the script, or write `--log=FILE`).
    #[arg(short = 'l', long = "log", value_name = "FILE", num_args = 0..=1, default_missing_value = "")]
    pub log: Option<String>,
    /// Every instance writes the same files (no `-ID` suffix with several instances).
    #[arg(long)]
    pub merge_logs: bool,
    /// Prefix each line with its time (`log_date_format`, or ISO 8601 with milliseconds).
    #[arg(long)]
    pub time: bool,
    /// Prefix each line with its time in this strftime format, e.g. "%Y-%m-%d %H:%M:%S".
    #[arg(long, value_name = "FMT")]
    pub log_date_format: Option<String>,
    /// `raw` (the bytes as written; the default) or `json` (one JSON object per line).
    #[arg(long, value_name = "TYPE", value_parser = parse_log_type)]
    pub log_type: Option<zpm_proto::logfiles::LogFormat>,
}

/// How a new app serves (`zpm start`): shared sockets, exec mode, readiness, health checks,
/// per-instance variables. Each has the ecosystem key of the same name with `_` for `-`.
#[derive(Args, Debug, Default)]
pub struct ServingArgs {
    /// Bind ADDR once and hand the socket to every instance (systemd socket activation;
    /// a Node app in cluster mode gets it for its listen()): PORT, HOST:PORT, [IPV6]:PORT
    /// or unix:PATH (relative to the app's cwd). Repeatable.
    #[arg(long, value_name = "ADDR", value_parser = NonEmptyStringValueParser::new())]
    pub listen: Vec<String>,
    /// `fork` or `cluster` [default: cluster for a Node script started with -i, else fork].
    #[arg(long, value_name = "MODE", value_parser = parse_exec_mode)]
    pub exec_mode: Option<ExecMode>,
    /// An instance is `launching` until it says READY=1 (sd_notify on $NOTIFY_SOCKET) or,
    /// in Node, process.send('ready').
    #[arg(long)]
    pub wait_ready: bool,
    /// How long to wait for an instance to be ready (ms, or e.g. `10s`; default 3000);
    /// then it counts as ready anyway, unless --ready-strict.
    #[arg(long, value_parser = parse_duration_ms, value_name = "MS")]
    pub listen_timeout: Option<u64>,
    /// An instance not ready within --listen-timeout fails to start and is stopped.
    #[arg(long)]
    pub ready_strict: bool,
    /// Ready when a GET of this http:// URL answers 2xx.
    #[arg(long, value_name = "URL", value_parser = NonEmptyStringValueParser::new())]
    pub ready_http: Option<String>,
    /// Ready when PORT (on 127.0.0.1) or HOST:PORT accepts a TCP connection.
    #[arg(long, value_name = "PORT|HOST:PORT", value_parser = NonEmptyStringValueParser::new())]
    pub ready_tcp: Option<String>,
    /// Ready when this shell command exits 0.
    #[arg(long, value_name = "CMD", value_parser = NonEmptyStringValueParser::new())]
    pub ready_cmd: Option<String>,
    /// Ready when a line of the app's output matches this regex.
    #[arg(long, value_name = "REGEX", value_parser = NonEmptyStringValueParser::new())]
    pub ready_log: Option<String>,
    /// Restart an instance that sends no WATCHDOG=1 (sd_notify) for this long (seconds,
    /// fractions allowed, or e.g. `500ms`; 0 = off).
    #[arg(long, value_parser = parse_seconds_ms, value_name = "SECONDS")]
    pub watchdog_sec: Option<u64>,
    /// Once ready, check the instance with a GET of this http:// URL (healthy if 2xx);
    /// --health-retries failed checks in a row restart it.
    #[arg(long, value_name = "URL", value_parser = NonEmptyStringValueParser::new())]
    pub health_http: Option<String>,
    /// Once ready, check that PORT (on 127.0.0.1) or HOST:PORT accepts a TCP connection.
    #[arg(long, value_name = "PORT|HOST:PORT", value_parser = NonEmptyStringValueParser::new())]
    pub health_tcp: Option<String>,
    /// Once ready, check that this shell command exits 0.
    #[arg(long, value_name = "CMD", value_parser = NonEmptyStringValueParser::new())]
    pub health_cmd: Option<String>,
    /// Time between health checks (ms, or e.g. `10s`; default 10000).
    #[arg(long, value_parser = parse_duration_ms, value_name = "MS")]
    pub health_interval: Option<u64>,
    /// A health check taking longer has failed (ms, or e.g. `5s`; default 5000).
    #[arg(long, value_parser = parse_duration_ms, value_name = "MS")]
    pub health_timeout: Option<u64>,
    /// Failed health checks in a row that restart the instance (default 3).
    #[arg(long, value_name = "N")]
    pub health_retries: Option<u32>,
    /// The variable that holds the instance number [default: NODE_APP_INSTANCE].
    #[arg(long, value_name = "NAME", value_parser = NonEmptyStringValueParser::new())]
    pub instance_var: Option<String>,
    /// A numeric variable of the app's environment that each instance gets plus its
    /// number (PORT=3000: 3000, 3001, …).
    #[arg(long, value_name = "NAME", value_parser = NonEmptyStringValueParser::new())]
    pub increment_var: Option<String>,
    /// Restart on this cron schedule ("0 3 * * *"; 6 fields: seconds first), in the app's
    /// TZ or local time. With --no-autorestart: a job run at each tick.
    #[arg(long, visible_alias = "cron", value_name = "PATTERN", value_parser = NonEmptyStringValueParser::new())]
    pub cron_restart: Option<String>,
}

/// `zpm start` options for restarts on file changes.
#[derive(Args, Debug, Default)]
pub struct WatchArgs {
    /// Restart the app when files under these paths change (relative to the app's cwd;
    /// none: the cwd). Ready-gated apps are reloaded instead. Give it after the script, or
    /// as --watch=PATH.
    #[arg(long, num_args = 0.., value_name = "PATH")]
    pub watch: Option<Vec<String>>,
    /// Do not react to paths matching this glob (relative path or any component;
    /// node_modules and .git always ignored). Repeatable.
    #[arg(long, value_name = "GLOB", value_parser = NonEmptyStringValueParser::new())]
    pub ignore_watch: Vec<String>,
    /// Quiet time after a change before the restart (ms or e.g. `1s`; default 500).
    #[arg(long, value_parser = parse_duration_ms, value_name = "MS")]
    pub watch_delay: Option<u64>,
}

/// `fork` or `cluster` (also PM2's `fork_mode`, `cluster_mode`).
pub fn parse_exec_mode(text: &str) -> Result<ExecMode, String> {
    match text {
        "fork" | "fork_mode" => Ok(ExecMode::Fork),
        "cluster" | "cluster_mode" => Ok(ExecMode::Cluster),
        _ => Err(format!("{text:?} is not an exec mode: `fork` or `cluster`")),
    }
}

/// `raw` or `json`.
pub fn parse_log_type(text: &str) -> Result<zpm_proto::logfiles::LogFormat, String> {
    use zpm_proto::logfiles::LogFormat;
    match text {
        "raw" => Ok(LogFormat::Raw),
        "json" => Ok(LogFormat::Json),
        _ => Err(format!("{text:?} is not a log type: `raw` or `json`")),
    }
}

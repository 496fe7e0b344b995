//! Every rpc method, notification and push of zpm, declared once: wire name, params type,
//! result type. Modules follow the wire names (`app::Start` is `app.start`). Servers
//! register with `ServerBuilder::handle::<M>`, clients call with `Client::call_method::<M>`,
//! pushes go out with `Pusher::push_method::<M>` and come in through an exhaustive enum
//! (e.g. [`proc::SpawnerCommand`]).

use zpm_rpc::methods;

/// Asked of God by anyone.
pub mod god {
    use super::methods;
    use crate::Pong;
    use crate::ProcessInfo;
    use crate::commands::{SaveParams, Saved};
    use zpm_rpc::NoParams;

    methods! {
        /// Who God is, and its counters.
        Ping = "ping" (NoParams) -> Pong;
        /// Stop every app and agent, then God itself.
        Kill = "god.kill" (NoParams) -> Pong;
        /// Write the running apps to the dump; absent params mean `{force: false}`.
        Save = "god.save" (Option<SaveParams>) -> Saved;
        /// Start every app of the dump that is not running.
        Resurrect = "god.resurrect" (NoParams) -> Vec<ProcessInfo>;
    }
}

/// The app verbs the CLI calls on God.
pub mod app {
    use super::methods;
    use crate::ProcessInfo;
    use crate::commands::{AppDescription, SignalApps, StartApps, Target};

    methods! {
        Start = "app.start" (StartApps) -> Vec<ProcessInfo>;
        Stop = "app.stop" (Target) -> Vec<ProcessInfo>;
        Restart = "app.restart" (Target) -> Vec<ProcessInfo>;
        Delete = "app.delete" (Target) -> Vec<ProcessInfo>;
        List = "app.list" (Option<crate::commands::ListFilter>) -> Vec<ProcessInfo>;
        Describe = "app.describe" (Target) -> Vec<AppDescription>;
        Signal = "app.signal" (SignalApps) -> Vec<ProcessInfo>;
        Scale = "app.scale" (crate::commands::Scale) -> Vec<ProcessInfo>;
        /// Zero the restart counters (and history) of the targets, like `pm2 reset`.
        Reset = "app.reset" (Target) -> Vec<ProcessInfo>;
        /// Replace every instance by a new run, ready before the old one stops.
        Reload = "app.reload" (crate::commands::ReloadApps) -> Vec<ProcessInfo>;
        /// Deliver a JSON value to the targets' Node IPC channel.
        Msg = "app.msg" (crate::commands::MsgApps) -> Vec<ProcessInfo>;
        /// Write a line to the targets' stdin.
        Send = "app.send" (crate::commands::SendLine) -> Vec<ProcessInfo>;
        /// Make the given apps the truth: start, reload, restart, scale (and with `prune`
        /// delete) what differs; answered with the plan.
        Apply = "app.apply" (crate::apply::ApplyApps) -> crate::apply::ApplyPlan;
        /// Turn file watching on or off (`zpm watch`/`zpm unwatch`), without a restart.
        Watch = "app.watch" (crate::commands::WatchApps) -> Vec<ProcessInfo>;
    }
}

/// What agents send God, and what God tells about them.
pub mod agent {
    use super::methods;
    use crate::commands::Hello as HelloParams;
    use crate::{AgentInfo, Pong, ProcessReport, Vitals};
    use zpm_rpc::NoParams;

    methods! {
        /// Registers an agent (on every new connection) with what it holds.
        Hello = "agent.hello" (HelloParams) -> Pong;
        /// Notification: the agent is alive.
        Heartbeat = "agent.heartbeat" (Option<Vitals>) -> bool;
        /// Notification: the latest state of one app instance.
        Report = "proc.report" (ProcessReport) -> ();
        /// Notification from a spawner: how a `proc.reload` ended.
        Reloaded = "proc.reloaded" (crate::commands::Reloaded) -> ();
        /// Notification from a spawner: a watched, ready-gated app's files changed; God
        /// reloads every instance of the app once.
        Changed = "proc.changed" (crate::commands::Changed) -> ();
        /// Notification: an event for God to publish on its bus.
        Publish = "bus.publish" (zpm_bus::RelayEvent) -> ();
        /// Every agent God knows.
        List = "agents.list" (NoParams) -> Vec<AgentInfo>;
        /// Every host's cpu, memory and load, from its metrics agent's latest sample.
        Hosts = "hosts.list" (NoParams) -> Vec<crate::metrics::HostInfo>;
        /// Notification from a metrics agent: what it sampled (God keeps the latest per app
        /// and publishes it as `metrics`).
        Metrics = "metrics.report" (crate::metrics::MetricsReport) -> ();
        /// From a metrics agent: this app is over its `max_memory_restart`; restart it.
        MemoryRestart = "app.memory_restart" (crate::commands::MemoryRestart) -> Vec<crate::ProcessInfo>;
        /// Push to any agent: exit now, and do not bring God back (`zpm kill`).
        Exit = "agent.exit" (NoParams) -> ();
        /// Push to every agent, on hello and whenever it changes: the topic prefixes that
        /// have subscribers. An agent need publish only events whose topic starts with one.
        Interest = "bus.interest" (crate::commands::Interest) -> ();
    }
}

/// The host-local log data path.
pub mod logs {
    use super::methods;
    use crate::logfiles::{FlushRequest, TailLines, TailRequest, Targets as TargetList};
    use zpm_rpc::NoParams;

    methods! {
        /// Long-poll pull of app output by byte offset, served by the spawner on
        /// `spawner.sock`.
        Fetch = "logs.fetch" (crate::LogsFetch) -> crate::LogsFetched;
        /// The last lines of apps' log files, served by the logs agent on `logs.sock`.
        Tail = "logs.tail" (TailRequest) -> Vec<TailLines>;
        /// Empty apps' log files (`zpm flush`), served by the logs agent.
        Flush = "logs.flush" (FlushRequest) -> ();
        /// Reopen every log file (`zpm reload-logs`, after an external logrotate moved
        /// them), served by the logs agent.
        Reopen = "logs.reopen" (NoParams) -> ();
        /// Push from God to the logs agent: every app instance's files.
        Targets = "logs.targets" (TargetList) -> ();
        /// Notification from the logs agent to God whenever the set of files it cannot
        /// write changes; God shows them as warnings on every reply to the CLI.
        Problems = "logs.problems" (crate::logfiles::LogProblems) -> ();
        /// Asked of God: carry a `logs.tail`/`logs.flush`/`logs.reopen` to a host's logs
        /// agent (one the caller cannot reach on `logs.sock`) and return its result.
        Ask = "logs.ask" (crate::LogsAsk) -> zpm_rpc::Value;
        /// Push from God to a logs agent: a request asked of it through God.
        Query = "logs.query" (crate::LogsQuery) -> ();
        /// Notification from a logs agent to God: the answer to a `logs.query`.
        Answer = "logs.answer" (crate::LogsAnswer) -> ();
    }

    /// The methods `logs.ask` carries: what the logs agent serves on `logs.sock`.
    pub const ASKABLE: [&str; 3] = [
        <Tail as zpm_rpc::Method>::NAME,
        <Flush as zpm_rpc::Method>::NAME,
        <Reopen as zpm_rpc::Method>::NAME,
    ];

    /// A push the logs agent acts on.
    #[derive(Debug, Clone, PartialEq)]
    pub enum LogsCommand {
        Targets(TargetList),
        Query(crate::LogsQuery),
        Interest(crate::commands::Interest),
        Exit,
    }

    impl LogsCommand {
        pub fn from_push(push: &zpm_rpc::Push) -> Result<Self, zpm_rpc::RpcError> {
            use super::agent;
            use zpm_rpc::Method as _;
            Ok(match push.method.as_str() {
                Targets::NAME => Self::Targets(push.params::<Targets>()?),
                Query::NAME => Self::Query(push.params::<Query>()?),
                agent::Interest::NAME => Self::Interest(push.params::<agent::Interest>()?),
                agent::Exit::NAME => Self::Exit,
                other => {
                    return Err(zpm_rpc::RpcError::new(
                        zpm_rpc::ErrorCode::UnknownMethod,
                        format!("not a logs agent command: {other}"),
                    ));
                }
            })
        }
    }
}

/// God's pushes to a spawner.
pub mod proc {
    use super::methods;
    use crate::commands::{
        ProcCommand, ProcInput, ReloadCommand, SignalCommand, SpawnCommand, WatchCommand,
    };
    use zpm_rpc::{ErrorCode, Method, Push, RpcError};

    methods! {
        Spawn = "proc.spawn" (SpawnCommand) -> ();
        Stop = "proc.stop" (ProcCommand) -> ();
        Restart = "proc.restart" (ProcCommand) -> ();
        Delete = "proc.delete" (ProcCommand) -> ();
        /// Zero the app's restart counters.
        Reset = "proc.reset" (ProcCommand) -> ();
        Signal = "proc.signal" (SignalCommand) -> ();
        /// Start a replacement run, ready before the old one stops; or roll back.
        Reload = "proc.reload" (ReloadCommand) -> ();
        /// A JSON value for the app's Node IPC channel.
        Msg = "proc.msg" (ProcInput) -> ();
        /// A line for the app's stdin.
        Stdin = "proc.stdin" (ProcInput) -> ();
        /// The instance's `watch` settings changed (`zpm watch`/`unwatch`): start or stop
        /// its watcher, leave the run alone.
        Watch = "proc.watch" (WatchCommand) -> ();
    }

    /// A push a spawner acts on.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum SpawnerCommand {
        Spawn(Box<SpawnCommand>),
        Stop(ProcCommand),
        Restart(ProcCommand),
        Delete(ProcCommand),
        Reset(ProcCommand),
        Signal(SignalCommand),
        Reload(Box<ReloadCommand>),
        Msg(ProcInput),
        Stdin(ProcInput),
        Watch(WatchCommand),
        Interest(crate::commands::Interest),
        Exit,
    }

    impl SpawnerCommand {
        pub fn from_push(push: &Push) -> Result<Self, RpcError> {
            Ok(match push.method.as_str() {
                Spawn::NAME => Self::Spawn(Box::new(push.params::<Spawn>()?)),
                Stop::NAME => Self::Stop(push.params::<Stop>()?),
                Restart::NAME => Self::Restart(push.params::<Restart>()?),
                Delete::NAME => Self::Delete(push.params::<Delete>()?),
                Reset::NAME => Self::Reset(push.params::<Reset>()?),
                Signal::NAME => Self::Signal(push.params::<Signal>()?),
                Reload::NAME => Self::Reload(Box::new(push.params::<Reload>()?)),
                Msg::NAME => Self::Msg(push.params::<Msg>()?),
                Stdin::NAME => Self::Stdin(push.params::<Stdin>()?),
                Watch::NAME => Self::Watch(push.params::<Watch>()?),
                super::agent::Exit::NAME => Self::Exit,
                super::agent::Interest::NAME => {
                    Self::Interest(push.params::<super::agent::Interest>()?)
                }
                other => {
                    return Err(RpcError::new(
                        ErrorCode::UnknownMethod,
                        format!("not a spawner command: {other}"),
                    ));
                }
            })
        }
    }
}

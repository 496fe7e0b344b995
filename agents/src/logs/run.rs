//! The logs agent process: joins God, pulls this host's app output from the spawner
//! (`logs.fetch`, as the host's log consumer) into the files God's `logs.targets` name,
//! publishes it live as `log:out` / `log:err` while someone listens, and serves
//! `logs.tail`, `logs.flush` and `logs.reopen` on `logs.sock`.

use super::live::Live;
use super::relay::Relay;
use super::serve::serve;
use super::{Now, Options, PullOptions, Writer, saved_targets, step};
use crate::agent::{self, Wanted};
use crate::link::Holdings;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use zpm_host::home::Home;
use zpm_proto::Role;
use zpm_proto::logfiles::{LogProblem, LogProblems};
use zpm_proto::method::logs::{self, LogsCommand};
use zpm_rpc::{Client, ClientOptions, Push};

#[derive(Debug, Clone)]
pub struct LogsOptions {
    pub home: Home,
    pub host: String,
}

#[derive(Debug, thiserror::Error)]
pub enum LogsError {
    #[error(transparent)]
    Lock(#[from] zpm_host::LockError),
    #[error(transparent)]
    Config(#[from] zpm_host::config::ConfigError),
    #[error("cannot serve logs.sock: {0}")]
    Bind(#[from] zpm_rpc::BindError),
}

/// After `agent.exit`, how long the agent keeps writing what the stopped apps printed last.
const DRAIN_FOR: Duration = Duration::from_secs(3);

/// Runs the logs agent until God orders it to exit.
pub async fn run(options: LogsOptions) -> Result<(), LogsError> {
    zpm_host::config::Config::load(&options.home.config_file())?;
    let joined = agent::join(
        &options.home,
        Role::Logs,
        &options.host,
        Holdings::default(),
    )?;
    let ledger = options.home.logs_ledger();
    // Until God says otherwise, write where the last targets said: God may be away.
    let saved = saved_targets(&ledger).ok().flatten().unwrap_or_default();
    let mut writer = Writer::open(&ledger, saved, Options::default());
    let (control, mut controls) = mpsc::channel(16);
    let targets = Arc::new(std::sync::RwLock::new(writer.targets().to_vec()));
    let _server = serve(&options.home.logs_endpoint(), Arc::clone(&targets), control).await?;
    let spawner = Client::with_options(
        &options.home.spawner_endpoint(),
        ClientOptions {
            version: zpm_proto::PROTOCOL_VERSION,
            ..ClientOptions::default()
        },
    );
    let gone = Arc::new(AtomicBool::new(false));
    tokio::spawn(mark_when_god_gone(options.home.clone(), Arc::clone(&gone)));
    let mut live = Live::new(
        Arc::clone(&joined.client),
        joined.source,
        joined.interest.clone(),
        Arc::clone(&targets),
    );
    let pull = PullOptions::default();
    let logs_dir = options.home.logs_dir();
    let mut problems = Problems::default();
    // Interest takes effect at once (not after the round in progress): lines pulled just
    // after a subscriber arrived are published too.
    let relay = Relay::new(Arc::clone(&joined.client), &options.home.logs_endpoint());
    let mut pushes = apply_interest_at_once(joined.pushes, joined.interest.clone(), relay);
    loop {
        while let Ok(command) = controls.try_recv() {
            command.apply(&mut writer);
        }
        let exit = take_pushes(&mut pushes, &mut writer, &targets, &logs_dir);
        if exit || gone.load(Ordering::Relaxed) {
            break;
        }
        let outcome = step(&spawner, &mut writer, &pull, |f| live.publish(f)).await;
        if matches!(outcome, Ok(0)) {
            live.quiet();
        }
        problems.update(&mut writer, &joined.client);
        report(outcome, pull.error_pause).await;
    }
    drain(&spawner, &mut writer, &pull, &mut live).await;
    tracing::info!("logs agent exiting");
    Ok(())
}

/// Sets the bus interest and answers asked requests as soon as God pushes them; every
/// other push is passed on to the pull loop.
fn apply_interest_at_once(
    mut pushes: mpsc::Receiver<Push>,
    interest: Wanted,
    relay: Relay,
) -> mpsc::Receiver<LogsCommand> {
    let (passed, rest) = mpsc::channel(64);
    tokio::spawn(async move {
        while let Some(push) = pushes.recv().await {
            match LogsCommand::from_push(&push) {
                Ok(LogsCommand::Interest(wanted)) => interest.set(wanted),
                Ok(LogsCommand::Query(query)) => relay.answer(query),
                Ok(command) => {
                    if passed.send(command).await.is_err() {
                        return;
                    }
                }
                Err(e) => tracing::warn!(method = %push.method, error = %e, "bad push from God"),
            }
        }
    });
    rest
}

/// Handles God's pushes that arrived; true once God ordered the agent to exit.
fn take_pushes(
    commands: &mut mpsc::Receiver<LogsCommand>,
    writer: &mut Writer,
    targets: &std::sync::RwLock<Vec<zpm_proto::logfiles::LogTarget>>,
    logs_dir: &std::path::Path,
) -> bool {
    while let Ok(command) = commands.try_recv() {
        match command {
            LogsCommand::Exit => {
                tracing::info!("God ordered this agent to exit");
                return true;
            }
            LogsCommand::Targets(mut list) => {
                for target in &mut list.targets {
                    target.anchor(logs_dir);
                }
                if let Err(e) = writer.set_targets(list.targets, Now::current()) {
                    tracing::warn!(error = %e, "applying new log targets");
                }
                *targets
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = writer.targets().to_vec();
            }
            // Taken as they arrive, by `apply_interest_at_once`.
            LogsCommand::Interest(_) | LogsCommand::Query(_) => {}
        }
    }
    false
}

/// The files failing now and why, as last told to God.
#[derive(Default)]
struct Problems {
    why: std::collections::BTreeMap<std::path::PathBuf, String>,
    told: Vec<LogProblem>,
}

impl Problems {
    /// Logs each new error once and tells God when the set of failing files changed.
    fn update(&mut self, writer: &mut Writer, god: &Client) {
        for error in writer.take_errors() {
            tracing::warn!(error = %error, "log file");
            self.why
                .insert(error.path.clone(), error.source.to_string());
        }
        let failing = writer.failing();
        self.why.retain(|path, _| failing.contains(&path.as_path()));
        let now: Vec<LogProblem> = self
            .why
            .iter()
            .map(|(path, error)| LogProblem {
                path: path.display().to_string(),
                error: error.clone(),
            })
            .collect();
        if now != self.told {
            let report = LogProblems {
                problems: now.clone(),
            };
            if god.notify_method::<logs::Problems>(&report).is_ok() {
                self.told = now;
            }
        }
    }
}

/// Pauses after a failed round.
async fn report(outcome: Result<usize, super::StepError>, pause: Duration) {
    if let Err(e) = outcome {
        tracing::debug!(error = %e, "log pull failed; retrying");
        tokio::time::sleep(pause).await;
    }
}

/// Writes what the apps printed until the spawner has nothing more (or is gone), bounded.
async fn drain(spawner: &Client, writer: &mut Writer, pull: &PullOptions, live: &mut Live) {
    let quick = PullOptions {
        wait: Duration::from_millis(50),
        call_margin: Duration::from_millis(500),
        ..*pull
    };
    let deadline = tokio::time::Instant::now() + DRAIN_FOR;
    while tokio::time::Instant::now() < deadline {
        match step(spawner, writer, &quick, |f| live.publish(f)).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    let flushed = writer
        .flush_all(Now::current())
        .and_then(|()| writer.save());
    if let Err(e) = flushed {
        tracing::warn!(error = %e, "saving the log ledger on exit");
    }
}

async fn mark_when_god_gone(home: Home, gone: Arc<AtomicBool>) {
    agent::god_gone_for_good(&home).await;
    gone.store(true, Ordering::Relaxed);
}

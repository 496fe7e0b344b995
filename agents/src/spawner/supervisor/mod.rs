//! One task per app instance owns its process: launches it, waits for it (event-driven,
//! no polling), applies the restart policy, and obeys commands from God. `launch` starts a
//! run, `live` handles what a running app signals, `reload` replaces a run by a ready one.

mod launch;
mod live;
mod reload;
mod watched;

use super::child::{Exit, parse_signal};
use super::logs::LogHub;
use super::policy::{Decision, RestartState};
use super::reaper::Leaders;
use super::record::Record;
use super::report::Reporter;
use super::serve::Sockets;
use launch::Live;
use nix::sys::signal::Signal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use zpm_proto::{AppSpec, ProcessEventKind, ProcessStatus, RestartReason};

/// After these the supervisor ends (`None`: God's channel to it closed).
fn is_final(command: Option<&AppCommand>) -> bool {
    matches!(
        command,
        None | Some(AppCommand::Delete | AppCommand::Shutdown)
    )
}

/// What God can tell a running app to do.
/// `proc.reload` for one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadOrder {
    pub token: u64,
    pub spec: Option<Box<AppSpec>>,
    /// For the restart history; `None`: `reload`.
    pub reason: Option<RestartReason>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppCommand {
    Stop,
    Restart,
    Delete,
    Signal(Signal),
    /// Zero the restart counters (`zpm reset`), whatever the app is doing.
    Reset,
    /// The spawner is exiting (`zpm kill`): stop, report, end.
    Shutdown,
    /// Replace the run by a new one (with this spec, if given) once that one is ready.
    Reload(ReloadOrder),
    /// A JSON value for the app's Node IPC channel.
    Msg(String),
    /// A line for the app's stdin.
    Stdin(String),
    /// New `watch` settings (`zpm watch`/`unwatch`): the run is left alone.
    Watch(zpm_proto::watch::Watch),
}

enum Next {
    Launch,
    Wait(Duration),
    Idle,
    Done,
}

pub struct Supervisor {
    pub id: u32,
    pub instance: u32,
    pub spec: AppSpec,
    reporter: Reporter,
    shared: Shared,
    restarts: u32,
    policy: RestartState,
    /// A reload asked while no run was up: answered once the next run is ready or fails.
    reload_token: Option<u64>,
    /// The run ended by itself (not by a stop): with `cron_restart` it runs again at the
    /// next tick (a scheduled job).
    ended_by_itself: bool,
    /// Why the reload under way was asked (see [`AppCommand::Reload`]).
    reload_reason: Option<RestartReason>,
    /// Watches the app's files while it runs (or is down by itself), when `watch` is on.
    watcher: Option<crate::spawner::watch::Watcher>,
}

/// What every supervisor on this spawner shares.
#[derive(Clone)]
pub struct Shared {
    /// `$ZPM_HOME`, through symlinks as apps' cwds are: zpm's own writes there are never
    /// changes to watch.
    pub home: zpm_host::home::Home,
    pub logs: Arc<LogHub>,
    pub leaders: Leaders,
    pub record: Record,
    pub sockets: Sockets,
    pub notify_dir: PathBuf,
    pub node_preload: PathBuf,
}

/// Resolves at `at`, never when there is no deadline.
async fn deadline(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Supervisor {
    pub fn new(
        command: zpm_proto::commands::SpawnCommand,
        reporter: Reporter,
        shared: Shared,
    ) -> Self {
        reporter.hold(command.instance, &command.spec);
        Self {
            id: command.id,
            instance: command.instance,
            spec: command.spec,
            reporter,
            shared,
            restarts: command.restarts,
            policy: RestartState::default(),
            reload_token: None,
            ended_by_itself: false,
            reload_reason: None,
            watcher: None,
        }
    }

    fn kill_signal(&self) -> Signal {
        parse_signal(&self.spec.kill_signal).unwrap_or(Signal::SIGTERM)
    }

    fn kill_timeout(&self) -> Duration {
        Duration::from_millis(self.spec.kill_timeout_ms)
    }

    pub async fn run(mut self, mut commands: mpsc::Receiver<AppCommand>) {
        self.shared.logs.register(self.id);
        let mut next = Next::Launch;
        loop {
            next = match next {
                Next::Launch => self.launch(&mut commands).await,
                Next::Wait(delay) => self.wait_restart(delay, &mut commands).await,
                Next::Idle => self.idle(&mut commands).await,
                Next::Done => return,
            };
        }
    }

    /// No run of this instance is up or coming (`stopped`, `errored`): sockets nobody
    /// else uses close — before God hears of it, so that once God sees the app down (a
    /// delete is answered), a new app of that name never gets the old one's sockets.
    fn settle(&mut self, status: ProcessStatus) {
        self.shared
            .sockets
            .release(&launch::app_key(&self.spec), self.id);
        self.answer_reload(Some("the app stopped before it was ready".into()));
        self.reporter.status(status);
    }

    fn answer_reload(&mut self, error: Option<String>) {
        if let Some(token) = self.reload_token.take() {
            self.reporter.reloaded(token, error);
        }
    }

    async fn launch(&mut self, commands: &mut mpsc::Receiver<AppCommand>) -> Next {
        self.ended_by_itself = false;
        let mut live = match self.start_run() {
            Ok(live) => live,
            Err(e) => {
                tracing::warn!(id = self.id, argv = ?self.spec.argv, error = %e, "spawn failed");
                // Counted like a run, so God sees that a restart's new attempt happened.
                self.reporter.set_restarts(self.restarts);
                self.reporter.set_error(Some(e.clone()));
                self.settle(ProcessStatus::Errored);
                self.answer_reload(Some(e));
                return Next::Idle;
            }
        };
        let gated = live.gate != launch::Gate::None;
        self.reporter
            .launched(live.run.pid, self.restarts, live.run.started_at_ms, gated);
        if live.gate == launch::Gate::None {
            self.check_health_from_now(&mut live);
            self.answer_reload(None);
        }
        let next = self.supervise(&mut live, commands).await;
        self.shared.record.ended(live.run.pid);
        self.shared.leaders.lock().remove(&live.run.pid);
        next
    }

    async fn supervise(
        &mut self,
        live: &mut Live,
        commands: &mut mpsc::Receiver<AppCommand>,
    ) -> Next {
        let cron_at = self.next_cron();
        loop {
            // Follows `zpm watch`/`unwatch` and reloads to a new spec.
            self.sync_watch(true);
            // Also found while a reload was under way (and rolled back).
            if let Some(reason) = live.unhealthy.take() {
                return self.restart_for(live, reason, commands).await;
            }
            let command = tokio::select! {
                exit = live.run.wait() => {
                    live.run.clear_leftovers(self.kill_signal(), self.kill_timeout()).await;
                    if !live.is_ready() {
                        self.answer_reload(Some(format!("it exited ({}) before it was ready", describe_exit(&exit))));
                    }
                    return self.on_exit(live, exit);
                }
                Some(signal) = live.links.signals.recv() => {
                    self.on_signal(live, signal);
                    continue;
                }
                () = deadline(live.ready_by) => {
                    if let Some(next) = self.on_ready_timeout(live, commands).await {
                        return next;
                    }
                    continue;
                }
                () = deadline(live.watchdog_at) => {
                    return self.on_watchdog_missed(live, commands).await;
                }
                () = deadline(cron_at) => {
                    return self.restart_for(live, RestartReason::Cron, commands).await;
                }
                event = watched::next_change(&mut self.watcher) => {
                    if let Some(reason) = self.on_watch_event(event) {
                        return self.restart_for(live, reason, commands).await;
                    }
                    continue;
                }
                command = commands.recv() => command,
            };
            match command {
                Some(AppCommand::Signal(signal)) => live.run.signal(signal),
                Some(AppCommand::Reset) => self.reset(),
                Some(AppCommand::Msg(json)) => self.to_ipc(live, &json),
                Some(AppCommand::Stdin(text)) => live.run.write_stdin(text),
                Some(AppCommand::Watch(watch)) => self.set_watch(watch),
                Some(AppCommand::Reload(order)) => {
                    if let Some(next) = self.reload(live, order, commands).await {
                        return next;
                    }
                }
                other => {
                    let last = self.stop(live, other, commands).await;
                    return self.after_stop(last);
                }
            }
        }
    }

    /// Stops the run for `command` (`None`: God's channel closed): the kill signal, then
    /// SIGKILL after kill_timeout. Commands keep being read meanwhile, since a stop can take
    /// as long as the app's kill_timeout: a signal is delivered at once (SIGKILL ends the
    /// wait), a delete SIGKILLs the group at once, a later stop or restart replaces an
    /// earlier one. Returns the command to carry out once the run is over.
    async fn stop(
        &mut self,
        live: &mut Live,
        mut command: Option<AppCommand>,
        commands: &mut mpsc::Receiver<AppCommand>,
    ) -> Option<AppCommand> {
        self.reporter.status(ProcessStatus::Stopping);
        let run = &mut live.run;
        run.signal(self.kill_signal());
        let mut deadline = Instant::now() + self.kill_timeout();
        let mut open = command.is_some();
        let exit = loop {
            let next = tokio::select! {
                exit = run.wait_or_kill(deadline) => break exit,
                next = commands.recv(), if open => next,
            };
            match next {
                Some(AppCommand::Signal(signal)) => {
                    run.signal(signal);
                    if signal == Signal::SIGKILL {
                        deadline = Instant::now();
                    }
                }
                Some(AppCommand::Delete) => {
                    command = Some(AppCommand::Delete);
                    deadline = Instant::now();
                }
                Some(AppCommand::Reset) => self.reset(),
                Some(AppCommand::Reload(ReloadOrder { token, .. })) => {
                    self.reporter
                        .reloaded(token, Some("the app is stopping".into()));
                }
                Some(AppCommand::Msg(_) | AppCommand::Stdin(_)) => {}
                Some(AppCommand::Watch(watch)) => self.set_watch(watch),
                Some(newer) if !is_final(command.as_ref()) => command = Some(newer),
                Some(_) => {}
                None => {
                    open = false;
                    if !is_final(command.as_ref()) {
                        command = None;
                    }
                }
            }
        };
        run.clear_group(deadline).await;
        self.reporter.set_exit(exit);
        command
    }

    fn after_stop(&mut self, command: Option<AppCommand>) -> Next {
        match command {
            Some(AppCommand::Restart) => self.restart_now(None),
            Some(AppCommand::Stop) => {
                self.settle(ProcessStatus::Stopped);
                Next::Idle
            }
            other => self.finish(other),
        }
    }

    fn on_exit(&mut self, live: &Live, exit: Exit) -> Next {
        self.reporter
            .event(ProcessEventKind::Exit, exit.code, exit.signal.clone());
        let decision = self
            .policy
            .on_exit(&self.spec, exit.code, live.run.started.elapsed());
        self.reporter.set_exit(exit);
        match decision {
            Decision::Stop => {
                self.ended_by_itself = true;
                self.settle(ProcessStatus::Stopped);
                Next::Idle
            }
            Decision::Errored => {
                self.ended_by_itself = true;
                self.settle(ProcessStatus::Errored);
                Next::Idle
            }
            Decision::Restart(delay) if delay.is_zero() => self.relaunch(None),
            Decision::Restart(delay) => Next::Wait(delay),
        }
    }

    /// The next run, and why there is one when the spawner decided it (a reload, a missed
    /// watchdog); God names its own reasons, and a crash is told by the exit.
    fn relaunch(&mut self, reason: Option<RestartReason>) -> Next {
        self.restarts += 1;
        self.reporter.set_reason(reason);
        self.reporter.event(ProcessEventKind::Restart, None, None);
        Next::Launch
    }

    /// A restart asked for by a user forgets the crash history, as PM2 does.
    fn restart_now(&mut self, reason: Option<RestartReason>) -> Next {
        self.policy.reset();
        self.relaunch(reason)
    }

    async fn wait_restart(
        &mut self,
        delay: Duration,
        commands: &mut mpsc::Receiver<AppCommand>,
    ) -> Next {
        self.reporter.status(ProcessStatus::WaitingRestart);
        let deadline = tokio::time::Instant::now() + delay;
        loop {
            self.sync_watch(true);
            let command = tokio::select! {
                () = tokio::time::sleep_until(deadline) => return self.relaunch(None),
                event = watched::next_change(&mut self.watcher) => {
                    // A change while a crashed app waits for its restart: now, saying why.
                    if let Some(reason) = self.on_watch_event(event) {
                        return self.relaunch(Some(reason));
                    }
                    continue;
                }
                command = commands.recv() => command,
            };
            match command {
                Some(AppCommand::Signal(_) | AppCommand::Msg(_) | AppCommand::Stdin(_)) => {}
                Some(AppCommand::Reset) => self.reset(),
                Some(AppCommand::Watch(watch)) => self.set_watch(watch),
                Some(AppCommand::Restart) => return self.restart_now(None),
                Some(AppCommand::Reload(order)) => return self.reload_idle(order),
                Some(AppCommand::Stop) => {
                    self.settle(ProcessStatus::Stopped);
                    return Next::Idle;
                }
                other => return self.finish(other),
            }
        }
    }

    /// When `cron_restart` next comes due, if the app has one.
    fn next_cron(&self) -> Option<Instant> {
        let pattern = self.spec.cron_restart.as_deref()?;
        super::schedule::until_next(pattern, &self.spec.env).map(|wait| Instant::now() + wait)
    }

    async fn idle(&mut self, commands: &mut mpsc::Receiver<AppCommand>) -> Next {
        // A scheduled job (it ended by itself) waits for its next tick; one a user stopped
        // waits for the user.
        let cron_at = if self.ended_by_itself {
            self.next_cron()
        } else {
            None
        };
        // An app that ended by itself (crashed, errored) is started again by a change, as
        // while developing; one a user stopped is not watched.
        self.sync_watch(self.ended_by_itself);
        let command = tokio::select! {
            () = deadline(cron_at) => return self.restart_now(Some(RestartReason::Cron)),
            event = watched::next_change(&mut self.watcher) => {
                return match self.on_watch_event(event) {
                    Some(reason) => self.restart_now(Some(reason)),
                    None => Next::Idle,
                };
            }
            command = commands.recv() => command,
        };
        match command {
            Some(AppCommand::Restart) => self.restart_now(None),
            Some(AppCommand::Watch(watch)) => {
                self.set_watch(watch);
                Next::Idle
            }
            Some(AppCommand::Reload(order)) => self.reload_idle(order),
            Some(AppCommand::Stop) => {
                self.ended_by_itself = false;
                self.reporter.status_again();
                Next::Idle
            }
            Some(AppCommand::Signal(_) | AppCommand::Msg(_) | AppCommand::Stdin(_)) => Next::Idle,
            Some(AppCommand::Reset) => {
                self.reset();
                Next::Idle
            }
            other => self.finish(other),
        }
    }

    /// `zpm reset`: the counters start again from zero, and God is told at once.
    fn reset(&mut self) {
        self.restarts = 0;
        self.policy.reset();
        self.reporter.set_restarts(0);
        self.reporter.status_again();
    }

    /// The last report before the supervisor ends: deleted, or the spawner shuts down.
    fn finish(&mut self, command: Option<AppCommand>) -> Next {
        self.settle(ProcessStatus::Stopped);
        if command == Some(AppCommand::Delete) {
            self.reporter.forget();
            self.shared.logs.remove(self.id);
        }
        Next::Done
    }
}

/// `code 1`, `SIGKILL`.
fn describe_exit(exit: &Exit) -> String {
    match (&exit.signal, exit.code) {
        (Some(signal), _) => format!("killed by {signal}"),
        (None, Some(code)) => format!("code {code}"),
        (None, None) => "unknown status".to_owned(),
    }
}

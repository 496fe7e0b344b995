//! One task per app instance owns its process: launches it, waits for it (event-driven,
//! no polling), applies the restart policy, and obeys commands from God.

use super::child::{self, Exit, Run, parse_signal};
use super::logs::LogHub;
use super::policy::{Decision, RestartState};
use super::reaper::Leaders;
use super::record::Record;
use super::report::Reporter;
use nix::sys::signal::Signal;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use zpm_proto::{AppSpec, LogStream, ProcessEventKind, ProcessStatus};

/// After these the supervisor ends (`None`: God's channel to it closed).
fn is_final(command: Option<AppCommand>) -> bool {
    matches!(
        command,
        None | Some(AppCommand::Delete | AppCommand::Shutdown)
    )
}

/// What God can tell a running app to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppCommand {
    Stop,
    Restart,
    Delete,
    Signal(Signal),
    /// Zero the restart counters (`zpm reset`), whatever the app is doing.
    Reset,
    /// The spawner is exiting (`zpm kill`): stop, report, end.
    Shutdown,
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
    logs: Arc<LogHub>,
    leaders: Leaders,
    record: Record,
    restarts: u32,
    policy: RestartState,
}

/// What every supervisor on this spawner shares.
#[derive(Clone)]
pub struct Shared {
    pub logs: Arc<LogHub>,
    pub leaders: Leaders,
    pub record: Record,
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
            logs: shared.logs,
            leaders: shared.leaders,
            record: shared.record,
            restarts: command.restarts,
            policy: RestartState::default(),
        }
    }

    fn kill_signal(&self) -> Signal {
        parse_signal(&self.spec.kill_signal).unwrap_or(Signal::SIGTERM)
    }

    fn kill_timeout(&self) -> Duration {
        Duration::from_millis(self.spec.kill_timeout_ms)
    }

    pub async fn run(mut self, mut commands: mpsc::Receiver<AppCommand>) {
        self.logs.register(self.id);
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

    async fn launch(&mut self, commands: &mut mpsc::Receiver<AppCommand>) -> Next {
        let spawned = {
            let mut leaders = self.leaders.lock();
            let spawned = child::spawn(&self.spec, self.id, self.instance);
            if let Ok(s) = &spawned {
                leaders.insert(s.run.pid);
            }
            spawned
        };
        let mut spawned = match spawned {
            Ok(spawned) => spawned,
            Err(e) => {
                tracing::warn!(id = self.id, argv = ?self.spec.argv, error = %e, "spawn failed");
                // Counted like a run, so God sees that a restart's new attempt happened.
                self.reporter.set_restarts(self.restarts);
                self.reporter.status(ProcessStatus::Errored);
                return Next::Idle;
            }
        };
        if let Some(out) = spawned.stdout.take() {
            tokio::spawn(Arc::clone(&self.logs).pump(self.id, LogStream::Out, out));
        }
        if let Some(err) = spawned.stderr.take() {
            tokio::spawn(Arc::clone(&self.logs).pump(self.id, LogStream::Err, err));
        }
        let mut run = spawned.run;
        self.record.started(self.id, run.pid);
        self.reporter
            .online(run.pid, self.restarts, run.started_at_ms);
        let next = self.supervise(&mut run, commands).await;
        self.record.ended(self.id);
        self.leaders.lock().remove(&run.pid);
        next
    }

    async fn supervise(
        &mut self,
        run: &mut Run,
        commands: &mut mpsc::Receiver<AppCommand>,
    ) -> Next {
        loop {
            let command = tokio::select! {
                exit = run.wait() => {
                    run.clear_leftovers(self.kill_signal(), self.kill_timeout()).await;
                    return self.on_exit(run, exit);
                }
                command = commands.recv() => command,
            };
            match command {
                Some(AppCommand::Signal(signal)) => run.signal(signal),
                Some(AppCommand::Reset) => self.reset(),
                other => {
                    let last = self.stop(run, other, commands).await;
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
        run: &mut Run,
        mut command: Option<AppCommand>,
        commands: &mut mpsc::Receiver<AppCommand>,
    ) -> Option<AppCommand> {
        self.reporter.status(ProcessStatus::Stopping);
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
                Some(newer) if !is_final(command) => command = Some(newer),
                Some(_) => {}
                None => {
                    open = false;
                    if !is_final(command) {
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
            Some(AppCommand::Restart) => self.restart_now(),
            Some(AppCommand::Stop) => {
                self.reporter.status(ProcessStatus::Stopped);
                Next::Idle
            }
            other => self.finish(other),
        }
    }

    fn on_exit(&mut self, run: &Run, exit: Exit) -> Next {
        self.reporter
            .event(ProcessEventKind::Exit, exit.code, exit.signal.clone());
        let decision = self
            .policy
            .on_exit(&self.spec, exit.code, run.started.elapsed());
        self.reporter.set_exit(exit);
        match decision {
            Decision::Stop => {
                self.reporter.status(ProcessStatus::Stopped);
                Next::Idle
            }
            Decision::Errored => {
                self.reporter.status(ProcessStatus::Errored);
                Next::Idle
            }
            Decision::Restart(delay) if delay.is_zero() => self.relaunch(),
            Decision::Restart(delay) => Next::Wait(delay),
        }
    }

    fn relaunch(&mut self) -> Next {
        self.restarts += 1;
        self.reporter.event(ProcessEventKind::Restart, None, None);
        Next::Launch
    }

    /// A restart asked for by a user forgets the crash history, as PM2 does.
    fn restart_now(&mut self) -> Next {
        self.policy.reset();
        self.relaunch()
    }

    async fn wait_restart(
        &mut self,
        delay: Duration,
        commands: &mut mpsc::Receiver<AppCommand>,
    ) -> Next {
        self.reporter.status(ProcessStatus::WaitingRestart);
        let deadline = tokio::time::Instant::now() + delay;
        loop {
            let command = tokio::select! {
                () = tokio::time::sleep_until(deadline) => return self.relaunch(),
                command = commands.recv() => command,
            };
            match command {
                Some(AppCommand::Signal(_)) => {}
                Some(AppCommand::Reset) => self.reset(),
                Some(AppCommand::Restart) => return self.restart_now(),
                Some(AppCommand::Stop) => {
                    self.reporter.status(ProcessStatus::Stopped);
                    return Next::Idle;
                }
                other => return self.finish(other),
            }
        }
    }

    async fn idle(&mut self, commands: &mut mpsc::Receiver<AppCommand>) -> Next {
        match commands.recv().await {
            Some(AppCommand::Restart) => self.restart_now(),
            Some(AppCommand::Stop) => {
                self.reporter.status_again();
                Next::Idle
            }
            Some(AppCommand::Signal(_)) => Next::Idle,
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
        self.reporter.status(ProcessStatus::Stopped);
        if command == Some(AppCommand::Delete) {
            self.reporter.forget();
            self.logs.remove(self.id);
        }
        Next::Done
    }
}

//! `proc.reload`: a replacement run is started (with the new spec, if any) next to the
//! running one, and only once it is ready is the old one stopped, gracefully. The shared
//! sockets stay open throughout, so connections queue in the kernel and none is refused.
//! A replacement that exits or (with `ready_strict`) is not ready in time is stopped and
//! the old run keeps serving: a rollback, reported to God with the reason. An app that
//! binds its own ports cannot run twice at once: its reload is a restart, answered once
//! the new run is ready.

use super::launch::{self, Gate, Live};
use super::{AppCommand, Next, ReloadOrder, Supervisor, deadline, describe_exit};
use crate::spawner::child::Exit;
use crate::spawner::serve::RunSignal;
use tokio::sync::mpsc;
use tokio::time::Instant;
use zpm_proto::{AppSpec, ProcessEventKind, RestartReason};

/// How waiting for a replacement ended.
enum Replacement {
    Ready,
    Failed(String),
    /// The running one exited meanwhile.
    OldExited(Exit),
    /// God wants the app stopped, restarted or deleted.
    Interrupted(Option<AppCommand>),
}

impl Supervisor {
    /// `Some` when the supervisor leaves the running state.
    pub(super) async fn reload(
        &mut self,
        live: &mut Live,
        ReloadOrder {
            token,
            spec,
            reason,
        }: ReloadOrder,
        commands: &mut mpsc::Receiver<AppCommand>,
    ) -> Option<Next> {
        self.reload_reason = reason;
        let previous = spec.map(|spec| std::mem::replace(&mut self.spec, *spec));
        if !launch::overlaps(&self.spec) {
            return Some(self.restart_for_reload(live, token, commands).await);
        }
        let mut next = match self.start_run() {
            Ok(next) => next,
            Err(e) => {
                self.roll_back(previous);
                self.reporter.reloaded(token, Some(e));
                return None;
            }
        };
        match self.await_replacement(live, &mut next, commands).await {
            Replacement::Ready => {
                std::mem::swap(live, &mut next);
                live.ready_by = None;
                self.keep_own_sockets();
                self.take_over(live, Gate::None);
                self.check_health_from_now(live);
                self.retire(next).await;
                self.reporter.reloaded(token, None);
                None
            }
            Replacement::Failed(reason) => {
                tracing::warn!(id = self.id, %reason, "reload rolled back");
                self.retire(next).await;
                self.roll_back(previous);
                self.reporter.reloaded(token, Some(reason));
                None
            }
            Replacement::OldExited(exit) => {
                live.run
                    .clear_leftovers(self.kill_signal(), self.kill_timeout())
                    .await;
                self.reporter
                    .event(ProcessEventKind::Exit, exit.code, exit.signal.clone());
                self.reporter.set_exit(exit);
                std::mem::swap(live, &mut next);
                self.shared.leaders.lock().remove(&next.run.pid);
                self.shared.record.ended(next.run.pid);
                let gate = live.gate;
                self.take_over(live, gate);
                // Answered once the new run is ready, like a first start.
                self.reload_token = Some(token);
                None
            }
            Replacement::Interrupted(command) => {
                self.retire(next).await;
                self.roll_back(previous);
                self.reporter.reloaded(
                    token,
                    Some("interrupted by a stop, restart or delete".into()),
                );
                let last = self.stop(live, command, commands).await;
                Some(self.after_stop(last))
            }
        }
    }

    /// A reload of an app that binds its own ports: stop, then start the (new) spec; the
    /// reload is answered when the new run is ready or fails. Nothing to roll back to.
    async fn restart_for_reload(
        &mut self,
        live: &mut Live,
        token: u64,
        commands: &mut mpsc::Receiver<AppCommand>,
    ) -> Next {
        let last = self.stop(live, Some(AppCommand::Restart), commands).await;
        if last != Some(AppCommand::Restart) {
            self.reporter
                .reloaded(token, Some("interrupted by a stop or delete".into()));
            return self.after_stop(last);
        }
        self.keep_own_sockets();
        self.reload_token = Some(token);
        let reason = self.reload_reason.take().unwrap_or(RestartReason::Reload);
        self.restart_now(Some(reason))
    }

    /// After a reload to a new spec: only its `listen` addresses stay held for this
    /// instance (and, in cluster mode, those bound at run time).
    fn keep_own_sockets(&self) {
        self.shared.sockets.keep_only(
            &launch::app_key(&self.spec),
            self.id,
            &self.spec.listen_addrs(),
            launch::overlaps(&self.spec),
        );
    }

    /// A reload while no run is up is a start of the (new) spec; answered when it is ready.
    pub(super) fn reload_idle(&mut self, order: ReloadOrder) -> Next {
        let ReloadOrder {
            token,
            spec,
            reason,
        } = order;
        self.reload_reason = reason;
        if let Some(spec) = spec {
            self.spec = *spec;
        }
        self.reload_token = Some(token);
        let reason = self.reload_reason.take().unwrap_or(RestartReason::Reload);
        self.restart_now(Some(reason))
    }

    fn roll_back(&mut self, previous: Option<AppSpec>) {
        if let Some(previous) = previous {
            self.spec = previous;
        }
    }

    /// `live` is now the run of this instance: counted as a restart (reason
    /// `reload`), reported.
    fn take_over(&mut self, live: &Live, gate: Gate) {
        self.restarts += 1;
        let reason = self.reload_reason.take().unwrap_or(RestartReason::Reload);
        self.reporter.set_reason(Some(reason));
        self.reporter.event(ProcessEventKind::Restart, None, None);
        self.reporter.launched(
            live.run.pid,
            self.restarts,
            live.run.started_at_ms,
            gate != Gate::None,
        );
        if let Some(text) = live.status_text.clone() {
            self.reporter.status_text(text);
        }
    }

    async fn await_replacement(
        &mut self,
        live: &mut Live,
        next: &mut Live,
        commands: &mut mpsc::Receiver<AppCommand>,
    ) -> Replacement {
        if next.gate == Gate::None {
            return Replacement::Ready;
        }
        loop {
            tokio::select! {
                exit = next.run.wait() => {
                    return Replacement::Failed(format!("the new run exited ({}) before it was ready", describe_exit(&exit)));
                }
                exit = live.run.wait() => return Replacement::OldExited(exit),
                Some(signal) = next.links.signals.recv() => match signal {
                    RunSignal::Ready(_) if next.gate == Gate::Ready => return Replacement::Ready,
                    RunSignal::Listening if next.gate == Gate::Listening => return Replacement::Ready,
                    // Told once it is the instance's run (take_over).
                    RunSignal::Status(text) => next.status_text = Some(text),
                    other => self.on_signal(next, other),
                },
                Some(signal) = live.links.signals.recv() => self.on_signal(live, signal),
                () = deadline(next.ready_by) => {
                    let timeout = self.spec.ready.timeout_ms;
                    if self.spec.ready.strict && next.gate == Gate::Ready {
                        return Replacement::Failed(format!("the new run was not ready within {timeout} ms (ready_strict)"));
                    }
                    return Replacement::Ready;
                }
                command = commands.recv() => match command {
                    Some(AppCommand::Signal(signal)) => live.run.signal(signal),
                    Some(AppCommand::Reset) => self.reset(),
                    Some(AppCommand::Msg(json)) => self.to_ipc(live, &json),
                    Some(AppCommand::Stdin(text)) => live.run.write_stdin(text),
                    Some(AppCommand::Watch(watch)) => self.set_watch(watch),
                    Some(AppCommand::Reload(ReloadOrder { token, .. })) => {
                        self.reporter.reloaded(token, Some("a reload of this instance is already under way".into()));
                    }
                    other => return Replacement::Interrupted(other),
                },
            }
        }
    }

    /// Stops a run that is no longer the instance's: its kill signal, SIGKILL for the
    /// group after kill_timeout.
    async fn retire(&self, mut old: Live) {
        old.run.signal(self.kill_signal());
        let deadline = Instant::now() + self.kill_timeout();
        old.run.wait_or_kill(deadline).await;
        old.run.clear_group(deadline).await;
        self.shared.leaders.lock().remove(&old.run.pid);
        self.shared.record.ended(old.run.pid);
    }
}

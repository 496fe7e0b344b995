//! What a running app signals (ready, status, watchdog, messages, socket requests) and the
//! deadlines it can miss (readiness, watchdog).

use super::launch::{Gate, Live, app_key};
use super::{AppCommand, Next, Supervisor};
use crate::spawner::serve::RunSignal;
use serde_json::json;
use tokio::sync::mpsc;
use tokio::time::Instant;
use zpm_proto::{ListenAddr, ProcessStatus, RestartReason};

impl Supervisor {
    pub(super) fn on_signal(&mut self, live: &mut Live, signal: RunSignal) {
        match signal {
            RunSignal::Ready(by) if live.gate == Gate::Ready => self.became_ready(live, by),
            RunSignal::Listening if live.gate == Gate::Listening => {
                self.became_ready(live, "listening");
            }
            RunSignal::Ready(_) | RunSignal::Listening => {}
            RunSignal::Status(text) => self.reporter.status_text(text),
            RunSignal::Watchdog => {
                live.watchdog_at = self
                    .spec
                    .ready
                    .watchdog_ms
                    .map(|ms| Instant::now() + std::time::Duration::from_millis(ms));
            }
            RunSignal::Stopping => self.reporter.status_text("stopping".to_owned()),
            RunSignal::Message(packet) => self.reporter.message(packet),
            RunSignal::ListenRequest { port, host } => self.give_socket(live, port, host),
            RunSignal::Health(status) => {
                if status.failures >= self.spec.health.retries {
                    live.unhealthy = Some(RestartReason::Health {
                        failures: status.failures,
                        last: status.last.clone().unwrap_or_default(),
                    });
                }
                self.reporter.health(status);
            }
        }
    }

    /// From now on the run counts as up: its health checks begin.
    pub(super) fn check_health_from_now(&self, live: &mut Live) {
        live.links.start_health(&self.spec);
    }

    /// Marks the run ready (once): `online` if it was `launching`, and a waiting reload
    /// is answered.
    pub(super) fn became_ready(&mut self, live: &mut Live, by: &str) {
        if live.ready_by.take().is_none() {
            return;
        }
        tracing::debug!(id = self.id, by, "ready");
        if live.gate != Gate::None {
            self.reporter.ready();
        }
        self.check_health_from_now(live);
        self.answer_reload(None);
    }

    /// Not ready in time: PM2 then takes it as ready; with `ready_strict` it is stopped and
    /// the instance is errored, saying why. `Some` when the run is over.
    pub(super) async fn on_ready_timeout(
        &mut self,
        live: &mut Live,
        commands: &mut mpsc::Receiver<AppCommand>,
    ) -> Option<Next> {
        let timeout = self.spec.ready.timeout_ms;
        if !(self.spec.ready.strict && live.gate == Gate::Ready) {
            tracing::info!(id = self.id, timeout, "not ready in time; taken as ready");
            self.became_ready(live, "listen_timeout");
            return None;
        }
        let error = format!("not ready within {timeout} ms (ready_strict)");
        tracing::warn!(id = self.id, %error, "stopping it");
        self.answer_reload(Some(error.clone()));
        // Told with the first report of the stop: `start` decides on the first report
        // that is not `launching`.
        self.reporter.set_error(Some(error));
        let last = self.stop(live, Some(AppCommand::Stop), commands).await;
        if last != Some(AppCommand::Stop) {
            return Some(self.after_stop(last));
        }
        self.settle(ProcessStatus::Errored);
        Some(Next::Idle)
    }

    /// No `WATCHDOG=1` in time: restarted, as systemd does, with reason `watchdog`.
    pub(super) async fn on_watchdog_missed(
        &mut self,
        live: &mut Live,
        commands: &mut mpsc::Receiver<AppCommand>,
    ) -> Next {
        let timeout_ms = self.spec.ready.watchdog_ms.unwrap_or_default();
        self.restart_for(live, RestartReason::Watchdog { timeout_ms }, commands)
            .await
    }

    /// The spawner restarts the run itself (watchdog, health), saying why.
    pub(super) async fn restart_for(
        &mut self,
        live: &mut Live,
        reason: RestartReason,
        commands: &mut mpsc::Receiver<AppCommand>,
    ) -> Next {
        tracing::warn!(id = self.id, ?reason, "restarting");
        let last = self.stop(live, Some(AppCommand::Restart), commands).await;
        if last == Some(AppCommand::Restart) {
            return self.relaunch(Some(reason));
        }
        self.after_stop(last)
    }

    /// `zpm msg`: the value, one JSON line, to the app's `process.on('message')`.
    pub(super) fn to_ipc(&self, live: &Live, json: &str) {
        let Some(ipc) = &live.links.ipc else {
            tracing::info!(
                id = self.id,
                "zpm msg: the app has no IPC channel (not Node)"
            );
            return;
        };
        match serde_json::from_str::<serde_json::Value>(json) {
            Ok(value) if ipc.send_json(&value) => {}
            Ok(_) => tracing::info!(id = self.id, "zpm msg: the app's channel is full or closed"),
            Err(e) => tracing::warn!(id = self.id, error = %e, "zpm msg: not JSON"),
        }
    }

    /// The Node preload module asks for a socket (cluster mode): bind it once for the app,
    /// and pass it along Node's own handle message.
    fn give_socket(&self, live: &Live, port: u16, host: Option<String>) {
        let Some(ipc) = &live.links.ipc else { return };
        let answer = json!({"cmd": "NODE_ZPM_SOCKET", "port": port, "host": host});
        if self.spec.exec_mode != zpm_proto::ready::ExecMode::Cluster {
            let mut refusal = answer;
            refusal["error"] = json!("zpm binds ports for Node apps in cluster mode only");
            ipc.send_json(&refusal);
            return;
        }
        let addr = requested_addr(port, host.as_deref());
        match self
            .shared
            .sockets
            .dynamic(&app_key(&self.spec), self.id, &addr)
        {
            Ok(listener) => {
                let message = json!({"cmd": "NODE_HANDLE", "type": "net.Native", "msg": answer});
                ipc.send_with_fd(&message, listener.fd);
            }
            Err(e) => {
                let mut refusal = answer;
                refusal["error"] = json!(e);
                refusal["code"] = json!(if e.contains("in use") {
                    "EADDRINUSE"
                } else {
                    "EACCES"
                });
                ipc.send_json(&refusal);
            }
        }
    }
}

/// `listen(port)` and `listen(port, '::')` mean every interface, as in Node.
fn requested_addr(port: u16, host: Option<&str>) -> ListenAddr {
    let specific = host
        .filter(|h| !matches!(*h, "" | "::" | "0.0.0.0"))
        .map(|h| if h == "localhost" { "127.0.0.1" } else { h })
        .and_then(|h| h.parse::<std::net::IpAddr>().ok());
    match specific {
        Some(ip) => ListenAddr::Tcp(std::net::SocketAddr::new(ip, port)),
        None => ListenAddr::AnyTcp { port },
    }
}

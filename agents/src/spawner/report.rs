//! What supervisors tell God: the latest state of their app (`proc.report`) and what
//! happened (`process:event` on the bus). Never blocks a supervisor: if the queue to God
//! is full (God down for long), the message is dropped and counted — reports are
//! idempotent and the full state is re-sent with every hello.

use super::child::Exit;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::mpsc;
use zpm_proto::{ProcessEvent, ProcessEventKind, ProcessReport, ProcessStatus};

/// The next report sequence number. Starts at this process's start time in µs, so a
/// replacement spawner's reports are always newer than its predecessor's.
pub fn next_seq() -> u64 {
    static NEXT: std::sync::OnceLock<AtomicU64> = std::sync::OnceLock::new();
    NEXT.get_or_init(|| {
        let micros = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_micros() as u64);
        AtomicU64::new(micros)
    })
    .fetch_add(1, Ordering::Relaxed)
}

pub enum Outbound {
    /// A new app instance: what a God that lost its state needs to adopt it.
    Hold(Box<zpm_proto::commands::Held>),
    Report(ProcessReport),
    Event(ProcessEvent),
    /// The app was deleted: stop re-announcing it.
    Forget(u32),
    /// How a `proc.reload` ended.
    Reloaded(zpm_proto::commands::Reloaded),
    /// A `process:msg` the app sent.
    Message(AppMessage),
    /// Watched files changed: God reloads the app (`proc.changed`).
    Changed(zpm_proto::commands::Changed),
}

/// Body of a `process:msg` bus event: PM2's packet (`{type, data, topic…}`) and who sent it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AppMessage {
    pub id: u32,
    pub name: String,
    pub pid: Option<u32>,
    pub data: serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic: Option<serde_json::Value>,
}

pub struct Reporter {
    name: String,
    out: mpsc::Sender<Outbound>,
    dropped: Arc<AtomicU64>,
    current: ProcessReport,
}

impl Reporter {
    pub fn new(
        id: u32,
        name: &str,
        restarts: u32,
        out: mpsc::Sender<Outbound>,
        dropped: Arc<AtomicU64>,
    ) -> Self {
        Self {
            name: name.to_owned(),
            out,
            dropped,
            current: ProcessReport {
                id,
                status: ProcessStatus::Launching,
                pid: None,
                restarts,
                started_at_ms: None,
                exit_code: None,
                signal: None,
                seq: 0,
                error: None,
                reason: None,
                status_text: None,
                health: None,
            },
        }
    }

    /// Announces a new instance with its spec (sent once, before any report).
    pub fn hold(&self, instance: u32, spec: &zpm_proto::AppSpec) {
        self.send(Outbound::Hold(Box::new(zpm_proto::commands::Held {
            report: self.current.clone(),
            instance,
            spec: spec.clone(),
        })));
    }

    fn send(&self, mut message: Outbound) {
        if let Outbound::Report(report) = &mut message {
            report.seq = next_seq();
        }
        if self.out.try_send(message).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A new run exists: `online`, or `launching` until it is ready (`gated`).
    pub fn launched(&mut self, pid: u32, restarts: u32, started_at_ms: u64, gated: bool) {
        self.current.status = if gated {
            ProcessStatus::Launching
        } else {
            ProcessStatus::Online
        };
        self.current.pid = Some(pid);
        self.current.restarts = restarts;
        self.current.started_at_ms = Some(started_at_ms);
        self.current.error = None;
        self.current.status_text = None;
        self.current.health = None;
        self.send(Outbound::Report(self.current.clone()));
        self.event(ProcessEventKind::Start, None, None);
        if !gated {
            self.event(ProcessEventKind::Online, None, None);
        }
        // Told once, with the report of the run it explains.
        self.current.reason = None;
    }

    /// The run said it is ready.
    pub fn ready(&mut self) {
        self.current.status = ProcessStatus::Online;
        self.send(Outbound::Report(self.current.clone()));
        self.event(ProcessEventKind::Online, None, None);
    }

    /// Why the next run replaces the current one (sent with its first report).
    pub fn set_reason(&mut self, reason: Option<zpm_proto::RestartReason>) {
        self.current.reason = reason;
    }

    /// Why the launch failed, shown by `ls --json`/`describe` and used by `start`.
    pub fn set_error(&mut self, error: Option<String>) {
        self.current.error = error;
    }

    /// What its health checks found.
    pub fn health(&mut self, status: zpm_proto::health::HealthStatus) {
        self.current.health = Some(status);
        self.send(Outbound::Report(self.current.clone()));
    }

    /// The app's sd_notify `STATUS=`.
    pub fn status_text(&mut self, text: String) {
        if self.current.status_text.as_deref() != Some(text.as_str()) {
            self.current.status_text = Some(text);
            self.send(Outbound::Report(self.current.clone()));
        }
    }

    /// Watched files of this ready-gated app changed: God is asked to reload it.
    pub fn changed(&self, path: String) {
        let id = self.current.id;
        self.send(Outbound::Changed(zpm_proto::commands::Changed { id, path }));
    }

    pub fn reloaded(&self, token: u64, error: Option<String>) {
        self.send(Outbound::Reloaded(zpm_proto::commands::Reloaded {
            id: self.current.id,
            token,
            error,
        }));
    }

    /// A PM2 `process:msg` packet from the app, for the bus.
    pub fn message(&self, packet: serde_json::Value) {
        let topic = packet.get("topic").cloned();
        let data = packet
            .get("data")
            .cloned()
            .unwrap_or(serde_json::Value::Null);
        self.send(Outbound::Message(AppMessage {
            id: self.current.id,
            name: self.name.clone(),
            pid: self.current.pid,
            data,
            topic,
        }));
    }

    /// Reports a status; the pid is kept only while the process still runs (stopping).
    pub fn status(&mut self, status: ProcessStatus) {
        self.current.status = status;
        if status != ProcessStatus::Stopping {
            self.current.pid = None;
            self.current.started_at_ms = None;
        }
        self.send(Outbound::Report(self.current.clone()));
        match status {
            ProcessStatus::Stopped => self.event(ProcessEventKind::Stop, None, None),
            ProcessStatus::Errored => self.event(ProcessEventKind::Errored, None, None),
            _ => {}
        }
    }

    pub fn status_again(&self) {
        self.send(Outbound::Report(self.current.clone()));
    }

    pub fn set_restarts(&mut self, restarts: u32) {
        self.current.restarts = restarts;
    }

    pub fn set_exit(&mut self, exit: Exit) {
        self.current.exit_code = exit.code;
        self.current.signal = exit.signal;
    }

    pub fn event(&self, kind: ProcessEventKind, exit_code: Option<i32>, signal: Option<String>) {
        self.send(Outbound::Event(ProcessEvent {
            event: kind,
            id: self.current.id,
            name: self.name.clone(),
            pid: self.current.pid,
            exit_code,
            signal,
        }));
    }

    pub fn forget(&self) {
        self.event(ProcessEventKind::Delete, None, None);
        self.send(Outbound::Forget(self.current.id));
    }
}

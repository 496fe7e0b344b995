//! Everything one run of an app talks to us through besides its output: what it signals
//! (ready, status, watchdog, messages, socket requests) arrives as [`RunSignal`]s on one
//! bounded channel the supervisor reads. Dropping the links ends their tasks and removes
//! the notify socket.

use super::health;
use super::ipc::{self, IpcSender};
use super::{notify, probe};
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use tokio::net::{UnixDatagram, UnixStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use zpm_proto::AppSpec;

/// Signals waiting for the supervisor; an app flooding messages loses the extra ones.
const SIGNALS: usize = 64;

#[derive(Debug, Clone, PartialEq)]
pub enum RunSignal {
    /// Ready, and what said so.
    Ready(&'static str),
    /// sd_notify `STATUS=`.
    Status(String),
    /// sd_notify `WATCHDOG=1`.
    Watchdog,
    /// sd_notify `STOPPING=1`.
    Stopping,
    /// A PM2 `process:msg` packet from the app.
    Message(serde_json::Value),
    /// The Node preload module asks for a socket on this port (cluster mode).
    ListenRequest { port: u16, host: Option<String> },
    /// The Node preload module's server listens on a zpm socket.
    Listening,
    /// What the health checks found, when it changed.
    Health(zpm_proto::health::HealthStatus),
}

/// One run's links, before and after the process exists.
pub struct RunLinks {
    pub signals: mpsc::Receiver<RunSignal>,
    tx: mpsc::Sender<RunSignal>,
    pub ipc: Option<IpcSender>,
    notify: Option<(UnixDatagram, PathBuf)>,
    notify_path: Option<PathBuf>,
    ipc_stream: Option<UnixStream>,
    tasks: Vec<JoinHandle<()>>,
}

/// What the child is given of its links.
pub struct ChildEnds {
    pub ipc: Option<OwnedFd>,
    pub notify_socket: Option<PathBuf>,
}

impl RunLinks {
    /// Creates what must exist before the child does: the notify socket (at
    /// `notify_path`, when the spec asks for sd_notify) and Node's IPC channel (`node`).
    pub fn prepare(
        spec: &AppSpec,
        notify_path: PathBuf,
        node: bool,
    ) -> std::io::Result<(Self, ChildEnds)> {
        let (tx, signals) = mpsc::channel(SIGNALS);
        let notify = if spec.ready.notify() {
            Some((notify::bind(&notify_path)?, notify_path.clone()))
        } else {
            None
        };
        let (ipc_stream, ipc_child) = if node {
            let (ours, theirs) = ipc::pair()?;
            (Some(ours), Some(theirs))
        } else {
            (None, None)
        };
        let ends = ChildEnds {
            ipc: ipc_child,
            notify_socket: notify.as_ref().map(|(_, path)| path.clone()),
        };
        let links = Self {
            signals,
            tx,
            ipc: None,
            notify_path: notify.as_ref().map(|(_, path)| path.clone()),
            notify,
            ipc_stream,
            tasks: Vec::new(),
        };
        Ok((links, ends))
    }

    /// Starts listening to the run whose process (and group) is `pid`, and its probes.
    pub fn start(&mut self, pid: u32, spec: &AppSpec) {
        if let Some((socket, path)) = self.notify.take() {
            self.tasks.push(tokio::spawn(notify::read(
                socket,
                path,
                pid,
                self.tx.clone(),
            )));
        }
        if let Some(stream) = self.ipc_stream.take() {
            let (sender, tasks) = ipc::start(stream, self.tx.clone());
            self.ipc = Some(sender);
            self.tasks.extend(tasks);
        }
        if spec.ready.has_probe() {
            self.tasks
                .extend(probe::start(&spec.ready, &probe_context(spec), &self.tx));
        }
    }

    /// Starts the health checks of `spec`, if any (once the run is ready).
    pub fn start_health(&mut self, spec: &AppSpec) {
        let health = &spec.health;
        let checks = probe::Check::configured(
            "health",
            health.http.as_deref(),
            health.tcp.as_deref(),
            health.cmd.as_deref(),
            &probe_context(spec),
        );
        if !checks.is_empty() {
            let watch = health::watch(checks, health.clone(), self.tx.clone());
            self.tasks.push(tokio::spawn(watch));
        }
    }

    /// The output watcher for `ready_log`, if the spec has one.
    pub fn line_watch(&self, spec: &AppSpec) -> Option<LineWatch> {
        let pattern = spec.ready.log.as_deref()?;
        let regex = zpm_proto::validate::ready_log(pattern).ok()?;
        Some(LineWatch {
            regex,
            partial: Vec::new(),
            signals: self.tx.clone(),
        })
    }
}

fn probe_context(spec: &AppSpec) -> std::sync::Arc<probe::ProbeContext> {
    std::sync::Arc::new(probe::ProbeContext {
        cwd: spec.cwd.clone(),
        env: spec.env.clone(),
    })
}

impl Drop for RunLinks {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        if let Some(path) = &self.notify_path {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Longest output line `ready_log` looks at; the rest of a longer line is not matched.
const MAX_WATCHED_LINE: usize = 8 * 1024;

/// Matches an app's output lines against `ready_log` until one matches.
pub struct LineWatch {
    regex: regex::Regex,
    partial: Vec<u8>,
    signals: mpsc::Sender<RunSignal>,
}

impl LineWatch {
    /// Looks at more output; true once a line matched (the watch is then done).
    pub fn feed(&mut self, mut bytes: &[u8]) -> bool {
        loop {
            let end = memchr::memchr(b'\n', bytes);
            let take = end.unwrap_or(bytes.len());
            let room = MAX_WATCHED_LINE.saturating_sub(self.partial.len());
            self.partial.extend_from_slice(&bytes[..take.min(room)]);
            let Some(end) = end else { return false };
            let line = String::from_utf8_lossy(&self.partial).into_owned();
            self.partial.clear();
            if self.regex.is_match(line.trim_end_matches('\r')) {
                let _ = self.signals.try_send(RunSignal::Ready("ready_log"));
                return true;
            }
            bytes = &bytes[end + 1..];
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_line_split_across_reads_matches_once_complete() {
        let (tx, mut rx) = mpsc::channel(4);
        let mut watch = LineWatch {
            regex: regex::Regex::new("^listening on \\d+$").unwrap(),
            partial: Vec::new(),
            signals: tx,
        };
        assert!(!watch.feed(b"booting\nlisten"));
        assert!(!watch.feed(b"ing on 80"));
        assert!(rx.try_recv().is_err());
        assert!(watch.feed(b"00\r\nmore"));
        assert_eq!(rx.try_recv().unwrap(), RunSignal::Ready("ready_log"));
    }
}

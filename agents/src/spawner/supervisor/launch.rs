//! Starting one run of an app: its shared sockets, its links (sd_notify, Node IPC,
//! probes), the process, its output pumps; and what "ready" means for it.

use super::Supervisor;
use crate::spawner::child::{self, Extras, Run};
use crate::spawner::serve::{AppKey, RunLinks};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;
use zpm_proto::ready::ExecMode;
use zpm_proto::{AppSpec, LogStream};

/// What a run must do before it counts as ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Nothing: ready once spawned.
    None,
    /// A Node app in cluster mode without a gate: `launching` until it listens (or
    /// `listen_timeout`, then taken as ready), so `start` returns once it serves.
    Listening,
    /// `wait_ready` or a probe: `launching` until ready.
    Ready,
}

impl Gate {
    pub fn of(spec: &AppSpec) -> Self {
        if spec.ready.gated() {
            Self::Ready
        } else if child::is_node(&spec.argv) && cluster(spec) {
            Self::Listening
        } else {
            Self::None
        }
    }
}

/// A Node app gets the preload module in cluster mode or when zpm holds its sockets.
fn cluster(spec: &AppSpec) -> bool {
    spec.exec_mode == ExecMode::Cluster || !spec.listen.is_empty()
}

/// True if two runs of the app can serve side by side (God's `app.apply` plan names a
/// change of such an app a reload, of any other a restart, by the same rule).
pub fn overlaps(spec: &AppSpec) -> bool {
    spec.reload_overlaps()
}

/// A running process with its links and deadlines.
pub struct Live {
    pub run: Run,
    pub links: RunLinks,
    pub gate: Gate,
    /// Until when it may still become ready; `None` once it is.
    pub ready_by: Option<Instant>,
    /// When it must have sent `WATCHDOG=1` again.
    pub watchdog_at: Option<Instant>,
    /// Its sd_notify `STATUS=` while it is a replacement, not yet the instance's run.
    pub status_text: Option<String>,
    /// Its health checks failed `retries` times in a row: to be restarted, for this.
    pub unhealthy: Option<zpm_proto::RestartReason>,
}

impl Live {
    pub fn is_ready(&self) -> bool {
        self.ready_by.is_none()
    }
}

/// Makes notify socket names unique across runs of one id (a reload overlaps two).
fn next_run_number() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

pub fn app_key(spec: &AppSpec) -> AppKey {
    (spec.namespace.clone(), spec.name.clone())
}

impl Supervisor {
    /// Starts a run of `self.spec`; the error is what a user needs to fix it.
    pub(super) fn start_run(&mut self) -> Result<Live, String> {
        let spec = &self.spec;
        let listeners =
            self.shared
                .sockets
                .acquire(&app_key(spec), self.id, &spec.listen_addrs())?;
        let node = child::is_node(&spec.argv);
        let notify_path = self
            .shared
            .notify_dir
            .join(format!("{}.{}", self.id, next_run_number()));
        let (mut links, ends) = RunLinks::prepare(spec, notify_path, node)
            .map_err(|e| format!("cannot prepare the app's channels: {e}"))?;
        let preload = (node && cluster(spec)).then_some(self.shared.node_preload.as_path());
        let extras = Extras {
            listeners: &listeners,
            ipc: ends.ipc,
            notify_socket: ends.notify_socket.as_deref(),
            node_preload: preload,
        };
        let plan = child::plan(spec, self.id, self.instance, extras)
            .map_err(|e| format!("cannot prepare the app's descriptors: {e}"))?;
        let spawned = {
            let mut leaders = self.shared.leaders.lock();
            let spawned = child::spawn(plan, &spec.cwd);
            if let Ok(s) = &spawned {
                leaders.insert(s.run.pid);
            }
            spawned
        };
        let mut spawned = spawned.map_err(|e| {
            format!(
                "cannot start {:?}: {e}",
                spec.argv.first().map_or("", String::as_str)
            )
        })?;
        for (stream, pipe) in [
            (LogStream::Out, spawned.stdout.take().map(Pipe::Out)),
            (LogStream::Err, spawned.stderr.take().map(Pipe::Err)),
        ] {
            let watch = links.line_watch(spec);
            let logs = Arc::clone(&self.shared.logs);
            match pipe {
                Some(Pipe::Out(out)) => drop(tokio::spawn(logs.pump(self.id, stream, out, watch))),
                Some(Pipe::Err(err)) => drop(tokio::spawn(logs.pump(self.id, stream, err, watch))),
                None => {}
            }
        }
        let run = spawned.run;
        self.shared.record.started(run.pid);
        links.start(run.pid, spec);
        let gate = Gate::of(spec);
        let now = Instant::now();
        Ok(Live {
            ready_by: (gate != Gate::None)
                .then(|| now + Duration::from_millis(spec.ready.timeout_ms)),
            watchdog_at: spec
                .ready
                .watchdog_ms
                .map(|ms| now + Duration::from_millis(ms)),
            run,
            links,
            gate,
            status_text: None,
            unhealthy: None,
        })
    }
}

enum Pipe {
    Out(tokio::process::ChildStdout),
    Err(tokio::process::ChildStderr),
}

//! One run of an app: spawned as the leader of its own process group with piped output;
//! stopped with its kill signal, then SIGKILL for the whole group after `kill_timeout`.
//! The group never outlives its leader: members still alive after the leader exits get
//! the same treatment, so no grandchild is left behind — even one that ignores SIGTERM.

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::Duration;
use tokio::time::Instant;

mod plan;
pub use plan::{Extras, Plan, is_node, plan};

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exit {
    pub code: Option<i32>,
    /// e.g. `SIGKILL`.
    pub signal: Option<String>,
}

impl Exit {
    fn from_status(status: std::process::ExitStatus) -> Self {
        Self {
            code: status.code(),
            signal: status
                .signal()
                .and_then(|n| Signal::try_from(n).ok())
                .map(|s| s.as_str().to_owned()),
        }
    }

    fn unknown(error: &std::io::Error) -> Self {
        tracing::warn!(%error, "waiting for child failed");
        Self {
            code: None,
            signal: None,
        }
    }
}

/// Parses `SIGTERM`, `TERM`, `sigterm` or a number: the signal table God validates with.
pub use zpm_proto::validate::parse_signal;

/// A running app process and its group.
pub struct Run {
    child: tokio::process::Child,
    pub pid: u32,
    pub started: Instant,
    pub started_at_ms: u64,
    /// Its stdin, for `zpm send`, until the first line is sent.
    pub stdin: Option<tokio::process::ChildStdin>,
    /// Lines waiting to be written to its stdin.
    stdin_lines: Option<tokio::sync::mpsc::Sender<String>>,
}

/// Lines `zpm send` may queue for an app that does not read its stdin.
const STDIN_QUEUE: usize = 16;

/// Writes lines to an app's stdin until it closes it or the run ends.
async fn write_lines(
    mut stdin: tokio::process::ChildStdin,
    mut lines: tokio::sync::mpsc::Receiver<String>,
) {
    use tokio::io::AsyncWriteExt as _;
    while let Some(mut line) = lines.recv().await {
        line.push('\n');
        if stdin.write_all(line.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// What a spawn produced: the run and its output pipes.
pub struct Spawned {
    pub run: Run,
    pub stdout: Option<tokio::process::ChildStdout>,
    pub stderr: Option<tokio::process::ChildStderr>,
}

/// Starts one run of an app as `plan` says, in a new process group, its output piped.
pub fn spawn(plan: Plan, cwd: &str) -> std::io::Result<Spawned> {
    use command_fds::{CommandFdExt as _, FdMapping};
    let Some((program, args)) = plan.argv.split_first() else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "empty argv",
        ));
    };
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .current_dir(cwd)
        .env_clear()
        .envs(&plan.env)
        // Piped, as PM2 does, so `zpm send` can write to it.
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(false);
    let mappings = plan
        .fds
        .into_iter()
        .map(|(parent_fd, child_fd)| FdMapping {
            parent_fd,
            child_fd,
        })
        .collect();
    command
        .fd_mappings(mappings)
        .map_err(|e| std::io::Error::other(format!("placing inherited descriptors: {e}")))?;
    let mut child = command.spawn()?;
    let pid = child
        .id()
        .ok_or_else(|| std::io::Error::other("spawned child has no pid"))?;
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let stdin = child.stdin.take();
    let run = Run {
        child,
        pid,
        started: Instant::now(),
        started_at_ms: zpm_bus::now_ms(),
        stdin,
        stdin_lines: None,
    };
    Ok(Spawned {
        run,
        stdout,
        stderr,
    })
}

impl Run {
    /// Queues `line` for the app's stdin (never waits: a full queue drops it, logged).
    pub fn write_stdin(&mut self, line: String) {
        if self.stdin_lines.is_none()
            && let Some(stdin) = self.stdin.take()
        {
            let (tx, rx) = tokio::sync::mpsc::channel(STDIN_QUEUE);
            tokio::spawn(write_lines(stdin, rx));
            self.stdin_lines = Some(tx);
        }
        match &self.stdin_lines {
            Some(lines) if lines.try_send(line).is_ok() => {}
            _ => tracing::info!(
                pid = self.pid,
                "zpm send: the app's stdin is closed or not read"
            ),
        }
    }

    fn group(&self) -> Pid {
        Pid::from_raw(self.pid.cast_signed())
    }

    /// Waits for the leader to exit. Cancel-safe.
    pub async fn wait(&mut self) -> Exit {
        match self.child.wait().await {
            Ok(status) => Exit::from_status(status),
            Err(e) => Exit::unknown(&e),
        }
    }

    pub fn signal(&self, signal: Signal) {
        if let Err(e) = killpg(self.group(), signal) {
            tracing::debug!(pid = self.pid, %signal, error = %e, "signal not delivered");
        }
    }

    /// Waits for the leader until `deadline`, then SIGKILLs the group and waits for good.
    /// Cancel-safe: a caller may give up early and call it again (e.g. with a nearer deadline).
    pub async fn wait_or_kill(&mut self, deadline: Instant) -> Exit {
        match tokio::time::timeout_at(deadline, self.wait()).await {
            Ok(exit) => exit,
            Err(_) => {
                self.signal(Signal::SIGKILL);
                self.wait().await
            }
        }
    }

    /// After the leader of a stopped run exited: ends the rest of its group, SIGKILL at
    /// `deadline`.
    pub async fn clear_group(&self, deadline: Instant) {
        clear_group(self.group(), deadline).await;
    }

    /// After the leader exited by itself: ends what it left behind in its group.
    pub async fn clear_leftovers(&self, signal: Signal, timeout: Duration) {
        if live_members(self.group()) {
            self.signal(signal);
            clear_group(self.group(), Instant::now() + timeout).await;
        }
    }
}

/// Waits (bounded) for the group's remaining members to exit, then SIGKILLs the rest.
async fn clear_group(pgid: Pid, deadline: Instant) {
    while live_members(pgid) {
        if Instant::now() >= deadline {
            let _ = killpg(pgid, Signal::SIGKILL);
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// True if any process of group `pgid` is alive (zombies do not count).
pub fn live_members(pgid: Pid) -> bool {
    zpm_host::procfs::group_alive(pgid.as_raw().cast_unsigned())
}

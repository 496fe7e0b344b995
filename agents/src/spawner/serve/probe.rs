//! Checks of a running app — GET of an `http://` URL (2xx), a TCP connect, a shell command
//! (exit 0) — and the readiness probes built on them: each probe tries every
//! [`INTERVAL`], one attempt at a time (never piling up), each attempt bounded by
//! [`ATTEMPT`], until it succeeds or the run's links are dropped. Health checks
//! (`health.rs`) run the same checks on their own schedule.

use super::links::RunSignal;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use zpm_proto::ready::{HttpUrl, Readiness, tcp_target};

const INTERVAL: Duration = Duration::from_millis(100);
const ATTEMPT: Duration = Duration::from_secs(2);

/// What a check needs of the app: where its command runs and with what environment.
pub struct ProbeContext {
    pub cwd: String,
    pub env: BTreeMap<String, String>,
}

/// One way of looking at a running app.
pub enum Check {
    Http(HttpUrl),
    Tcp(String, u16),
    Cmd {
        cmd: String,
        context: Arc<ProbeContext>,
    },
}

impl Check {
    /// The checks configured by these keys (`http`, `tcp`, `cmd` of `ready` or `health`,
    /// named `{prefix}_http`…); ones that do not parse were refused by validation.
    pub fn configured(
        prefix: &str,
        http: Option<&str>,
        tcp: Option<&str>,
        cmd: Option<&str>,
        context: &Arc<ProbeContext>,
    ) -> Vec<Self> {
        let http = http.and_then(|u| HttpUrl::parse(&format!("{prefix}_http"), u).ok());
        let tcp = tcp.and_then(|t| tcp_target(&format!("{prefix}_tcp"), t).ok());
        let cmd = cmd.map(|cmd| Self::Cmd {
            cmd: cmd.to_owned(),
            context: Arc::clone(context),
        });
        http.map(Self::Http)
            .into_iter()
            .chain(tcp.map(|(host, port)| Self::Tcp(host, port)))
            .chain(cmd)
            .collect()
    }

    /// `http`, `tcp` or `cmd`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Http(_) => "http",
            Self::Tcp(..) => "tcp",
            Self::Cmd { .. } => "cmd",
        }
    }

    /// One attempt (unbounded: callers put a timeout around it).
    pub async fn passes(&self) -> bool {
        match self {
            Self::Http(url) => http_ok(url).await,
            Self::Tcp(host, port) => TcpStream::connect((host.as_str(), *port)).await.is_ok(),
            Self::Cmd { cmd, context } => cmd_ok(cmd, context).await,
        }
    }
}

/// Starts a task per readiness probe of `ready`.
pub fn start(
    ready: &Readiness,
    context: &Arc<ProbeContext>,
    signals: &mpsc::Sender<RunSignal>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let checks = Check::configured(
        "ready",
        ready.http.as_deref(),
        ready.tcp.as_deref(),
        ready.cmd.as_deref(),
        context,
    );
    checks
        .into_iter()
        .map(|check| tokio::spawn(repeat(check, signals.clone())))
        .collect()
}

async fn repeat(check: Check, signals: mpsc::Sender<RunSignal>) {
    let name = match check.kind() {
        "http" => "ready_http",
        "tcp" => "ready_tcp",
        _ => "ready_cmd",
    };
    loop {
        if tokio::time::timeout(ATTEMPT, check.passes()).await == Ok(true) {
            let _ = signals.send(RunSignal::Ready(name)).await;
            return;
        }
        if signals.is_closed() {
            return;
        }
        tokio::time::sleep(INTERVAL).await;
    }
}

async fn http_ok(url: &HttpUrl) -> bool {
    let Ok(stream) = TcpStream::connect((url.host.as_str(), url.port)).await else {
        return false;
    };
    let io = hyper_util::rt::TokioIo::new(stream);
    let Ok((mut sender, connection)) = hyper::client::conn::http1::handshake::<_, String>(io).await
    else {
        return false;
    };
    let driver = tokio::spawn(connection);
    let host = if url.host.contains(':') {
        format!("[{}]:{}", url.host, url.port)
    } else {
        format!("{}:{}", url.host, url.port)
    };
    let Ok(request) = hyper::Request::get(url.path.as_str())
        .header(hyper::header::HOST, host)
        .body(String::new())
    else {
        driver.abort();
        return false;
    };
    let ok = sender
        .send_request(request)
        .await
        .is_ok_and(|r| r.status().is_success());
    driver.abort();
    ok
}

async fn cmd_ok(cmd: &str, context: &ProbeContext) -> bool {
    let child = tokio::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(cmd)
        .current_dir(&context.cwd)
        .env_clear()
        .envs(&context.env)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .kill_on_drop(true)
        .spawn();
    let Ok(mut child) = child else { return false };
    let guard = KillGroup(child.id());
    let ok = child.wait().await.is_ok_and(|s| s.success());
    drop(guard);
    ok
}

/// A check command timed out (its future dropped) or finished: nothing of its group stays.
struct KillGroup(Option<u32>);

impl Drop for KillGroup {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid.cast_signed()),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

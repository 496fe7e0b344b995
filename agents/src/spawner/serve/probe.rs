//! Readiness probes: `ready_http` (GET, 2xx), `ready_tcp` (accepts), `ready_cmd` (exits 0).
//! Each tries every [`INTERVAL`], one attempt at a time (never piling up), each attempt
//! bounded by [`ATTEMPT`], until it succeeds or the run's links are dropped.

use super::links::RunSignal;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use zpm_proto::ready::{HttpUrl, Readiness, tcp_target};

const INTERVAL: Duration = Duration::from_millis(100);
const ATTEMPT: Duration = Duration::from_secs(2);

/// What a probe needs of the app: where its command runs and with what environment.
pub struct ProbeContext {
    pub cwd: String,
    pub env: BTreeMap<String, String>,
}

/// Starts a task per probe of `ready`.
pub fn start(
    ready: &Readiness,
    context: &ProbeContext,
    signals: &mpsc::Sender<RunSignal>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    if let Some(url) = ready.http.as_deref().and_then(|u| HttpUrl::parse("ready_http", u).ok()) {
        tasks.push(tokio::spawn(repeat(
            "ready_http",
            signals.clone(),
            move || http_ok(url.clone()),
        )));
    }
    if let Some((host, port)) = ready.tcp.as_deref().and_then(|t| tcp_target("ready_tcp", t).ok()) {
        tasks.push(tokio::spawn(repeat(
            "ready_tcp",
            signals.clone(),
            move || tcp_ok(host.clone(), port),
        )));
    }
    if let Some(cmd) = ready.cmd.clone() {
        let (cwd, env) = (context.cwd.clone(), context.env.clone());
        tasks.push(tokio::spawn(repeat(
            "ready_cmd",
            signals.clone(),
            move || cmd_ok(cmd.clone(), cwd.clone(), env.clone()),
        )));
    }
    tasks
}

async fn repeat<F, Fut>(name: &'static str, signals: mpsc::Sender<RunSignal>, attempt: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = bool>,
{
    loop {
        if tokio::time::timeout(ATTEMPT, attempt()).await == Ok(true) {
            let _ = signals.send(RunSignal::Ready(name)).await;
            return;
        }
        if signals.is_closed() {
            return;
        }
        tokio::time::sleep(INTERVAL).await;
    }
}

async fn tcp_ok(host: String, port: u16) -> bool {
    TcpStream::connect((host.as_str(), port)).await.is_ok()
}

async fn http_ok(url: HttpUrl) -> bool {
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

async fn cmd_ok(cmd: String, cwd: String, env: BTreeMap<String, String>) -> bool {
    let child = tokio::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(&cmd)
        .current_dir(&cwd)
        .env_clear()
        .envs(&env)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .kill_on_drop(true)
        .spawn();
    let Ok(mut child) = child else { return false };
    let pid = child.id();
    let guard = KillGroup(pid);
    let ok = child.wait().await.is_ok_and(|s| s.success());
    drop(guard);
    ok
}

/// A probe command timed out (its future dropped) or finished: nothing of its group stays.
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

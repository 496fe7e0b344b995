//! Reaching God: connect, and launch the daemon first when nobody listens — like PM2,
//! any command that needs the daemon starts it. Readiness is polled with a deadline.

use anyhow::{Context as _, bail};
use std::time::Duration;
use tokio::time::Instant;
use zpm_host::home::Home;
use zpm_host::launch::daemon_command;
use zpm_proto::method::god;
use zpm_proto::{PROTOCOL_VERSION, Pong};
use zpm_rpc::{CallError, Client, ClientOptions, NoParams};

const READY_WITHIN: Duration = Duration::from_secs(15);
const PING_TIMEOUT: Duration = Duration::from_millis(500);

/// True if something accepts connections on God's rpc socket.
pub fn god_listening(home: &Home) -> bool {
    std::os::unix::net::UnixStream::connect(home.rpc_socket()).is_ok()
}

pub fn client(home: &Home) -> Client {
    let options = ClientOptions {
        version: PROTOCOL_VERSION,
        connect_attempt: Duration::from_millis(100),
        ..ClientOptions::default()
    };
    Client::with_options(&home.rpc_endpoint(), options)
}

/// A client connected to a God that answers `ping`, launching the daemon if needed.
pub async fn ensure_daemon(home: &Home) -> anyhow::Result<(Client, Pong)> {
    if !god_listening(home) {
        launch_daemon(home)?;
    }
    let client = client(home);
    let pong = wait_ready(&client).await?;
    for warning in &pong.warnings {
        eprintln!("zpm: warning: {warning}");
    }
    Ok((client, pong))
}

fn launch_daemon(home: &Home) -> anyhow::Result<()> {
    // A daemon that cannot read its configuration (or its key) would only say so in its log.
    crate::remote::god_listen(home, None, None)?;
    let exe = std::env::current_exe().context("finding the zpm executable")?;
    daemon_command(&exe, home, &["daemon"], &home.daemon_log())
        .with_context(|| format!("opening {}", home.daemon_log().display()))?
        .spawn()
        .context("launching the zpm daemon")?;
    Ok(())
}

async fn wait_ready(client: &Client) -> anyhow::Result<Pong> {
    let deadline = Instant::now() + READY_WITHIN;
    loop {
        match client
            .call_method::<god::Ping>(&NoParams {}, PING_TIMEOUT)
            .await
        {
            Ok(pong) => return Ok(pong),
            Err(CallError::Remote(e)) => bail!("daemon refused ping: {e}"),
            Err(e) if Instant::now() >= deadline => {
                bail!(
                    "the zpm daemon did not answer within {READY_WITHIN:?} (last error: {e}); see daemon.log in its ZPM_HOME"
                )
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
}

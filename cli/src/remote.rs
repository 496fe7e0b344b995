//! zpm across hosts, from the command line's side: which TCP address and key God serves
//! other hosts with (`zpm daemon --listen`, `listen` in config.toml), and which God a
//! command talks to (`--connect`/`ZPM_CONNECT`).

use crate::cli::{Command, RemoteArgs};
use anyhow::{Context as _, bail};
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};
use zpm_agents::remote::{RemoteGod, expose_god};
use zpm_host::config::Config;
use zpm_host::home::Home;
use zpm_tunnel::Key;

/// The key at `given`, else `$ZPM_HOME/key` if it exists; `None` if neither.
pub fn key_path(given: Option<PathBuf>, home: &Home) -> Option<PathBuf> {
    given.or_else(|| Some(home.key_file()).filter(|p| p.exists()))
}

fn load_key(path: &Path) -> anyhow::Result<Key> {
    Key::load(path).with_context(|| format!("loading the tunnel key {}", path.display()))
}

/// What God should listen on for other hosts: the flags, else config.toml. A TCP address
/// without a key is refused, naming both ways to give one.
pub fn god_listen(
    home: &Home,
    listen: Option<String>,
    key_file: Option<PathBuf>,
) -> anyhow::Result<Option<zpm_god::Listen>> {
    let config = Config::load(&home.config_file())?;
    let Some(endpoint) = listen.or(config.listen) else {
        return Ok(None);
    };
    zpm_tunnel::tcp_address(&endpoint)?;
    let Some(path) = key_path(key_file.or(config.key_file), home) else {
        bail!(
            "refusing to listen on {endpoint} without a key: give --key-file FILE (or key_file \
             in {}), or create {} with `zpm keygen`",
            home.config_file().display(),
            home.key_file().display()
        );
    };
    Ok(Some(zpm_god::Listen {
        endpoint,
        key: load_key(&path)?,
        key_file: path,
    }))
}

/// The God named by `--connect`/`ZPM_CONNECT`, with its key; `None` for this host's.
pub fn remote_god(args: &RemoteArgs, home: &Home) -> anyhow::Result<Option<RemoteGod>> {
    let Some(endpoint) = &args.connect else {
        return Ok(None);
    };
    let Some(path) = key_path(args.key_file.clone(), home) else {
        bail!(
            "--connect {endpoint} needs the tunnel key: give --key-file FILE (or ZPM_KEY_FILE), \
             or copy God's key to {}",
            home.key_file().display()
        );
    };
    let god = RemoteGod::new(endpoint, load_key(&path)?)?;
    Ok(Some(god))
}

/// Runs a verb against a remote God: its endpoints are exposed in a private temporary
/// directory for the length of the command, and the verb talks to them as to a local God.
pub async fn run(command: Command, god: &RemoteGod) -> anyhow::Result<()> {
    god.check().await?;
    let dir = tempfile::Builder::new()
        .prefix("zpm-remote")
        .tempdir()
        .context("creating a private directory for the tunnel's local ends")?;
    let _exposed = expose_god(dir.path(), god)
        .with_context(|| format!("exposing {} locally", god.endpoint))?;
    crate::verbs::run(command, &Home::new(dir.path()), true)
        .await
        .with_context(|| format!("on the remote God {}", god.endpoint))
}

/// `zpm tunnel`: exposes `god` in `local` until Ctrl-C or SIGTERM.
pub async fn tunnel(local: &str, god: &RemoteGod) -> anyhow::Result<()> {
    god.check().await?;
    let dir = PathBuf::from(local.strip_prefix("ipc://").unwrap_or(local));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    refuse_shared_dir(&dir)?;
    let exposed =
        expose_god(&dir, god).with_context(|| format!("exposing {} locally", god.endpoint))?;
    println!(
        "zpm: {} exposed as {}/rpc.sock and {}/bus.sock; Ctrl-C to stop",
        god.endpoint,
        dir.display(),
        dir.display()
    );
    wait_for_stop().await;
    let stats = exposed.stats.snapshot();
    println!(
        "zpm: tunnel closed after {} connection(s), {} failed handshake(s)",
        stats.connections, stats.handshakes_failed
    );
    Ok(())
}

async fn wait_for_stop() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Whoever can reach a socket in `dir` drives God: the directory must be ours alone.
fn refuse_shared_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt as _;
    let meta = std::fs::metadata(dir).with_context(|| format!("reading {}", dir.display()))?;
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 || meta.uid() != nix::unistd::getuid().as_raw() {
        bail!(
            "{} is not private (mode {mode:04o}): anyone who can open a socket there would \
             drive God; use a directory only you can enter (chmod 700 {})",
            dir.display(),
            dir.display()
        );
    }
    Ok(())
}

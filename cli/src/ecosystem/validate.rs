//! Checks and normalizations of resolved values.

use anyhow::{Context as _, bail};
use std::path::Path;
use std::str::FromStr as _;

/// The canonical form of an existing working directory.
pub(super) fn directory(path: &Path) -> anyhow::Result<String> {
    let canonical = path
        .canonicalize()
        .with_context(|| format!("working directory {} does not exist", path.display()))?;
    if !canonical.is_dir() {
        bail!("working directory {} is not a directory", path.display());
    }
    canonical
        .into_os_string()
        .into_string()
        .map_err(|p| anyhow::anyhow!("working directory {} is not valid UTF-8", p.display()))
}

/// App names are how users address apps: ids are numbers and `all` means every app.
pub(super) fn name(name: &str) -> anyhow::Result<()> {
    if name.is_empty() {
        bail!("the app name is empty");
    }
    if name.bytes().all(|b| b.is_ascii_digit()) {
        bail!("invalid app name {name:?}: a name cannot be only digits (ids are numbers)");
    }
    if name == "all" {
        bail!("invalid app name \"all\": `all` means every app");
    }
    if name.chars().any(char::is_whitespace) {
        bail!("invalid app name {name:?}: a name cannot contain whitespace");
    }
    Ok(())
}

pub(super) fn namespace(namespace: &str) -> anyhow::Result<()> {
    if namespace.is_empty() || namespace.chars().any(char::is_whitespace) {
        bail!("invalid namespace {namespace:?}: it must be non-empty, without whitespace");
    }
    Ok(())
}

/// `TERM`, `sigterm` or `SIGTERM` → `SIGTERM`, if the system knows the signal.
pub(super) fn signal(text: &str) -> anyhow::Result<String> {
    let upper = text.trim().to_ascii_uppercase();
    let full = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    match nix::sys::signal::Signal::from_str(&full) {
        Ok(_) => Ok(full),
        Err(_) => {
            bail!("unknown kill_signal {text:?}: expected a signal name such as SIGINT or TERM")
        }
    }
}

/// 0 (PM2's `max`) = one per CPU; none given = 1.
pub(super) fn instances(instances: Option<u32>) -> u32 {
    match instances {
        None => 1,
        Some(0) => std::thread::available_parallelism()
            .map_or(1, |n| u32::try_from(n.get()).unwrap_or(u32::MAX)),
        Some(n) => n,
    }
}

//! Checks and normalizations of resolved values.

use anyhow::{Context as _, bail};
use std::path::Path;
use zpm_proto::AppSpec;
use zpm_proto::validate as rules;

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

/// The rules God applies too (`zpm_proto::validate`), so the messages are the same.
pub(super) fn name(name: &str) -> anyhow::Result<()> {
    Ok(rules::app_name(name)?)
}

pub(super) fn namespace(namespace: &str) -> anyhow::Result<()> {
    Ok(rules::namespace(namespace)?)
}

/// `TERM`, `sigterm` or `SIGTERM` → `SIGTERM`, if the system knows the signal.
pub(super) fn signal(text: &str) -> anyhow::Result<String> {
    Ok(rules::signal_name("kill_signal", text)?)
}

/// Every rule God checks, on the finished spec.
pub(super) fn spec(spec: &AppSpec) -> anyhow::Result<()> {
    Ok(rules::app_spec(spec)?)
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

//! Timing helpers: wall time of whole commands, medians.

use anyhow::{Context as _, bail};
use std::process::Command;
use std::time::{Duration, Instant};

/// Runs `command` to completion; fails unless it succeeds. Returns its wall time.
pub fn timed(command: &mut Command) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let out = command
        .output()
        .with_context(|| format!("running {command:?}"))?;
    let took = started.elapsed();
    if !out.status.success() {
        bail!(
            "{command:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(took)
}

/// Output of a successful command.
pub fn stdout(command: &mut Command) -> anyhow::Result<String> {
    let out = command
        .output()
        .with_context(|| format!("running {command:?}"))?;
    if !out.status.success() {
        bail!(
            "{command:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8(out.stdout).context("command output is not UTF-8")
}

pub fn median_ms(mut samples: Vec<Duration>) -> f64 {
    samples.sort_unstable();
    samples
        .get(samples.len() / 2)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// Polls `probe` until it yields, at most `limit`.
pub fn poll<T>(
    what: &str,
    limit: Duration,
    mut probe: impl FnMut() -> anyhow::Result<Option<T>>,
) -> anyhow::Result<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(found) = probe()? {
            return Ok(found);
        }
        if Instant::now() >= deadline {
            bail!("timed out after {limit:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

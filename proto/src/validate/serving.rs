//! Rules for how an app serves: shared sockets (`listen`), readiness and per-instance
//! variables. Messages name the key as an ecosystem file writes it.

use super::{Invalid, env_name};
use crate::AppSpec;
use crate::ListenAddr;
use crate::ready::{HttpUrl, Readiness, tcp_target};
use std::collections::BTreeSet;

/// Most sockets one app listens on.
pub const MAX_LISTEN: usize = 16;
/// Longest `ready_cmd`, in bytes.
pub const MAX_READY_CMD_BYTES: usize = 4096;
/// Longest `ready_log` pattern, in bytes.
pub const MAX_READY_LOG_BYTES: usize = 1024;
/// What a compiled `ready_log` pattern may cost in memory.
pub const READY_LOG_SIZE_LIMIT: usize = 1 << 20;
/// Shortest watchdog: below it the check itself would be most of the app's work.
pub const MIN_WATCHDOG_MS: u64 = 100;
/// Shortest `health_interval`: checks more often would be most of the app's work.
pub const MIN_HEALTH_INTERVAL_MS: u64 = 100;
/// Most `health_retries`.
pub const MAX_HEALTH_RETRIES: u32 = 1000;
/// Longest `listen_timeout`, `watchdog_sec`, `health_interval` and `health_timeout`: one day.
pub const MAX_READY_MS: u64 = 24 * 3600 * 1000;

/// `listen`: at most [`MAX_LISTEN`] addresses, each parses, none twice.
pub fn listen(addrs: &[String]) -> Result<Vec<ListenAddr>, Invalid> {
    if addrs.len() > MAX_LISTEN {
        return Err(Invalid::new(format!(
            "invalid listen: {} addresses, at most {MAX_LISTEN}",
            addrs.len()
        )));
    }
    let mut seen = BTreeSet::new();
    let mut parsed = Vec::new();
    for text in addrs {
        let addr: ListenAddr = text.parse().map_err(|e| Invalid::new(format!("{e}")))?;
        if !seen.insert(addr.clone()) {
            return Err(Invalid::new(format!(
                "invalid listen: {addr} is given twice"
            )));
        }
        parsed.push(addr);
    }
    Ok(parsed)
}

/// A `ready_log` pattern: short, and a regex that compiles within [`READY_LOG_SIZE_LIMIT`].
pub fn ready_log(pattern: &str) -> Result<regex::Regex, Invalid> {
    if pattern.is_empty() {
        return Err(Invalid::new(
            "invalid ready_log: an empty pattern matches every line",
        ));
    }
    if pattern.len() > MAX_READY_LOG_BYTES {
        return Err(Invalid::new(format!(
            "invalid ready_log: {} bytes, at most {MAX_READY_LOG_BYTES}",
            pattern.len()
        )));
    }
    regex::RegexBuilder::new(pattern)
        .size_limit(READY_LOG_SIZE_LIMIT)
        .build()
        .map_err(|e| Invalid::new(format!("invalid ready_log {pattern:?}: {e}")))
}

fn ms(field: &str, value: u64, min: u64) -> Result<(), Invalid> {
    if (min..=MAX_READY_MS).contains(&value) {
        return Ok(());
    }
    Err(Invalid::new(format!(
        "invalid {field} {value} ms: expected {min} ms to one day"
    )))
}

/// Every readiness rule: probes parse, timeouts in range, `ready_strict` has a gate.
pub fn readiness(ready: &Readiness) -> Result<(), Invalid> {
    ms("listen_timeout", ready.timeout_ms, 1)?;
    if let Some(watchdog) = ready.watchdog_ms {
        ms("watchdog_sec", watchdog, MIN_WATCHDOG_MS)?;
    }
    if let Some(url) = &ready.http {
        HttpUrl::parse("ready_http", url).map_err(Invalid::new)?;
    }
    if let Some(target) = &ready.tcp {
        tcp_target("ready_tcp", target).map_err(Invalid::new)?;
    }
    if let Some(cmd) = &ready.cmd {
        command("ready_cmd", cmd)?;
    }
    if let Some(pattern) = &ready.log {
        ready_log(pattern)?;
    }
    if ready.strict && !ready.gated() {
        return Err(Invalid::new(
            "ready_strict needs something to wait for: wait_ready or a ready_* probe",
        ));
    }
    Ok(())
}

/// Health checks: each parses, intervals and timeouts in range, at least one retry.
pub fn health(health: &crate::health::Health) -> Result<(), Invalid> {
    if let Some(url) = &health.http {
        HttpUrl::parse("health_http", url).map_err(Invalid::new)?;
    }
    if let Some(target) = &health.tcp {
        tcp_target("health_tcp", target).map_err(Invalid::new)?;
    }
    if let Some(cmd) = &health.cmd {
        command("health_cmd", cmd)?;
    }
    ms(
        "health_interval",
        health.interval_ms,
        MIN_HEALTH_INTERVAL_MS,
    )?;
    ms("health_timeout", health.timeout_ms, 1)?;
    if !(1..=MAX_HEALTH_RETRIES).contains(&health.retries) {
        return Err(Invalid::new(format!(
            "invalid health_retries {}: expected 1 to {MAX_HEALTH_RETRIES}",
            health.retries
        )));
    }
    Ok(())
}

/// A probe's shell command: 1…[`MAX_READY_CMD_BYTES`] bytes, not blank, no NUL.
fn command(field: &str, cmd: &str) -> Result<(), Invalid> {
    if cmd.trim().is_empty() || cmd.len() > MAX_READY_CMD_BYTES || cmd.contains('\0') {
        return Err(Invalid::new(format!(
            "invalid {field}: expected a command of 1 to {MAX_READY_CMD_BYTES} bytes without NUL"
        )));
    }
    Ok(())
}

/// Longest `cron_restart` pattern, in bytes.
pub const MAX_CRON_BYTES: usize = 256;

/// A `cron_restart` schedule: 5 or 6 fields (seconds first), at most [`MAX_CRON_BYTES`].
pub fn cron_restart(pattern: &str) -> Result<croner::Cron, Invalid> {
    if pattern.len() > MAX_CRON_BYTES {
        return Err(Invalid::new(format!(
            "invalid cron_restart: {} bytes, at most {MAX_CRON_BYTES}",
            pattern.len()
        )));
    }
    let fields = pattern.split_whitespace().count();
    if !(5..=6).contains(&fields) {
        return Err(Invalid::new(format!(
            "invalid cron_restart {pattern:?}: {fields} fields, expected 5 (minute hour day month weekday) or 6 (seconds first)"
        )));
    }
    croner::parser::CronParser::new()
        .parse(pattern)
        .map_err(|e| Invalid::new(format!("invalid cron_restart {pattern:?}: {e}")))
}

/// `instance_var` names a variable; `increment_var` names one the env sets to a number.
pub fn instance_vars(spec: &AppSpec) -> Result<(), Invalid> {
    if let Some(name) = &spec.instance_var {
        env_name(name).map_err(|e| e.within("instance_var"))?;
    }
    let Some(name) = &spec.increment_var else {
        return Ok(());
    };
    env_name(name).map_err(|e| e.within("increment_var"))?;
    match spec.env.get(name).map(|v| v.trim().parse::<u64>()) {
        Some(Ok(base)) if base.checked_add(u64::from(spec.instances)).is_some() => Ok(()),
        Some(_) => Err(Invalid::new(format!(
            "invalid increment_var {name:?}: its value must be a number"
        ))),
        None => Err(Invalid::new(format!(
            "invalid increment_var {name:?}: the environment does not set it (e.g. env: {{{name}: 3000}})"
        ))),
    }
}

/// Bytes of text these fields add to a spec.
pub fn text_bytes(spec: &AppSpec) -> usize {
    let ready = &spec.ready;
    let optional = |s: &Option<String>| s.as_ref().map_or(0, String::len);
    spec.listen.iter().map(String::len).sum::<usize>()
        + optional(&ready.http)
        + optional(&ready.tcp)
        + optional(&ready.cmd)
        + optional(&ready.log)
        + optional(&spec.health.http)
        + optional(&spec.health.tcp)
        + optional(&spec.health.cmd)
        + optional(&spec.cron_restart)
        + optional(&spec.instance_var)
        + optional(&spec.increment_var)
}

/// Every rule of this file for one spec.
pub fn serving(spec: &AppSpec) -> Result<(), Invalid> {
    listen(&spec.listen)?;
    readiness(&spec.ready)?;
    health(&spec.health)?;
    if let Some(pattern) = &spec.cron_restart {
        cron_restart(pattern)?;
    }
    instance_vars(spec)
}

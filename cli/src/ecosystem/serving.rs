//! How an app serves, before resolution — `listen`, `exec_mode`, readiness (`wait_ready`,
//! `listen_timeout`, `ready_*`, `watchdog_sec`), health checks (`health_*`), the restart
//! schedule (`cron_restart`) and the per-instance variables — PM2's keys from the file, `zpm start` flags on top; and how
//! they become the spec's fields: relative `unix:` paths made absolute against the app's
//! cwd, every value checked with the ecosystem key's name (the rules of
//! `zpm_proto::validate`, which God applies too).

use super::fields::{Field, describe};
use anyhow::{anyhow, bail};
use serde_json::Value;
use std::path::{Path, PathBuf};
use zpm_proto::AppSpec;
use zpm_proto::health::{DEFAULT_INTERVAL_MS, DEFAULT_RETRIES, DEFAULT_TIMEOUT_MS, Health};
use zpm_proto::ready::{DEFAULT_READY_TIMEOUT_MS, ExecMode, Readiness};
use zpm_proto::validate as rules;

/// What the file or the command line said; `None` (or empty `listen`) = not said.
#[derive(Debug, Default, Clone)]
pub struct ServingDraft {
    /// As written: relative `unix:` paths are resolved by [`ServingDraft::resolve`].
    pub listen: Vec<String>,
    pub exec_mode: Option<ExecMode>,
    pub wait_ready: Option<bool>,
    pub listen_timeout_ms: Option<u64>,
    pub ready_strict: Option<bool>,
    pub ready_http: Option<String>,
    pub ready_tcp: Option<String>,
    pub ready_cmd: Option<String>,
    pub ready_log: Option<String>,
    /// `Some(0)`: no watchdog (systemd's `WatchdogSec=0`).
    pub watchdog_ms: Option<u64>,
    pub health_http: Option<String>,
    pub health_tcp: Option<String>,
    pub health_cmd: Option<String>,
    pub health_interval_ms: Option<u64>,
    pub health_timeout_ms: Option<u64>,
    pub health_retries: Option<u32>,
    pub instance_var: Option<String>,
    pub increment_var: Option<String>,
    pub cron_restart: Option<String>,
}

impl ServingDraft {
    /// What `other` says wins (command-line options over the file).
    pub(super) fn overlay(&mut self, other: &Self) {
        let over = |mine: &mut Option<String>, theirs: &Option<String>| {
            if theirs.is_some() {
                mine.clone_from(theirs);
            }
        };
        if !other.listen.is_empty() {
            self.listen.clone_from(&other.listen);
        }
        self.exec_mode = other.exec_mode.or(self.exec_mode);
        self.wait_ready = other.wait_ready.or(self.wait_ready);
        self.listen_timeout_ms = other.listen_timeout_ms.or(self.listen_timeout_ms);
        self.ready_strict = other.ready_strict.or(self.ready_strict);
        over(&mut self.ready_http, &other.ready_http);
        over(&mut self.ready_tcp, &other.ready_tcp);
        over(&mut self.ready_cmd, &other.ready_cmd);
        over(&mut self.ready_log, &other.ready_log);
        self.watchdog_ms = other.watchdog_ms.or(self.watchdog_ms);
        over(&mut self.health_http, &other.health_http);
        over(&mut self.health_tcp, &other.health_tcp);
        over(&mut self.health_cmd, &other.health_cmd);
        self.health_interval_ms = other.health_interval_ms.or(self.health_interval_ms);
        self.health_timeout_ms = other.health_timeout_ms.or(self.health_timeout_ms);
        self.health_retries = other.health_retries.or(self.health_retries);
        over(&mut self.instance_var, &other.instance_var);
        over(&mut self.increment_var, &other.increment_var);
        over(&mut self.cron_restart, &other.cron_restart);
    }

    /// Reads `field` if it is one of these keys; false if it is not.
    pub(super) fn read(&mut self, field: &Field<'_>) -> anyhow::Result<bool> {
        match field.key {
            "listen" => self.listen = listen(field)?,
            "exec_mode" => self.exec_mode = Some(exec_mode(field)?),
            "wait_ready" => self.wait_ready = Some(field.boolean()?),
            "listen_timeout" => self.listen_timeout_ms = Some(field.duration_ms()?),
            "ready_strict" => self.ready_strict = Some(field.boolean()?),
            "ready_http" => self.ready_http = Some(field.non_empty_string()?),
            "ready_tcp" => self.ready_tcp = Some(tcp_target(field)?),
            "ready_cmd" => self.ready_cmd = Some(field.non_empty_string()?),
            "ready_log" => self.ready_log = Some(field.non_empty_string()?),
            "watchdog_sec" => self.watchdog_ms = Some(field.seconds_ms()?),
            "health_http" => self.health_http = Some(field.non_empty_string()?),
            "health_tcp" => self.health_tcp = Some(tcp_target(field)?),
            "health_cmd" => self.health_cmd = Some(field.non_empty_string()?),
            "health_interval" => self.health_interval_ms = Some(field.duration_ms()?),
            "health_timeout" => self.health_timeout_ms = Some(field.duration_ms()?),
            "health_retries" => self.health_retries = Some(field.count()?),
            "instance_var" => self.instance_var = Some(field.non_empty_string()?),
            "increment_var" => self.increment_var = Some(field.non_empty_string()?),
            // PM2 reads both.
            "cron_restart" | "cron" => self.cron_restart = Some(field.non_empty_string()?),
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Sets the spec's `listen`, `exec_mode` (`inferred` when not said), `ready`, `health`,
    /// `instance_var` and `increment_var`; `spec.cwd` is the app's absolute, canonical
    /// working directory. `health` and `increment_var` (whose rule needs the final env) are
    /// checked by the whole spec's validation.
    pub(super) fn resolve(&self, spec: &mut AppSpec, inferred: ExecMode) -> anyhow::Result<()> {
        spec.listen = self
            .listen
            .iter()
            .map(|addr| absolute_listen(&spec.cwd, addr))
            .collect::<anyhow::Result<_>>()?;
        rules::listen(&spec.listen)?;
        spec.exec_mode = self.exec_mode.unwrap_or(inferred);
        spec.ready = Readiness {
            wait_ready: self.wait_ready.unwrap_or(false),
            timeout_ms: self.listen_timeout_ms.unwrap_or(DEFAULT_READY_TIMEOUT_MS),
            strict: self.ready_strict.unwrap_or(false),
            http: self.ready_http.clone(),
            tcp: self.ready_tcp.clone(),
            cmd: self.ready_cmd.clone(),
            log: self.ready_log.clone(),
            watchdog_ms: self.watchdog_ms.filter(|ms| *ms > 0),
        };
        rules::readiness(&spec.ready)?;
        spec.health = Health {
            http: self.health_http.clone(),
            tcp: self.health_tcp.clone(),
            cmd: self.health_cmd.clone(),
            interval_ms: self.health_interval_ms.unwrap_or(DEFAULT_INTERVAL_MS),
            timeout_ms: self.health_timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS),
            retries: self.health_retries.unwrap_or(DEFAULT_RETRIES),
        };
        spec.instance_var.clone_from(&self.instance_var);
        spec.increment_var.clone_from(&self.increment_var);
        if let Some(pattern) = &self.cron_restart {
            rules::cron_restart(pattern)?;
        }
        spec.cron_restart.clone_from(&self.cron_restart);
        Ok(())
    }

    /// A warning when `health_interval`, `health_timeout` or `health_retries` is set
    /// without a check (`health_http`, `health_tcp`, `health_cmd`): they then do nothing.
    pub(super) fn unused_health_settings(&self) -> Option<String> {
        if self.health_http.is_some() || self.health_tcp.is_some() || self.health_cmd.is_some() {
            return None;
        }
        let set: Vec<&str> = [
            (self.health_interval_ms.is_some(), "health_interval"),
            (self.health_timeout_ms.is_some(), "health_timeout"),
            (self.health_retries.is_some(), "health_retries"),
        ]
        .into_iter()
        .filter_map(|(given, key)| given.then_some(key))
        .collect();
        (!set.is_empty()).then(|| {
            format!(
                "{} without a health check (health_http, health_tcp or health_cmd): ignored",
                set.join(", ")
            )
        })
    }
}

/// `unix:PATH` with a relative PATH made absolute against `cwd` (`.` components dropped);
/// anything else as written.
fn absolute_listen(cwd: &str, addr: &str) -> anyhow::Result<String> {
    let Some(path) = addr.strip_prefix("unix:") else {
        return Ok(addr.to_owned());
    };
    if path.is_empty() {
        bail!("invalid listen address {addr:?}: no socket path after `unix:`");
    }
    if path.starts_with('/') {
        return Ok(addr.to_owned());
    }
    let joined: PathBuf = Path::new(cwd).join(path).components().collect();
    Ok(format!("unix:{}", joined.display()))
}

/// A port, an address, or an array of them.
fn listen(field: &Field<'_>) -> anyhow::Result<Vec<String>> {
    let one = |value: &Value| match value {
        Value::Number(n) => n.as_u64().map(|port| port.to_string()),
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        _ => None,
    };
    match field.value {
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(index, item)| {
                one(item).ok_or_else(|| {
                    anyhow!(
                        "{}: key {:?}: item {index} must be a port or an address such as \
                         \"127.0.0.1:8000\" or \"unix:app.sock\", got {}",
                        field.app,
                        field.key,
                        describe(item)
                    )
                })
            })
            .collect(),
        value => one(value).map(|addr| vec![addr]).ok_or_else(|| {
            field.error(
                "a port, an address such as \"127.0.0.1:8000\" or \"unix:app.sock\", or an \
                 array of them",
            )
        }),
    }
}

/// PM2's spellings: `fork`, `fork_mode`, `cluster`, `cluster_mode`.
fn exec_mode(field: &Field<'_>) -> anyhow::Result<ExecMode> {
    let text = field.string()?;
    crate::cli::parse_exec_mode(&text).map_err(|_| field.error("\"fork\" or \"cluster\""))
}

/// `ready_tcp`, `health_tcp`: a port number, or `"PORT"` / `"HOST:PORT"` (checked by the
/// spec's rules).
fn tcp_target(field: &Field<'_>) -> anyhow::Result<String> {
    match field.value {
        Value::Number(n) => n
            .as_u64()
            .map(|port| port.to_string())
            .ok_or_else(|| field.error("a port, or \"HOST:PORT\"")),
        Value::String(s) if !s.trim().is_empty() => Ok(s.clone()),
        _ => Err(field.error("a port, or \"HOST:PORT\"")),
    }
}

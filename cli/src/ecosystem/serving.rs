//! How an app serves, before resolution — `listen`, `exec_mode`, readiness (`wait_ready`,
//! `listen_timeout`, `ready_*`, `watchdog_sec`) and the per-instance variables — PM2's keys
//! from the file, `zpm start` flags on top; and how they become the spec's fields: relative
//! `unix:` paths made absolute against the app's cwd, every value checked with the
//! ecosystem key's name (the rules of `zpm_proto::validate`, which God applies too).

use super::fields::{Field, describe};
use anyhow::{anyhow, bail};
use serde_json::Value;
use std::path::{Path, PathBuf};
use zpm_proto::AppSpec;
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
    pub instance_var: Option<String>,
    pub increment_var: Option<String>,
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
        over(&mut self.instance_var, &other.instance_var);
        over(&mut self.increment_var, &other.increment_var);
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
            "instance_var" => self.instance_var = Some(field.non_empty_string()?),
            "increment_var" => self.increment_var = Some(field.non_empty_string()?),
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Sets the spec's `listen`, `exec_mode` (`inferred` when not said), `ready`,
    /// `instance_var` and `increment_var`; `spec.cwd` is the app's absolute, canonical
    /// working directory. `increment_var`'s rule needs the final env: the whole spec's
    /// validation checks it.
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
        spec.instance_var.clone_from(&self.instance_var);
        spec.increment_var.clone_from(&self.increment_var);
        Ok(())
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

/// `ready_tcp`: a port number, or `"PORT"` / `"HOST:PORT"` (checked by the spec's rules).
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

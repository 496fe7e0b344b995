//! The rules every app spec and request obeys, written once: God checks every request with
//! them (`bad_params` on failure) and the CLI checks what it resolved with them before
//! sending, so both give the same messages. PROTOCOL.md lists the rules and caps.

use crate::AppSpec;
use nix::sys::signal::Signal;
use std::collections::BTreeMap;
use std::str::FromStr as _;

mod logs;
mod serving;
mod triggers;
pub use logs::{
    MAX_DATE_FORMAT_BYTES, MAX_LOG_PATH_BYTES, MAX_LOG_RETAIN, MIN_LOG_MAX_SIZE, app_logs,
    date_format, log_max_size, log_path, log_retain,
};
pub use serving::{MAX_LISTEN, cron_restart, health, listen, readiness, ready_log};
pub use triggers::{MAX_DEPENDENCIES, MAX_WATCH_ENTRIES, depends_on, watch};

/// Longest app name or namespace, in bytes.
pub const MAX_NAME_BYTES: usize = 64;
/// Most instances of one app (`instances`, `app.scale`).
pub const MAX_INSTANCES: u32 = 1024;
/// Most apps in one `app.start`.
pub const MAX_APPS_PER_REQUEST: usize = 256;
/// Most variables in an app's environment.
pub const MAX_ENV_ENTRIES: usize = 4096;
/// Most bytes of text in one spec (names, argv, cwd, env names and values).
pub const MAX_SPEC_BYTES: usize = 1024 * 1024;
/// Most entries in `stop_exit_codes`; each is an exit status, 0…255.
pub const MAX_STOP_EXIT_CODES: usize = 256;
/// Longest duration field (`*_ms`): one week.
pub const MAX_DURATION_MS: u64 = 7 * 24 * 3600 * 1000;
/// Longest agent role name (`agent.hello`), in bytes.
pub const MAX_ROLE_BYTES: usize = 32;
/// Longest host name (`agent.hello`, `--host`), in bytes: a DNS name's limit.
pub const MAX_HOST_BYTES: usize = 253;

/// Why a value breaks a rule; the message names the field and the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(String);

impl Invalid {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }

    /// The same error with `context: ` in front, e.g. the app it is about.
    #[must_use]
    pub fn within(self, context: &str) -> Self {
        Self(format!("{context}: {}", self.0))
    }

    pub fn message(&self) -> &str {
        &self.0
    }
}

/// An app name: how users address apps. Ids are numbers and `all` means every app.
pub fn app_name(name: &str) -> Result<(), Invalid> {
    identifier("app name", name)
}

/// A namespace: a target like a name, so the same rules.
pub fn namespace(namespace: &str) -> Result<(), Invalid> {
    identifier("namespace", namespace)
}

/// An agent's role in `agent.hello`: zpm's own (`spawner`, `logs`, `metrics`) or a third
/// party's, 1…[`MAX_ROLE_BYTES`] of `a-z`, `0-9`, `_` and `-`. Roles are shown by
/// `zpm agents` and in God's log, so nothing else is accepted.
pub fn agent_role(role: &str) -> Result<(), Invalid> {
    let allowed = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-';
    if !role.is_empty() && role.len() <= MAX_ROLE_BYTES && role.bytes().all(allowed) {
        return Ok(());
    }
    Err(Invalid::new(format!(
        "invalid agent role {role:?}: expected 1 to {MAX_ROLE_BYTES} characters of a-z, 0-9, `_` and `-`"
    )))
}

/// A host name as agents report it and `--host` places apps: 1…[`MAX_HOST_BYTES`] of
/// letters, digits, `.`, `_` and `-`, as machine names are. `field` names where it was
/// given.
pub fn host_name(field: &str, host: &str) -> Result<(), Invalid> {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-');
    if !host.is_empty() && host.len() <= MAX_HOST_BYTES && host.bytes().all(allowed) {
        return Ok(());
    }
    Err(Invalid::new(format!(
        "{field}: invalid host name {:?}: expected 1 to {MAX_HOST_BYTES} characters of letters, \
         digits, `.`, `_` and `-`",
        host.escape_debug().to_string()
    )))
}

fn identifier(what: &str, text: &str) -> Result<(), Invalid> {
    let problem = if text.is_empty() {
        "it cannot be empty".to_owned()
    } else if text.len() > MAX_NAME_BYTES {
        format!("it is longer than {MAX_NAME_BYTES} bytes")
    } else if text.chars().any(char::is_control) {
        "it cannot contain control characters".to_owned()
    } else if text.chars().any(char::is_whitespace) {
        "it cannot contain whitespace".to_owned()
    } else if text.contains(['/', '\\']) || text.contains("..") || text == "." {
        "it cannot contain `/`, `\\` or `..`, or be `.`".to_owned()
    } else if text == "all" {
        "`all` means every app".to_owned()
    } else if text.bytes().all(|b| b.is_ascii_digit()) {
        "it cannot be only digits (ids are numbers)".to_owned()
    } else {
        return Ok(());
    };
    Err(Invalid::new(format!("invalid {what} {text:?}: {problem}")))
}

/// `SIGTERM`, `TERM`, `sigterm` or a number → the signal, if this system knows it. The one
/// signal table: the spawner parses with it, and validation accepts exactly what it parses.
pub fn parse_signal(text: &str) -> Option<Signal> {
    let text = text.trim();
    if let Ok(number) = text.parse::<i32>() {
        return Signal::try_from(number).ok();
    }
    let upper = text.to_ascii_uppercase();
    let full = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    Signal::from_str(&full).ok()
}

/// A known signal's canonical name (`term` → `SIGTERM`); `field` names it in the error
/// (`kill_signal`, `signal`).
pub fn signal_name(field: &str, text: &str) -> Result<String, Invalid> {
    parse_signal(text)
        .map(|signal| signal.as_str().to_owned())
        .ok_or_else(|| {
            Invalid::new(format!(
                "unknown {field} {text:?}: expected a signal name such as SIGINT or TERM"
            ))
        })
}

/// An instance count, 1…[`MAX_INSTANCES`].
pub fn instances(count: u32) -> Result<u32, Invalid> {
    if (1..=MAX_INSTANCES).contains(&count) {
        Ok(count)
    } else {
        Err(Invalid::new(format!(
            "invalid instances {count}: expected 1 to {MAX_INSTANCES}"
        )))
    }
}

/// The instance count of `app.scale`, the error naming the app.
pub fn scale(name: &str, count: u32) -> Result<u32, Invalid> {
    instances(count).map_err(|e| e.within(&format!("app {name:?}")))
}

/// Program and arguments: a non-empty program, no NUL bytes.
pub fn argv(argv: &[String]) -> Result<(), Invalid> {
    match argv.first() {
        None => return Err(Invalid::new("invalid argv: it is empty (no program)")),
        Some(program) if program.is_empty() => {
            return Err(Invalid::new("invalid argv: the program (argv[0]) is empty"));
        }
        Some(_) => {}
    }
    match argv.iter().position(|arg| arg.contains('\0')) {
        Some(index) => Err(Invalid::new(format!(
            "invalid argv: argv[{index}] contains a NUL byte"
        ))),
        None => Ok(()),
    }
}

/// The working directory: an absolute path without NUL bytes.
pub fn cwd(cwd: &str) -> Result<(), Invalid> {
    if cwd.contains('\0') {
        return Err(Invalid::new(format!(
            "invalid cwd {cwd:?}: it contains a NUL byte"
        )));
    }
    if !cwd.starts_with('/') {
        return Err(Invalid::new(format!(
            "invalid cwd {cwd:?}: it must be an absolute path"
        )));
    }
    Ok(())
}

/// Environment variables: at most [`MAX_ENV_ENTRIES`], names non-empty without `=` or NUL,
/// values without NUL.
pub fn env(env: &BTreeMap<String, String>) -> Result<(), Invalid> {
    if env.len() > MAX_ENV_ENTRIES {
        return Err(Invalid::new(format!(
            "invalid env: {} variables, at most {MAX_ENV_ENTRIES}",
            env.len()
        )));
    }
    for (name, value) in env {
        env_name(name)?;
        if value.contains('\0') {
            return Err(Invalid::new(format!(
                "invalid env: the value of {name:?} contains a NUL byte"
            )));
        }
    }
    Ok(())
}

/// One environment variable name: non-empty, without `=` or NUL.
pub fn env_name(name: &str) -> Result<(), Invalid> {
    if name.is_empty() || name.contains(['=', '\0']) {
        return Err(Invalid::new(format!(
            "invalid env: variable name {name:?} must be non-empty, without `=` or NUL"
        )));
    }
    Ok(())
}

/// At most [`MAX_STOP_EXIT_CODES`] exit statuses, each 0…255.
pub fn stop_exit_codes(codes: &[i32]) -> Result<(), Invalid> {
    if codes.len() > MAX_STOP_EXIT_CODES {
        return Err(Invalid::new(format!(
            "invalid stop_exit_codes: {} codes, at most {MAX_STOP_EXIT_CODES}",
            codes.len()
        )));
    }
    match codes.iter().find(|code| !(0..=255).contains(*code)) {
        Some(code) => Err(Invalid::new(format!(
            "invalid stop_exit_codes: {code} is not an exit status (0 to 255)"
        ))),
        None => Ok(()),
    }
}

fn duration(field: &str, ms: u64) -> Result<(), Invalid> {
    if ms > MAX_DURATION_MS {
        return Err(Invalid::new(format!(
            "invalid {field} {ms} ms: at most {MAX_DURATION_MS} ms (one week)"
        )));
    }
    Ok(())
}

/// Bytes of text a spec carries, the measure [`MAX_SPEC_BYTES`] caps.
fn text_bytes(spec: &AppSpec) -> usize {
    let strings = |items: &[String]| items.iter().map(String::len).sum::<usize>();
    spec.name.len()
        + spec.namespace.len()
        + spec.cwd.len()
        + spec.kill_signal.len()
        + strings(&spec.argv)
        + strings(&spec.env_explicit)
        + spec
            .env
            .iter()
            .map(|(name, value)| name.len() + value.len())
            .sum::<usize>()
        + logs::text_bytes(&spec.logs)
        + serving::text_bytes(spec)
        + triggers::text_bytes(spec)
}

/// Every rule for one app.
pub fn app_spec(spec: &AppSpec) -> Result<(), Invalid> {
    app_name(&spec.name)?;
    namespace(&spec.namespace)?;
    let size = text_bytes(spec);
    if size > MAX_SPEC_BYTES {
        return Err(Invalid::new(format!(
            "the spec is {size} bytes of text, at most {MAX_SPEC_BYTES}"
        )));
    }
    argv(&spec.argv)?;
    cwd(&spec.cwd)?;
    env(&spec.env)?;
    if spec.env_explicit.len() > MAX_ENV_ENTRIES {
        return Err(Invalid::new(format!(
            "invalid env_explicit: {} names, at most {MAX_ENV_ENTRIES}",
            spec.env_explicit.len()
        )));
    }
    instances(spec.instances)?;
    signal_name("kill_signal", &spec.kill_signal)?;
    stop_exit_codes(&spec.stop_exit_codes)?;
    duration("min_uptime_ms", spec.min_uptime_ms)?;
    duration("restart_delay_ms", spec.restart_delay_ms)?;
    duration(
        "exp_backoff_restart_delay_ms",
        spec.exp_backoff_restart_delay_ms,
    )?;
    duration("kill_timeout_ms", spec.kill_timeout_ms)?;
    memory_limit(spec.max_memory_restart)?;
    hosts(&spec.hosts)?;
    serving::serving(spec)?;
    triggers::triggers(spec)?;
    app_logs(&spec.logs)
}

/// Most hosts one app is spread over.
pub const MAX_HOSTS: usize = 256;

/// `hosts`: at most [`MAX_HOSTS`] host names.
pub fn hosts(hosts: &[String]) -> Result<(), Invalid> {
    if hosts.len() > MAX_HOSTS {
        return Err(Invalid::new(format!(
            "invalid hosts: {} names, at most {MAX_HOSTS}",
            hosts.len()
        )));
    }
    hosts.iter().try_for_each(|host| host_name("hosts", host))
}

/// Below this an app could not even start (and 0 would restart it forever).
pub const MIN_MEMORY_LIMIT: u64 = 1024 * 1024;

/// `max_memory_restart`: absent, or at least [`MIN_MEMORY_LIMIT`].
pub fn memory_limit(limit: Option<u64>) -> Result<(), Invalid> {
    match limit {
        Some(bytes) if bytes < MIN_MEMORY_LIMIT => Err(Invalid::new(format!(
            "invalid max_memory_restart: {bytes} bytes, at least {MIN_MEMORY_LIMIT} (1M)"
        ))),
        _ => Ok(()),
    }
}

/// 1…[`MAX_APPS_PER_REQUEST`] apps.
pub fn app_count(count: usize) -> Result<(), Invalid> {
    if count == 0 {
        return Err(Invalid::new("no apps to start"));
    }
    if count > MAX_APPS_PER_REQUEST {
        return Err(Invalid::new(format!(
            "{count} apps in one request, at most {MAX_APPS_PER_REQUEST}"
        )));
    }
    Ok(())
}

/// How an error names an app: `app "api"`, or `app at index 3` when the name itself is bad.
pub fn app_label(spec: &AppSpec, index: usize) -> String {
    if app_name(&spec.name).is_ok() {
        format!("app {:?}", spec.name)
    } else {
        format!("app at index {index}")
    }
}

/// Every rule for the apps of one `app.start`; errors name the app.
pub fn start_apps(apps: &[AppSpec]) -> Result<(), Invalid> {
    app_count(apps.len())?;
    each_app(apps)
}

/// Every rule for the apps of one `app.apply`: those of `app.start`, and each app (name
/// and namespace) named once, since the file is the whole truth about it.
pub fn apply_apps(apps: &[AppSpec]) -> Result<(), Invalid> {
    start_apps(apps)?;
    let mut seen = std::collections::HashSet::new();
    for spec in apps {
        if !seen.insert((spec.name.as_str(), spec.namespace.as_str())) {
            return Err(Invalid::new(format!(
                "app {:?} of namespace {:?} is declared twice",
                spec.name, spec.namespace
            )));
        }
    }
    Ok(())
}

/// Every rule for each app (a dump: as many apps as God ran); errors name the app.
pub fn each_app(apps: &[AppSpec]) -> Result<(), Invalid> {
    for (index, spec) in apps.iter().enumerate() {
        app_spec(spec).map_err(|e| e.within(&app_label(spec, index)))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;

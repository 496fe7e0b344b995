//! Turns what follows `zpm start` (a script, an executable, a command, or an ecosystem
//! file) into the `AppSpec`s sent to God, with PM2's rules and defaults.

mod app;
mod depends;
mod draft;
mod env_file;
mod fields;
mod js;
mod load;
mod logs;
mod program;
mod serving;
mod validate;
mod watch;

#[cfg(test)]
mod tests;

use anyhow::Context as _;
use draft::Draft;
pub use logs::LogDraft;
pub use serving::ServingDraft;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
pub use watch::WatchDraft;

/// Command-line options of `zpm start`, mirroring PM2. `None` = not given on the command line.
#[derive(Debug, Default, Clone)]
pub struct StartOptions {
    pub name: Option<String>,
    pub instances: Option<u32>,
    pub cwd: Option<PathBuf>,
    pub namespace: Option<String>,
    pub no_autorestart: bool,
    pub max_restarts: Option<u32>,
    pub min_uptime_ms: Option<u64>,
    pub restart_delay_ms: Option<u64>,
    pub kill_timeout_ms: Option<u64>,
    pub max_memory_restart: Option<u64>,
    /// `--host`: the hosts to run on (empty = not given).
    pub hosts: Vec<String>,
    pub exp_backoff_restart_delay_ms: Option<u64>,
    pub interpreter: Option<String>,
    /// `--env-var KEY=VALUE` pairs (repeatable), applied last.
    pub env_vars: Vec<(String, String)>,
    /// `--env-file PATH` files (repeatable, relative to the CLI's cwd), after the
    /// ecosystem's `env_file`s.
    pub env_files: Vec<PathBuf>,
    /// `--env NAME`: selects the `env_NAME` block of an ecosystem file, as in PM2.
    pub env_name: Option<String>,
    /// Arguments after `--`.
    pub args: Vec<String>,
    /// `-o`, `-e`, `-l`, `--merge-logs`, `--time`, `--log-date-format`, `--log-type`.
    pub logs: LogDraft,
    /// `--listen`, `--exec-mode`, `--wait-ready`, `--listen-timeout`, `--ready-*`,
    /// `--watchdog-sec`, `--health-*`, `--instance-var`, `--increment-var`.
    pub serving: ServingDraft,
    /// `--watch`, `--ignore-watch`, `--watch-delay`.
    pub watch: WatchDraft,
}

/// What resolution produced: the specs, plus warnings to print on stderr (e.g. unknown keys).
#[derive(Debug)]
pub struct Resolved {
    pub apps: Vec<zpm_proto::AppSpec>,
    pub warnings: Vec<String>,
}

/// An existing file whose name says it is an ecosystem file (`.json`, `.yaml`, `.toml`,
/// `ecosystem*.js`, `*.config.js`), relative to `cwd`.
pub fn is_ecosystem_file(target: &str, cwd: &Path) -> bool {
    load::is_ecosystem_file(target, cwd)
}

/// `target` is what followed `zpm start`. `cli_env` is the CLI's own environment, `cwd` the CLI's cwd.
pub fn resolve_start(
    target: &str,
    options: &StartOptions,
    cli_env: &BTreeMap<String, String>,
    cwd: &Path,
) -> anyhow::Result<Resolved> {
    if target.trim().is_empty() {
        anyhow::bail!("nothing to start (empty target)");
    }
    let mut warnings = Vec::new();
    let drafts = if load::is_ecosystem_file(target, cwd) {
        load::file_drafts(target, options, cli_env, cwd, &mut warnings)?
    } else {
        if let Some(name) = &options.env_name {
            warnings.push(format!(
                "--env {name} only applies to ecosystem files; ignored"
            ));
        }
        vec![Draft::from_target(target, options, cwd)]
    };
    zpm_proto::validate::app_count(drafts.len())?;
    let mut apps = Vec::with_capacity(drafts.len());
    for draft in drafts {
        apps.push(draft.finish(cli_env, &mut warnings)?);
    }
    Ok(Resolved { apps, warnings })
}

/// `--update-env`: apps' environments read again, as `zpm start` would resolve them now
/// (this shell's variables, then the files each app's `origin` names). An ecosystem file
/// is read and resolved once, however many of its apps are asked for. The apps'
/// `--env-var` values are God's to keep.
pub struct FreshEnv<'a> {
    cli_env: &'a BTreeMap<String, String>,
    cwd: &'a Path,
    /// Resolved files by (file, `--env`, `--env-file`s).
    files: BTreeMap<(String, Option<String>, Vec<String>), Vec<zpm_proto::AppSpec>>,
}

impl<'a> FreshEnv<'a> {
    pub fn new(cli_env: &'a BTreeMap<String, String>, cwd: &'a Path) -> Self {
        Self {
            cli_env,
            cwd,
            files: BTreeMap::new(),
        }
    }

    /// App `name`'s environment, and the names that came from files.
    pub fn read(
        &mut self,
        origin: &zpm_proto::EnvOrigin,
        name: &str,
        namespace: &str,
    ) -> anyhow::Result<(BTreeMap<String, String>, Vec<String>)> {
        let env_files: Vec<PathBuf> = origin.env_files.iter().map(PathBuf::from).collect();
        let Some(file) = &origin.file else {
            let explicit = env_file::read_all(&env_files)?;
            let names = explicit.keys().cloned().collect();
            let mut env = self.cli_env.clone();
            env.extend(explicit);
            return Ok((env, names));
        };
        let key = (
            file.clone(),
            origin.env_name.clone(),
            origin.env_files.clone(),
        );
        if !self.files.contains_key(&key) {
            let options = StartOptions {
                env_name: origin.env_name.clone(),
                env_files,
                ..StartOptions::default()
            };
            let resolved = resolve_start(file, &options, self.cli_env, self.cwd)
                .with_context(|| format!("reading {file} again for app {name:?}"))?;
            self.files.insert(key.clone(), resolved.apps);
        }
        let apps = self.files.get(&key).map_or(&[][..], Vec::as_slice);
        // `--namespace` at start time moved it out of the file's namespace.
        let spec = apps
            .iter()
            .find(|s| s.name == name && s.namespace == namespace)
            .or_else(|| apps.iter().find(|s| s.name == name))
            .with_context(|| {
                format!("app {name:?} is no longer in {file}, the file it was started from")
            })?;
        Ok((spec.env.clone(), spec.env_explicit.clone()))
    }
}

/// Parses a duration option value: plain integer = milliseconds ("1500"), or humantime ("1s", "250ms", "2m").
pub fn parse_duration_ms(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let invalid = || {
        format!(
            "invalid duration {text:?}: expected milliseconds (e.g. 1500) or a duration like 1s, 250ms, 2m"
        )
    };
    if text.is_empty() {
        return Err(invalid());
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse::<u64>().map_err(|_| invalid());
    }
    let duration = humantime::parse_duration(text).map_err(|_| invalid())?;
    u64::try_from(duration.as_millis()).map_err(|_| format!("duration {text:?} is too long"))
}

/// Parses a seconds option value (systemd's `WatchdogSec=`): a plain number is seconds,
/// fractions allowed ("30", "0.5"), or humantime ("500ms", "2m").
pub fn parse_seconds_ms(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let invalid = || {
        format!(
            "invalid duration {text:?}: expected seconds (e.g. 30 or 0.5) or a duration like 500ms, 2m"
        )
    };
    if text.is_empty() {
        return Err(invalid());
    }
    if text.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let seconds = text.parse::<f64>().map_err(|_| invalid())?;
        return seconds_to_ms(seconds).ok_or_else(|| format!("duration {text:?} is too long"));
    }
    let duration = humantime::parse_duration(text).map_err(|_| invalid())?;
    u64::try_from(duration.as_millis()).map_err(|_| format!("duration {text:?} is too long"))
}

/// Seconds (≥ 0, finite, fractions allowed) in whole milliseconds, rounded.
pub(crate) fn seconds_to_ms(seconds: f64) -> Option<u64> {
    let ms = (seconds * 1000.0).round();
    // 2^53: every whole number below is exact in an f64, and far beyond any valid value.
    (ms.is_finite() && (0.0..9_007_199_254_740_992.0).contains(&ms)).then_some(ms as u64)
}

/// Parses "KEY=VALUE" (KEY non-empty, no '=' in KEY; VALUE may contain '=' and be empty).
pub fn parse_env_pair(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some(("", _)) => Err(format!(
            "invalid environment variable {text:?}: the name before '=' is empty"
        )),
        Some((key, value)) => Ok((key.to_owned(), value.to_owned())),
        None => Err(format!(
            "invalid environment variable {text:?}: expected KEY=VALUE"
        )),
    }
}

//! An app's log options before resolution — PM2's keys from the file, `zpm start` flags on
//! top — and how they become `AppSpec.logs`: paths made absolute against the app's cwd
//! (God never looks at this machine), `time` turned into a date format, every value
//! checked with the ecosystem key's name.

use super::fields::Field;
use serde_json::Value;
use std::path::Path;
use zpm_proto::logfiles::{AppLogs, DISCARD, LogFormat, TIME_FORMAT};
use zpm_proto::validate::{self as rules, Invalid};

/// What the file or the command line said; `None` = not said.
#[derive(Debug, Default, Clone)]
pub struct LogDraft {
    pub out_file: Option<String>,
    pub error_file: Option<String>,
    /// `Some("")`: the default combined file (`--log` without a path, `log_file: true`).
    pub log_file: Option<String>,
    pub merge_logs: Option<bool>,
    pub date_format: Option<String>,
    /// PM2's `time`: timestamps in [`TIME_FORMAT`] unless `date_format` says otherwise.
    pub time: Option<bool>,
    pub format: Option<LogFormat>,
    pub max_size: Option<u64>,
    pub retain: Option<u32>,
    pub compress: Option<bool>,
}

impl LogDraft {
    /// What `other` says wins (command-line options over the file).
    pub(super) fn overlay(&mut self, other: &Self) {
        let over = |mine: &mut Option<String>, theirs: &Option<String>| {
            if theirs.is_some() {
                mine.clone_from(theirs);
            }
        };
        over(&mut self.out_file, &other.out_file);
        over(&mut self.error_file, &other.error_file);
        over(&mut self.log_file, &other.log_file);
        over(&mut self.date_format, &other.date_format);
        self.merge_logs = other.merge_logs.or(self.merge_logs);
        self.time = other.time.or(self.time);
        self.format = other.format.or(self.format);
        self.max_size = other.max_size.or(self.max_size);
        self.retain = other.retain.or(self.retain);
        self.compress = other.compress.or(self.compress);
    }

    /// Reads `field` if it is one of PM2's log keys; false if it is not.
    pub(super) fn read(&mut self, field: &Field<'_>) -> anyhow::Result<bool> {
        match field.key {
            "out_file" | "output" => self.out_file = Some(path(field)?),
            "error_file" | "error" => self.error_file = Some(path(field)?),
            "log_file" | "log" => self.log_file = combined(field)?,
            "merge_logs" | "combine_logs" => self.merge_logs = Some(field.boolean()?),
            "log_date_format" => self.date_format = Some(field.string()?),
            "time" => self.time = Some(field.boolean()?),
            "log_type" => self.format = Some(log_type(field)?),
            "log_max_size" => self.max_size = Some(field.size()?),
            "log_retain" => self.retain = Some(field.count()?),
            "log_compress" => self.compress = Some(field.boolean()?),
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// `AppSpec.logs` for an app whose (absolute, canonical) working directory is `cwd`.
    pub(super) fn resolve(&self, cwd: &str) -> anyhow::Result<AppLogs> {
        let place = |key: &str, given: &Option<String>| -> Result<Option<String>, Invalid> {
            let Some(given) = given else { return Ok(None) };
            if given.is_empty() {
                return Ok(Some(String::new()));
            }
            let path = absolute(cwd, given);
            rules::log_path(key, &path)?;
            Ok(Some(path))
        };
        let date_format = match (&self.date_format, self.time) {
            (Some(pattern), _) => Some(pattern.clone()),
            (None, Some(true)) => Some(TIME_FORMAT.to_owned()),
            (None, _) => None,
        };
        if let Some(pattern) = &date_format {
            rules::date_format("log_date_format", pattern)?;
        }
        if let Some(retain) = self.retain {
            rules::log_retain("log_retain", retain)?;
        }
        if let Some(bytes) = self.max_size {
            rules::log_max_size("log_max_size", bytes)?;
        }
        Ok(AppLogs {
            out_file: place("out_file", &self.out_file)?,
            error_file: place("error_file", &self.error_file)?,
            log_file: place("log_file", &self.log_file)?,
            merge_logs: self.merge_logs.unwrap_or(false),
            date_format,
            format: self.format,
            max_size: self.max_size,
            retain: self.retain,
            compress: self.compress,
        })
    }
}

/// `path` relative to `cwd` unless absolute; `/dev/null` (discard) as it is.
fn absolute(cwd: &str, path: &str) -> String {
    if path == DISCARD || path.starts_with('/') {
        return path.to_owned();
    }
    Path::new(cwd).join(path).display().to_string()
}

fn path(field: &Field<'_>) -> anyhow::Result<String> {
    match field.value {
        Value::String(text) if !text.trim().is_empty() => Ok(text.clone()),
        _ => Err(field.error("a file path")),
    }
}

/// A path, `true` for the default `NAME.log`, or `false` for none.
fn combined(field: &Field<'_>) -> anyhow::Result<Option<String>> {
    match field.value {
        Value::Bool(true) => Ok(Some(String::new())),
        Value::Bool(false) => Ok(None),
        Value::String(text) if !text.trim().is_empty() => Ok(Some(text.clone())),
        _ => Err(field.error("a file path, or true for the default NAME.log")),
    }
}

fn log_type(field: &Field<'_>) -> anyhow::Result<LogFormat> {
    let text = field.string()?;
    crate::cli::parse_log_type(&text).map_err(|_| field.error("\"raw\" or \"json\""))
}

//! Typed reads of one key of an app in an ecosystem file, with errors naming the file, the
//! app and the key, e.g. `ecosystem.json: app "api": key "instances" must be a number, got string "two"`.

use super::{parse_duration_ms, parse_seconds_ms, program, seconds_to_ms};
use anyhow::anyhow;
use serde_json::Value;
use std::collections::BTreeMap;

pub(super) struct Field<'a> {
    /// `<file>: app "<name>"` (or `app at index N`).
    pub app: &'a str,
    pub key: &'a str,
    pub value: &'a Value,
}

/// How a value shows in an error: `string "two"`, `number -1`, `an array`, …
pub(super) fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => format!("string {s:?}"),
        Value::Array(_) => "an array".to_owned(),
        Value::Object(_) => "an object".to_owned(),
    }
}

impl Field<'_> {
    pub fn error(&self, expected: &str) -> anyhow::Error {
        anyhow!(
            "{}: key {:?} must be {expected}, got {}",
            self.app,
            self.key,
            describe(self.value)
        )
    }

    pub fn string(&self) -> anyhow::Result<String> {
        self.value
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| self.error("a string"))
    }

    /// A string with something other than whitespace in it.
    pub fn non_empty_string(&self) -> anyhow::Result<String> {
        let text = self.string()?;
        if text.trim().is_empty() {
            return Err(self.error("a non-empty string"));
        }
        Ok(text)
    }

    pub fn boolean(&self) -> anyhow::Result<bool> {
        self.value
            .as_bool()
            .ok_or_else(|| self.error("true or false"))
    }

    /// A whole number ≥ 0 that fits in u32.
    pub fn count(&self) -> anyhow::Result<u32> {
        if !self.value.is_number() {
            return Err(self.error("a number"));
        }
        self.value
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| self.error("a whole number, 0 or more"))
    }

    /// PM2's instances: a count, or `max` / -1 / 0 for one per CPU (returned as 0).
    pub fn instances(&self) -> anyhow::Result<u32> {
        match self.value {
            Value::String(s) if s == "max" => Ok(0),
            Value::Number(n) if n.as_i64() == Some(-1) => Ok(0),
            _ => self.count(),
        }
    }

    /// Milliseconds as a number, or a string such as `"1500"` or `"1s"`.
    pub fn duration_ms(&self) -> anyhow::Result<u64> {
        match self.value {
            Value::Number(n) => n
                .as_u64()
                .ok_or_else(|| self.error("a whole number of milliseconds, 0 or more")),
            Value::String(s) => parse_duration_ms(s)
                .map_err(|_| self.error("milliseconds or a duration such as \"1s\"")),
            _ => Err(self.error("a number of milliseconds or a duration such as \"1s\"")),
        }
    }

    /// Seconds as a number (fractions allowed), or a string such as `"30"`, `"0.5"` or
    /// `"500ms"`; in milliseconds.
    pub fn seconds_ms(&self) -> anyhow::Result<u64> {
        match self.value {
            Value::Number(n) => n
                .as_f64()
                .and_then(seconds_to_ms)
                .ok_or_else(|| self.error("a number of seconds, 0 or more")),
            Value::String(s) => parse_seconds_ms(s)
                .map_err(|_| self.error("seconds or a duration such as \"500ms\"")),
            _ => Err(self.error("a number of seconds or a duration such as \"500ms\"")),
        }
    }

    /// Bytes, or a size such as `"200M"` (K, M, G are powers of 1024, as in PM2).
    pub fn size(&self) -> anyhow::Result<u64> {
        match self.value {
            Value::Number(n) => n
                .as_u64()
                .ok_or_else(|| self.error("a whole number of bytes")),
            Value::String(s) => zpm_host::config::parse_size(s)
                .map_err(|_| self.error("bytes or a size such as \"200M\"")),
            _ => Err(self.error("a number of bytes or a size such as \"200M\"")),
        }
    }

    /// A string split like a shell command line, or an array of strings.
    pub fn words(&self) -> anyhow::Result<Vec<String>> {
        match self.value {
            Value::String(s) => program::split_words(s)
                .map_err(|e| anyhow!("{}: key {:?}: {e}", self.app, self.key)),
            Value::Array(items) => items
                .iter()
                .map(|item| {
                    scalar(item).ok_or_else(|| self.error("a string or an array of strings"))
                })
                .collect(),
            _ => Err(self.error("a string or an array of strings")),
        }
    }

    /// One non-empty path or an array of them.
    pub fn paths(&self) -> anyhow::Result<Vec<String>> {
        self.non_empty_strings("a path or an array of paths")
    }

    /// One host name or an array of them (checked by the spec's validation).
    pub fn hosts(&self) -> anyhow::Result<Vec<String>> {
        self.non_empty_strings("a host name or an array of host names")
    }

    fn non_empty_strings(&self, expected: &str) -> anyhow::Result<Vec<String>> {
        let path = |v: &Value| match v {
            Value::String(s) if !s.trim().is_empty() => Ok(s.clone()),
            _ => Err(self.error(expected)),
        };
        match self.value {
            Value::String(_) => Ok(vec![path(self.value)?]),
            Value::Array(items) => items.iter().map(path).collect(),
            _ => Err(self.error(expected)),
        }
    }

    /// One exit code or an array of them.
    pub fn exit_codes(&self) -> anyhow::Result<Vec<i32>> {
        let expected = "an exit code or an array of exit codes";
        let code = |v: &Value| {
            v.as_i64()
                .and_then(|n| i32::try_from(n).ok())
                .ok_or_else(|| self.error(expected))
        };
        match self.value {
            Value::Number(_) => Ok(vec![code(self.value)?]),
            Value::Array(items) => items.iter().map(code).collect(),
            _ => Err(self.error(expected)),
        }
    }

    /// An env block: names to strings, numbers or booleans (stringified).
    pub fn env(&self) -> anyhow::Result<BTreeMap<String, String>> {
        let Value::Object(map) = self.value else {
            return Err(self.error("an object of NAME: value"));
        };
        map.iter()
            .map(|(name, value)| {
                zpm_proto::validate::env_name(name)
                    .map_err(|e| anyhow!("{}: key {:?}: {e}", self.app, self.key))?;
                let text = scalar(value).ok_or_else(|| {
                    anyhow!(
                        "{}: key {:?}: variable {name:?} must be a string, number or boolean, got {}",
                        self.app,
                        self.key,
                        describe(value)
                    )
                })?;
                Ok((name.clone(), text))
            })
            .collect()
    }
}

/// A string, number or boolean as text.
fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

//! One app of an ecosystem file (PM2's keys) → a `Draft`.

use super::draft::Draft;
use super::fields::{Field, describe};
use anyhow::bail;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// What the apps of one file share.
pub(super) struct FileInfo<'a> {
    /// The file as the user named it, for messages.
    pub label: &'a str,
    /// The file's (canonical) directory: relative `cwd`s start there.
    pub dir: &'a Path,
    /// `--env NAME`: the `env_NAME` block to apply.
    pub env_name: Option<&'a str>,
}

/// The app's draft, and whether it had the selected `env_NAME` block.
pub(super) fn draft(
    value: &Value,
    index: usize,
    file: &FileInfo<'_>,
    warnings: &mut Vec<String>,
) -> anyhow::Result<(Draft, bool)> {
    let Value::Object(map) = value else {
        bail!(
            "{}: app at index {index} must be an object, got {}",
            file.label,
            describe(value)
        );
    };
    let context = match map.get("name") {
        Some(Value::String(name)) => format!("{}: app {name:?}", file.label),
        _ => format!("{}: app at index {index}", file.label),
    };
    let mut walk = Walk {
        draft: Draft {
            cwd: file.dir.to_path_buf(),
            ..Draft::default()
        },
        env: BTreeMap::new(),
        selected_env: None,
        script: None,
    };
    for (key, value) in map {
        walk.key(
            &Field {
                app: &context,
                key,
                value,
            },
            file,
            warnings,
        )?;
    }
    let Some(script) = walk.script else {
        bail!("{context}: missing required key \"script\"")
    };
    let had_selected = walk.selected_env.is_some();
    let mut draft = walk.draft;
    draft.env = walk.env;
    draft.env.extend(walk.selected_env.unwrap_or_default());
    draft.script = script;
    draft.context = Some(context);
    Ok((draft, had_selected))
}

struct Walk {
    draft: Draft,
    env: BTreeMap<String, String>,
    selected_env: Option<BTreeMap<String, String>>,
    script: Option<String>,
}

impl Walk {
    fn key(
        &mut self,
        field: &Field<'_>,
        file: &FileInfo<'_>,
        warnings: &mut Vec<String>,
    ) -> anyhow::Result<()> {
        let d = &mut self.draft;
        match field.key {
            "name" => d.name = Some(field.string()?),
            "script" => self.script = Some(field.non_empty_string()?),
            "args" => d.args = field.words()?,
            "interpreter" => d.interpreter = Some(field.string()?),
            "interpreter_args" | "node_args" => d.interpreter_args = field.words()?,
            "cwd" => d.cwd = file.dir.join(field.non_empty_string()?),
            "env" => self.env = field.env()?,
            "env_file" => {
                d.env_files = field.paths()?.iter().map(|p| file.dir.join(p)).collect();
            }
            "instances" => d.instances = Some(field.instances()?),
            "autorestart" => d.autorestart = Some(field.boolean()?),
            "max_restarts" => d.max_restarts = Some(field.count()?),
            "min_uptime" => d.min_uptime_ms = Some(field.duration_ms()?),
            "restart_delay" => d.restart_delay_ms = Some(field.duration_ms()?),
            "exp_backoff_restart_delay" => {
                d.exp_backoff_restart_delay_ms = Some(field.duration_ms()?);
            }
            "kill_timeout" => d.kill_timeout_ms = Some(field.duration_ms()?),
            "max_memory_restart" => d.max_memory_restart = Some(field.size()?),
            "host" | "hosts" => d.hosts = field.hosts()?,
            "stop_exit_codes" => d.stop_exit_codes = Some(field.exit_codes()?),
            "kill_signal" => d.kill_signal = Some(field.string()?),
            "namespace" => d.namespace = Some(field.string()?),
            "depends_on" => d.depends_on = super::depends::depends_on(field)?,
            "depends_timeout" => d.depends_timeout_ms = Some(field.duration_ms()?),
            _ if d.serving.read(field)? => {}
            _ if d.watch.read(field)? => {}
            _ if d.logs.read(field)? => {}
            key => match key.strip_prefix("env_") {
                Some(block) => {
                    let env = field.env()?;
                    if file.env_name == Some(block) {
                        self.selected_env = Some(env);
                    }
                }
                None => warnings.push(format!("{}: unknown key {key:?} ignored", field.app)),
            },
        }
        Ok(())
    }
}

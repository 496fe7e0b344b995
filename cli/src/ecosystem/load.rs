//! Ecosystem files: recognizing them, parsing JSON / YAML / TOML / JavaScript into a
//! `serde_json::Value`, and turning their `apps` into drafts.

use super::app::{self, FileInfo};
use super::draft::Draft;
use super::fields::describe;
use super::{StartOptions, js};
use anyhow::{Context as _, anyhow, bail};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Clone, Copy, Debug)]
enum Format {
    Json,
    Yaml,
    Toml,
    Js,
}

/// The format an ecosystem file of this name is written in, if it is one.
fn format_of(target: &str) -> Option<Format> {
    let path = Path::new(target);
    let extension = path.extension()?.to_str()?.to_ascii_lowercase();
    let stem = path.file_stem()?.to_str()?.to_ascii_lowercase();
    let js_config = stem.starts_with("ecosystem")
        || Path::new(&stem).extension().is_some_and(|e| e == "config");
    match extension.as_str() {
        "json" => Some(Format::Json),
        "yaml" | "yml" => Some(Format::Yaml),
        "toml" => Some(Format::Toml),
        "js" | "cjs" | "mjs" if js_config => Some(Format::Js),
        _ => None,
    }
}

/// Rule 1 of `zpm start`: an existing file whose name says it is an ecosystem file.
pub(super) fn is_ecosystem_file(target: &str, cwd: &Path) -> bool {
    format_of(target).is_some() && cwd.join(target).is_file()
}

/// The drafts of every app of the file, command-line options applied.
pub(super) fn file_drafts(
    target: &str,
    options: &StartOptions,
    cli_env: &BTreeMap<String, String>,
    cwd: &Path,
    warnings: &mut Vec<String>,
) -> anyhow::Result<Vec<Draft>> {
    let path = cwd
        .join(target)
        .canonicalize()
        .with_context(|| format!("{target}: cannot open"))?;
    let dir = path.parent().context("an ecosystem file has a directory")?;
    let value = parse(target, &path, cli_env)?;
    let apps = apps_array(&value, target, warnings)?;
    let file = FileInfo {
        label: target,
        dir,
        env_name: options.env_name.as_deref(),
    };
    let single = apps.len() == 1;
    if options.name.is_some() && !single {
        warnings.push(format!("--name ignored: {target} has {} apps", apps.len()));
    }
    let mut drafts = Vec::with_capacity(apps.len());
    let mut any_selected = false;
    for (index, value) in apps.iter().enumerate() {
        let (mut draft, selected) = app::draft(value, index, &file, warnings)?;
        any_selected |= selected;
        draft.origin_file = Some(path.clone());
        draft.script_bases = vec![draft.cwd.clone()];
        draft.apply_options(options, cwd, single);
        if draft.cwd != draft.script_bases[0] {
            draft.script_bases.push(draft.cwd.clone());
        }
        drafts.push(draft);
    }
    if let (Some(name), false) = (&options.env_name, any_selected) {
        warnings.push(format!(
            "--env {name}: no app of {target} has an \"env_{name}\" block"
        ));
    }
    Ok(drafts)
}

fn parse(target: &str, path: &Path, cli_env: &BTreeMap<String, String>) -> anyhow::Result<Value> {
    let read = || std::fs::read_to_string(path).with_context(|| format!("{target}: cannot read"));
    match format_of(target).context("not an ecosystem file")? {
        Format::Js => js::evaluate(target, path, cli_env),
        Format::Json => {
            serde_json::from_str(&read()?).map_err(|e| anyhow!("{target}: invalid JSON: {e}"))
        }
        Format::Yaml => {
            serde_norway::from_str(&read()?).map_err(|e| anyhow!("{target}: invalid YAML: {e}"))
        }
        Format::Toml => toml::from_str(&read()?)
            .map_err(|e| anyhow!("{target}: invalid TOML: {}", e.to_string().trim_end())),
    }
}

/// `{ "apps": [...] }`, or a bare array of apps.
fn apps_array<'v>(
    value: &'v Value,
    target: &str,
    warnings: &mut Vec<String>,
) -> anyhow::Result<&'v Vec<Value>> {
    let apps = match value {
        Value::Array(apps) => apps,
        Value::Object(map) => {
            for key in map
                .keys()
                .filter(|k| !matches!(k.as_str(), "apps" | "deploy"))
            {
                warnings.push(format!("{target}: unknown top-level key {key:?} ignored"));
            }
            match map.get("apps") {
                Some(Value::Array(apps)) => apps,
                Some(other) => bail!(
                    "{target}: \"apps\" must be an array of apps, got {}",
                    describe(other)
                ),
                None => bail!(
                    "{target}: no \"apps\" array (expected {{ \"apps\": [ {{ \"name\": …, \"script\": … }} ] }})"
                ),
            }
        }
        other => bail!(
            "{target}: expected {{ \"apps\": [ … ] }}, got {}",
            describe(other)
        ),
    };
    if apps.is_empty() {
        bail!("{target}: \"apps\" is empty");
    }
    Ok(apps)
}

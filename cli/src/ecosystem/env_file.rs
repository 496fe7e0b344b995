//! `env_file` / `--env-file`: dotenv files read by the CLI into the app's explicit env.
//! `$VAR` and `${VAR}` expand from earlier lines of the same file and the CLI's environment.

use anyhow::{Context as _, anyhow};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The variables of `paths`, in order: a later file wins over an earlier one.
pub(super) fn read_all(paths: &[PathBuf]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut vars = BTreeMap::new();
    for path in paths {
        vars.extend(read(path)?);
    }
    Ok(vars)
}

fn read(path: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let label = path.display();
    let text =
        std::fs::read_to_string(path).with_context(|| format!("env file {label}: cannot read"))?;
    let mut vars = BTreeMap::new();
    for item in dotenvy::from_read_iter(text.as_bytes()) {
        let (name, value) = item.map_err(|e| parse_error(&text, &label.to_string(), e))?;
        zpm_proto::validate::env_name(&name).map_err(|e| anyhow!("env file {label}: {e}"))?;
        vars.insert(name, value);
    }
    Ok(vars)
}

/// `env file PATH: line N: cannot parse "…"`, the line number found from the statement.
fn parse_error(text: &str, label: &str, error: dotenvy::Error) -> anyhow::Error {
    match error {
        dotenvy::Error::LineParse(statement, _) => {
            let line = text
                .find(statement.trim())
                .map(|at| text[..at].matches('\n').count() + 1);
            let place = line.map_or_else(String::new, |n| format!("line {n}: "));
            anyhow!(
                "env file {label}: {place}cannot parse {:?} (expected NAME=value)",
                statement.trim()
            )
        }
        other => anyhow!("env file {label}: {other}"),
    }
}

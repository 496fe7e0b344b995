//! Tests of `zpm start` target resolution, in temporary directories.

mod depends;
mod env_files;
mod files;
mod health;
mod js_files;
mod logs;
mod parse;
mod serving;
mod targets;
mod watch;

use super::{Resolved, StartOptions, resolve_start};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

/// A CLI environment with the real PATH (for `sleep`, `node`) and one inherited variable.
fn cli_env() -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    env.insert("PATH".to_owned(), std::env::var("PATH").unwrap_or_default());
    env.insert("INHERITED".to_owned(), "from-cli".to_owned());
    env
}

fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, content).unwrap();
    path
}

fn make_executable(path: &Path) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A temporary directory, canonical (so that it compares equal to resolved cwds).
fn temp_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().canonicalize().unwrap();
    (dir, path)
}

fn resolve(dir: &Path, target: &str, options: &StartOptions) -> anyhow::Result<Resolved> {
    resolve_start(target, options, &cli_env(), dir)
}

fn error_text(result: anyhow::Result<Resolved>) -> String {
    format!("{:#}", result.expect_err("resolution should fail"))
}

fn cpus() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
}

fn s(text: &str) -> String {
    text.to_owned()
}

fn at(dir: &Path, name: &str) -> String {
    dir.join(name).to_str().unwrap().to_owned()
}

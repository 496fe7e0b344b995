//! `ecosystem.config.js`: evaluated by node, which prints `JSON.stringify(module.exports)`.

use super::program::which;
use anyhow::{Context as _, anyhow, bail};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Printed before the JSON, so that whatever the file itself prints is skipped.
const MARKER: &str = "\n--zpm-ecosystem-json--\n";

/// `require()`s the file (or `import()`s it when it is an ES module) and prints its exports.
const SCRIPT: &str = r"
const file = process.env.ZPM_ECOSYSTEM_FILE;
const isEsm = (m) => m && (Object.prototype.toString.call(m) === '[object Module]' || m.__esModule);
const out = (m) => {
  const v = isEsm(m) && m.default !== undefined ? m.default : m;
  process.stdout.write('\n--zpm-ecosystem-json--\n' + JSON.stringify(v === undefined ? null : v));
};
const fail = (e) => { process.stderr.write(String((e && e.stack) || e)); process.exit(1); };
try {
  out(require(file));
} catch (e) {
  if (e && e.code === 'ERR_REQUIRE_ESM') {
    import(require('url').pathToFileURL(file).href).then(out, fail);
  } else {
    fail(e);
  }
}
";

const TIMEOUT: Duration = Duration::from_secs(20);

pub(super) fn evaluate(
    target: &str,
    path: &Path,
    cli_env: &BTreeMap<String, String>,
) -> anyhow::Result<Value> {
    let Some(node) = which("node", cli_env.get("PATH").map(String::as_str)) else {
        bail!(
            "{target}: node is needed to read ecosystem.config.js files, and it is not on PATH; \
             install Node.js, or write the apps in an ecosystem.json or ecosystem.yaml file"
        );
    };
    let mut command = Command::new(node);
    command
        .arg("-e")
        .arg(SCRIPT)
        .env_clear()
        .envs(cli_env)
        .env("ZPM_ECOSYSTEM_FILE", path);
    if let Some(dir) = path.parent() {
        command.current_dir(dir);
    }
    let (ok, stdout, stderr) =
        run(command, TIMEOUT).with_context(|| format!("{target}: running node"))?;
    if !ok {
        bail!("{target}: node could not load it:\n{}", tail(&stderr, 2000));
    }
    let json = stdout
        .rsplit_once(MARKER)
        .map(|(_, json)| json)
        .with_context(|| format!("{target}: node printed no result"))?;
    serde_json::from_str(json).map_err(|e| anyhow!("{target}: node's output is not JSON: {e}"))
}

/// Runs to completion (killed after `timeout`): success, stdout, stderr.
fn run(mut command: Command, timeout: Duration) -> anyhow::Result<(bool, String, String)> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let stdout = reader(child.stdout.take());
    let stderr = reader(child.stderr.take());
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().ok();
            child.wait().ok();
            bail!("node did not finish within {} s", timeout.as_secs());
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let text = |h: std::thread::JoinHandle<String>| h.join().unwrap_or_default();
    Ok((status.success(), text(stdout), text(stderr)))
}

fn reader(pipe: Option<impl std::io::Read + Send + 'static>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            pipe.read_to_end(&mut bytes).ok();
        }
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// The last `max` bytes of `text` (on a char boundary), trimmed.
fn tail(text: &str, max: usize) -> &str {
    let text = text.trim();
    let mut start = text.len().saturating_sub(max);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

//! `depends_on`: 20 apps in a 4-level chain (each level's 5 apps wait for every app of the
//! level below to be ready), each ready 100 ms after it starts. Starting the file should
//! take the critical path (4 × 100 ms plus overhead), not the sum (20 × 100 ms). The same
//! 20 apps without dependencies are the floor. PM2 has no dependencies: for reference, the
//! same apps as Node scripts with `wait_ready`, started by PM2 and by zpm.

use crate::lifecycle::pm2::Pm2;
use crate::lifecycle::timing::{median_ms, timed};
use crate::lifecycle::zpm::{Zpm, which};
use anyhow::Context as _;
use serde_json::{Value, json};
use std::path::Path;

#[derive(clap::Args)]
pub struct Settings {
    #[command(flatten)]
    pub tools: crate::lifecycle::Tools,
    /// Starts of each file.
    #[arg(long, default_value_t = 7)]
    pub runs: usize,
}

const LEVELS: usize = 4;
const PER_LEVEL: usize = 5;
const READY_MS: u64 = 100;

/// A shell app: ready (prints `ready`) 100 ms after it starts.
const SH_APP: &str = "#!/bin/sh\nsleep 0.1\necho ready\nexec sleep 1000\n";
/// A Node app: `process.send('ready')` 100 ms after it starts.
const NODE_APP: &str = "setTimeout(() => process.send && process.send('ready'), 100);\n\
                        setInterval(() => {}, 1 << 30);\n";

/// The 20 apps; `chain`: with `depends_on`; `node`: the Node app with `wait_ready`.
fn apps(dir: &Path, chain: bool, node: bool) -> Vec<Value> {
    let script = if node {
        dir.join("ready.js")
    } else {
        dir.join("ready.sh")
    };
    let mut apps = Vec::new();
    for level in 0..LEVELS {
        for i in 0..PER_LEVEL {
            let mut app = json!({"name": format!("l{level}a{i}"), "script": script});
            if node {
                app["wait_ready"] = true.into();
                app["listen_timeout"] = 10_000.into();
            } else {
                app["ready_log"] = "^ready$".into();
            }
            if chain && level > 0 {
                let below: Vec<String> = (0..PER_LEVEL)
                    .map(|j| format!("l{}a{j}", level - 1))
                    .collect();
                app["depends_on"] = below.into();
            }
            apps.push(app);
        }
    }
    apps
}

fn write_files(dir: &Path) -> anyhow::Result<()> {
    std::fs::write(dir.join("ready.sh"), SH_APP).context("writing ready.sh")?;
    let mut perms = std::fs::metadata(dir.join("ready.sh"))?.permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(dir.join("ready.sh"), perms)?;
    std::fs::write(dir.join("ready.js"), NODE_APP).context("writing ready.js")?;
    for (name, chain, node) in [
        ("chain.json", true, false),
        ("flat.json", false, false),
        ("chain-node.json", true, true),
    ] {
        let text = json!({ "apps": apps(dir, chain, node) }).to_string();
        std::fs::write(dir.join(name), text).with_context(|| format!("writing {name}"))?;
    }
    let pm2 = format!(
        "module.exports = {};\n",
        json!({ "apps": apps(dir, false, true) })
    );
    std::fs::write(dir.join("flat-node.config.js"), pm2).context("writing the PM2 file")
}

/// Median wall time of `start FILE` (returns once every app is ready), deleting after each.
fn zpm_starts(zpm: &Zpm, file: &Path, runs: usize) -> anyhow::Result<f64> {
    let file = file.display().to_string();
    let mut times = Vec::new();
    for _ in 0..runs {
        times.push(timed(&mut zpm.cmd(&["start", &file]))?);
        timed(&mut zpm.cmd(&["delete", "all"]))?;
    }
    Ok(median_ms(times))
}

fn pm2_starts(pm2: &Pm2, file: &Path, runs: usize) -> anyhow::Result<f64> {
    let file = file.display().to_string();
    let mut times = Vec::new();
    for _ in 0..runs {
        times.push(timed(&mut pm2.cmd(&["start", &file]))?);
        let online = pm2.online()?;
        anyhow::ensure!(online == LEVELS * PER_LEVEL, "PM2 had {online} apps online");
        timed(&mut pm2.cmd(&["delete", "all"]))?;
    }
    Ok(median_ms(times))
}

pub fn run_and_print(settings: &Settings) -> anyhow::Result<()> {
    let zpm = Zpm::new(&crate::lifecycle::Settings::of(&settings.tools))?;
    let dir = zpm.home.path().join("bench");
    std::fs::create_dir_all(&dir).context("creating the bench directory")?;
    write_files(&dir)?;
    which("node")?;
    timed(&mut zpm.cmd(&["ping"]))?;
    let runs = settings.runs.max(1);
    let chain = zpm_starts(&zpm, &dir.join("chain.json"), runs)?;
    let flat = zpm_starts(&zpm, &dir.join("flat.json"), runs)?;
    let chain_node = zpm_starts(&zpm, &dir.join("chain-node.json"), runs)?;
    let critical = (LEVELS as u64 * READY_MS) as f64;
    println!(
        "depends_on: {LEVELS} levels × {PER_LEVEL} apps, each ready {READY_MS} ms after it starts; median of {runs} starts"
    );
    println!(
        "  zpm, sh apps (ready_log), 4-level chain: {chain:.1} ms (critical path {critical:.0} ms; target ≤ {:.0} ms; the sum would be {} ms)",
        critical + 150.0,
        LEVELS * PER_LEVEL * READY_MS as usize
    );
    println!("  zpm, the same 20 apps without depends_on: {flat:.1} ms (floor: one level)");
    println!("  zpm, Node apps (wait_ready), 4-level chain: {chain_node:.1} ms");
    if settings.tools.no_pm2 {
        return Ok(());
    }
    let Some(pm2) = settings.tools.pm2() else {
        println!("  PM2: not installed");
        return Ok(());
    };
    timed(&mut pm2.cmd(&["ping"]))?;
    let pm2_flat = pm2_starts(&pm2, &dir.join("flat-node.config.js"), runs)?;
    println!(
        "  PM2 {} (no depends_on), the 20 Node apps with wait_ready, no order: {pm2_flat:.1} ms; zpm's ordered chain / PM2's unordered start = {:.2}",
        pm2.version,
        chain_node / pm2_flat
    );
    Ok(())
}

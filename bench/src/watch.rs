//! `zpm-bench watch`: an app watching a tree of 10,000 files. (i) CPU time of the manager's
//! own processes (zpm: God and its agents; PM2: its God daemon) over an idle window, from
//! /proc/<pid>/stat utime+stime; (ii) from a file write to the restart begun (the old run
//! gone), minus the debounce delay, median over several writes. PM2 beside it, if installed.

use anyhow::{Context as _, bail};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use zpm_host::procfs;

#[derive(clap::Args, Clone, Debug)]
pub struct Settings {
    #[command(flatten)]
    pub tools: crate::lifecycle::Tools,
    /// Files in the watched tree (100 per directory).
    #[arg(long, default_value_t = 10_000)]
    pub files: usize,
    /// Seconds of idle CPU measurement.
    #[arg(long, default_value_t = 10.0)]
    pub idle_secs: f64,
    /// Writes timed (the median is reported).
    #[arg(long, default_value_t = 10)]
    pub writes: usize,
    /// The debounce delay given to both managers, in ms.
    #[arg(long, default_value_t = 200)]
    pub delay_ms: u64,
}

/// Milliseconds.
struct Figures {
    /// Idle CPU of every process of the manager.
    idle_cpu: f64,
    /// Idle CPU of zpm's spawner alone (where the watcher runs).
    spawner_cpu: Option<f64>,
    /// Write → restart begun, minus the delay; `None` when no write was timed.
    restart: Option<f64>,
}

fn or_dash(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}"))
}

pub fn run_and_print(settings: &Settings) -> anyhow::Result<()> {
    let zpm = settings.tools.zpm.clone().unwrap_or_else(|| {
        std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(|d| d.join("zpm")))
            .unwrap_or_else(|| PathBuf::from("zpm"))
    });
    let baseline = measure_zpm(&zpm, settings, false)?;
    let z = measure_zpm(&zpm, settings, true)?;
    println!(
        "watch: {} files, delay {} ms, idle {} s",
        settings.files, settings.delay_ms, settings.idle_secs
    );
    println!(
        "{:<22} {:>16} {:>22} {:>28}",
        "", "idle CPU (ms)", "spawner idle CPU (ms)", "write→restart - delay (ms)"
    );
    for (label, f) in [("zpm, not watching", &baseline), ("zpm, watching", &z)] {
        println!(
            "{label:<22} {:>16.1} {:>22} {:>28}",
            f.idle_cpu,
            or_dash(f.spawner_cpu),
            or_dash(f.restart)
        );
    }
    if !settings.tools.no_pm2 && which("pm2").is_some() {
        match measure_pm2(settings) {
            Ok(p) => println!(
                "{:<22} {:>16.1} {:>22} {:>28}",
                "pm2, watching",
                p.idle_cpu,
                "-",
                or_dash(p.restart)
            ),
            Err(e) => println!("pm2: {e:#}"),
        }
    }
    Ok(())
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

/// `root/src/dNN/fNN.js`.
fn tree(root: &Path, files: usize) -> anyhow::Result<PathBuf> {
    let src = root.join("src");
    for i in 0..files {
        let dir = src.join(format!("d{}", i / 100));
        if i % 100 == 0 {
            std::fs::create_dir_all(&dir)?;
        }
        std::fs::write(dir.join(format!("f{i}.js")), "x\n")?;
    }
    Ok(src)
}

fn app(root: &Path, marker: &str) -> anyhow::Result<PathBuf> {
    let path = root.join(format!("{marker}.sh"));
    std::fs::write(&path, "#!/bin/sh\nwhile true; do sleep 1; done\n")?;
    let mut perms = std::fs::metadata(&path)?.permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&path, perms)?;
    Ok(path)
}

fn measure_zpm(zpm: &Path, settings: &Settings, watch: bool) -> anyhow::Result<Figures> {
    let home = tempfile::Builder::new().prefix("zpmbw").tempdir()?;
    let root = home.path();
    let src = tree(root, settings.files)?;
    let marker = format!("zpmbwatch{}", std::process::id());
    let script = app(root, &marker)?;
    let cmd = |args: &[&str]| -> anyhow::Result<()> {
        let out = Command::new(zpm)
            .env("ZPM_HOME", root)
            .current_dir(root)
            .args(args)
            .output()?;
        if !out.status.success() {
            bail!("zpm {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    };
    let delay = settings.delay_ms.to_string();
    let result = (|| {
        let mut args = vec![script.to_str().context("path")?, "--name", "w"];
        if watch {
            args.extend([
                "--watch-delay",
                &delay,
                "--watch",
                src.to_str().context("path")?,
            ]);
        }
        args.insert(0, "start");
        cmd(&args)?;
        let ours = |cmdline: &[String], environ: &str| {
            environ.contains(&format!("ZPM_HOME={}", root.display()))
                && cmdline.iter().any(|a| a == "daemon" || a == "agent")
        };
        let all = managers(ours);
        let spawner = managers(|c, e| ours(c, e) && c.iter().any(|a| a == "spawner"));
        finish(&src, &marker, (&all, &spawner), settings, watch)
    })();
    let _ = cmd(&["kill"]);
    result
}

fn measure_pm2(settings: &Settings) -> anyhow::Result<Figures> {
    let home = tempfile::Builder::new().prefix("pm2bw").tempdir()?;
    let root = home.path();
    let src = tree(root, settings.files)?;
    let marker = format!("pm2bwatch{}", std::process::id());
    let script = app(root, &marker)?;
    let file = root.join("ecosystem.config.js");
    std::fs::write(
        &file,
        format!(
            "module.exports = {{apps: [{{name: 'w', script: {:?}, interpreter: 'none', cwd: {:?}, watch: [{:?}], watch_delay: {}}}]}};\n",
            script.display().to_string(),
            root.display().to_string(),
            src.display().to_string(),
            settings.delay_ms
        ),
    )?;
    let pm2 = |args: &[&str]| -> anyhow::Result<()> {
        let out = Command::new("pm2")
            .env("PM2_HOME", root)
            .current_dir(root)
            .args(args)
            .output()?;
        if !out.status.success() {
            bail!("pm2 {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    };
    let result = (|| {
        pm2(&["start", file.to_str().context("path")?])?;
        let pid: u32 = std::fs::read_to_string(root.join("pm2.pid"))?
            .trim()
            .parse()?;
        finish(&src, &marker, (&[pid], &[]), settings, true)
    })();
    let _ = pm2(&["kill"]);
    result
}

/// Waits for the app, settles, measures idle CPU, then times writes.
/// `managers`: every process of the manager, and the one that watches (empty: not told
/// apart). `time_writes`: false for a baseline without watching.
fn finish(
    src: &Path,
    marker: &str,
    (managers, watcher): (&[u32], &[u32]),
    settings: &Settings,
    time_writes: bool,
) -> anyhow::Result<Figures> {
    let mut pid = wait_app(marker, None)?;
    // Let the initial walk and startup finish before the idle window.
    std::thread::sleep(Duration::from_secs(2));
    let before = (cpu_ms(managers), cpu_ms(watcher));
    std::thread::sleep(Duration::from_secs_f64(settings.idle_secs));
    let idle_cpu = cpu_ms(managers) - before.0;
    let spawner_cpu = (!watcher.is_empty()).then(|| cpu_ms(watcher) - before.1);
    if !time_writes {
        return Ok(Figures {
            idle_cpu,
            spawner_cpu,
            restart: None,
        });
    }
    let mut times = Vec::new();
    for i in 0..settings.writes {
        let wrote = Instant::now();
        std::fs::write(src.join(format!("d{}/f{}.js", i % 10, i)), format!("{i}\n"))?;
        while alive(pid) {
            if wrote.elapsed() > Duration::from_secs(30) {
                bail!("no restart within 30 s");
            }
            std::thread::sleep(Duration::from_micros(500));
        }
        times.push(wrote.elapsed().as_secs_f64() * 1000.0 - settings.delay_ms as f64);
        pid = wait_app(marker, Some(pid))?;
        // Quiet between writes, so each is its own burst.
        std::thread::sleep(Duration::from_millis(settings.delay_ms * 3 + 300));
    }
    times.sort_by(f64::total_cmp);
    Ok(Figures {
        idle_cpu,
        spawner_cpu,
        restart: times.get(times.len() / 2).copied(),
    })
}

fn wait_app(marker: &str, not: Option<u32>) -> anyhow::Result<u32> {
    let start = Instant::now();
    loop {
        if let Some(pid) = marked(marker).into_iter().find(|p| Some(*p) != not) {
            return Ok(pid);
        }
        if start.elapsed() > Duration::from_secs(30) {
            bail!("the app did not start");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn alive(pid: u32) -> bool {
    zpm_host::procfs::alive(pid)
}

fn marked(marker: &str) -> Vec<u32> {
    zpm_host::procfs::all_pids()
        .unwrap_or_default()
        .into_iter()
        .filter(|p| alive(*p) && procfs::cmdline(*p).iter().any(|a| a.contains(marker)))
        .collect()
}

/// Processes whose command line and environment (`NAME=value` lines) satisfy `wanted`.
fn managers(wanted: impl Fn(&[String], &str) -> bool) -> Vec<u32> {
    procfs::all_pids()
        .unwrap_or_default()
        .into_iter()
        .filter(|p| {
            let environ = std::fs::read(format!("/proc/{p}/environ"))
                .map(|b| String::from_utf8_lossy(&b).replace('\0', "\n"))
                .unwrap_or_default();
            wanted(&procfs::cmdline(*p), &environ)
        })
        .collect()
}

/// utime+stime of `pids`, in ms.
fn cpu_ms(pids: &[u32]) -> f64 {
    let ticks: u64 = pids
        .iter()
        .filter_map(|p| procfs::stat(*p).ok())
        .map(|s| s.cpu_ticks())
        .sum();
    ticks as f64 * 1000.0 / procfs::ticks_per_second() as f64
}

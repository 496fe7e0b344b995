//! `zpm-bench watch`: an app watching a tree of 10,000 files. (i) CPU time of the manager's
//! own processes (zpm: God and its agents; PM2: its God daemon) over an idle window, from
//! /proc/<pid>/stat utime+stime; (ii) from a file write to the restart begun (the old run
//! gone), minus the debounce delay, median over several writes. PM2 beside it, if installed.

use anyhow::{Context as _, bail};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

#[derive(clap::Args, Clone, Debug)]
pub struct Settings {
    /// The zpm binary to measure (default: `zpm` next to this executable).
    #[arg(long)]
    pub zpm: Option<PathBuf>,
    /// Skip PM2 even if it is installed.
    #[arg(long)]
    pub no_pm2: bool,
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

struct Figures {
    idle_cpu_ms: f64,
    restart_ms: f64,
}

pub fn run_and_print(settings: &Settings) -> anyhow::Result<()> {
    let zpm = settings.zpm.clone().unwrap_or_else(|| {
        std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(|d| d.join("zpm")))
            .unwrap_or_else(|| PathBuf::from("zpm"))
    });
    let z = measure_zpm(&zpm, settings)?;
    println!(
        "watch: {} files, delay {} ms, idle {} s",
        settings.files, settings.delay_ms, settings.idle_secs
    );
    println!(
        "{:<6} {:>18} {:>26}",
        "", "idle CPU (ms)", "write→restart - delay (ms)"
    );
    println!(
        "{:<6} {:>18.1} {:>26.1}",
        "zpm", z.idle_cpu_ms, z.restart_ms
    );
    if !settings.no_pm2 && which("pm2").is_some() {
        match measure_pm2(settings) {
            Ok(p) => println!(
                "{:<6} {:>18.1} {:>26.1}",
                "pm2", p.idle_cpu_ms, p.restart_ms
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

fn measure_zpm(zpm: &Path, settings: &Settings) -> anyhow::Result<Figures> {
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
        cmd(&[
            "start",
            script.to_str().context("path")?,
            "--name",
            "w",
            "--watch-delay",
            &delay,
            "--watch",
            src.to_str().context("path")?,
        ])?;
        let managers = managers(|cmdline, environ| {
            cmdline.iter().any(|a| a == "daemon" || a == "agent")
                && environ.contains(&format!("ZPM_HOME={}", root.display()))
        });
        finish(&src, &marker, &managers, settings)
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
        finish(&src, &marker, &[pid], settings)
    })();
    let _ = pm2(&["kill"]);
    result
}

/// Waits for the app, settles, measures idle CPU, then times writes.
fn finish(
    src: &Path,
    marker: &str,
    managers: &[u32],
    settings: &Settings,
) -> anyhow::Result<Figures> {
    let mut pid = wait_app(marker, None)?;
    // Let the initial walk and startup finish before the idle window.
    std::thread::sleep(Duration::from_secs(2));
    let before = cpu_ms(managers);
    std::thread::sleep(Duration::from_secs_f64(settings.idle_secs));
    let idle_cpu_ms = cpu_ms(managers) - before;
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
        idle_cpu_ms,
        restart_ms: times[times.len() / 2],
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
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

fn pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn cmdline(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|c| *c == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn marked(marker: &str) -> Vec<u32> {
    pids()
        .into_iter()
        .filter(|p| alive(*p) && cmdline(*p).iter().any(|a| a.contains(marker)))
        .collect()
}

fn managers(wanted: impl Fn(&[String], &str) -> bool) -> Vec<u32> {
    pids()
        .into_iter()
        .filter(|p| {
            let environ = std::fs::read(format!("/proc/{p}/environ"))
                .map(|b| String::from_utf8_lossy(&b).replace('\0', "\n"))
                .unwrap_or_default();
            wanted(&cmdline(*p), &environ)
        })
        .collect()
}

/// utime+stime of `pids`, in ms (clock ticks of 10 ms).
fn cpu_ms(pids: &[u32]) -> f64 {
    let ticks: u64 = pids
        .iter()
        .filter_map(|p| {
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
            let (_, rest) = stat.rsplit_once(')')?;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
        })
        .sum();
    ticks as f64 * 10.0
}

//! `zpm-bench logs`: the log path PM2 users feel — `seq` as the app, from `start` to every
//! byte on disk (checked byte for byte), a 10M-line flood with the peak memory of every
//! daemon process, and `logs --lines 1000 --nostream` — for zpm and, in the same run, PM2.

use super::pm2::Pm2;
use super::procfs::rss_mb;
use super::timing::{median_ms, poll, timed};
use super::zpm::{Zpm, which};
use super::{Figure, Settings};
use anyhow::{Context as _, bail};
use serde::Serialize;
use std::path::Path;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(300);

#[derive(Serialize, Debug)]
pub struct Results {
    pub figures: Vec<Figure>,
    pub pm2_version: Option<String>,
}

fn figure(metric: &str, unit: &str, zpm: f64, target: &str) -> Figure {
    Figure {
        metric: metric.into(),
        unit: unit.into(),
        zpm,
        pm2: None,
        target: target.into(),
    }
}

/// Bytes `seq 1 N` prints.
fn seq_bytes(n: u64) -> anyhow::Result<Vec<u8>> {
    let out = std::process::Command::new(which("seq")?)
        .args(["1", &n.to_string()])
        .output()
        .context("running seq")?;
    Ok(out.stdout)
}

/// Polls `path` every millisecond until it holds `len` bytes; meanwhile calls `sample`.
fn wait_len(path: &Path, len: u64, mut sample: impl FnMut()) -> anyhow::Result<Duration> {
    let started = Instant::now();
    poll(&format!("{len} bytes in {}", path.display()), LIMIT, || {
        sample();
        let now = std::fs::metadata(path).map_or(0, |m| m.len());
        if now > len {
            bail!(
                "{} has {now} bytes, more than the {len} written",
                path.display()
            );
        }
        std::thread::sleep(Duration::from_millis(1));
        Ok((now == len).then_some(()))
    })?;
    Ok(started.elapsed())
}

fn same_bytes(path: &Path, want: &[u8]) -> anyhow::Result<()> {
    let got = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if got != want {
        bail!("{} differs from what the app wrote", path.display());
    }
    Ok(())
}

/// `seq 1 1000000 > file` itself, the floor any process manager is compared with.
fn shell_baseline(dir: &Path) -> anyhow::Result<f64> {
    let file = dir.join("baseline.txt");
    let script = format!("seq 1 1000000 > {}", file.display());
    let runs = (0..5)
        .map(|_| timed(std::process::Command::new("sh").args(["-c", &script])))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(median_ms(runs))
}

pub fn run(settings: &Settings) -> anyhow::Result<Results> {
    let million = seq_bytes(1_000_000)?;
    let flood_len = seq_bytes(10_000_000)?.len() as u64;
    let mut figures = measure_zpm(settings, &million, flood_len)?;
    let pm2 = if settings.no_pm2 { None } else { Pm2::find() };
    if let Some(pm2) = &pm2 {
        let theirs = pm2.measure_logs(&million, flood_len)?;
        for f in &mut figures {
            f.pm2 = theirs.get(&f.metric).copied();
        }
    }
    Ok(Results {
        figures,
        pm2_version: pm2.map(|p| p.version.clone()),
    })
}

fn measure_zpm(settings: &Settings, million: &[u8], flood_len: u64) -> anyhow::Result<Vec<Figure>> {
    let zpm = Zpm::new(settings)?;
    timed(&mut zpm.cmd(&["ping"]))?;
    let client = zpm.client();
    let daemons = zpm.daemons(&client)?;
    let seq = which("seq")?.display().to_string();
    let logs = zpm.home.path().join("logs");
    let mut figures = vec![figure(
        "seq 1 1000000 > file (the shell, no manager)",
        "ms",
        shell_baseline(zpm.home.path())?,
        "the floor",
    )];
    let start = |name: &str, n: &str| {
        zpm.cmd(&[
            "start",
            &seq,
            "--name",
            name,
            "--no-autorestart",
            "--",
            "1",
            n,
        ])
        .output()
        .context("zpm start")
    };
    let started = Instant::now();
    start("m1", "1000000")?;
    wait_len(&logs.join("m1-out.log"), million.len() as u64, || {})?;
    figures.push(figure(
        "1M lines: start → all on disk",
        "ms",
        started.elapsed().as_secs_f64() * 1000.0,
        "≤ 300 ms (PM2 2.74 s, supervisord 40 ms, Circus 106 ms)",
    ));
    same_bytes(&logs.join("m1-out.log"), million)?;
    let mut peak: Vec<(String, f64)> = daemons.iter().map(|(r, _)| (r.clone(), 0.0)).collect();
    let started = Instant::now();
    start("m10", "10000000")?;
    wait_len(&logs.join("m10-out.log"), flood_len, || {
        for ((_, pid), (_, top)) in daemons.iter().zip(&mut peak) {
            *top = top.max(rss_mb(*pid));
        }
    })?;
    figures.push(figure(
        "10M lines: start → all on disk",
        "ms",
        started.elapsed().as_secs_f64() * 1000.0,
        "(byte count checked)",
    ));
    for (role, top) in peak {
        figures.push(figure(
            &format!("peak RSS during the 10M flood: {role}"),
            "MB",
            top,
            "≤ 32 MB",
        ));
    }
    let tails = (0..10)
        .map(|_| timed(&mut zpm.cmd(&["logs", "m1", "--lines", "1000", "--nostream"])))
        .collect::<anyhow::Result<Vec<_>>>();
    match tails {
        Ok(tails) => figures.push(figure(
            "logs --lines 1000 --nostream",
            "ms",
            median_ms(tails),
            "faster than PM2",
        )),
        Err(e) => eprintln!("zpm-bench: `zpm logs` not measured: {e:#}"),
    }
    Ok(figures)
}

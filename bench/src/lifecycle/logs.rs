//! `zpm-bench logs`: the log path PM2 users feel — `seq` as the app, from `start` to every
//! byte on disk (checked byte for byte), a 10M-line flood with the peak memory of every
//! daemon process, and `logs --lines 1000 --nostream` — for zpm and, in the same run, PM2.

use super::procfs::rss_mb;
use super::timing::{median_ms, poll, timed};
use super::zpm::{Zpm, which};
use super::{Figure, Settings, figure};
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

/// Bytes `seq 1 N` prints.
fn seq_bytes(n: u64) -> anyhow::Result<Vec<u8>> {
    let out = std::process::Command::new(which("seq")?)
        .args(["1", &n.to_string()])
        .output()
        .context("running seq")?;
    Ok(out.stdout)
}

/// `start SEQ --name NAME --no-autorestart -- 1 N`: the same command line for zpm and PM2.
pub(super) fn seq_app<'a>(seq: &'a str, name: &'a str, n: &'a str) -> [&'a str; 8] {
    [
        "start",
        seq,
        "--name",
        name,
        "--no-autorestart",
        "--",
        "1",
        n,
    ]
}

/// Polls `path` every millisecond until it holds `len` bytes; meanwhile calls `sample`.
pub(super) fn wait_len(
    path: &Path,
    len: u64,
    mut sample: impl FnMut(),
) -> anyhow::Result<Duration> {
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
    let pm2 = settings.tools.pm2();
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

/// `zpm logs` (every app, no history) following a second 10M-line flood into a pipe: the
/// lines it printed per second and its cpu, counted until the flood is on disk and the
/// CLI has been quiet for a moment.
fn follow_flood(zpm: &Zpm, seq: &str, flood_len: u64) -> anyhow::Result<Vec<Figure>> {
    use std::io::BufRead as _;
    let mut follower = zpm
        .cmd(&["logs", "--lines", "0", "--raw"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("starting zpm logs")?;
    let pid = follower.id();
    let stdout = follower.stdout.take().context("zpm logs stdout")?;
    let printed = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = std::sync::Arc::clone(&printed);
    let reader = std::thread::spawn(move || {
        for _ in std::io::BufReader::new(stdout).split(b'\n') {
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    });
    // Let it subscribe before the flood starts.
    std::thread::sleep(Duration::from_millis(500));
    let ticks = |pid: u32| zpm_host::procfs::stat(pid).map_or(0, |s| s.cpu_ticks());
    let cpu_before = ticks(pid);
    let started = Instant::now();
    zpm.cmd(&seq_app(seq, "f10", "10000000"))
        .output()
        .context("zpm start")?;
    let logs = zpm.home.path().join("logs").join("f10-out.log");
    wait_len(&logs, flood_len, || {})?;
    let mut last = (
        printed.load(std::sync::atomic::Ordering::Relaxed),
        Instant::now(),
    );
    let done = loop {
        std::thread::sleep(Duration::from_millis(200));
        let now = printed.load(std::sync::atomic::Ordering::Relaxed);
        if now == last.0 {
            break last;
        }
        last = (now, Instant::now());
    };
    let seconds = (done.1 - started).as_secs_f64();
    let cpu = (ticks(pid) - cpu_before) as f64 / zpm_host::procfs::ticks_per_second() as f64;
    let _ = follower.kill();
    let _ = follower.wait();
    let _ = reader.join();
    Ok(vec![
        figure(
            "zpm logs following a 10M flood: lines printed",
            "lines",
            done.0 as f64,
            "(10M, or drops marked)",
        ),
        figure(
            "zpm logs following a 10M flood: lines/s",
            "lines/s",
            done.0 as f64 / seconds,
            "keeps up",
        ),
        figure(
            "zpm logs following a 10M flood: its cpu",
            "% core",
            cpu / seconds * 100.0,
            "≤ 100 %",
        ),
    ])
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
        zpm.cmd(&seq_app(&seq, name, n))
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
    figures.extend(follow_flood(&zpm, &seq, flood_len)?);
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

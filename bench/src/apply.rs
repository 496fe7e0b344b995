//! `zpm-bench apply`: `zpm apply FILE` of an unchanged file of 50 running apps, end to end
//! (the CLI process spawned until it exits: reading the file, one `app.apply` dry run
//! answered "nothing to do"). PM2 has no apply; its nearest, `pm2 startOrReload FILE`, is
//! timed on the same file beside it (it reloads every app, changed or not).

use crate::lifecycle::pm2::Pm2;
use crate::lifecycle::timing::{median_ms, poll, stdout, timed};
use crate::lifecycle::zpm::{Zpm, sleepers_file};
use crate::lifecycle::{Figure, figure, print_figures};
use anyhow::{Context as _, bail};
use serde::Serialize;
use std::path::Path;
use std::time::{Duration, Instant};
use zpm_proto::ProcessStatus;

const LIMIT: Duration = Duration::from_secs(120);

#[derive(clap::Args, Clone, Debug)]
pub struct Settings {
    #[command(flatten)]
    pub tools: crate::lifecycle::Tools,
    /// Apps in the file.
    #[arg(long, default_value_t = 50)]
    pub apps: usize,
    /// Timed applies per tool (the median is reported).
    #[arg(long, default_value_t = 20)]
    pub runs: usize,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize, Debug)]
pub struct Results {
    pub apps: usize,
    pub runs: usize,
    pub figures: Vec<Figure>,
    pub pm2_version: Option<String>,
}

pub fn run_and_print(settings: &Settings) -> anyhow::Result<()> {
    let results = run(settings)?;
    if settings.json {
        let text = serde_json::to_string_pretty(&results).context("encoding JSON")?;
        println!("{text}");
    } else {
        print_figures(
            &format!("apply, {} apps unchanged", results.apps),
            results.pm2_version.as_deref(),
            &results.figures,
        );
    }
    Ok(())
}

fn run(settings: &Settings) -> anyhow::Result<Results> {
    let (median, slowest) = zpm_apply(settings)?;
    let mut figures = vec![
        figure("apply, unchanged file (median)", "ms", median, "≤ 50 ms"),
        figure("apply, unchanged file (slowest)", "ms", slowest, ""),
    ];
    let pm2 = settings.tools.pm2();
    if let Some(pm2) = &pm2 {
        let (median, slowest) = pm2_start_or_reload(pm2, settings)?;
        figures[0].pm2 = Some(median);
        figures[1].pm2 = Some(slowest);
    }
    Ok(Results {
        apps: settings.apps,
        runs: settings.runs,
        figures,
        pm2_version: pm2.map(|p| p.version.clone()),
    })
}

/// (median, slowest) of `runs` timings, in ms.
fn summary(samples: Vec<Duration>) -> (f64, f64) {
    let slowest = samples
        .iter()
        .max()
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0);
    (median_ms(samples), slowest)
}

fn zpm_apply(settings: &Settings) -> anyhow::Result<(f64, f64)> {
    let zpm = Zpm::new(&crate::lifecycle::Settings::of(&settings.tools))?;
    let file = path_text(&sleepers_file(zpm.home.path(), settings.apps)?)?;
    stdout(&mut zpm.cmd(&["apply", &file]))?;
    let client = zpm.client();
    poll("every app online", LIMIT, || {
        let rows = zpm.list(&client)?;
        let online = rows
            .iter()
            .filter(|r| r.status == ProcessStatus::Online)
            .count();
        Ok((online == settings.apps).then_some(()))
    })?;
    let said = stdout(&mut zpm.cmd(&["apply", &file]))?;
    if !said.starts_with("nothing to do") {
        bail!("a second apply of the same file did something: {said}");
    }
    let samples = (0..settings.runs)
        .map(|_| timed(&mut zpm.cmd(&["apply", &file])))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(summary(samples))
}

/// `pm2 start FILE`, then `pm2 startOrReload FILE` of the same file `runs` times; PM2's
/// daemon is killed when `pm2` is dropped.
fn pm2_start_or_reload(pm2: &Pm2, settings: &Settings) -> anyhow::Result<(f64, f64)> {
    let file = path_text(&sleepers_file(pm2.home(), settings.apps)?)?;
    timed(&mut pm2.cmd(&["start", &file]))?;
    pm2.wait_online(settings.apps)?;
    let mut samples = Vec::with_capacity(settings.runs);
    let started = Instant::now();
    for _ in 0..settings.runs {
        samples.push(timed(&mut pm2.cmd(&["startOrReload", &file]))?);
        if started.elapsed() > LIMIT * 5 {
            break;
        }
    }
    Ok(summary(samples))
}

fn path_text(path: &Path) -> anyhow::Result<String> {
    path.to_str()
        .map(str::to_owned)
        .with_context(|| format!("{} is not UTF-8", path.display()))
}

//! `zpm-bench lifecycle`: the app lifecycle PM2 users feel — CLI latency, start/delete of
//! 100 apps, crash → back online, memory idle / with 50 apps / after 10,000 restarts —
//! measured for zpm and, in the same run, for PM2 when `pm2` is on PATH.

pub mod crash;
pub mod logs;
pub mod pm2;
mod procfs;
pub(crate) mod timing;
pub mod zpm;

use crate::report::Table;
use serde::Serialize;

/// The managers measured: every scenario that drives real processes flattens this.
#[derive(clap::Args, Clone, Debug)]
pub struct Tools {
    /// The zpm binary to measure (default: `zpm` next to this executable).
    #[arg(long)]
    pub zpm: Option<std::path::PathBuf>,
    /// Skip PM2 even if it is installed.
    #[arg(long)]
    pub no_pm2: bool,
}

impl Tools {
    /// PM2, unless skipped or not installed.
    pub fn pm2(&self) -> Option<pm2::Pm2> {
        if self.no_pm2 { None } else { pm2::Pm2::find() }
    }
}

#[derive(clap::Args, Clone, Debug)]
pub struct Settings {
    #[command(flatten)]
    pub tools: Tools,
    /// Restarts of the crash-looping app in the churn run.
    #[arg(long, default_value_t = 10_000)]
    pub churn_restarts: u64,
}

impl Settings {
    /// For a scenario that only needs the managers (no churn run).
    pub fn of(tools: &Tools) -> Self {
        Self {
            tools: tools.clone(),
            churn_restarts: 0,
        }
    }
}

/// One measured figure for zpm and (if measured) PM2.
#[derive(Serialize, Clone, Debug)]
pub struct Figure {
    pub metric: String,
    pub unit: String,
    pub zpm: f64,
    pub pm2: Option<f64>,
    pub target: String,
}

/// A zpm figure; PM2's is filled in when measured.
pub fn figure(metric: &str, unit: &str, zpm: f64, target: &str) -> Figure {
    Figure {
        metric: metric.into(),
        unit: unit.into(),
        zpm,
        pm2: None,
        target: target.into(),
    }
}

#[derive(Serialize, Debug)]
pub struct Results {
    pub figures: Vec<Figure>,
    pub churn: zpm::Churn,
    pub pm2_version: Option<String>,
}

pub fn run(settings: &Settings) -> anyhow::Result<Results> {
    let zpm_figures = zpm::measure(settings)?;
    let pm2 = settings.tools.pm2();
    let pm2_version = pm2.as_ref().map(|p| p.version.clone());
    let pm2_figures = match &pm2 {
        Some(pm2) => Some(pm2.measure()?),
        None => None,
    };
    let figures = zpm_figures
        .figures
        .into_iter()
        .map(|mut f| {
            f.pm2 = pm2_figures.as_ref().and_then(|p| p.get(&f.metric).copied());
            f
        })
        .collect();
    Ok(Results {
        figures,
        churn: zpm_figures.churn,
        pm2_version,
    })
}

/// A table of figures, zpm beside PM2 (when measured) and their ratio.
pub fn print_figures(title: &str, pm2_version: Option<&str>, figures: &[Figure]) {
    let pm2 = pm2_version.map_or("PM2 (not run)".to_owned(), |v| format!("PM2 {v}"));
    let mut table = Table::new(title, &["metric", "zpm", &pm2, "PM2 / zpm", "target"]);
    for f in figures {
        table.row(vec![
            f.metric.clone(),
            format!("{:.1} {}", f.zpm, f.unit),
            f.pm2.map_or("-".into(), |p| format!("{p:.1} {}", f.unit)),
            f.pm2.map_or("-".into(), |p| {
                if f.zpm > 0.0 {
                    format!("{:.1}×", p / f.zpm)
                } else {
                    "-".into()
                }
            }),
            f.target.clone(),
        ]);
    }
    table.print();
}

pub fn print(results: &Results) {
    print_figures(
        "lifecycle",
        results.pm2_version.as_deref(),
        &results.figures,
    );
    let c = &results.churn;
    println!(
        "churn: {} restarts in {:.1} s; God+spawner RSS {:.1} → {:.1} MB; fds God {} → {}, spawner {} → {}; zombies under spawner {}",
        c.restarts,
        c.seconds,
        c.rss_before_mb,
        c.rss_after_mb,
        c.god_fds_before,
        c.god_fds_after,
        c.spawner_fds_before,
        c.spawner_fds_after,
        c.zombies
    );
}

//! `zpm-bench reload`: cluster mode and zero-downtime reload, zpm beside PM2 in one run.
//! A Node HTTP server written PM2 style (`listen(Number(process.env.PORT))`, answering
//! with its pid, `process.send('ready')` once listening) is started with `-i 4` until all
//! are ready, then reloaded under continuous load (client threads, a new TCP connection
//! per `GET /`), counting failed requests and checking every pid was replaced. zpm also
//! runs a Python server on an inherited socket (`--listen`), to show any language works.

mod load;

use crate::lifecycle::pm2::Pm2;
use crate::lifecycle::timing::{median_ms, poll};
use crate::lifecycle::zpm::Zpm;
use crate::remote::homes::{free_port, kill_leftovers, run as run_command};
use crate::report::{Table, thousands};
use anyhow::Context as _;
use load::{Load, Phase, pids_answering};
use serde::Serialize;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A command that takes longer than this is killed and counted as failed.
const LIMIT: Duration = Duration::from_secs(60);

#[derive(clap::Args, Clone, Debug)]
pub struct Settings {
    #[command(flatten)]
    pub tools: crate::lifecycle::Tools,
    /// `start -i 4` runs per scenario (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Client threads of the load, each one request at a time on a new connection.
    #[arg(long, default_value_t = 4)]
    pub clients: usize,
    /// Seconds of steady load before the reload, and again after it.
    #[arg(long, default_value_t = 1.0)]
    pub steady_secs: f64,
    /// A request not answered within this many milliseconds counts as failed (timeout).
    #[arg(long, default_value_t = 2000)]
    pub timeout_ms: u64,
    /// Print one JSON object instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// The Node server, unchanged PM2 style.
const NODE_SERVER: &str = include_str!("../../../examples/node/server.js");

/// A Python server on the socket zpm hands over as fd 3 (socket activation), ready by
/// sd_notify, stopping gracefully on SIGTERM (the example the tests run too).
const PY_SERVER: &str = include_str!("../../../examples/python/http_on_fd3.py");

#[derive(Clone, Copy, PartialEq, Eq)]
enum Which {
    Zpm,
    Pm2,
}

/// One way of running the server.
struct Scenario {
    label: &'static str,
    /// The app's name.
    name: &'static str,
    which: Which,
    script: &'static str,
    source: &'static str,
    instances: usize,
    /// `--listen 127.0.0.1:PORT` (zpm's socket activation).
    listen: bool,
    /// Arguments after `start SCRIPT --name server`.
    args: &'static [&'static str],
}

const ZPM_NODE: Scenario = Scenario {
    label: "zpm, Node cluster",
    name: "server",
    which: Which::Zpm,
    script: "server.js",
    source: NODE_SERVER,
    instances: 4,
    listen: false,
    args: &["-i", "4", "--wait-ready"],
};
const ZPM_PYTHON: Scenario = Scenario {
    label: "zpm, Python --listen",
    // Its own name: runs found that a new app named like a just-deleted one could get
    // the deleted one's sockets (fixed since: the spawner lets go before it reports).
    name: "pyserver",
    which: Which::Zpm,
    script: "server.py",
    source: PY_SERVER,
    instances: 4,
    listen: true,
    args: &["-i", "4", "--wait-ready"],
};
const PM2_CLUSTER: Scenario = Scenario {
    label: "PM2, Node cluster",
    name: "server",
    which: Which::Pm2,
    script: "server.js",
    source: NODE_SERVER,
    instances: 4,
    listen: false,
    args: &["-i", "4", "--wait-ready"],
};
/// PM2's fork mode: 4 forked instances cannot share a port, so one (PM2's CLI has no
/// `--exec-mode`; without `-i` a Node script runs in fork mode, with `-i 1` in cluster).
const PM2_FORK: Scenario = Scenario {
    label: "PM2, Node fork (1 instance)",
    name: "server",
    which: Which::Pm2,
    script: "server.js",
    source: NODE_SERVER,
    instances: 1,
    listen: false,
    args: &["--wait-ready"],
};

impl Scenario {
    fn start_args(&self, script: &Path, port: u16) -> Vec<String> {
        let mut args = vec![
            "start".to_owned(),
            script.display().to_string(),
            "--name".into(),
            self.name.into(),
        ];
        if self.listen {
            args.extend(["--listen".into(), format!("127.0.0.1:{port}")]);
        }
        args.extend(self.args.iter().map(ToString::to_string));
        args
    }

    /// The start command as a user types it, PORT in its environment.
    fn command(&self) -> String {
        let tool = match self.which {
            Which::Zpm => "zpm",
            Which::Pm2 => "pm2",
        };
        let mut words = self.start_args(Path::new(self.script), 0);
        if self.listen {
            words[5] = "127.0.0.1:$PORT".into();
        }
        format!("PORT=$PORT {tool} {}", words.join(" "))
    }
}

/// zpm or PM2, each in its own temporary home.
struct Managers {
    zpm: Zpm,
    pm2: Option<Pm2>,
}

impl Drop for Managers {
    fn drop(&mut self) {
        // Both daemons go, even after an error: `zpm kill` here and by pid whatever of
        // this home is left; `pm2 kill` in Pm2's own drop.
        let _ = self.zpm.cmd(&["kill"]).output();
        kill_leftovers(self.zpm.home.path());
    }
}

impl Managers {
    fn cmd(&self, which: Which, args: &[String]) -> anyhow::Result<Command> {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Ok(match which {
            Which::Zpm => self.zpm.cmd(&args),
            Which::Pm2 => self.pm2()?.cmd(&args),
        })
    }

    fn pm2(&self) -> anyhow::Result<&Pm2> {
        self.pm2
            .as_ref()
            .context("PM2 is not installed (or --no-pm2)")
    }

    fn dir(&self, which: Which) -> anyhow::Result<&Path> {
        Ok(match which {
            Which::Zpm => self.zpm.home.path(),
            Which::Pm2 => self.pm2()?.home(),
        })
    }

    /// Runs `args` to completion (within LIMIT); fails unless it succeeds.
    fn run(&self, which: Which, args: &[&str], port: Option<u16>) -> anyhow::Result<()> {
        let args: Vec<String> = args.iter().map(ToString::to_string).collect();
        let mut command = self.cmd(which, &args)?;
        if let Some(port) = port {
            command.env("PORT", port.to_string());
        }
        run_command(&mut command, LIMIT).map(drop)
    }

    /// The app's rows: `zpm ls --json` or `pm2 jlist`.
    fn rows(&self, which: Which, name: &str) -> anyhow::Result<Vec<Value>> {
        let rows = match which {
            Which::Zpm => {
                let out = run_command(&mut self.zpm.cmd(&["ls", "--json"]), LIMIT)?;
                serde_json::from_slice::<Vec<Value>>(&out.stdout)
                    .context("parsing zpm ls --json")?
            }
            Which::Pm2 => self.pm2()?.jlist()?,
        };
        Ok(rows.into_iter().filter(|r| r["name"] == name).collect())
    }

    fn script(&self, scenario: &Scenario) -> anyhow::Result<PathBuf> {
        let path = self.dir(scenario.which)?.join(scenario.script);
        std::fs::write(&path, scenario.source)
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    /// `start` with PORT in the environment; returns when the command returned, and when
    /// all instances were online (PM2 may return before).
    fn start(&self, scenario: &Scenario, port: u16) -> anyhow::Result<(Duration, Duration)> {
        let script = self.script(scenario)?;
        let mut command = self.cmd(scenario.which, &scenario.start_args(&script, port))?;
        command.env("PORT", port.to_string());
        let started = Instant::now();
        run_command(&mut command, LIMIT)?;
        let returned = started.elapsed();
        if online(&self.rows(scenario.which, scenario.name)?) == scenario.instances {
            return Ok((returned, returned));
        }
        let waited = poll(
            &format!("{} instances online", scenario.instances),
            LIMIT,
            || {
                Ok(
                    (online(&self.rows(scenario.which, scenario.name)?) == scenario.instances)
                        .then_some(()),
                )
            },
        );
        if let Err(e) = waited {
            let rows = self.rows(scenario.which, scenario.name).unwrap_or_default();
            return Err(e.context(format!(
                "after `start` returned in {returned:?}: {}{}",
                summary(&rows),
                self.last_logs(scenario.which, scenario.name)
            )));
        }
        Ok((returned, started.elapsed()))
    }

    /// The app's last log lines (zpm's), for an error.
    fn last_logs(&self, which: Which, name: &str) -> String {
        if which == Which::Pm2 {
            return String::new();
        }
        let mut logs = self.zpm.cmd(&["logs", name, "--lines", "20", "--nostream"]);
        match run_command(&mut logs, LIMIT) {
            Ok(out) => format!(
                "; last log lines:\n{}",
                String::from_utf8_lossy(&out.stdout).trim_end()
            ),
            Err(e) => format!("; no logs: {e:#}"),
        }
    }

    fn delete(&self, scenario: &Scenario) -> anyhow::Result<()> {
        self.run(scenario.which, &["delete", scenario.name], None)
    }
}

fn status(row: &Value) -> &str {
    row["status"]
        .as_str()
        .or_else(|| row["pm2_env"]["status"].as_str())
        .unwrap_or("")
}

/// What the rows say, for an error: `id status pid restarts (exit, signal)` each.
fn summary(rows: &[Value]) -> String {
    let rows: Vec<String> = rows
        .iter()
        .map(|r| {
            let id = r
                .get("id")
                .or_else(|| r.get("pm_id"))
                .unwrap_or(&Value::Null);
            let restarts = r
                .get("restarts")
                .or_else(|| r["pm2_env"].get("restart_time"))
                .unwrap_or(&Value::Null);
            format!(
                "#{id} {} pid {} restarts {restarts} exit {} signal {}",
                status(r),
                r["pid"],
                r["exit_code"],
                r["signal"]
            )
        })
        .collect();
    format!("{} rows: {}", rows.len(), rows.join("; "))
}

fn online(rows: &[Value]) -> usize {
    rows.iter().filter(|r| status(r) == "online").count()
}

fn pids(rows: &[Value]) -> Vec<u32> {
    let mut pids: Vec<u32> = rows
        .iter()
        .filter_map(|r| r["pid"].as_u64())
        .filter(|p| *p > 0)
        .map(|p| p as u32)
        .collect();
    pids.sort_unstable();
    pids
}

/// `start -i 4` until all are ready, over several runs.
#[derive(Serialize, Debug)]
pub struct StartRow {
    pub scenario: String,
    pub command: String,
    pub median_ms: Option<f64>,
    pub runs_ms: Vec<f64>,
    /// Runs where the start command returned before every instance was online.
    pub returned_early: usize,
    pub error: Option<String>,
}

/// One reload under load.
#[derive(Serialize, Debug)]
pub struct ReloadRow {
    pub scenario: String,
    pub command: String,
    pub instances: usize,
    /// PM2's `exec_mode` as `pm2 jlist` shows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exec_mode: Option<String>,
    /// Distinct pids that answered before the load (every instance serves?).
    pub pids_answering: usize,
    /// A reload of the idle app, before the measured one.
    pub reload_idle_ms: f64,
    /// The reload under load (the command's wall time).
    pub reload_ms: f64,
    pub reload_error: Option<String>,
    pub before: Phase,
    pub during: Phase,
    pub after: Phase,
    pub requests: u64,
    pub failed: u64,
    pub pids_before: Vec<u32>,
    pub pids_after: Vec<u32>,
    /// Every pid of before is gone, and as many new ones are listed.
    pub all_replaced: bool,
    pub online_after: usize,
}

#[derive(Serialize, Debug)]
pub struct Outcome<T> {
    pub scenario: String,
    pub row: Option<T>,
    pub error: Option<String>,
}

#[derive(Serialize, Debug)]
pub struct Machine {
    pub nproc: usize,
    pub cpu_model: String,
    pub kernel: String,
    pub node: String,
    pub python: String,
}

#[derive(Serialize, Debug)]
pub struct Ratio {
    pub metric: String,
    pub zpm: f64,
    pub pm2: f64,
    /// None when PM2's figure is 0.
    pub zpm_over_pm2: Option<f64>,
}

#[derive(Serialize, Debug)]
pub struct Results {
    pub machine: Machine,
    pub pm2_version: Option<String>,
    pub clients: usize,
    pub steady_secs: f64,
    pub timeout_ms: u64,
    pub start: Vec<StartRow>,
    pub reload: Vec<Outcome<ReloadRow>>,
    /// zpm's Node cluster against PM2's, where both were measured.
    pub ratios: Vec<Ratio>,
}

fn version(program: &str) -> String {
    Command::new(program)
        .arg("--version")
        .output()
        .map(|o| {
            let text = String::from_utf8_lossy(&o.stdout) + String::from_utf8_lossy(&o.stderr);
            text.trim().to_owned()
        })
        .unwrap_or_default()
}

fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, model)| model.trim().to_owned())
        .unwrap_or_default();
    Machine {
        nproc: std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
        cpu_model,
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
            .to_owned(),
        node: version("node"),
        python: version("python3"),
    }
}

pub fn run_and_print(settings: &Settings) -> anyhow::Result<()> {
    let results = run(settings)?;
    crate::report::emit(&results, settings.json, print)
}

pub fn run(settings: &Settings) -> anyhow::Result<Results> {
    let managers = Managers {
        zpm: Zpm::new(&crate::lifecycle::Settings::of(&settings.tools))?,
        pm2: settings.tools.pm2(),
    };
    managers.run(Which::Zpm, &["ping"], None)?;
    let pm2_version = managers.pm2.as_ref().map(|p| p.version.clone());
    let mut scenarios = vec![&ZPM_NODE, &ZPM_PYTHON];
    if managers.pm2.is_some() {
        managers.run(Which::Pm2, &["ping"], None)?;
        scenarios.extend([&PM2_CLUSTER, &PM2_FORK]);
    }
    let timed: Vec<&Scenario> = scenarios
        .iter()
        .copied()
        .filter(|s| s.instances > 1)
        .collect();
    let start = measure_starts(&managers, &timed, settings);
    let reload = scenarios
        .iter()
        .map(|scenario| {
            let outcome = reload_under_load(&managers, scenario, settings);
            // Leave nothing running for the next scenario (the app may be half-started).
            let _ = managers.delete(scenario);
            let (row, error) = match outcome {
                Ok(row) => (Some(row), None),
                Err(e) => (None, Some(format!("{e:#}"))),
            };
            Outcome {
                scenario: scenario.label.to_owned(),
                row,
                error,
            }
        })
        .collect::<Vec<_>>();
    let ratios = ratios(&start, &reload);
    drop(managers);
    Ok(Results {
        machine: machine(),
        pm2_version,
        clients: settings.clients,
        steady_secs: settings.steady_secs,
        timeout_ms: settings.timeout_ms,
        start,
        reload,
        ratios,
    })
}

/// `runs` starts of each scenario, alternating between them so noise hits all alike; each
/// run on a fresh port, the app deleted after it.
fn measure_starts(
    managers: &Managers,
    scenarios: &[&Scenario],
    settings: &Settings,
) -> Vec<StartRow> {
    let mut rows: Vec<StartRow> = scenarios
        .iter()
        .map(|s| StartRow {
            scenario: s.label.to_owned(),
            command: s.command(),
            median_ms: None,
            runs_ms: Vec::new(),
            returned_early: 0,
            error: None,
        })
        .collect();
    for _ in 0..settings.runs {
        for (scenario, row) in scenarios.iter().zip(&mut rows) {
            if row.error.is_some() {
                continue;
            }
            let outcome = free_port().and_then(|port| managers.start(scenario, port));
            let _ = managers.delete(scenario);
            match outcome {
                Ok((returned, ready)) => {
                    row.runs_ms.push(ready.as_secs_f64() * 1000.0);
                    row.returned_early += usize::from(returned < ready);
                }
                Err(e) => row.error = Some(format!("{e:#}")),
            }
        }
    }
    for row in &mut rows {
        if !row.runs_ms.is_empty() {
            let samples = row
                .runs_ms
                .iter()
                .map(|ms| Duration::from_secs_f64(ms / 1000.0));
            row.median_ms = Some(median_ms(samples.collect()));
        }
    }
    rows
}

/// Starts the scenario, puts it under load, reloads it, and looks at what answered.
fn reload_under_load(
    managers: &Managers,
    scenario: &Scenario,
    settings: &Settings,
) -> anyhow::Result<ReloadRow> {
    let port = free_port()?;
    managers.start(scenario, port)?;
    let rows = managers.rows(scenario.which, scenario.name)?;
    let exec_mode = rows
        .first()
        .and_then(|r| r["pm2_env"]["exec_mode"].as_str())
        .map(ToOwned::to_owned);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    // One reload with no load first: what the reload costs on an idle machine.
    let started = Instant::now();
    managers.run(scenario.which, &["reload", scenario.name], None)?;
    let reload_idle_ms = started.elapsed().as_secs_f64() * 1000.0;
    let answering = pids_answering(addr, scenario.instances, Duration::from_secs(10));
    let rows = managers.rows(scenario.which, scenario.name)?;
    let pids_before = pids(&rows);
    let steady = Duration::from_secs_f64(settings.steady_secs);
    let load = Load::start(
        addr,
        settings.clients.max(1),
        Duration::from_millis(settings.timeout_ms),
    );
    std::thread::sleep(steady);
    let reload_from = load.now();
    let reloaded = managers.run(scenario.which, &["reload", scenario.name], None);
    let reload_to = load.now();
    std::thread::sleep(steady);
    let end = load.now();
    let samples = load.finish();
    let rows = managers.rows(scenario.which, scenario.name)?;
    let pids_after = pids(&rows);
    let all_replaced = pids_after.len() == pids_before.len()
        && !pids_before.is_empty()
        && pids_before.iter().all(|p| !pids_after.contains(p));
    let failed = samples.iter().filter(|s| s.outcome.is_err()).count() as u64;
    Ok(ReloadRow {
        scenario: scenario.label.to_owned(),
        command: scenario.command(),
        instances: scenario.instances,
        exec_mode,
        pids_answering: answering.len(),
        reload_idle_ms,
        reload_ms: reload_to.saturating_sub(reload_from).as_secs_f64() * 1000.0,
        reload_error: reloaded.err().map(|e| format!("{e:#}")),
        before: Phase::of(&samples, Duration::ZERO, reload_from),
        during: Phase::of(&samples, reload_from, reload_to),
        after: Phase::of(&samples, reload_to, end),
        requests: samples.len() as u64,
        failed,
        pids_before,
        pids_after,
        all_replaced,
        online_after: online(&rows),
    })
}

fn ratios(start: &[StartRow], reload: &[Outcome<ReloadRow>]) -> Vec<Ratio> {
    let mut ratios = Vec::new();
    let mut push = |metric: &str, zpm: Option<f64>, pm2: Option<f64>| {
        if let (Some(zpm), Some(pm2)) = (zpm, pm2) {
            ratios.push(Ratio {
                metric: metric.to_owned(),
                zpm,
                pm2,
                zpm_over_pm2: (pm2 > 0.0).then(|| zpm / pm2),
            });
        }
    };
    let start_of = |label: &str| {
        start
            .iter()
            .find(|r| r.scenario == label)
            .and_then(|r| r.median_ms)
    };
    push(
        "start -i 4 until all ready, median (ms)",
        start_of(ZPM_NODE.label),
        start_of(PM2_CLUSTER.label),
    );
    let reload_of = |label: &str| {
        reload
            .iter()
            .find(|r| r.scenario == label)
            .and_then(|r| r.row.as_ref())
    };
    let (zpm, pm2) = (reload_of(ZPM_NODE.label), reload_of(PM2_CLUSTER.label));
    push(
        "reload wall time under load (ms)",
        zpm.map(|r| r.reload_ms),
        pm2.map(|r| r.reload_ms),
    );
    push(
        "reload wall time, idle (ms)",
        zpm.map(|r| r.reload_idle_ms),
        pm2.map(|r| r.reload_idle_ms),
    );
    push(
        "failed requests during the reload",
        zpm.map(|r| r.during.failed as f64),
        pm2.map(|r| r.during.failed as f64),
    );
    push(
        "answered requests/s, steady state",
        zpm.map(|r| r.before.ok_per_second),
        pm2.map(|r| r.before.ok_per_second),
    );
    push(
        "answered requests/s, during the reload",
        zpm.map(|r| r.during.ok_per_second),
        pm2.map(|r| r.during.ok_per_second),
    );
    ratios
}

fn failures(phase: &Phase) -> String {
    if phase.failed == 0 {
        return "0".into();
    }
    let kinds: Vec<String> = phase
        .failures
        .iter()
        .map(|(kind, n)| format!("{n} {kind}"))
        .collect();
    format!("{} ({})", phase.failed, kinds.join(", "))
}

pub fn print(results: &Results) {
    let m = &results.machine;
    println!(
        "machine: {} × {}, Linux {}; {}, {}; PM2 {}\n",
        m.nproc,
        m.cpu_model,
        m.kernel,
        m.node,
        m.python,
        results.pm2_version.as_deref().unwrap_or("not run")
    );
    let pm2_median = results
        .start
        .iter()
        .find(|r| r.scenario == PM2_CLUSTER.label)
        .and_then(|r| r.median_ms);
    let mut table = Table::new(
        "start -i 4 until all ready (fresh port per run, deleted after)",
        &["scenario", "median", "runs", "zpm / PM2 cluster", "command"],
    );
    for row in &results.start {
        let runs: Vec<String> = row.runs_ms.iter().map(|ms| format!("{ms:.0}")).collect();
        let ratio = match (row.median_ms, pm2_median) {
            (Some(z), Some(p)) if p > 0.0 && !row.scenario.starts_with("PM2") => {
                format!("{:.2}×", z / p)
            }
            _ => "-".into(),
        };
        table.row(vec![
            row.scenario.clone(),
            row.median_ms
                .map_or_else(|| "FAILED".into(), |ms| format!("{ms:.1} ms")),
            format!("{} ms", runs.join(" / ")),
            ratio,
            row.command.clone(),
        ]);
    }
    table.print();
    for row in &results.start {
        if row.returned_early > 0 {
            println!(
                "  {}: the command returned before all were online in {} run(s); timed until `jlist`/`ls` showed them",
                row.scenario, row.returned_early
            );
        }
        if let Some(e) = &row.error {
            println!("  {}: {e}", row.scenario);
        }
    }
    println!();
    print_reloads(results);
    if !results.ratios.is_empty() {
        println!();
        let mut table = Table::new(
            "zpm / PM2, Node cluster -i 4 --wait-ready",
            &["metric", "zpm", "PM2", "zpm / PM2"],
        );
        for r in &results.ratios {
            table.row(vec![
                r.metric.clone(),
                format!("{:.1}", r.zpm),
                format!("{:.1}", r.pm2),
                r.zpm_over_pm2.map_or("-".into(), |x| format!("{x:.2}×")),
            ]);
        }
        table.print();
    }
}

fn print_reloads(results: &Results) {
    let mut table = Table::new(
        format!(
            "reload under load ({} clients, a new connection per GET /, {} ms timeout; {:.1} s steady, reload, {:.1} s after)",
            results.clients, results.timeout_ms, results.steady_secs, results.steady_secs
        ),
        &[
            "scenario",
            "reload (idle)",
            "requests",
            "failed during reload",
            "failed after",
            "ok/s steady",
            "ok/s during",
            "ok/s after",
            "pids replaced",
            "answering",
        ],
    );
    for outcome in &results.reload {
        let Some(r) = &outcome.row else {
            table.row(vec![outcome.scenario.clone(), "FAILED".into()]);
            continue;
        };
        let replaced = r
            .pids_before
            .iter()
            .filter(|p| !r.pids_after.contains(p))
            .count();
        table.row(vec![
            r.scenario.clone(),
            format!("{:.0} ms ({:.0})", r.reload_ms, r.reload_idle_ms),
            thousands(r.requests),
            format!(
                "{} of {}",
                failures(&r.during),
                thousands(r.during.requests)
            ),
            failures(&r.after),
            format!("{:.0}", r.before.ok_per_second),
            format!("{:.0}", r.during.ok_per_second),
            format!("{:.0}", r.after.ok_per_second),
            format!(
                "{replaced}/{}{}",
                r.pids_before.len(),
                if r.all_replaced { "" } else { " NOT ALL" }
            ),
            format!(
                "{} → {} of {}",
                r.before.pids.len(),
                r.after.pids.len(),
                r.instances
            ),
        ]);
    }
    table.print();
    for outcome in &results.reload {
        if let Some(e) = &outcome.error {
            println!("  {}: {e}", outcome.scenario);
        }
        if let Some(r) = &outcome.row {
            println!(
                "  {}: `{}`{}; failed before the reload: {}; pids {:?} → {:?}, {} online after",
                r.scenario,
                r.command,
                r.exec_mode
                    .as_ref()
                    .map_or(String::new(), |m| format!(" ({m})")),
                failures(&r.before),
                r.pids_before,
                r.pids_after,
                r.online_after
            );
            if let Some(e) = &r.reload_error {
                println!("    reload failed: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_read_as_typed() {
        assert_eq!(
            ZPM_PYTHON.command(),
            "PORT=$PORT zpm start server.py --name pyserver --listen 127.0.0.1:$PORT -i 4 --wait-ready"
        );
        assert_eq!(
            PM2_FORK.command(),
            "PORT=$PORT pm2 start server.js --name server --wait-ready"
        );
    }
}

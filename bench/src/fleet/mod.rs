//! `zpm-bench fleet`: a fleet by simulation. For each count of hosts, a fresh God (the
//! real binary, listening on loopback TCP with a key) and that many fake spawner hosts in
//! this process, each through its own keyed tunnel, each holding `apps` apps that God
//! adopts. Measured per size: God's memory once converged, `zpm ls --json` (the real CLI)
//! over every app, and the events per second God relays from all hosts at saturation.

mod fake;
mod relay;

use crate::remote::homes::{GodHome, agents, client, list, ping, poll, run, zpm_exe};
use crate::report::{Table, rate, thousands, verdict};
use anyhow::Context as _;
use fake::FakeHost;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use zpm_proto::ProcessStatus;

const TARGET_RSS_MB: f64 = 64.0;
const TARGET_LS_MS: f64 = 50.0;
/// The targets apply at this many apps (100 hosts × 100).
const TARGET_AT_APPS: usize = 10_000;
const MB: f64 = 1024.0 * 1024.0;
const SETTLE: Duration = Duration::from_secs(2);
const CONVERGE_WITHIN: Duration = Duration::from_secs(120);
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

#[derive(clap::Args)]
pub struct Settings {
    /// The zpm binary to measure (default: `zpm` next to this executable).
    #[arg(long)]
    pub zpm: Option<PathBuf>,
    /// Fleet sizes to measure, in hosts.
    #[arg(long, value_delimiter = ',', default_value = "10,50,100")]
    pub hosts: Vec<usize>,
    /// Apps each fake host holds.
    #[arg(long, default_value_t = 100)]
    pub apps: usize,
    /// `zpm ls --json` runs timed per size (the median is reported).
    #[arg(long, default_value_t = 10)]
    pub ls_runs: usize,
    /// Measured window of the relay flood, in seconds (after 0.5 s of warm-up).
    #[arg(long, default_value_t = 3.0)]
    pub flood_seconds: f64,
    /// Credit window of the subscriber counting relayed events.
    #[arg(long, default_value_t = 4096)]
    pub credit: u32,
    /// Print one JSON object instead of tables.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
pub struct Results {
    pub apps_per_host: usize,
    /// msgpack bytes of one held app (spec with a ~1 KB environment, and its report).
    pub held_bytes: usize,
    pub sizes: Vec<Size>,
    /// Sizes where God did not take every host in (nothing else measured for them).
    pub failures: Vec<Failure>,
}

/// A size whose hosts God did not all take in: what it looked like when the bench gave up.
#[derive(Serialize)]
pub struct Failure {
    pub hosts: usize,
    pub apps: usize,
    pub error: String,
    pub after_s: f64,
    pub hellos_accepted: u64,
    pub hellos_lost: u64,
    pub hellos_timed_out: u64,
    pub hellos_other: u64,
    /// `agent hello` lines in God's daemon.log: hellos God handled (replied to or not).
    pub hellos_handled_by_god: usize,
    pub god_rss_mb: f64,
    pub god_rss_peak_mb: f64,
    pub state_json_bytes: u64,
    pub counters: BTreeMap<String, BTreeMap<String, u64>>,
    /// The fake hosts' own tunnel ends, summed (non-zero counters).
    pub fake_tunnels: BTreeMap<String, u64>,
}

#[derive(Serialize)]
pub struct Size {
    pub hosts: usize,
    pub apps: usize,
    /// From the first tunnel opened until every host's hello was accepted.
    pub hellos_ms: f64,
    /// From the first tunnel opened until `app.list` shows every app online.
    pub converged_ms: f64,
    /// Fake spawners God lists as connected after converging (and settling 2 s).
    pub hosts_connected: usize,
    /// Hellos God accepted beyond one per host (reconnections).
    pub extra_hellos: u64,
    /// Hellos that failed (lost with their connection, timed out, refused) and were retried.
    pub hello_failures: u64,
    pub god_rss_idle_mb: f64,
    pub god_rss_converged_mb: f64,
    pub god_rss_after_flood_mb: f64,
    pub god_rss_peak_mb: f64,
    pub ls_rows: usize,
    pub ls_json_median_ms: f64,
    pub ls_json_min_ms: f64,
    pub ls_json_max_ms: f64,
    /// `app.list` alone over an in-process rpc client on God's ipc socket (median).
    pub app_list_ms: f64,
    /// God's persisted state (`state.json`) once converged: rewritten whole on every
    /// hello that adopts apps.
    pub state_json_bytes: u64,
    /// Apps in that file (every hello's reply comes after its own write of the file, so
    /// once all hosts are in it should hold every app).
    pub state_json_apps: usize,
    pub relay: relay::Relay,
    /// God's guard and tunnel counters (`ping` guards) that are not zero, at the end.
    pub counters: BTreeMap<String, BTreeMap<String, u64>>,
    /// The fake hosts' own tunnel ends, summed (non-zero counters).
    pub fake_tunnels: BTreeMap<String, u64>,
    pub leftovers_killed: usize,
}

fn held_bytes(apps: usize) -> anyhow::Result<usize> {
    let held = fake::holding(0, "fake-0", apps.max(1));
    let bytes = rmp_serde::to_vec_named(&held).context("encoding held apps")?;
    Ok(bytes.len() / held.len())
}

fn rss_mb(pid: u32) -> (f64, f64) {
    zpm_host::procfs::rss_and_peak(pid).map_or((0.0, 0.0), |(rss, peak)| {
        (rss as f64 / MB, peak as f64 / MB)
    })
}

pub async fn run_all(settings: &Settings) -> anyhow::Result<Results> {
    let exe = zpm_exe(settings.zpm.as_deref())?;
    let (mut sizes, mut failures) = (Vec::new(), Vec::new());
    for &hosts in &settings.hosts {
        eprintln!(
            "fleet: {hosts} hosts × {} apps…",
            thousands(settings.apps as u64)
        );
        match size(&exe, hosts, settings).await? {
            Ok(size) => sizes.push(size),
            Err(failure) => failures.push(failure),
        }
    }
    Ok(Results {
        apps_per_host: settings.apps,
        held_bytes: held_bytes(settings.apps)?,
        sizes,
        failures,
    })
}

/// One fleet size on a fresh God: the measurements, or why God did not take the fleet in.
async fn size(
    exe: &std::path::Path,
    n: usize,
    settings: &Settings,
) -> anyhow::Result<Result<Size, Failure>> {
    let apps = settings.apps;
    let god = tokio::task::block_in_place(|| GodHome::start(exe))?;
    let rpc = client(&god.rpc_endpoint());
    god.wait_local_agents(&rpc).await?;
    tokio::time::sleep(SETTLE).await;
    let (god_rss_idle_mb, _) = rss_mb(god.pid);

    let hellos = Arc::new(fake::Fleet::default());
    let started = Instant::now();
    let ticker = tokio::spawn(say_progress(Arc::clone(&hellos), started));
    let joined = join_all(&god, n, apps, &hellos).await;
    let hellos_ms = started.elapsed().as_secs_f64() * 1000.0;
    let converged = match joined {
        Ok(hosts) => converge(&rpc, n * apps).await.map(|()| hosts),
        Err(e) => Err(e),
    };
    ticker.abort();
    let mut hosts = match converged {
        Ok(hosts) => hosts,
        Err(e) => {
            let failure = diagnose(&god, &rpc, (n, n * apps), &hellos, started, &e).await;
            drop(rpc);
            eprintln!("fleet: {n} hosts not taken in ({e:#}); stopping God…");
            tokio::task::block_in_place(|| god.stop());
            return Ok(Err(failure));
        }
    };
    let converged_ms = started.elapsed().as_secs_f64() * 1000.0;
    tokio::time::sleep(SETTLE).await;
    let (god_rss_converged_mb, _) = rss_mb(god.pid);
    let state_json_bytes = state_json_bytes(&god);
    let state_json_apps = std::fs::read(god.home.path().join("state.json")).map_or(0, |bytes| {
        String::from_utf8_lossy(&bytes)
            .matches("\"desired\"")
            .count()
    });
    let app_list_ms = app_list_ms(&rpc, settings.ls_runs).await?;
    let hosts_connected = agents(&rpc)
        .await?
        .iter()
        .filter(|a| a.role == "spawner" && a.host.starts_with("fake-") && a.connected)
        .count();

    eprintln!("fleet: zpm ls --json × {}…", settings.ls_runs);
    let (ls_rows, mut ls_ms) = tokio::task::block_in_place(|| ls(&god, settings.ls_runs))?;
    ls_ms.sort_by(f64::total_cmp);

    eprintln!("fleet: relay flood…");
    let window = Duration::from_secs_f64(settings.flood_seconds);
    let relay = relay::measure(&god, &rpc, &mut hosts, apps, settings.credit, window).await?;
    tokio::time::sleep(SETTLE).await;
    let (god_rss_after_flood_mb, god_rss_peak_mb) = rss_mb(god.pid);
    let counters = nonzero(ping(&rpc).await?.guards);
    let fake_tunnels = nonzero_of(hellos.tunnels());
    drop(rpc);
    eprintln!("fleet: stopping God and the fake hosts…");
    let leftovers_killed = tokio::task::block_in_place(|| god.stop());
    drop(hosts);
    Ok(Ok(Size {
        hosts: n,
        apps: n * apps,
        hellos_ms,
        converged_ms,
        hosts_connected,
        extra_hellos: hellos
            .accepted
            .load(Ordering::Relaxed)
            .saturating_sub(n as u64),
        hello_failures: hellos.failed(),
        god_rss_idle_mb,
        god_rss_converged_mb,
        god_rss_after_flood_mb,
        god_rss_peak_mb,
        ls_rows,
        ls_json_median_ms: ls_ms.get(ls_ms.len() / 2).copied().unwrap_or(0.0),
        ls_json_min_ms: ls_ms.first().copied().unwrap_or(0.0),
        ls_json_max_ms: ls_ms.last().copied().unwrap_or(0.0),
        app_list_ms,
        state_json_bytes,
        state_json_apps,
        relay,
        counters,
        fake_tunnels,
        leftovers_killed,
    }))
}

fn state_json_bytes(god: &GodHome) -> u64 {
    std::fs::metadata(god.home.path().join("state.json")).map_or(0, |m| m.len())
}

/// What God looked like when the bench gave up on a fleet size.
async fn diagnose(
    god: &GodHome,
    rpc: &zpm_rpc::Client,
    (hosts, apps): (usize, usize),
    hellos: &fake::Fleet,
    started: Instant,
    error: &anyhow::Error,
) -> Failure {
    let (god_rss_mb, god_rss_peak_mb) = rss_mb(god.pid);
    let log = std::fs::read_to_string(god.home.path().join("daemon.log")).unwrap_or_default();
    let counters = match ping(rpc).await {
        Ok(pong) => nonzero(pong.guards),
        Err(_) => BTreeMap::new(),
    };
    Failure {
        hosts,
        apps,
        error: format!("{error:#}"),
        after_s: started.elapsed().as_secs_f64(),
        hellos_accepted: hellos.accepted.load(Ordering::Relaxed),
        hellos_lost: hellos.lost.load(Ordering::Relaxed),
        hellos_timed_out: hellos.timed_out.load(Ordering::Relaxed),
        hellos_other: hellos.other.load(Ordering::Relaxed),
        hellos_handled_by_god: log.matches("agent hello").count(),
        god_rss_mb,
        god_rss_peak_mb,
        state_json_bytes: state_json_bytes(god),
        counters,
        fake_tunnels: nonzero_of(hellos.tunnels()),
    }
}

/// Prints how the hellos go, every few seconds, while the fleet joins.
async fn say_progress(hellos: Arc<fake::Fleet>, started: Instant) {
    loop {
        tokio::time::sleep(PROGRESS_EVERY).await;
        eprintln!(
            "  {:.0} s: hellos accepted {}, lost with their connection {}, timed out {}, other {}",
            started.elapsed().as_secs_f64(),
            hellos.accepted.load(Ordering::Relaxed),
            hellos.lost.load(Ordering::Relaxed),
            hellos.timed_out.load(Ordering::Relaxed),
            hellos.other.load(Ordering::Relaxed),
        );
    }
}

/// Opens `n` fake hosts at once; returns once God accepted each one's hello.
async fn join_all(
    god: &GodHome,
    n: usize,
    apps: usize,
    hellos: &Arc<fake::Fleet>,
) -> anyhow::Result<Vec<FakeHost>> {
    let remote = god.remote()?;
    let mut joining = tokio::task::JoinSet::new();
    for k in 0..n {
        let (remote, hellos) = (remote.clone(), Arc::clone(hellos));
        joining.spawn(async move { (k, FakeHost::join(&remote, k, apps, hellos).await) });
    }
    let mut hosts: Vec<Option<FakeHost>> = (0..n).map(|_| None).collect();
    while let Some(joined) = joining.join_next().await {
        let (k, host) = joined.context("a fake host's join task failed")?;
        hosts[k] = Some(host?);
    }
    Ok(hosts.into_iter().flatten().collect())
}

/// Waits until `app.list` shows `want` fake hosts' apps online.
async fn converge(rpc: &zpm_rpc::Client, want: usize) -> anyhow::Result<()> {
    poll(
        "every fake host's app online",
        CONVERGE_WITHIN,
        Duration::from_millis(20),
        || async move {
            let online = list(rpc)
                .await?
                .iter()
                .filter(|r| r.host.starts_with("fake-") && r.status == ProcessStatus::Online)
                .count();
            Ok((online == want).then_some(()))
        },
    )
    .await
}

/// Median time of `runs` `app.list` calls on God's ipc socket.
async fn app_list_ms(rpc: &zpm_rpc::Client, runs: usize) -> anyhow::Result<f64> {
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        let started = Instant::now();
        list(rpc).await?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// One untimed `zpm ls --json` (its rows counted), then `runs` timed ones.
fn ls(god: &GodHome, runs: usize) -> anyhow::Result<(usize, Vec<f64>)> {
    let limit = Duration::from_secs(60);
    let out = run(&mut god.cmd(&["ls", "--json"]), limit)?;
    let rows: Vec<serde_json::Value> =
        serde_json::from_slice(&out.stdout).context("zpm ls --json output")?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        run(&mut god.cmd(&["ls", "--json"]), limit)?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    Ok((rows.len(), times))
}

fn nonzero_of(counters: BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    counters.into_iter().filter(|(_, n)| *n > 0).collect()
}

fn nonzero(
    guards: BTreeMap<String, BTreeMap<String, u64>>,
) -> BTreeMap<String, BTreeMap<String, u64>> {
    guards
        .into_iter()
        .map(|(endpoint, counters)| (endpoint, nonzero_of(counters)))
        .collect()
}

pub fn print(results: &Results) {
    print_sizes(results);
    println!();
    print_targets(results);
    println!();
    print_details(results);
}

fn print_sizes(r: &Results) {
    let mut table = Table::new(
        format!(
            "zpm-bench fleet: fake spawner hosts in this process, each through its own keyed \
             tunnel, {} apps each ({} B per held app)",
            r.apps_per_host, r.held_bytes
        ),
        &[
            "hosts",
            "apps",
            "hellos / all online",
            "hosts up",
            "God RSS idle → converged → after flood (peak)",
            "ls --json median (min–max)",
            "God relayed / subscriber got (offered)",
            "lost (of it in God, not out of credit)",
        ],
    );
    for s in &r.sizes {
        let rl = &s.relay;
        table.row(vec![
            s.hosts.to_string(),
            thousands(s.apps as u64),
            format!("{:.0} / {:.0} ms", s.hellos_ms, s.converged_ms),
            format!("{}/{}", s.hosts_connected, s.hosts),
            format!(
                "{:.1} → {:.1} → {:.1} ({:.1}) MB",
                s.god_rss_idle_mb,
                s.god_rss_converged_mb,
                s.god_rss_after_flood_mb,
                s.god_rss_peak_mb
            ),
            format!(
                "{:.1} ms ({:.1}–{:.1})",
                s.ls_json_median_ms, s.ls_json_min_ms, s.ls_json_max_ms
            ),
            format!(
                "{} / {} ({})",
                rate(rl.relayed_per_s),
                rate(rl.delivered_per_s),
                rate(rl.offered_per_s)
            ),
            format!(
                "{} of {} ({:.1} %) ({})",
                thousands(rl.lost),
                thousands(rl.sent_total),
                percent(rl.lost, rl.sent_total),
                thousands(rl.lost.saturating_sub(rl.dropped_out_of_credit))
            ),
        ]);
    }
    table.print();
}

fn print_targets(r: &Results) {
    let mut targets = Table::new(
        format!("targets (at {} apps)", thousands(TARGET_AT_APPS as u64)),
        &["measure", "value", "target", "status"],
    );
    if let Some(s) = r.sizes.iter().find(|s| s.apps >= TARGET_AT_APPS) {
        targets.row(vec![
            format!("God RSS converged, {} hosts", s.hosts),
            format!("{:.1} MB", s.god_rss_converged_mb),
            format!("<= {TARGET_RSS_MB:.0} MB"),
            verdict(s.god_rss_converged_mb <= TARGET_RSS_MB),
        ]);
        targets.row(vec![
            "  after the flood (peak)".into(),
            format!(
                "{:.1} ({:.1}) MB",
                s.god_rss_after_flood_mb, s.god_rss_peak_mb
            ),
            format!("<= {TARGET_RSS_MB:.0} MB"),
            verdict(s.god_rss_after_flood_mb <= TARGET_RSS_MB),
        ]);
        targets.row(vec![
            format!("zpm ls --json, {} rows", thousands(s.ls_rows as u64)),
            format!("{:.1} ms", s.ls_json_median_ms),
            format!("<= {TARGET_LS_MS:.0} ms"),
            verdict(s.ls_json_median_ms <= TARGET_LS_MS),
        ]);
    } else {
        targets.row(vec!["(no size reached the target's app count)".into()]);
    }
    targets.print();
}

fn print_details(r: &Results) {
    let mut details = Table::new(
        "relay and limits, per size",
        &[
            "hosts",
            "seq gaps / out of order",
            "dropped out of credit",
            "subscriber's own gap count",
            "hosts down (max)",
            "heartbeats not queued",
            "extra hellos / failed",
            "God / bench cpu in flood",
            "app.list rpc / state.json (apps in it)",
            "God counters (non-zero)",
        ],
    );
    for s in &r.sizes {
        let rl = &s.relay;
        let counters: Vec<String> = s
            .counters
            .iter()
            .flat_map(|(endpoint, c)| {
                c.iter()
                    .map(move |(name, n)| format!("{endpoint}.{name} {n}"))
            })
            .chain(
                s.fake_tunnels
                    .iter()
                    .map(|(name, n)| format!("fakes' tunnels.{name} {n}")),
            )
            .collect();
        details.row(vec![
            s.hosts.to_string(),
            format!(
                "{} / {}",
                thousands(rl.seq_gaps),
                thousands(rl.out_of_order)
            ),
            thousands(rl.dropped_out_of_credit),
            thousands(rl.subscriber_gaps),
            rl.hosts_down_max.to_string(),
            thousands(rl.heartbeats_failed),
            format!("{} / {}", s.extra_hellos, s.hello_failures),
            format!("{:.0} % / {:.0} %", rl.god_cpu_pct, rl.bench_cpu_pct),
            format!(
                "{:.1} ms / {:.1} MB ({})",
                s.app_list_ms,
                s.state_json_bytes as f64 / MB,
                thousands(s.state_json_apps as u64)
            ),
            counters.join(", "),
        ]);
    }
    details.print();
    for f in &r.failures {
        println!(
            "{} hosts × {} apps: God did not take the fleet in ({}, after {:.0} s): hellos \
             accepted {}, lost with their connection {}, timed out {}, other {}; God logged \
             {} hellos; God RSS {:.1} MB (peak {:.1}), state.json {:.1} MB; God's counters \
             {:?}; the fake hosts' tunnel ends {:?}",
            f.hosts,
            thousands(f.apps as u64),
            f.error,
            f.after_s,
            f.hellos_accepted,
            f.hellos_lost,
            f.hellos_timed_out,
            f.hellos_other,
            f.hellos_handled_by_god,
            f.god_rss_mb,
            f.god_rss_peak_mb,
            f.state_json_bytes as f64 / MB,
            f.counters,
            f.fake_tunnels
        );
    }
    let left: usize = r.sizes.iter().map(|s| s.leftovers_killed).sum();
    println!("processes left after `zpm kill` and SIGKILLed: {left}");
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

pub async fn run_and_print(settings: &Settings) -> anyhow::Result<()> {
    let results = run_all(settings).await?;
    crate::report::emit(&results, settings.json, print)
}

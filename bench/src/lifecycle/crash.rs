//! `zpm-bench crash`: SIGKILL God five times (each once everything has converged), then
//! the spawner, with apps running; how long until God answers again and until everything
//! is back, and whether any app ran twice or was left unmanaged. The same God kill against
//! PM2 when it is installed.

use super::Settings;
use super::procfs::marked;
use super::timing::{poll, stdout};
use super::zpm::Zpm;
use anyhow::Context as _;
use serde::Serialize;
use std::time::{Duration, Instant};
use zpm_proto::ProcessStatus;

const APPS: usize = 3;
/// God kills in a row: the relaunch backoff must not grow from one to the next.
const GOD_KILLS: usize = 5;
const LIMIT: Duration = Duration::from_secs(30);

#[derive(Serialize, Debug)]
pub struct Results {
    /// One per consecutive God kill.
    pub god: Vec<Outcome>,
    pub spawner: Outcome,
    /// What happened to PM2's apps when its daemon was SIGKILLed.
    pub pm2_god: Option<String>,
}

#[derive(Serialize, Debug)]
pub struct Outcome {
    /// SIGKILL → a new God answers `ping` (God kills only; no CLI call in between).
    pub relaunched_ms: Option<f64>,
    /// SIGKILL → `app.list` answers with every app online (and, for God, the same pids).
    pub converged_ms: f64,
    /// Apps whose pid changed (God kill: must be 0).
    pub restarted_apps: usize,
    /// Marked app processes beyond the expected count.
    pub duplicates: usize,
    /// Old app processes still alive but no longer managed.
    pub orphans: usize,
}

impl Outcome {
    /// Compares the app pids before and after, and counts marked processes in /proc.
    fn measure(started: Instant, before: &[u32], after: &[u32], marker: &str) -> Self {
        // Time first: the /proc walk below takes tens of milliseconds on its own.
        let converged_ms = started.elapsed().as_secs_f64() * 1000.0;
        let live = marked(marker);
        Self {
            relaunched_ms: None,
            converged_ms,
            restarted_apps: before.iter().filter(|p| !after.contains(p)).count(),
            duplicates: live.len().saturating_sub(APPS),
            orphans: live.iter().filter(|p| !after.contains(p)).count(),
        }
    }
}

fn sigkill(pid: u32) -> anyhow::Result<()> {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid.cast_signed()),
        nix::sys::signal::Signal::SIGKILL,
    )
    .with_context(|| format!("kill -9 {pid}"))
}

pub fn run(settings: &Settings) -> anyhow::Result<Results> {
    let zpm = Zpm::new(settings)?;
    let marker = format!("zpmbenchcrash{}", std::process::id());
    let script = zpm.home.path().join("talk.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\nwhile true; do echo tick; sleep 0.05; done\n",
    )
    .context("writing app")?;
    let script = script.display().to_string();
    stdout(&mut zpm.cmd(&[
        "start",
        "--interpreter",
        "sh",
        &script,
        "--name",
        "talk",
        "-i",
        "3",
        "--",
        &marker,
    ]))?;
    let client = zpm.client();
    let god_kills = (0..GOD_KILLS)
        .map(|_| kill_god(&zpm, &client, &marker))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let spawner_kill = kill_spawner(&zpm, &client, &marker)?;
    let pm2_god_kill = { settings.tools.pm2().map(|pm2| pm2.god_kill()).transpose()? };
    Ok(Results {
        god: god_kills,
        spawner: spawner_kill,
        pm2_god: pm2_god_kill,
    })
}

fn online_pids(zpm: &Zpm, client: &zpm_rpc::Client) -> Option<Vec<u32>> {
    let rows = zpm.list(client).ok()?;
    let all_online = rows.len() == APPS && rows.iter().all(|r| r.status == ProcessStatus::Online);
    all_online.then(|| rows.iter().filter_map(|r| r.pid).collect())
}

fn kill_god(zpm: &Zpm, client: &zpm_rpc::Client, marker: &str) -> anyhow::Result<Outcome> {
    let (god, _) = zpm.pids(client)?;
    let before = poll("apps online", LIMIT, || Ok(online_pids(zpm, client)))?;
    sigkill(god)?;
    let started = Instant::now();
    // No CLI call: only the in-process client polls, which never launches anything.
    poll("a new God", LIMIT, || {
        let pong = zpm.call::<zpm_proto::method::god::Ping>(client).ok();
        Ok(pong.filter(|p| p.pid != god))
    })?;
    let relaunched = started.elapsed();
    let after = poll("God back with every app", LIMIT, || {
        let Ok((new_god, _)) = zpm.pids(client) else {
            return Ok(None);
        };
        Ok(online_pids(zpm, client).filter(|_| new_god != god))
    })?;
    Ok(Outcome {
        relaunched_ms: Some(relaunched.as_secs_f64() * 1000.0),
        ..Outcome::measure(started, &before, &after, marker)
    })
}

fn kill_spawner(zpm: &Zpm, client: &zpm_rpc::Client, marker: &str) -> anyhow::Result<Outcome> {
    let (_, spawner) = zpm.pids(client)?;
    let before = poll("apps online", LIMIT, || Ok(online_pids(zpm, client)))?;
    sigkill(spawner)?;
    let started = Instant::now();
    let after = poll("every app online again", LIMIT, || {
        Ok(online_pids(zpm, client).filter(|pids| pids.iter().all(|p| !before.contains(p))))
    })?;
    Ok(Outcome::measure(started, &before, &after, marker))
}

pub fn print(results: &Results) {
    let mut table = crate::report::Table::new(
        "crash",
        &[
            "scenario",
            "God answers (ms)",
            "back (ms)",
            "apps restarted",
            "duplicates",
            "orphans",
            "target",
        ],
    );
    let row = |name: &str, o: &Outcome, target: &str| {
        vec![
            name.to_owned(),
            o.relaunched_ms.map_or("-".into(), |ms| format!("{ms:.0}")),
            format!("{:.0}", o.converged_ms),
            o.restarted_apps.to_string(),
            o.duplicates.to_string(),
            o.orphans.to_string(),
            target.to_owned(),
        ]
    };
    for (i, god) in results.god.iter().enumerate() {
        table.row(row(
            &format!("SIGKILL God #{} (3 apps)", i + 1),
            god,
            "≤ 100 ms, 0 restarted, 0 dup",
        ));
    }
    table.row(row(
        "SIGKILL spawner (3 apps)",
        &results.spawner,
        "≤ 1000 ms, 0 dup, 0 orphans",
    ));
    table.print();
    if let Some(pm2) = &results.pm2_god {
        println!("PM2, same God kill: {pm2}");
    }
}

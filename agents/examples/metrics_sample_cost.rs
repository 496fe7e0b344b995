//! What one sample costs: 50 apps of 5 processes each (`sleep`s under a shell), sampled
//! repeatedly; prints cpu and wall time per sample. `cargo run -p zpm-agents --example
//! metrics_sample_cost` (a debug build is several times slower than release).

use nix::sys::signal::{Signal, killpg};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};
use std::time::Instant;
use zpm_agents::metrics::Sampler;
use zpm_host::procfs;

const APPS: u32 = 50;
const SAMPLES: u32 = 200;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Orphans of the killed shells come back to us to be reaped, not to init.
    nix::sys::prctl::set_child_subreaper(true)?;
    let mut children: Vec<Child> = Vec::new();
    let result = measure(&mut children);
    let mut members = Vec::new();
    for child in &children {
        let leader = child.id();
        members.extend(
            procfs::all_stats()?
                .iter()
                .filter(|s| s.pgrp == leader && s.pid != leader)
                .map(|s| s.pid),
        );
        let _ = killpg(Pid::from_raw(leader.cast_signed()), Signal::SIGKILL);
    }
    for child in &mut children {
        let _ = child.wait();
    }
    for pid in members {
        let _ = waitpid(Pid::from_raw(pid.cast_signed()), None);
    }
    result
}

fn measure(children: &mut Vec<Child>) -> Result<(), Box<dyn std::error::Error>> {
    for _ in 0..APPS {
        children.push(
            Command::new("sh")
                .args(["-c", "sleep 600 & sleep 600 & sleep 600 & sleep 600 & wait"])
                .stdin(Stdio::null())
                .process_group(0)
                .spawn()?,
        );
    }
    let apps: Vec<(u32, u32)> = (0..APPS).zip(children.iter().map(Child::id)).collect();
    let mut sampler = Sampler::new();
    // Until every shell has forked its sleeps.
    let deadline = Instant::now() + std::time::Duration::from_secs(30);
    while sampler.sample(&apps).apps.iter().any(|a| a.processes < 5) {
        if Instant::now() > deadline {
            return Err("the test apps never reached 5 processes each".into());
        }
    }
    let host_processes = procfs::all_pids()?.len();
    let me = std::process::id();
    let before = procfs::stat(me)?;
    let started = Instant::now();
    let mut tree_processes = 0;
    for _ in 0..SAMPLES {
        let report = sampler.sample(&apps);
        tree_processes = report.apps.iter().map(|a| a.processes).sum::<u32>();
    }
    let wall = started.elapsed();
    let after = procfs::stat(me)?;
    let per_sample_ms =
        |ticks: u64| ticks as f64 * 1000.0 / procfs::ticks_per_second() as f64 / f64::from(SAMPLES);
    println!(
        "{APPS} apps, {tree_processes} processes in their trees, {host_processes} on the host: \
         per sample {:.2} ms cpu ({:.2} user, {:.2} kernel), {:.2} ms wall ({SAMPLES} samples)",
        per_sample_ms(after.cpu_ticks() - before.cpu_ticks()),
        per_sample_ms(after.utime - before.utime),
        per_sample_ms(after.stime - before.stime),
        wall.as_secs_f64() * 1000.0 / f64::from(SAMPLES),
    );
    Ok(())
}

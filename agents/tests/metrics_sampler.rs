//! The sampler on a real process tree we own: a shell with one child and one orphan (its
//! parent exited, so only the process group ties it to the app), both burning cpu.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use nix::sys::signal::{Signal, killpg};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use zpm_agents::metrics::Sampler;
use zpm_host::procfs;

/// Our child, leader of its own process group; dropping it SIGKILLs that group (whose id
/// is our child's pid, so nothing but what this test started) and reaps every member: as
/// a subreaper this test process inherits the orphans instead of init.
struct Group(Child);

impl Drop for Group {
    fn drop(&mut self) {
        let leader = self.0.id();
        let members: Vec<u32> = procfs::all_stats()
            .unwrap_or_default()
            .iter()
            .filter(|s| s.pgrp == leader && s.pid != leader)
            .map(|s| s.pid)
            .collect();
        let _ = killpg(Pid::from_raw(leader.cast_signed()), Signal::SIGKILL);
        let _ = self.0.wait();
        for pid in members {
            let _ = waitpid(Pid::from_raw(pid.cast_signed()), None);
        }
    }
}

fn spawn_group(script: &str) -> Group {
    nix::sys::prctl::set_child_subreaper(true).unwrap();
    let child = Command::new("sh")
        .args(["-c", script])
        .stdin(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    Group(child)
}

#[test]
fn a_busy_tree_with_an_orphan_is_counted_whole() {
    // `( yes & )`: the subshell exits at once, leaving its `yes` re-parented to us.
    let app = spawn_group("(yes > /dev/null &); yes > /dev/null & wait");
    let pid = app.0.id();
    let mut sampler = Sampler::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut report = sampler.sample(&[(7, pid)]);
    loop {
        let a = &report.apps[0];
        if a.processes == 3 && a.cpu > 50.0 && a.memory > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "never settled: {report:?}");
        // Pacing, not synchronisation: cpu time must accrue between two samples.
        std::thread::sleep(Duration::from_millis(100));
        report = sampler.sample(&[(7, pid)]);
    }
    let a = &report.apps[0];
    assert_eq!((a.id, a.pid), (7, Some(pid)));
    // The setup is what the test claims: one member is reachable only through the group.
    let group: Vec<_> = procfs::all_stats()
        .unwrap()
        .into_iter()
        .filter(|s| s.pgrp == pid && s.alive())
        .collect();
    assert_eq!(group.len(), 3, "{group:?}");
    assert!(
        group.iter().any(|s| s.pid != pid && s.ppid != pid),
        "{group:?}"
    );

    let host = &report.host;
    assert!(host.cpus >= 1);
    assert!(host.mem_total > 0 && host.mem_available <= host.mem_total);
    assert!((0.0..=100.0).contains(&host.cpu));
}

#[test]
fn a_dead_app_reports_nothing_alive() {
    let mut sampler = Sampler::new();
    let mut gone = Command::new("true").spawn().unwrap();
    let pid = gone.id();
    gone.wait().unwrap();
    let report = sampler.sample(&[(1, pid)]);
    let a = &report.apps[0];
    assert_eq!((a.pid, a.processes, a.memory), (None, 0, 0));
}

//! Stop never leaves a grandchild behind, even one that ignores SIGTERM.

use crate::harness::Zpm;
use std::time::{Duration, Instant};

#[test]
fn stop_kills_a_term_ignoring_grandchild() {
    let zpm = Zpm::new();
    let script = zpm.script(
        "tree.sh",
        "#!/bin/sh\n# the grandchild ignores SIGTERM\nsh -c \"trap '' TERM; while true; do sleep 1; done\" \"$1-grandchild\" &\nwait\n",
    );
    zpm.ok(&[
        "start",
        &script.display().to_string(),
        "--name",
        "tree",
        "--kill-timeout",
        "500",
        "--",
        &zpm.marker,
    ]);
    zpm.wait_marked(2);
    let started = Instant::now();
    zpm.ok(&["stop", "tree"]);
    assert!(
        zpm.marked().is_empty(),
        "processes left after stop: {:?}",
        zpm.marked()
    );
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "the TERM-ignoring grandchild needed SIGKILL after kill_timeout"
    );
}

#[test]
fn a_crashed_leader_takes_its_group_with_it_before_restart() {
    let zpm = Zpm::new();
    let script = zpm.script("leaky.sh", "#!/bin/sh\nsleep 1000 &\nsleep 0.3\nexit 1\n");
    // The sleep child carries no marker; count the app's group via ls and /proc instead.
    zpm.ok(&[
        "start",
        &script.display().to_string(),
        "--name",
        "leaky",
        "--kill-timeout",
        "300",
        "--",
        &zpm.marker,
    ]);
    zpm.wait_ls("two restarts", |rows| {
        rows[0]["restarts"].as_u64() >= Some(2)
    });
    let sleepers = crate::harness::poll("at most one leftover sleep", || {
        let n = sleep_1000_count(zpm.home());
        (n <= 1).then_some(n)
    });
    assert!(
        sleepers <= 1,
        "background children of crashed runs must not pile up"
    );
}

/// `sleep 1000` processes whose cwd is this test's home.
fn sleep_1000_count(home: &std::path::Path) -> usize {
    crate::harness::live_processes()
        .filter(|(_, dir, argv)| {
            let cwd = std::fs::read_link(dir.join("cwd")).ok();
            argv == &["sleep", "1000"] && cwd.as_deref() == Some(home)
        })
        .count()
}

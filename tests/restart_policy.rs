//! PM2's restart semantics: crash loops end errored, stop exit codes, min_uptime, backoff.

use crate::harness::{Zpm, status};
use std::time::Duration;

#[test]
fn crash_loop_ends_errored_after_max_restarts() {
    let zpm = Zpm::new();
    let script = zpm.script("crash.sh", "#!/bin/sh\nexit 2\n");
    zpm.ok(&[
        "start",
        &script.display().to_string(),
        "--name",
        "crash",
        "--max-restarts",
        "3",
        "--",
        &zpm.marker,
    ]);
    let rows = zpm.wait_ls("errored", |rows| {
        rows.first().is_some_and(|r| status(r) == "errored")
    });
    assert_eq!(rows[0]["restarts"], 3);
    assert_eq!(rows[0]["exit_code"], 2);
    assert!(rows[0]["pid"].is_null());
    assert!(zpm.marked().is_empty());
}

#[test]
fn stop_exit_code_and_no_autorestart_stop_the_app() {
    let zpm = Zpm::new();
    let eco = zpm.path("eco.json");
    let script = zpm.script("done.sh", "#!/bin/sh\nexit 3\n");
    std::fs::write(
        &eco,
        serde_json::json!({"apps": [
            {"name": "done", "script": script, "stop_exit_codes": [3]},
            {"name": "once", "script": script, "autorestart": false},
        ]})
        .to_string(),
    )
    .unwrap();
    zpm.ok(&["start", &eco.display().to_string()]);
    let rows = zpm.wait_ls("both stopped", |rows| {
        rows.len() == 2 && rows.iter().all(|r| status(r) == "stopped")
    });
    for row in &rows {
        assert_eq!(row["restarts"], 0, "{row}");
        assert_eq!(row["exit_code"], 3);
    }
}

#[test]
fn runs_longer_than_min_uptime_are_stable_and_never_errored() {
    let zpm = Zpm::new();
    let counter = zpm.path("runs");
    let script = zpm.script(
        "short.sh",
        &format!(
            "#!/bin/sh\necho run >> {}\nsleep 0.3\nexit 1\n",
            counter.display()
        ),
    );
    zpm.ok(&[
        "start",
        &script.display().to_string(),
        "--name",
        "short",
        "--max-restarts",
        "1",
        "--min-uptime",
        "100",
    ]);
    let rows = zpm.wait_ls("4 restarts", |rows| rows[0]["restarts"].as_u64() >= Some(4));
    assert_ne!(
        status(&rows[0]),
        "errored",
        "stable runs must not count toward max_restarts"
    );

    let zpm2 = Zpm::new();
    let script = zpm2.script("short.sh", "#!/bin/sh\nsleep 0.3\nexit 1\n");
    zpm2.ok(&[
        "start",
        &script.display().to_string(),
        "--name",
        "short",
        "--max-restarts",
        "1",
        "--min-uptime",
        "5s",
    ]);
    let rows = zpm2.wait_ls("errored", |rows| status(&rows[0]) == "errored");
    assert_eq!(rows[0]["restarts"], 1);
}

#[test]
fn exponential_backoff_spaces_restarts() {
    let zpm = Zpm::new();
    let stamps = zpm.path("stamps");
    let script = zpm.script(
        "stamp.sh",
        &format!("#!/bin/sh\ndate +%s%N >> {}\nexit 1\n", stamps.display()),
    );
    zpm.ok(&[
        "start",
        &script.display().to_string(),
        "--name",
        "backoff",
        "--exp-backoff-restart-delay",
        "200",
        "--max-restarts",
        "10",
    ]);
    let times: Vec<u128> = crate::harness::poll("5 runs", || {
        let text = std::fs::read_to_string(&stamps).ok()?;
        let times: Vec<u128> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
        (times.len() >= 5).then_some(times)
    });
    zpm.ok(&["stop", "backoff"]);
    let gaps: Vec<Duration> = times
        .windows(2)
        .map(|w| Duration::from_nanos((w[1] - w[0]) as u64))
        .collect();
    // Expected 200, 300, 450, 675 ms: each at least the delay, and not wildly late.
    for (gap, expected_ms) in gaps.iter().zip([200u64, 300, 450, 675]) {
        let expected = Duration::from_millis(expected_ms);
        assert!(
            *gap >= expected,
            "gap {gap:?} shorter than backoff {expected:?}: {gaps:?}"
        );
        assert!(
            *gap < expected + Duration::from_millis(700),
            "gap {gap:?} far over {expected:?}: {gaps:?}"
        );
    }
}

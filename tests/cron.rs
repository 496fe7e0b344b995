//! `cron_restart` (issue 8): restarts on a schedule with reason `cron`; with
//! `--no-autorestart` the app is a job run again at each tick, its last exit shown.

use crate::harness::{Zpm, poll};

#[test]
fn cron_restart_restarts_on_schedule_with_reason_cron() {
    let zpm = Zpm::new();
    let app = zpm.script("svc.sh", "#!/bin/sh\nwhile true; do sleep 1; done\n");
    zpm.ok(&[
        "start",
        app.to_str().unwrap(),
        "--name",
        "svc",
        "--cron-restart",
        "* * * * * *",
        "--",
        &zpm.marker,
    ]);
    let first = zpm.ls()[0]["pid"].as_u64().unwrap();
    zpm.wait_ls("two scheduled restarts", |rows| {
        rows[0]["restarts"].as_u64() >= Some(2) && rows[0]["pid"].as_u64() != Some(first)
    });
    let described = zpm.ok(&["describe", "svc"]);
    assert!(described.contains("cron_restart schedule"), "{described}");
    assert!(described.contains("* * * * * *"), "{described}");
}

#[test]
fn a_cron_job_runs_again_at_each_tick() {
    let zpm = Zpm::new();
    let runs = zpm.path("runs");
    let job = zpm.script(
        "job.sh",
        &format!("#!/bin/sh\necho run >> {}\nexit 3\n", runs.display()),
    );
    zpm.ok(&[
        "start",
        job.to_str().unwrap(),
        "--name",
        "job",
        "--no-autorestart",
        "--cron-restart",
        "* * * * * *",
        "--",
        &zpm.marker,
    ]);
    poll("three runs of the job", || {
        let text = std::fs::read_to_string(&runs).ok()?;
        (text.lines().count() >= 3).then_some(())
    });
    let rows = zpm.wait_ls("the job between runs, its exit shown", |rows| {
        rows[0]["exit_code"] == 3 && rows[0]["restarts"].as_u64() >= Some(2)
    });
    assert_eq!(rows.len(), 1);
    let described = zpm.ok(&["describe", "job"]);
    assert!(described.contains("cron_restart schedule"), "{described}");
}

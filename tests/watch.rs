//! `watch` (issue 8): a burst of changes restarts the app once, with reason `watch`;
//! ignored paths (`node_modules`, `.git`, `ignore_watch` globs) do not; `zpm unwatch` and
//! `zpm watch` toggle it without a restart; a ready-gated app is reloaded, every instance.
//! Whether something did NOT restart is shown by a later, relevant change whose path is
//! the one the history records, or by polling for a bounded quiet time.

use crate::harness::{Zpm, poll};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

const DELAY_MS: u64 = 200;

const IDLE: &str = "#!/bin/sh\nwhile true; do sleep 1; done\n";

/// Starts `svc` (`body`) watching `<home>/src` (created), with `extra` flags before the
/// app's args.
fn start_watched(zpm: &Zpm, body: &str, extra: &[&str]) -> std::path::PathBuf {
    let src = zpm.path("src");
    std::fs::create_dir_all(&src).unwrap();
    let app = zpm.script("svc.sh", body);
    let delay = DELAY_MS.to_string();
    let mut args = vec![
        "start",
        app.to_str().unwrap(),
        "--name",
        "svc",
        "--watch-delay",
        &delay,
    ];
    args.extend_from_slice(extra);
    args.extend(["--watch", "src", "--", &zpm.marker]);
    zpm.ok(&args);
    src
}

fn pid(row: &Value) -> Option<u64> {
    row["pid"].as_u64()
}

/// The restart history of the first instance of `target`, oldest first.
fn history(zpm: &Zpm, target: &str) -> Vec<Value> {
    let described = zpm.json(&["describe", target]);
    described[0]["restarts"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Waits for restart number `n` of `svc`, online with a new pid; returns the row.
fn wait_restart(zpm: &Zpm, n: u64, old_pid: Option<u64>) -> Value {
    zpm.wait_ls(&format!("restart {n}"), |rows| {
        rows[0]["restarts"].as_u64() == Some(n)
            && pid(&rows[0]) != old_pid
            && rows[0]["status"] == "online"
    })[0]
        .clone()
}

/// Polls for a bounded quiet time (several debounce delays) that `svc` stays at
/// `restarts` with pid `pid`.
fn stays(zpm: &Zpm, restarts: u64, pid_now: Option<u64>) {
    let until = Instant::now() + Duration::from_millis(DELAY_MS * 5 + 1000);
    while Instant::now() < until {
        let rows = zpm.ls();
        assert_eq!(rows[0]["restarts"].as_u64(), Some(restarts), "{rows:#?}");
        assert_eq!(pid(&rows[0]), pid_now, "{rows:#?}");
    }
}

fn burst(dir: &Path, names: &[&str]) {
    for name in names {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, format!("{name}\n")).unwrap();
    }
}

fn assert_watch_reason(record: &Value, file: &str) {
    assert_eq!(record["reason"]["kind"], "watch", "{record:#}");
    let path = record["reason"]["path"].as_str().unwrap();
    assert!(path.ends_with(file), "{path} is not {file}");
}

#[test]
fn a_burst_of_writes_restarts_the_app_once_with_reason_watch() {
    let zpm = Zpm::new();
    let src = start_watched(&zpm, IDLE, &[]);
    let first = pid(&zpm.ls()[0]);
    burst(&src, &["a.js", "b.js", "lib/c.js", "a.js", "d.js"]);
    let row = wait_restart(&zpm, 1, first);
    stays(&zpm, 1, pid(&row));
    let history = history(&zpm, "svc");
    assert_eq!(history.len(), 1, "{history:#?}");
    assert_watch_reason(&history[0], "a.js");
    let described = zpm.ok(&["describe", "svc"]);
    assert!(described.contains("watch: "), "{described}");
    assert!(described.contains("delay 200 ms"), "{described}");
}

#[test]
fn ignored_paths_do_not_restart() {
    let zpm = Zpm::new();
    // A new directory is a change: this one exists before the watch.
    std::fs::create_dir_all(zpm.path("src/deep/er")).unwrap();
    let src = start_watched(&zpm, IDLE, &["--ignore-watch", "*.tmp"]);
    let first = pid(&zpm.ls()[0]);
    burst(
        &src,
        &[
            "node_modules/x/index.js",
            ".git/HEAD",
            "cache.tmp",
            "deep/er/x.tmp",
        ],
    );
    // Any of those, had it counted, would be the first path of the burst.
    stays(&zpm, 0, first);
    burst(&src, &["sentinel.js"]);
    wait_restart(&zpm, 1, first);
    assert_watch_reason(&history(&zpm, "svc")[0], "sentinel.js");
}

#[test]
fn unwatch_stops_restarts_and_watch_brings_them_back() {
    let zpm = Zpm::new();
    let src = start_watched(&zpm, IDLE, &[]);
    let first = pid(&zpm.ls()[0]);
    zpm.ok(&["unwatch", "svc"]);
    burst(&src, &["while_off.js"]);
    stays(&zpm, 0, first);
    assert!(zpm.ok(&["describe", "svc"]).contains("off: "));
    zpm.ok(&["watch", "svc"]);
    assert_eq!(pid(&zpm.ls()[0]), first, "toggling does not restart");
    // The watcher is (re)built in the background: write until it sees a change.
    let mut n = 0;
    poll("a restart once watching again", || {
        n += 1;
        burst(&src, &[&format!("after{n}.js")]);
        (zpm.ls()[0]["restarts"].as_u64() >= Some(1)).then_some(())
    });
    assert_watch_reason(&history(&zpm, "svc")[0], "js");
}

#[test]
fn a_ready_gated_app_is_reloaded_on_every_instance() {
    let zpm = Zpm::new();
    let port = crate::cluster::free_port().to_string();
    let listen = format!("127.0.0.1:{port}");
    let body = "#!/bin/sh\necho up\nwhile true; do sleep 1; done\n";
    let src = start_watched(
        &zpm,
        body,
        &["-i", "2", "--listen", &listen, "--ready-log", "^up$"],
    );
    let before: Vec<Option<u64>> = zpm.ls().iter().map(pid).collect();
    assert_eq!(before.len(), 2);
    burst(&src, &["x.js", "y.js"]);
    let rows = zpm.wait_ls("both instances reloaded", |rows| {
        rows.iter().all(|r| {
            r["restarts"].as_u64() == Some(1)
                && r["status"] == "online"
                && !before.contains(&pid(r))
        })
    });
    for row in &rows {
        let id = row["id"].to_string();
        assert_watch_reason(&history(&zpm, &id)[0], "x.js");
    }
}

#[test]
fn watch_refuses_unknown_targets() {
    let zpm = Zpm::new();
    zpm.start_idle("idle");
    let error = zpm.fails(&["watch", "nosuch"]);
    assert!(error.contains("nosuch"), "{error}");
    let error = zpm.fails(&["unwatch", "idle", "nosuch"]);
    assert!(error.contains("nosuch"), "{error}");
    assert!(zpm.ok(&["describe", "idle"]).contains("watch"));
}

/// PM2's classic loop: an app that writes its logs into the directory it watches. Its own
/// log files (and `$ZPM_HOME`'s) are never changes; a source file still is.
#[test]
fn an_app_logging_into_its_watched_cwd_is_not_restarted_by_its_own_lines() {
    let zpm = Zpm::new();
    std::fs::create_dir_all(zpm.path("proj")).unwrap();
    let app = zpm.script(
        "talk.sh",
        "#!/bin/sh\nwhile true; do echo line; echo oops >&2; sleep 0.05; done\n",
    );
    let delay = DELAY_MS.to_string();
    zpm.ok(&[
        "start",
        app.to_str().unwrap(),
        "--name",
        "svc",
        "--cwd",
        "proj",
        "-o",
        "out.log",
        "-e",
        "err.log",
        "--watch-delay",
        &delay,
        "--watch",
        "--",
        &zpm.marker,
    ]);
    let out = zpm.path("proj/out-0.log");
    let plain = zpm.path("proj/out.log");
    poll("lines in the app's own log file", || {
        let text = std::fs::read_to_string(&out)
            .or_else(|_| std::fs::read_to_string(&plain))
            .ok()?;
        (text.lines().count() >= 10).then_some(())
    });
    let first = pid(&zpm.ls()[0]);
    stays(&zpm, 0, first);
    std::fs::write(zpm.path("proj/main.js"), "changed\n").unwrap();
    let row = wait_restart(&zpm, 1, first);
    assert!(pid(&row).is_some());
    assert_watch_reason(&history(&zpm, "svc")[0], "main.js");
}

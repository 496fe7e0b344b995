//! Cluster mode, readiness and zero-downtime reload (issue 7): shared sockets held by the
//! spawner (socket activation), Node's `listen(port)` unchanged, every readiness
//! mechanism, reload under load with 0 failed requests, and rollback.

use crate::harness::{Zpm, poll, status};
use serde_json::Value;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A Python HTTP server on the inherited socket (fd 3) that answers with its pid, says
/// READY=1 (unless `NOT_READY` is set) and finishes requests in flight on SIGTERM.
const PY_SERVER: &str = include_str!("../examples/python/http_on_fd3.py");

/// A Node HTTP server, unchanged PM2 style: `listen(port)` on a fixed port.
const NODE_SERVER: &str = include_str!("../examples/node/server.js");

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One request on a new connection: the body, or why it failed.
pub fn get(port: u16, path: &str) -> Result<String, String> {
    let mut stream =
        TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").map_err(|e| format!("write: {e}"))?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|e| format!("read: {e}"))?;
    match response.split_once("\r\n\r\n") {
        Some((head, body))
            if head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200") =>
        {
            Ok(body.to_owned())
        }
        _ => Err(format!("bad response {response:?}")),
    }
}

/// Pids answering on `port`, polled until `n` distinct ones were seen.
fn pids_serving(port: u16, n: usize) -> std::collections::BTreeSet<u32> {
    let mut seen = std::collections::BTreeSet::new();
    poll(&format!("{n} pids answering on {port}"), || {
        if let Ok(body) = get(port, "/") {
            seen.insert(body.trim().parse::<u32>().unwrap());
        }
        (seen.len() >= n).then(|| seen.clone())
    })
}

fn pids(rows: &[Value], name: &str) -> Vec<u32> {
    rows.iter()
        .filter(|r| r["name"] == name)
        .filter_map(|r| r["pid"].as_u64().map(|p| p as u32))
        .collect()
}

fn start_py(zpm: &Zpm, name: &str, port: u16, extra: &[&str]) {
    let script = zpm.script(&format!("{name}.py"), PY_SERVER);
    let listen = format!("127.0.0.1:{port}");
    let mut args = vec![
        "start",
        script.to_str().unwrap(),
        "--name",
        name,
        "--listen",
        &listen,
    ];
    args.extend_from_slice(extra);
    args.extend(["--", &zpm.marker]);
    zpm.ok(&args);
}

#[test]
fn node_http_server_unchanged_shares_one_port_with_i_2() {
    let zpm = Zpm::new();
    let port = free_port();
    let script = zpm.script("http.js", NODE_SERVER);
    let port_text = port.to_string();
    let out = zpm
        .cmd()
        .args(["start", script.to_str().unwrap(), "-i", "2", "--env-var"])
        .arg(format!("PORT={port_text}"))
        .args(["--", &zpm.marker])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        zpm.daemon_logs()
    );
    let rows = zpm.wait_ls("both online", |rows| {
        rows.len() == 2 && rows.iter().all(|r| status(r) == "online")
    });
    let expected: std::collections::BTreeSet<u32> = pids(&rows, "http").into_iter().collect();
    assert_eq!(
        pids_serving(port, 2),
        expected,
        "requests answered by both instances"
    );
    assert_eq!(
        rows.iter()
            .map(|r| r["restarts"].as_u64())
            .collect::<Vec<_>>(),
        [Some(0), Some(0)],
        "no EADDRINUSE crash"
    );
}

#[test]
fn python_on_the_inherited_fd_with_four_instances_and_sd_notify() {
    let zpm = Zpm::new();
    let port = free_port();
    start_py(&zpm, "py", port, &["-i", "4", "--wait-ready"]);
    let rows = zpm.ls();
    assert!(
        rows.iter().all(|r| status(r) == "online"),
        "start returned once all were ready: {rows:?}"
    );
    let expected: std::collections::BTreeSet<u32> = pids(&rows, "py").into_iter().collect();
    assert_eq!(expected.len(), 4);
    assert_eq!(pids_serving(port, 4), expected);
    let described = zpm.ok(&["describe", "py"]);
    assert!(described.contains("serving"), "STATUS= shown: {described}");
}

#[test]
fn a_taken_port_fails_the_start_and_starts_nothing() {
    let zpm = Zpm::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let script = zpm.script("s.py", PY_SERVER);
    let listen = format!("127.0.0.1:{port}");
    let err = zpm.fails(&[
        "start",
        script.to_str().unwrap(),
        "--listen",
        &listen,
        "-i",
        "2",
        "--",
        &zpm.marker,
    ]);
    assert!(
        err.contains(&format!("cannot bind 127.0.0.1:{port}")),
        "{err}"
    );
    assert!(err.contains("nothing was started"), "{err}");
    assert!(zpm.ls().is_empty(), "nothing half-started");
}

#[test]
fn reload_under_load_fails_no_request_and_replaces_every_pid() {
    let zpm = Zpm::new();
    let port = free_port();
    start_py(&zpm, "web", port, &["-i", "4", "--wait-ready"]);
    let before = pids(&zpm.ls(), "web");
    let (ok, failed, took) = under_load(port, "/slow", || {
        zpm.ok(&["reload", "web"]);
    });
    none_failed(ok, &failed, took);
    let rows = zpm.ls();
    let after = pids(&rows, "web");
    assert_eq!(after.len(), 4);
    assert!(
        after.iter().all(|p| !before.contains(p)),
        "every pid replaced: {before:?} → {after:?}"
    );
    assert!(
        rows.iter()
            .all(|r| status(r) == "online" && r["restarts"] == 1),
        "{rows:?}"
    );
    let described = zpm.ok(&["describe", "web"]);
    assert!(
        described.contains("reloaded"),
        "reason recorded: {described}"
    );
    assert_eq!(
        described.matches("serving").count(),
        4,
        "each new run's STATUS= shown: {described}"
    );
}

/// Runs `action` while a client sends requests (a new connection each) to `port`:
/// the requests answered, the failures, and how long the action took.
fn under_load(
    port: u16,
    path: &'static str,
    action: impl FnOnce(),
) -> (u32, Vec<String>, Duration) {
    let stop = Arc::new(AtomicBool::new(false));
    let client = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let (mut ok, mut failed) = (0u32, Vec::new());
            while !stop.load(Ordering::Relaxed) {
                match get(port, path) {
                    Ok(_) => ok += 1,
                    Err(e) => failed.push(e),
                }
            }
            (ok, failed)
        })
    };
    let started = Instant::now();
    action();
    let took = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let (ok, failed) = client.join().unwrap();
    (ok, failed, took)
}

/// Every request sent during the reload was answered, and there were some.
fn none_failed(ok: u32, failed: &[String], took: Duration) {
    assert!(
        failed.is_empty(),
        "{} of {} requests failed during the reload: {failed:?}",
        failed.len(),
        ok as usize + failed.len()
    );
    assert!(ok > 0, "the client ran during the reload ({took:?})");
}

#[test]
fn node_cluster_reload_under_load_fails_no_request() {
    let zpm = Zpm::new();
    let port = free_port();
    let script = zpm.script("http.js", NODE_SERVER);
    zpm.ok(&[
        "start",
        script.to_str().unwrap(),
        "-i",
        "4",
        "--env-var",
        &format!("PORT={port}"),
        "--",
        &zpm.marker,
    ]);
    let before: std::collections::BTreeSet<u32> = pids(&zpm.ls(), "http").into_iter().collect();
    assert_eq!(pids_serving(port, 4), before);
    let (ok, failed, took) = under_load(port, "/", || {
        zpm.ok(&["reload", "http"]);
    });
    none_failed(ok, &failed, took);
    let after: std::collections::BTreeSet<u32> = pids(&zpm.ls(), "http").into_iter().collect();
    assert_eq!(after.len(), 4);
    assert!(
        after.is_disjoint(&before),
        "every pid replaced: {before:?} → {after:?}"
    );
    assert_eq!(pids_serving(port, 4), after, "the new instances serve");
}

/// An ecosystem file of app `web`: the Python server on 127.0.0.1:`port`, marked, with
/// more `keys` and these `env` entries (JSON members).
fn web_file(zpm: &Zpm, port: u16, keys: &str, env: &str) -> String {
    let script = zpm.script("web.py", PY_SERVER);
    format!(
        r#"{{"apps": [{{"name": "web", "script": "{}", "args": ["{}"], "listen": ["127.0.0.1:{port}"], {keys}, "env": {{{env}}}}}]}}"#,
        script.display(),
        zpm.marker
    )
}

#[test]
fn a_replacement_that_never_gets_ready_is_rolled_back() {
    let zpm = Zpm::new();
    let port = free_port();
    let file = zpm.path("web.json");
    let keys =
        r#""instances": 2, "wait_ready": true, "ready_strict": true, "listen_timeout": 1000"#;
    std::fs::write(&file, web_file(&zpm, port, keys, r#""X": "1""#)).unwrap();
    zpm.ok(&["start", file.to_str().unwrap()]);
    let before = pids(&zpm.ls(), "web");
    std::fs::write(&file, web_file(&zpm, port, keys, r#""NOT_READY": "1""#)).unwrap();
    let err = zpm.fails(&["reload", file.to_str().unwrap()]);
    assert!(err.contains("not ready within 1000 ms"), "{err}");
    assert!(err.contains("rolled back"), "{err}");
    assert!(
        err.contains("not reloaded"),
        "the second instance was left alone: {err}"
    );
    let rows = zpm.ls();
    assert_eq!(pids(&rows, "web"), before, "old pids kept");
    let serving = pids_serving(port, 2);
    assert_eq!(
        serving.into_iter().collect::<Vec<_>>(),
        {
            let mut b = before.clone();
            b.sort_unstable();
            b
        },
        "old pids still serve"
    );
}

#[test]
fn reload_of_an_app_binding_its_own_port_is_a_restart_gated_on_readiness() {
    let zpm = Zpm::new();
    let port = free_port();
    // The example binds 127.0.0.1:$PORT itself when it is not given a socket.
    let script = zpm.script("own.py", PY_SERVER);
    let port_var = format!("PORT={port}");
    zpm.ok(&[
        "start",
        script.to_str().unwrap(),
        "--wait-ready",
        "--env-var",
        &port_var,
        "--",
        &zpm.marker,
    ]);
    let before = pids(&zpm.ls(), "own");
    assert_eq!(get(port, "/").unwrap().parse::<u32>().unwrap(), before[0]);
    zpm.ok(&["reload", "own"]);
    let rows = zpm.ls();
    let after = pids(&rows, "own");
    assert_ne!(after, before, "replaced");
    assert_eq!(rows[0]["restarts"], 1);
    assert_eq!(status(&rows[0]), "online");
    assert_eq!(
        get(port, "/").unwrap().parse::<u32>().unwrap(),
        after[0],
        "the new run serves: it was ready when reload returned"
    );
}

#[test]
fn a_process_a_cluster_app_forks_binds_its_own_port() {
    let zpm = Zpm::new();
    let (port, child_port) = (free_port(), free_port());
    zpm.script(
        "child.js",
        r"require('http').createServer((q, s) => s.end('child')).listen(Number(process.env.CHILD_PORT));",
    );
    let parent = zpm.script(
        "parent.js",
        r"
const http = require('http');
require('child_process').fork(__dirname + '/child.js');
http.createServer((q, s) => s.end(String(process.pid))).listen(Number(process.env.PORT));
",
    );
    zpm.ok(&[
        "start",
        parent.to_str().unwrap(),
        "-i",
        "1",
        "--env-var",
        &format!("PORT={port}"),
        "--env-var",
        &format!("CHILD_PORT={child_port}"),
        "--",
        &zpm.marker,
    ]);
    assert_eq!(pids_serving(port, 1).len(), 1);
    // One instance in cluster mode (`-i` on the command line), started before zpm held any
    // socket for it: its forked child must bind by itself, not ask zpm through a channel
    // that leads to its parent (where it would wait forever).
    let answer = poll("the forked child serves its own port", || {
        get(child_port, "/").ok()
    });
    assert_eq!(answer, "child");
}

#[test]
fn a_spawner_killed_mid_reload_leaves_neither_run_behind() {
    let zpm = Zpm::new();
    let port = free_port();
    let file = zpm.path("web.json");
    let keys = r#""wait_ready": true, "listen_timeout": 60000"#;
    std::fs::write(&file, web_file(&zpm, port, keys, r#""X": "1""#)).unwrap();
    zpm.ok(&["start", file.to_str().unwrap()]);
    std::fs::write(&file, web_file(&zpm, port, keys, r#""NOT_READY": "1""#)).unwrap();
    // The replacement never says READY=1: the reload waits (60 s) with both runs up.
    let mut reload = std::process::Command::new(assert_cmd::cargo::cargo_bin("zpm"))
        .env("ZPM_HOME", zpm.home())
        .args(["reload", file.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let both = poll("the old run and its replacement", || {
        let found = crate::harness::marked_processes(&zpm.marker);
        (found.len() == 2).then_some(found)
    });
    let spawner = crate::harness::zpm_processes(zpm.home(), &["agent", "spawner"]);
    assert_eq!(spawner.len(), 1);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(spawner[0].cast_signed()),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    // God gives the reload up once the spawner is gone, long before the 60 s.
    let waited = Instant::now();
    let status = reload.wait().unwrap();
    assert!(
        !status.success(),
        "a reload whose spawner died is not a success"
    );
    assert!(
        waited.elapsed() < Duration::from_secs(20),
        "{:?}",
        waited.elapsed()
    );
    // The successor ends both recorded runs, then God starts the app again: one run, a
    // new one, serving the same port.
    let after = poll("one new run serving", || {
        let found = crate::harness::marked_processes(&zpm.marker);
        let fresh = found.len() == 1 && !both.contains(&found[0]);
        let serving = get(port, "/").ok()?.parse::<u32>().ok()?;
        (fresh && found == [serving]).then_some(found)
    });
    assert!(
        both.iter().all(|p| !after.contains(p)),
        "{both:?} gone, {after:?} serves"
    );
}

#[test]
fn reload_parallel_overlaps_instances_and_a_file_brings_the_new_spec() {
    let zpm = Zpm::new();
    let port = free_port();
    let file = zpm.path("web.json");
    // Each run is ready 0.5 s after it started (its probe), so replacements overlap only
    // if several are under way at once.
    let keys = r#""instances": 4, "ready_cmd": "sleep 0.5""#;
    std::fs::write(&file, web_file(&zpm, port, keys, r#""MODE": "one""#)).unwrap();
    zpm.ok(&["start", file.to_str().unwrap()]);
    std::fs::write(&file, web_file(&zpm, port, keys, r#""MODE": "two""#)).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (stop, marker) = (Arc::clone(&stop), zpm.marker.clone());
        std::thread::spawn(move || {
            let mut most = 0;
            while !stop.load(Ordering::Relaxed) {
                most = most.max(crate::harness::marked_processes(&marker).len());
                std::thread::sleep(Duration::from_millis(10));
            }
            most
        })
    };
    zpm.ok(&["reload", file.to_str().unwrap(), "--parallel", "4"]);
    stop.store(true, Ordering::Relaxed);
    let most = watcher.join().unwrap();
    assert!(
        most > 5,
        "with --parallel 4, several replacements ran at once (at most {most} processes seen)"
    );
    for pid in pids(&zpm.ls(), "web") {
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
        assert!(
            environ.split(|b| *b == 0).any(|e| e == b"MODE=two"),
            "pid {pid} runs the file's new spec"
        );
    }
    let again = zpm.ok(&["reload", file.to_str().unwrap()]);
    assert!(
        zpm.ls().iter().all(|r| r["restarts"] == 1),
        "an unchanged file reloads nothing: {again}"
    );
}

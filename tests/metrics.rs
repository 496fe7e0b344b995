//! The metrics agent: cpu and memory in `ls`, max_memory_restart (only the app over its
//! limit is restarted, and `describe` says why), Prometheus scraped over HTTP.

use crate::harness::{Zpm, poll};
use serde_json::Value;

fn row<'a>(rows: &'a [Value], name: &str) -> &'a Value {
    rows.iter().find(|r| r["name"] == name).unwrap()
}

#[test]
fn ls_shows_cpu_and_memory_of_each_app_tree() {
    let zpm = Zpm::new();
    let busy = zpm.script("busy.sh", "#!/bin/sh\n# $1 marks us\nyes > /dev/null\n");
    let idle = zpm.script("idle.sh", "#!/bin/sh\nwhile true; do sleep 1; done\n");
    zpm.ok(&[
        "start",
        busy.to_str().unwrap(),
        "--name",
        "busy",
        "--",
        &zpm.marker,
    ]);
    zpm.ok(&[
        "start",
        idle.to_str().unwrap(),
        "--name",
        "idle",
        "--",
        &zpm.marker,
    ]);
    let rows = zpm.wait_ls("cpu and memory sampled", |rows| {
        rows.len() == 2
            && rows
                .iter()
                .all(|r| r["memory"].as_u64().is_some_and(|m| m > 0))
            && row(rows, "busy")["cpu"].as_f64().is_some_and(|c| c > 10.0)
    });
    // `busy` is a shell whose child `yes` does the work: the whole tree is counted.
    let busy_cpu = row(&rows, "busy")["cpu"].as_f64().unwrap();
    let idle_cpu = row(&rows, "idle")["cpu"].as_f64().unwrap();
    assert!(idle_cpu < busy_cpu, "idle {idle_cpu} vs busy {busy_cpu}");
    let table = zpm.ok(&["ls"]);
    let line = table.lines().find(|l| l.contains(" busy ")).unwrap();
    assert!(line.contains('%') && line.contains("mb"), "{line}");
}

#[test]
fn an_app_over_its_memory_limit_is_restarted_and_its_neighbour_is_not() {
    let zpm = Zpm::new();
    let hog = zpm.script(
        "hog.py",
        "import sys, time\nheld = b'x' * (48 << 20)\nwhile True:\n    time.sleep(1)\n",
    );
    let calm = zpm.script("calm.sh", "#!/bin/sh\nwhile true; do sleep 1; done\n");
    zpm.ok(&[
        "start",
        hog.to_str().unwrap(),
        "--name",
        "hog",
        "--max-memory-restart",
        "16M",
        "--",
        &zpm.marker,
    ]);
    zpm.ok(&[
        "start",
        calm.to_str().unwrap(),
        "--name",
        "calm",
        "--",
        &zpm.marker,
    ]);
    let calm_before = zpm.wait_ls("calm online", |rows| {
        rows.iter()
            .any(|r| r["name"] == "calm" && r["status"] == "online")
    });
    let calm_pid = row(&calm_before, "calm")["pid"].as_u64().unwrap();
    let rows = zpm.wait_ls("hog restarted for its memory", |rows| {
        row(rows, "hog")["restarts"]
            .as_u64()
            .is_some_and(|n| n >= 1)
    });
    assert_eq!(row(&rows, "hog")["max_memory_restart"], 16 << 20);
    let calm_now = row(&rows, "calm");
    assert_eq!(
        calm_now["pid"].as_u64().unwrap(),
        calm_pid,
        "the neighbour was touched"
    );
    assert_eq!(calm_now["restarts"], 0);
    let described = zpm.json(&["describe", "hog"]);
    let restarts = described[0]["restarts"].as_array().unwrap();
    let reason = &restarts[0]["reason"];
    assert_eq!(reason["kind"], "max_memory", "{described}");
    assert!(reason["memory"].as_u64().unwrap() > 16 << 20, "{reason}");
    assert_eq!(reason["limit"], 16 << 20);
    let table = zpm.ok(&["describe", "hog"]);
    assert!(table.contains("max_memory_restart ("), "{table}");
}

#[test]
fn restart_reasons_name_the_user_and_the_exit_code() {
    let zpm = Zpm::new();
    let flaky = zpm.script("flaky.sh", "#!/bin/sh\n# $1 marks us\nsleep 2\nexit 3\n");
    zpm.ok(&[
        "start",
        flaky.to_str().unwrap(),
        "--name",
        "flaky",
        "--",
        &zpm.marker,
    ]);
    zpm.wait_ls("online", |rows| rows[0]["status"] == "online");
    zpm.ok(&["restart", "flaky"]);
    let reasons = poll("a user restart and an exit with code 3", || {
        let described = zpm.json(&["describe", "flaky"]);
        let reasons: Vec<Value> = described[0]["restarts"]
            .as_array()?
            .iter()
            .map(|r| r["reason"].clone())
            .collect();
        (reasons.len() >= 2).then_some(reasons)
    });
    assert_eq!(reasons[0]["kind"], "user", "{reasons:?}");
    assert_eq!(reasons[1]["kind"], "exited", "{reasons:?}");
    assert_eq!(reasons[1]["code"], 3, "{reasons:?}");

    // `zpm reset` zeroes the counter (God's and the spawner's) and empties the history.
    let reset = zpm.json(&["reset", "flaky"]);
    assert_eq!(reset[0]["restarts"], 0, "{reset}");
    let described = zpm.json(&["describe", "flaky"]);
    assert_eq!(
        described[0]["restarts"].as_array().unwrap().len(),
        0,
        "{described}"
    );
    // The next crash counts from zero again.
    let rows = zpm.wait_ls("the next crash counted from 0", |rows| {
        rows[0]["restarts"].as_u64().is_some_and(|n| n >= 1)
    });
    assert!(rows[0]["restarts"].as_u64().unwrap() <= 2, "{rows:?}");
}

#[test]
fn prometheus_serves_app_metrics_over_http() {
    let zpm = Zpm::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(
        zpm.path("config.toml"),
        format!("[metrics]\ninterval = \"200ms\"\nprometheus = \"127.0.0.1:{port}\"\n"),
    )
    .unwrap();
    let idle = zpm.script("idle.sh", "#!/bin/sh\nwhile true; do sleep 1; done\n");
    zpm.ok(&[
        "start",
        idle.to_str().unwrap(),
        "--name",
        "we\"ird",
        "--",
        &zpm.marker,
    ]);
    let text = poll("a scrape with the app's memory", || {
        let text = scrape(port)?;
        text.contains("zpm_app_memory_bytes{").then_some(text)
    });
    let samples: Vec<(&str, f64)> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (name, value) = l.rsplit_once(' ').unwrap();
            (
                name,
                value.parse::<f64>().unwrap_or_else(|e| panic!("{l}: {e}")),
            )
        })
        .collect();
    let memory = samples
        .iter()
        .find(|(n, _)| n.starts_with("zpm_app_memory_bytes{") && n.contains(r#"name="we\"ird""#))
        .unwrap_or_else(|| panic!("no escaped app name in\n{text}"));
    assert!(memory.1 > 0.0, "{memory:?}");
    for role in ["god", "spawner", "logs", "metrics"] {
        assert!(
            samples
                .iter()
                .any(|(n, v)| n.starts_with("zpm_process_resident_memory_bytes{")
                    && n.contains(&format!("role=\"{role}\""))
                    && *v > 0.0),
            "no RSS of {role} in\n{text}"
        );
    }
    assert!(text.contains("zpm_bus_dropped_events_total"), "{text}");
    assert!(text.contains(r#"status="online""#), "{text}");
}

/// `GET /metrics` over a plain TCP connection (HTTP/1.1, `Connection: close`); the body of
/// a 200 reply with the Prometheus content type, else `None`.
fn scrape(port: u16) -> Option<String> {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok()?;
    let request =
        format!("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply).ok()?;
    let (head, body) = reply.split_once("\r\n\r\n")?;
    let ok = head.starts_with("HTTP/1.1 200")
        && head
            .to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4");
    ok.then(|| body.to_owned())
}

//! Health checks (issue 8): an instance failing `retries` checks in a row is restarted
//! with reason `health`; a check outlasting the interval makes the next ones skipped and
//! counted, never piled up.

use crate::harness::{Zpm, poll, status};

/// Answers 200 until the file `sick` appears next to it, then 500.
const SICKENS: &str = r#"
import http.server, os, sys
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        code = 500 if os.path.exists("sick") else 200
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"#;

#[test]
fn an_instance_failing_its_health_checks_is_restarted_with_reason_health() {
    let zpm = Zpm::new();
    let port = crate::cluster::free_port();
    let app = zpm.script("sickens.py", SICKENS);
    let url = format!("http://127.0.0.1:{port}/");
    zpm.ok(&[
        "start",
        app.to_str().unwrap(),
        "--name",
        "svc",
        "--env-var",
        &format!("PORT={port}"),
        "--ready-http",
        &url,
        "--health-http",
        &url,
        "--health-interval",
        "100",
        "--health-retries",
        "2",
        "--",
        &zpm.marker,
    ]);
    let first = zpm.ls()[0]["pid"].as_u64().unwrap();
    std::fs::write(zpm.path("sick"), "").unwrap();
    let rows = zpm.wait_ls("a restart for health", |rows| {
        rows[0]["restarts"] == 1 && rows[0]["pid"].as_u64().is_some_and(|p| p != first)
    });
    assert_eq!(rows.len(), 1);
    let described = zpm.ok(&["describe", "svc"]);
    assert!(
        described.contains("health: 2 failed checks in a row (health_http failed)"),
        "{described}"
    );
    // Healthy again: the new run stays.
    std::fs::remove_file(zpm.path("sick")).unwrap();
    let healthy = zpm.wait_ls("online again", |rows| status(&rows[0]) == "online");
    assert!(healthy[0]["restarts"].as_u64().unwrap() >= 1);
}

#[test]
fn a_slow_check_skips_the_ticks_it_covers_and_a_healthy_app_stays() {
    let zpm = Zpm::new();
    let app = zpm.script("idle.sh", "#!/bin/sh\nsleep 1000\n");
    // The check's shell carries the marker, so its copies can be counted.
    let check = format!("sleep 0.5; : {}", zpm.marker);
    zpm.ok(&[
        "start",
        app.to_str().unwrap(),
        "--name",
        "slowcheck",
        "--health-cmd",
        &check,
        "--health-interval",
        "100",
        "--health-timeout",
        "2000",
        "--",
        &zpm.marker,
    ]);
    // Each check takes 0.5 s against a 100 ms interval: the ticks in between are skipped.
    let mut most = 0;
    let (count, row) = poll("skipped checks counted", || {
        // The app's shell and at most one check's shell: checks never pile up.
        most = most.max(crate::harness::marked_processes(&zpm.marker).len());
        let row = zpm.ls().into_iter().next()?;
        let skipped = row["health"]["skipped"].as_u64()?;
        (skipped >= 4).then_some((skipped, row))
    });
    assert!(
        most <= 2,
        "{most} marked processes at once ({count} checks skipped)"
    );
    assert_eq!(row["health"]["failures"], 0, "{row}");
    assert_eq!(
        row["restarts"], 0,
        "a slow but passing check restarts nothing"
    );
}

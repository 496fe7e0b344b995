//! Readiness, the watchdog, the app's own channels (stdin, Node IPC, sd_notify) and
//! per-instance variables (issue 7), from the outside: every ready probe gates `zpm start`,
//! `--wait-ready` with its timeout and `--ready-strict`, the watchdog restarts a silent
//! app, `zpm send` / `zpm msg` / `process:msg` reach their ends, and an app abusing its
//! channels harms neither the spawner nor the other apps.

use crate::harness::{DEADLINE, Zpm, poll, status, zpm_processes};
use serde_json::Value;
use std::io::BufRead as _;
use std::time::{Duration, Instant};

/// How long each test app waits before it is ready.
const APP_DELAY: Duration = Duration::from_millis(500);
/// `--listen-timeout` for the probe tests: far above any honest start, so a probe that
/// never fires (and the timeout declaring the instance ready) shows as a slow start.
const LONG_TIMEOUT: &str = "20000";
/// A start gated by a working probe returns well before [`LONG_TIMEOUT`].
const GATED_MAX: Duration = Duration::from_secs(15);

/// Runs `zpm start ARGS` once the daemon is up (so its launch is not measured); asserts
/// success and returns how long the start took.
fn timed_start(zpm: &Zpm, args: &[&str]) -> Duration {
    zpm.ok(&["ping"]);
    let started = Instant::now();
    let out = zpm.cmd().args(args).output().unwrap();
    let took = started.elapsed();
    assert!(
        out.status.success(),
        "zpm {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        zpm.daemon_logs()
    );
    took
}

/// The one row of `zpm ls`, which must be `name` and online right now (no polling: the
/// start that just returned must have waited for it).
fn online_now(zpm: &Zpm, name: &str) -> Value {
    let rows = zpm.ls();
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(rows[0]["name"], name, "{rows:#?}");
    assert_eq!(
        status(&rows[0]),
        "online",
        "online as soon as start returned: {rows:#?}\n{}",
        zpm.daemon_logs()
    );
    rows[0].clone()
}

fn assert_gated(took: Duration, what: &str) {
    assert!(
        took >= APP_DELAY,
        "{what}: start returned after {took:?}, before the app could be ready"
    );
    assert!(
        took < GATED_MAX,
        "{what}: start took {took:?}: the probe never fired, the timeout did"
    );
}

fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// `zpm ARGS` running in the background, its stdout lines on a channel; killed (by its
/// own pid) when dropped.
struct Follow {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Follow {
    fn new(zpm: &Zpm, args: &[&str]) -> Self {
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("zpm"))
            .args(args)
            .env("ZPM_HOME", zpm.home())
            .current_dir(zpm.home())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Self { child, lines }
    }

    /// The first JSON line for which `wanted` holds, within [`DEADLINE`].
    fn find(&self, what: &str, mut wanted: impl FnMut(&Value) -> bool) -> Value {
        let deadline = Instant::now() + DEADLINE;
        let mut seen = 0usize;
        loop {
            assert!(
                Instant::now() < deadline,
                "no event {what} among {seen} lines"
            );
            let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) else {
                continue;
            };
            seen += 1;
            let event: Value =
                serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"));
            if wanted(&event) {
                return event;
            }
        }
    }
}

impl Drop for Follow {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// --- 1. each ready probe gates `zpm start` -------------------------------------------

/// Answers every GET with 503 for APP_DELAY after it listens, then 200 (and writes the
/// marker file when it first says 200). Args: MARKER PORT READY_FILE.
const HTTP_APP: &str = r#"
import http.server, sys, time
port, ready_file = int(sys.argv[2]), sys.argv[3]
up_at = time.monotonic() + 0.5
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    def do_GET(self):
        ready = time.monotonic() >= up_at
        if ready:
            with open(ready_file, "w") as f:
                f.write("200 served")
        body = b"up" if ready else b"warming"
        self.send_response(200 if ready else 503)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(("127.0.0.1", port), Handler)
server.serve_forever()
"#;

#[test]
fn ready_http_gates_start_until_the_url_answers_2xx() {
    let zpm = Zpm::new();
    let port = crate::cluster::free_port();
    let script = zpm.script("web.py", HTTP_APP);
    let ready_file = zpm.path("http-ready");
    let url = format!("http://127.0.0.1:{port}/health");
    let took = timed_start(
        &zpm,
        &[
            "start",
            script.to_str().unwrap(),
            "--name",
            "web",
            "--ready-http",
            &url,
            "--listen-timeout",
            LONG_TIMEOUT,
            "--",
            &zpm.marker,
            &port.to_string(),
            ready_file.to_str().unwrap(),
        ],
    );
    online_now(&zpm, "web");
    assert_eq!(
        read(&ready_file),
        "200 served",
        "start returned before the app answered 2xx (took {took:?})"
    );
    assert_gated(took, "ready_http");
    assert_eq!(crate::cluster::get(port, "/").as_deref(), Ok("up"));
}

/// Listens on PORT only after APP_DELAY, writing READY_FILE once it does. Args: MARKER
/// PORT READY_FILE.
const TCP_APP: &str = r#"
import socket, sys, time
port, ready_file = int(sys.argv[2]), sys.argv[3]
time.sleep(0.5)
server = socket.create_server(("127.0.0.1", port))
with open(ready_file, "w") as f:
    f.write("listening")
while True:
    conn, _ = server.accept()
    conn.sendall(b"hi")
    conn.close()
"#;

#[test]
fn ready_tcp_gates_start_until_the_port_accepts() {
    let zpm = Zpm::new();
    let port = crate::cluster::free_port();
    let script = zpm.script("tcp.py", TCP_APP);
    let ready_file = zpm.path("tcp-ready");
    let port_text = port.to_string();
    let took = timed_start(
        &zpm,
        &[
            "start",
            script.to_str().unwrap(),
            "--name",
            "tcp",
            "--ready-tcp",
            &port_text,
            "--listen-timeout",
            LONG_TIMEOUT,
            "--",
            &zpm.marker,
            &port_text,
            ready_file.to_str().unwrap(),
        ],
    );
    online_now(&zpm, "tcp");
    assert_eq!(
        read(&ready_file),
        "listening",
        "start returned before the port accepted (took {took:?})"
    );
    assert_gated(took, "ready_tcp");
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut greeting = String::new();
    std::io::Read::read_to_string(&mut conn, &mut greeting).unwrap();
    assert_eq!(greeting, "hi", "the app itself serves the port");
}

#[test]
fn ready_cmd_gates_start_until_the_command_exits_0() {
    let zpm = Zpm::new();
    let flag = zpm.path("cmd-ready");
    let script = zpm.script(
        "cmd.sh",
        "#!/bin/sh\n# $1 marks us\nsleep 0.5\necho made > \"$2\"\nwhile true; do sleep 1; done\n",
    );
    let probe = format!("test -f '{}'", flag.display());
    let took = timed_start(
        &zpm,
        &[
            "start",
            script.to_str().unwrap(),
            "--name",
            "cmd",
            "--ready-cmd",
            &probe,
            "--listen-timeout",
            LONG_TIMEOUT,
            "--",
            &zpm.marker,
            flag.to_str().unwrap(),
        ],
    );
    online_now(&zpm, "cmd");
    assert_eq!(
        read(&flag),
        "made\n",
        "start returned before the command could succeed (took {took:?})"
    );
    assert_gated(took, "ready_cmd");
}

/// Prints a line that only an unanchored search would take, then after APP_DELAY the
/// matching one (writing READY_FILE just before). Args: MARKER READY_FILE.
const LOG_APP: &str = r#"
import sys, time
ready_file = sys.argv[2]
print("not listening at 1 yet", flush=True)
time.sleep(0.5)
with open(ready_file, "w") as f:
    f.write("printed")
print("listening at 8123", flush=True)
while True:
    time.sleep(1)
"#;

#[test]
fn ready_log_gates_start_until_an_output_line_matches() {
    let zpm = Zpm::new();
    let script = zpm.script("logready.py", LOG_APP);
    let ready_file = zpm.path("log-ready");
    let took = timed_start(
        &zpm,
        &[
            "start",
            script.to_str().unwrap(),
            "--name",
            "logready",
            "--ready-log",
            r"^listening at \d+$",
            "--listen-timeout",
            LONG_TIMEOUT,
            "--",
            &zpm.marker,
            ready_file.to_str().unwrap(),
        ],
    );
    online_now(&zpm, "logready");
    assert_eq!(
        read(&ready_file),
        "printed",
        "start returned before a line matched (took {took:?})"
    );
    assert_gated(took, "ready_log");
}

// --- 2-4. --wait-ready, its timeout, --ready-strict ------------------------------------

#[test]
fn wait_ready_waits_for_node_process_send_ready() {
    let zpm = Zpm::new();
    let ready_file = zpm.path("node-ready");
    let script = zpm.script(
        "nready.js",
        "const fs = require('fs');\n\
         setTimeout(() => { fs.writeFileSync(process.argv[3], 'sent'); process.send('ready'); }, 500);\n\
         setInterval(() => {}, 1000);\n",
    );
    let took = timed_start(
        &zpm,
        &[
            "start",
            script.to_str().unwrap(),
            "--name",
            "nready",
            "--wait-ready",
            "--listen-timeout",
            LONG_TIMEOUT,
            "--",
            &zpm.marker,
            ready_file.to_str().unwrap(),
        ],
    );
    online_now(&zpm, "nready");
    assert_eq!(
        read(&ready_file),
        "sent",
        "start returned before process.send('ready') (took {took:?})"
    );
    assert_gated(took, "process.send('ready')");
}

/// An app that never says it is ready.
const NEVER_READY: &str = "#!/bin/sh\n# $1 marks us\nwhile true; do sleep 1; done\n";

#[test]
fn wait_ready_without_ready_counts_as_ready_after_listen_timeout() {
    let zpm = Zpm::new();
    let script = zpm.script("mute.sh", NEVER_READY);
    let took = timed_start(
        &zpm,
        &[
            "start",
            script.to_str().unwrap(),
            "--name",
            "mute",
            "--wait-ready",
            "--listen-timeout",
            "700",
            "--",
            &zpm.marker,
        ],
    );
    let row = online_now(&zpm, "mute");
    assert!(
        took >= Duration::from_millis(700),
        "start returned after {took:?}, before the 700 ms listen timeout"
    );
    // The default timeout is 3000 ms: well under it, so 700 was the one applied.
    assert!(
        took < Duration::from_millis(2800),
        "start took {took:?} for a 700 ms listen timeout"
    );
    assert_eq!(row["restarts"], 0, "{row}");
    assert_eq!(zpm.wait_marked(1), [row["pid"].as_u64().unwrap() as u32]);
}

#[test]
fn ready_strict_fails_the_start_and_leaves_nothing() {
    let zpm = Zpm::new();
    let script = zpm.script("never.sh", NEVER_READY);
    zpm.ok(&["ping"]);
    let started = Instant::now();
    let err = zpm.fails(&[
        "start",
        script.to_str().unwrap(),
        "--name",
        "never-ready-app",
        "--wait-ready",
        "--ready-strict",
        "--listen-timeout",
        "500",
        "--",
        &zpm.marker,
    ]);
    let took = started.elapsed();
    assert!(err.contains("never-ready-app"), "names the app: {err}");
    assert!(err.contains("not ready within 500 ms"), "{err}");
    assert!(err.contains("nothing was started"), "{err}");
    assert!(
        took >= Duration::from_millis(500),
        "failed after {took:?}, before the timeout: {err}"
    );
    let rows = zpm.ls();
    assert!(rows.is_empty(), "nothing left in ls: {rows:#?}");
    zpm.wait_marked(0);
}

// --- 5. watchdog ----------------------------------------------------------------------

/// Says READY=1, then WATCHDOG=1 every 0.1 s for 1 s, records "PID silent" and goes
/// silent forever. Args: MARKER LOG.
const WATCHDOG_APP: &str = r#"
import os, socket, sys, time
log = sys.argv[2]
addr = os.environ["NOTIFY_SOCKET"]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(b"READY=1", addr)
for _ in range(10):
    s.sendto(b"WATCHDOG=1", addr)
    time.sleep(0.1)
with open(log, "a") as f:
    f.write(f"{os.getpid()} silent\n")
while True:
    time.sleep(1)
"#;

#[test]
fn watchdog_restarts_an_app_that_stops_sending_watchdog_1() {
    let zpm = Zpm::new();
    let script = zpm.script("dog.py", WATCHDOG_APP);
    let log = zpm.path("dog.log");
    zpm.ok(&[
        "start",
        script.to_str().unwrap(),
        "--name",
        "dog",
        "--wait-ready",
        "--watchdog-sec",
        "0.5",
        "--",
        &zpm.marker,
        log.to_str().unwrap(),
    ]);
    let first = online_now(&zpm, "dog");
    let first_pid = first["pid"].as_u64().unwrap();
    assert_eq!(first["restarts"], 0, "{first}");
    let rows = zpm.wait_ls("dog restarted by the watchdog", |rows| {
        rows.len() == 1
            && rows[0]["restarts"].as_u64() >= Some(1)
            && rows[0]["pid"].as_u64().is_some_and(|p| p != first_pid)
    });
    assert!(
        read(&log).contains(&format!("{first_pid} silent\n")),
        "restarted while it still sent WATCHDOG=1 every 0.1 s: log {:?}, ls {rows:#?}",
        read(&log)
    );
    poll("the silent run is gone", || {
        (!std::path::Path::new(&format!("/proc/{first_pid}")).exists()).then_some(())
    });
    let described = zpm.ok(&["describe", "dog"]);
    assert!(
        described.contains("watchdog: no WATCHDOG=1 for 500 ms"),
        "the reason is the watchdog: {described}"
    );
}

// --- 6-7. zpm send, zpm msg, process:msg ------------------------------------------------

#[test]
fn send_writes_the_words_as_one_line_to_stdin() {
    let zpm = Zpm::new();
    let out = zpm.path("got");
    let script = zpm.script(
        "reader.sh",
        "#!/bin/sh\n# $1 marks us\nread line\necho \"got:$line\" > \"$2\"\nwhile true; do sleep 1; done\n",
    );
    zpm.ok(&[
        "start",
        script.to_str().unwrap(),
        "--name",
        "reader",
        "--",
        &zpm.marker,
        out.to_str().unwrap(),
    ]);
    zpm.ok(&["send", "reader", "hello", "world"]);
    let got = poll("the app wrote what it read", || {
        Some(read(&out)).filter(|s| s.ends_with('\n'))
    });
    assert_eq!(got, "got:hello world\n");
}

#[test]
fn msg_reaches_process_on_message_in_node() {
    let zpm = Zpm::new();
    let out = zpm.path("msg.json");
    let script = zpm.script(
        "listener.js",
        "const fs = require('fs');\n\
         process.on('message', m => fs.writeFileSync(process.argv[3], JSON.stringify(m)));\n\
         process.send('ready');\n\
         setInterval(() => {}, 1000);\n",
    );
    // Ready once its handler is in place: no message can arrive before it.
    zpm.ok(&[
        "start",
        script.to_str().unwrap(),
        "--name",
        "listener",
        "--wait-ready",
        "--listen-timeout",
        LONG_TIMEOUT,
        "--",
        &zpm.marker,
        out.to_str().unwrap(),
    ]);
    online_now(&zpm, "listener");
    let err = zpm.fails(&["msg", "listener", "{a:1}"]);
    assert!(!err.is_empty(), "not JSON: refused with a reason");
    zpm.ok(&["msg", "listener", r#"{"a":1}"#]);
    let got = poll("the app got the message", || {
        Some(read(&out)).filter(|s| !s.is_empty())
    });
    assert_eq!(got, r#"{"a":1}"#);
}

#[test]
fn process_msg_from_node_is_on_the_bus_with_id_name_and_data() {
    let zpm = Zpm::new();
    zpm.ok(&["ping"]);
    let events = Follow::new(&zpm, &["events", "process:msg", "--json"]);
    let script = zpm.script(
        "talker.js",
        "setInterval(() => process.send({type: 'process:msg', data: {hello: 'bus'}}), 200);\n",
    );
    zpm.ok(&[
        "start",
        script.to_str().unwrap(),
        "--name",
        "talker",
        "--",
        &zpm.marker,
    ]);
    let row = zpm.wait_ls("talker online", |rows| {
        rows.len() == 1 && status(&rows[0]) == "online" && rows[0]["pid"].is_u64()
    })[0]
        .clone();
    let event = events.find("process:msg from talker", |e| {
        e["topic"] == "process:msg" && e["data"]["name"] == "talker"
    });
    assert_eq!(event["data"]["id"], row["id"], "{event}");
    assert_eq!(event["data"]["pid"], row["pid"], "{event}");
    assert_eq!(
        event["data"]["data"],
        serde_json::json!({"hello": "bus"}),
        "{event}"
    );
}

// --- 8. per-instance variables --------------------------------------------------------

#[test]
fn increment_var_and_instance_var_per_instance() {
    let zpm = Zpm::new();
    let out = zpm.path("env.txt");
    let script = zpm.script(
        "envrec.sh",
        "#!/bin/sh\n# $1 marks us\necho \"$PORT $INST $$\" >> \"$2\"\nwhile true; do sleep 1; done\n",
    );
    zpm.ok(&[
        "start",
        script.to_str().unwrap(),
        "--name",
        "envrec",
        "-i",
        "3",
        "--increment-var",
        "PORT",
        "--env-var",
        "PORT=4000",
        "--instance-var",
        "INST",
        "--",
        &zpm.marker,
        out.to_str().unwrap(),
    ]);
    let text = poll("3 instances recorded their env", || {
        Some(read(&out)).filter(|t| t.ends_with('\n') && t.lines().count() >= 3)
    });
    let mut lines: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split(' ').collect::<Vec<_>>())
        .collect();
    lines.sort_by(|a, b| a[1].cmp(b[1]));
    let port_inst: Vec<String> = lines.iter().map(|l| format!("{} {}", l[0], l[1])).collect();
    assert_eq!(port_inst, ["4000 0", "4001 1", "4002 2"], "{text:?}");
    let rows = zpm.wait_ls("3 online", |rows| {
        rows.len() == 3 && rows.iter().all(|r| status(r) == "online")
    });
    for line in &lines {
        let instance: u64 = line[1].parse().unwrap();
        let row = rows
            .iter()
            .find(|r| r["instance"] == instance)
            .unwrap_or_else(|| panic!("no instance {instance}: {rows:#?}"));
        assert_eq!(
            row["pid"].to_string(),
            line[2],
            "instance {instance}'s env was recorded by its own process: {rows:#?}"
        );
    }
}

// --- 9. hostile apps on their own channels --------------------------------------------

/// Writes 10 MB with no newline to stdout and to the Node IPC channel, raw, writes
/// "big done" to PROGRESS, then sends 10,000 `process:msg` per second, recording how
/// many it sent. Args: MARKER PROGRESS.
const NODE_FLOOD: &str = r"
const fs = require('fs');
const progress = process.argv[3];
const big = Buffer.alloc(10 * 1024 * 1024, 'x');
process.stdout.write(big);
// Node takes NODE_CHANNEL_FD out of the environment; the channel knows its fd.
const fd = process.channel.fd;
const nap = new Int32Array(new SharedArrayBuffer(4));
let off = 0;
while (off < big.length) {
  try {
    off += fs.writeSync(fd, big, off, big.length - off);
  } catch (e) {
    if (e.code !== 'EAGAIN') throw e;
    Atomics.wait(nap, 0, 0, 1);
  }
}
fs.writeFileSync(progress, 'big done\n');
let sent = 0;
setInterval(() => {
  for (let i = 0; i < 100; i++) {
    process.send({type: 'process:msg', data: {n: sent++}});
  }
}, 10);
setInterval(() => fs.writeFileSync(progress, `big done\nsent ${sent}\n`), 200);
";

/// Says READY=1 and STATUS=flooding, then sends round after round of 5,000 oversized
/// datagrams (a valid STATUS= in each) and 5,000 garbage ones to NOTIFY_SOCKET,
/// recording the rounds done. Args: MARKER PROGRESS.
const NOTIFY_FLOOD: &str = r#"
import os, random, socket, sys
progress = sys.argv[2]
addr = os.environ["NOTIFY_SOCKET"]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(b"STATUS=flooding\nREADY=1", addr)
oversized = [b"STATUS=oversized\n" + b"x" * n for n in (4097, 5000, 16000, 60000)]
garbage = [os.urandom(random.randint(0, 4096)) for _ in range(40)]
garbage += [b"", b"=", b"READY", b"\xff\xfe\x00=1", b"\n" * 4096, b"=" * 4096, b"STATUS"]
rounds = 0
while True:
    for i in range(5000):
        for payload in (oversized[i % len(oversized)], garbage[i % len(garbage)]):
            try:
                s.sendto(payload, addr)
            except OSError:
                pass
    rounds += 1
    with open(progress, "w") as f:
        f.write(f"rounds {rounds}\n")
"#;

fn spawner_pid(zpm: &Zpm) -> u32 {
    let found = zpm_processes(zpm.home(), &["agent", "spawner"]);
    assert_eq!(found.len(), 1, "one spawner: {found:?}");
    let agents = zpm.json(&["agents"]);
    let listed: Vec<&Value> = agents
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["role"] == "spawner")
        .collect();
    assert_eq!(listed.len(), 1, "{agents:#?}");
    assert_eq!(listed[0]["pid"], found[0], "{agents:#?}");
    assert_eq!(listed[0]["connected"], true, "{agents:#?}");
    found[0]
}

fn victim_pid(zpm: &Zpm) -> (u64, u64) {
    let rows = zpm.ls();
    let victim = rows
        .iter()
        .find(|r| r["name"] == "victim")
        .unwrap_or_else(|| panic!("{rows:#?}"));
    assert_eq!(status(victim), "online", "{rows:#?}");
    (
        victim["pid"].as_u64().unwrap(),
        victim["restarts"].as_u64().unwrap(),
    )
}

#[test]
fn apps_abusing_their_channels_do_not_hurt_the_spawner() {
    let zpm = Zpm::new();
    zpm.start_idle("victim");
    let spawner = spawner_pid(&zpm);
    // Someone watching process:msg, so the flood is carried all the way to the bus.
    let events = Follow::new(&zpm, &["events", "process:msg", "--json"]);

    let node_progress = zpm.path("node-progress");
    let node = zpm.script("flood.js", NODE_FLOOD);
    zpm.ok(&[
        "start",
        node.to_str().unwrap(),
        "--name",
        "flood",
        "-o",
        "/dev/null",
        "--",
        &zpm.marker,
        node_progress.to_str().unwrap(),
    ]);
    let notify_progress = zpm.path("notify-progress");
    let py = zpm.script("dgram.py", NOTIFY_FLOOD);
    zpm.ok(&[
        "start",
        py.to_str().unwrap(),
        "--name",
        "dgram",
        "--wait-ready",
        "--listen-timeout",
        LONG_TIMEOUT,
        "--",
        &zpm.marker,
        notify_progress.to_str().unwrap(),
    ]);

    // Both floods under way: the big lines were taken whole, messages and datagrams flow.
    poll(
        "the Node app wrote its 10 MB lines and sent 10,000 messages",
        || {
            let text = read(&node_progress);
            let sent: u64 = text.strip_prefix("big done\nsent ")?.trim().parse().ok()?;
            (sent >= 10_000).then_some(())
        },
    );
    poll("the python app sent a round of 10,000 datagrams", || {
        read(&notify_progress).starts_with("rounds ").then_some(())
    });

    // Meanwhile: God answers, another app restarts promptly.
    for _ in 0..3 {
        let started = Instant::now();
        zpm.ok(&["ping"]);
        let took = started.elapsed();
        assert!(took < Duration::from_secs(5), "zpm ping took {took:?}");
    }
    let (before, restarts) = victim_pid(&zpm);
    let started = Instant::now();
    zpm.ok(&["restart", "victim"]);
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "zpm restart victim took {took:?}\n{}",
        zpm.daemon_logs()
    );
    let (after, restarts_after) = victim_pid(&zpm);
    assert_ne!(after, before, "the victim got a new process");
    assert_eq!(restarts_after, restarts + 1);

    // The floods kept going all along, and the spawner is the one we started with.
    let rounds = read(&notify_progress);
    poll("the python app is still flooding", || {
        let now = read(&notify_progress);
        (now != rounds).then_some(())
    });
    assert_eq!(spawner_pid(&zpm), spawner, "the spawner was replaced");

    // What was valid on those channels still got through.
    let flood_id = zpm
        .ls()
        .iter()
        .find(|r| r["name"] == "flood")
        .map(|r| r["id"].clone())
        .unwrap();
    let event = events.find("process:msg from the flood", |e| {
        e["topic"] == "process:msg" && e["data"]["name"] == "flood"
    });
    assert_eq!(event["data"]["id"], flood_id, "{event}");
    assert!(event["data"]["data"]["n"].is_u64(), "{event}");
    drop(events);
    let described = zpm.ok(&["describe", "dgram"]);
    let status_text = described
        .lines()
        .find(|l| l.contains("status text"))
        .unwrap_or_default();
    assert!(
        status_text.contains("flooding") && !status_text.contains("oversized"),
        "STATUS= from the valid datagram only: {status_text}"
    );
}

#[test]
fn a_gated_app_that_crash_loops_before_it_is_ready_fails_the_start() {
    let zpm = Zpm::new();
    let app = zpm.script("crash.sh", "#!/bin/sh\necho boom >&2\nexit 3\n");
    let err = zpm.fails(&[
        "start",
        app.to_str().unwrap(),
        "--name",
        "crashy",
        "--wait-ready",
        "--max-restarts",
        "2",
        "--",
        &zpm.marker,
    ]);
    assert!(err.contains("crashy instance 0"), "{err}");
    assert!(
        err.contains("before it was ready (last exit: code 3)"),
        "{err}"
    );
    assert!(
        err.contains("crashy-error.log"),
        "names where its output went: {err}"
    );
    assert!(err.contains("nothing was started"), "{err}");
    assert!(zpm.ls().is_empty(), "nothing half-started: {:?}", zpm.ls());
}

#[test]
fn notify_datagrams_from_outside_the_app_are_ignored() {
    let zpm = Zpm::new();
    let go = zpm.path("go");
    let app = zpm.script(
        "guarded.py",
        "import os, socket, sys, time\n\
         while not os.path.exists(sys.argv[1]):\n    time.sleep(0.02)\n\
         s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n\
         s.sendto(b'READY=1', os.environ['NOTIFY_SOCKET'])\n\
         time.sleep(1000)\n",
    );
    zpm.ok(&["ping"]);
    let mut start = std::process::Command::new(assert_cmd::cargo::cargo_bin("zpm"))
        .env("ZPM_HOME", zpm.home())
        .args([
            "start",
            app.to_str().unwrap(),
            "--name",
            "guarded",
            "--wait-ready",
        ])
        .args([
            "--listen-timeout",
            "30000",
            "--",
            go.to_str().unwrap(),
            &zpm.marker,
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The app's process (the `zpm start` running meanwhile carries the marker too).
    let socket = poll("the app running with its NOTIFY_SOCKET", || {
        crate::harness::marked_processes(&zpm.marker)
            .into_iter()
            .find_map(|pid| {
                let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
                environ
                    .split(|b| *b == 0)
                    .find_map(|e| e.strip_prefix(b"NOTIFY_SOCKET="))
                    .map(|p| String::from_utf8_lossy(p).into_owned())
            })
    });
    // Sent by this test, a process outside the app's group, before the app's own READY=1.
    let forger = std::os::unix::net::UnixDatagram::unbound().unwrap();
    forger.send_to(b"STATUS=forged\nREADY=1", &socket).unwrap();
    std::fs::write(&go, "").unwrap();
    assert!(start.wait().unwrap().success());
    let described = zpm.ok(&["describe", "guarded"]);
    assert!(
        !described.contains("forged"),
        "a stranger's STATUS= was taken: {described}"
    );
    assert_eq!(status(&zpm.ls()[0]), "online");
}

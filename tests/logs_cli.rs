//! The log options of `zpm start` (and their ecosystem keys) shape the files the logs agent
//! writes; `zpm logs` prints the last lines and follows new ones; `zpm flush` and
//! `zpm reload-logs` act on the files; bad values are refused naming the key.

use crate::harness::{Zpm, poll};
use serde_json::{Value, json};
use std::io::{BufRead as _, BufReader, Read as _};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_default()
}

fn text(path: &Path) -> String {
    String::from_utf8_lossy(&read(path)).into_owned()
}

/// Polls until `path` holds at least `n` lines; returns them.
fn wait_lines(path: &Path, n: usize) -> Vec<String> {
    poll(&format!("{n} lines in {}", path.display()), || {
        let lines: Vec<String> = text(path).lines().map(str::to_owned).collect();
        (lines.len() >= n).then_some(lines)
    })
}

/// Starts `script` as `name` with `options`, after the script (so `--log` takes no value).
fn start(zpm: &Zpm, name: &str, body: &str, options: &[&str]) {
    let script = zpm.script(&format!("{name}.sh"), body);
    let script = script.display().to_string();
    let mut args = vec!["start", script.as_str(), "--name", name];
    args.extend_from_slice(options);
    zpm.json(&args);
}

#[test]
fn output_and_error_options_name_the_files_relative_to_the_cwd() {
    let zpm = Zpm::new();
    let body = "#!/bin/sh\necho hello\nprintf 'no newline'\necho oops >&2\nexec sleep 1000\n";
    start(
        &zpm,
        "files",
        body,
        &["-o", "out.log", "--error", "err.log"],
    );
    poll("both files written", || {
        (read(&zpm.path("out.log")).len() >= 16 && !read(&zpm.path("err.log")).is_empty())
            .then_some(())
    });
    assert_eq!(text(&zpm.path("out.log")), "hello\nno newline");
    assert_eq!(text(&zpm.path("err.log")), "oops\n");
    assert!(!zpm.path("logs/files-out.log").exists());
    let logs = &zpm.json(&["describe", "files"])[0]["logs"];
    assert_eq!(logs["out_file"], zpm.path("out.log").display().to_string());
    assert_eq!(
        logs["error_file"],
        zpm.path("err.log").display().to_string()
    );
}

#[test]
fn log_without_a_value_adds_the_default_combined_file() {
    let zpm = Zpm::new();
    let body = "#!/bin/sh\necho out-line\nsleep 0.1\necho err-line >&2\nexec sleep 1000\n";
    start(&zpm, "both", body, &["--log"]);
    let combined = zpm.path("logs/both.log");
    assert_eq!(wait_lines(&combined, 2), ["out-line", "err-line"]);
    assert_eq!(text(&zpm.path("logs/both-out.log")), "out-line\n");
    assert_eq!(text(&zpm.path("logs/both-error.log")), "err-line\n");
    let described = zpm.ok(&["describe", "both"]);
    assert!(described.contains("combined log"), "{described}");
}

#[test]
fn instances_get_an_id_suffix_unless_logs_are_merged() {
    let zpm = Zpm::new();
    let body = "#!/bin/sh\necho \"instance $ZPM_INSTANCE\"\nexec sleep 1000\n";
    start(&zpm, "split", body, &["-i", "2"]);
    start(&zpm, "merged", body, &["-i", "2", "--merge-logs"]);
    // Ids 0 and 1 are split's, 2 and 3 merged's.
    assert_eq!(
        wait_lines(&zpm.path("logs/split-out-0.log"), 1),
        ["instance 0"]
    );
    assert_eq!(
        wait_lines(&zpm.path("logs/split-out-1.log"), 1),
        ["instance 1"]
    );
    let mut merged = wait_lines(&zpm.path("logs/merged-out.log"), 2);
    merged.sort();
    assert_eq!(merged, ["instance 0", "instance 1"]);
    assert!(!zpm.path("logs/split-out.log").exists());
    assert!(!zpm.path("logs/merged-out-2.log").exists());
    // `zpm logs` shows a shared file once, each instance's own file each.
    let shown = zpm.ok(&["logs", "merged", "--nostream", "--raw", "--out"]);
    assert_eq!(shown.lines().count(), 2, "{shown}");
    let shown = zpm.ok(&["logs", "split", "--nostream", "--out"]);
    let headers: Vec<&str> = shown.lines().filter(|l| l.ends_with("lines:")).collect();
    assert_eq!(headers.len(), 2, "{shown}");
    assert!(shown.contains("\n0|split | instance 0\n"), "{shown}");
    assert!(shown.contains("\n1|split | instance 1\n"), "{shown}");
}

#[test]
fn dev_null_discards_a_stream() {
    let zpm = Zpm::new();
    let body = "#!/bin/sh\necho dropped\necho kept >&2\nexec sleep 1000\n";
    start(&zpm, "quiet", body, &["--output", "/dev/null"]);
    assert_eq!(wait_lines(&zpm.path("logs/quiet-error.log"), 1), ["kept"]);
    assert!(!zpm.path("logs/quiet-out.log").exists());
    let logs = &zpm.json(&["describe", "quiet"])[0]["logs"];
    assert_eq!(logs["out_file"], "/dev/null");
}

/// `2026-11-30T09:06:29.123+01:00: ` — the `--time` format, then the line.
fn untimed(line: &str) -> &str {
    let (stamp, rest) = line.split_once(": ").expect("a timestamp prefix");
    let shape = stamp.len() == 29
        && stamp.as_bytes()[10] == b'T'
        && stamp.as_bytes()[19] == b'.'
        && stamp[..4].bytes().all(|b| b.is_ascii_digit());
    assert!(shape, "not an ISO timestamp: {stamp:?}");
    rest
}

#[test]
fn time_prefixes_every_line_once_even_one_written_in_two_parts() {
    let zpm = Zpm::new();
    // The second line's end comes after the writer's 500 ms hold: its start is written
    // alone, its end must follow without a second timestamp.
    let body = "#!/bin/sh\necho first\nprintf 'par'\nsleep 0.7\nprintf 'tial\\n'\necho last\n\
                exec sleep 1000\n";
    start(&zpm, "stamped", body, &["--time"]);
    let lines = wait_lines(&zpm.path("logs/stamped-out.log"), 3);
    let bodies: Vec<&str> = lines.iter().map(|l| untimed(l)).collect();
    assert_eq!(bodies, ["first", "partial", "last"]);
}

/// Decodes standard base64 (test side of the round trip).
fn unbase64(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let digits: Vec<u32> = text
        .bytes()
        .filter(|&c| c != b'=')
        .map(|c| ALPHABET.iter().position(|&a| a == c).unwrap() as u32)
        .collect();
    let mut out = Vec::new();
    for group in digits.chunks(4) {
        let n = group
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, d)| n | d << (18 - 6 * i));
        out.extend_from_slice(&n.to_be_bytes()[1..group.len()]);
    }
    out
}

#[test]
fn json_log_type_writes_lossless_json_lines() {
    let zpm = Zpm::new();
    let body = "#!/bin/sh\necho 'plain \"q\"'\nprintf 'bad \\377\\376 end\\n'\nexec sleep 1000\n";
    start(&zpm, "js", body, &["--log-type", "json"]);
    let lines = wait_lines(&zpm.path("logs/js-out.log"), 2);
    let values: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(values[0]["message"], "plain \"q\"");
    assert_eq!(values[0]["app_name"], "js");
    assert_eq!(values[0]["stream"], "out");
    assert!(values[0].get("message_b64").is_none());
    let b64 = values[1]["message_b64"].as_str().unwrap();
    assert_eq!(unbase64(b64), b"bad \xff\xfe end");
}

const TWENTY: &str = "#!/bin/sh\ni=1\nwhile [ $i -le 20 ]; do echo \"line $i\"; i=$((i+1)); done\n\
                      exec sleep 1000\n";

/// Lines 16 to 20 of [`TWENTY`], each after `prefix`.
fn last_five(prefix: &str) -> String {
    let lines: Vec<String> = (16..=20).map(|i| format!("{prefix}line {i}\n")).collect();
    lines.concat()
}

#[test]
fn logs_nostream_prints_the_last_lines_pm2_style() {
    let zpm = Zpm::new();
    start(&zpm, "talk", TWENTY, &[]);
    let out = zpm.path("logs/talk-out.log");
    wait_lines(&out, 20);
    let err = zpm.path("logs/talk-error.log");
    let shown = zpm.ok(&["logs", "talk", "--lines", "5", "--nostream"]);
    let expected = format!(
        "{} last 5 lines:\n{}{} last 5 lines:\n",
        out.display(),
        last_five("0|talk | "),
        err.display()
    );
    assert_eq!(shown, expected);
    let raw = zpm.ok(&["logs", "talk", "--lines", "5", "--nostream", "--raw"]);
    assert_eq!(raw, last_five(""));
    let json = zpm.ok(&["logs", "0", "--lines", "2", "--nostream", "--json", "--out"]);
    let values: Vec<Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        values,
        [
            json!({"id": 0, "name": "talk", "stream": "out", "message": "line 19"}),
            json!({"id": 0, "name": "talk", "stream": "out", "message": "line 20"}),
        ]
    );
    let stamped = zpm.ok(&[
        "logs",
        "talk",
        "--lines",
        "1",
        "--nostream",
        "--raw",
        "--timestamp",
    ]);
    assert_eq!(untimed(stamped.trim_end()), "line 20");
    let error = zpm.fails(&["logs", "nope", "--nostream"]);
    assert!(error.contains("nope"), "{error}");
}

/// A `zpm logs` process, SIGKILLed by pid if the test ends while it runs.
struct Follower(Child);

impl Drop for Follower {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn follow(zpm: &Zpm, args: &[&str]) -> Follower {
    let child = Command::new(env!("CARGO_BIN_EXE_zpm"))
        .arg("logs")
        .args(args)
        .env("ZPM_HOME", zpm.home())
        .env_remove("NO_COLOR")
        .current_dir(zpm.home())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Follower(child)
}

/// The follower's stdout, line by line, read on a thread.
fn lines_of(follower: &mut Follower) -> mpsc::Receiver<String> {
    let stdout = follower.0.stdout.take().unwrap();
    let (lines, seen) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    seen
}

#[test]
fn logs_follows_lines_printed_after_it_attached() {
    let zpm = Zpm::new();
    let body = "#!/bin/sh\ni=0\nwhile :; do echo \"tick $i\"; i=$((i+1)); sleep 0.1; done\n";
    start(&zpm, "ticker", body, &[]);
    let out = zpm.path("logs/ticker-out.log");
    wait_lines(&out, 3);
    let mut follower = follow(&zpm, &["ticker", "--lines", "1", "--out"]);
    let seen = lines_of(&mut follower);
    // `zpm logs` subscribes before it reads the last lines: once they are printed, every
    // tick the file has not reached yet is printed after it attached.
    let wait = crate::harness::DEADLINE;
    let header = seen.recv_timeout(wait).unwrap();
    assert!(header.ends_with("ticker-out.log last 1 lines:"), "{header}");
    let _last = seen.recv_timeout(wait).unwrap();
    let attached = text(&out).lines().count();
    let deadline = Instant::now() + crate::harness::DEADLINE;
    let tick = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = seen
            .recv_timeout(left)
            .expect("a live line within the deadline");
        let tick: usize = line
            .strip_prefix("0|ticker | tick ")
            .unwrap_or_else(|| panic!("not a prefixed tick: {line:?}"))
            .parse()
            .unwrap();
        if tick >= attached {
            break tick;
        }
    };
    assert!(tick >= attached, "tick {tick} was printed after attaching");
    follower.0.kill().unwrap();
    follower.0.wait().unwrap();
}

#[test]
fn logs_ends_quietly_when_its_reader_goes_away() {
    let zpm = Zpm::new();
    start(&zpm, "still", TWENTY, &[]);
    wait_lines(&zpm.path("logs/still-out.log"), 20);
    let mut follower = follow(&zpm, &["still", "--lines", "3"]);
    let mut stdout = follower.0.stdout.take().unwrap();
    let mut first = [0u8; 8];
    stdout.read_exact(&mut first).unwrap();
    drop(stdout);
    // The app prints nothing more: the end must come from seeing the closed pipe.
    let status = poll("zpm logs to exit", || follower.0.try_wait().unwrap());
    assert!(status.success(), "{status}");
}

#[test]
fn flush_empties_the_files_of_its_targets() {
    let zpm = Zpm::new();
    start(&zpm, "full", TWENTY, &[]);
    start(&zpm, "other", TWENTY, &[]);
    let (full, other) = (
        zpm.path("logs/full-out.log"),
        zpm.path("logs/other-out.log"),
    );
    wait_lines(&full, 20);
    wait_lines(&other, 20);
    let said = zpm.ok(&["flush", "full"]);
    assert!(
        said.contains(&format!("flushed {}", full.display())),
        "{said}"
    );
    assert_eq!(read(&full).len(), 0);
    assert_eq!(wait_lines(&other, 20).len(), 20, "other apps keep theirs");
    let flushed = zpm.json(&["flush"]);
    assert!(
        flushed["files"]
            .as_array()
            .unwrap()
            .contains(&json!(other.display().to_string()))
    );
    assert_eq!(read(&other).len(), 0);
}

/// The tick numbers of `lines` (`tick N`).
fn ticks(text: &str) -> Vec<u64> {
    text.lines()
        .map(|l| l.strip_prefix("tick ").unwrap().parse().unwrap())
        .collect()
}

#[test]
fn reload_logs_reopens_a_file_moved_away() {
    let zpm = Zpm::new();
    let body = "#!/bin/sh\ni=0\nwhile :; do echo \"tick $i\"; i=$((i+1)); sleep 0.05; done\n";
    start(&zpm, "moved", body, &[]);
    let out = zpm.path("logs/moved-out.log");
    wait_lines(&out, 3);
    let rotated = zpm.path("moved-out.log.1");
    std::fs::rename(&out, &rotated).unwrap();
    let said = zpm.ok(&["reload-logs"]);
    assert_eq!(said, "zpm: log files reopened\n");
    // Once the reply came, nothing more goes to the moved file.
    let kept = text(&rotated);
    wait_lines(&out, 3);
    assert_eq!(text(&rotated), kept, "the moved file keeps its bytes");
    let (old, new) = (ticks(&kept), ticks(&text(&out)));
    let all: Vec<u64> = old.iter().chain(&new).copied().collect();
    let expected: Vec<u64> = (0..all.len() as u64).collect();
    assert_eq!(
        all, expected,
        "every tick once, in order, across the two files"
    );
    assert_eq!(zpm.json(&["reload-logs"]), json!({"reopened": true}));
}

#[test]
fn ecosystem_log_keys_reach_the_spec() {
    let zpm = Zpm::new();
    zpm.script("eco.sh", "#!/bin/sh\necho from-eco\nexec sleep 1000\n");
    let file = json!({"apps": [{
        "name": "eco", "script": "eco.sh",
        "out_file": "eco.out", "error_file": "/dev/null", "log_file": "eco.all",
        "combine_logs": true, "instances": 2, "log_date_format": "%H:%M",
        "log_type": "raw", "log_max_size": "10M", "log_retain": 3, "log_compress": true,
    }]});
    std::fs::write(zpm.path("eco.json"), file.to_string()).unwrap();
    zpm.json(&["start", "eco.json"]);
    let described = zpm.json(&["describe", "eco"]);
    let logs = &described[0]["logs"];
    assert_eq!(logs["out_file"], zpm.path("eco.out").display().to_string());
    assert_eq!(logs["error_file"], "/dev/null");
    assert_eq!(logs["log_file"], zpm.path("eco.all").display().to_string());
    assert_eq!(logs["date_format"], "%H:%M");
    assert_eq!(
        logs["rotation"],
        json!({"max_size": 10 << 20, "retain": 3, "compress": true})
    );
    assert_eq!(described[1]["logs"]["out_file"], logs["out_file"], "merged");
    for line in wait_lines(&zpm.path("eco.out"), 2) {
        let (stamp, rest) = line.split_once(": ").unwrap();
        assert_eq!((stamp.len(), rest), (5, "from-eco"), "{line}");
    }
}

/// Calls God's `app.start` directly with `spec` (as a third party would).
fn start_raw(zpm: &Zpm, spec: Value) -> zpm_rpc::RpcError {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let endpoint = format!("ipc://{}", zpm.path("rpc.sock").display());
    runtime.block_on(async {
        let options = zpm_rpc::ClientOptions {
            version: zpm_proto::PROTOCOL_VERSION,
            ..zpm_rpc::ClientOptions::default()
        };
        let client = zpm_rpc::Client::with_options(&endpoint, options);
        let params = json!({ "apps": [spec] });
        let timeout = Duration::from_secs(30);
        match client.call::<_, Value>("app.start", &params, timeout).await {
            Err(zpm_rpc::CallError::Remote(e)) => e,
            other => panic!("God should refuse: {other:?}"),
        }
    })
}

#[test]
fn bad_log_options_are_refused_naming_the_key() {
    let zpm = Zpm::new();
    let script = zpm.script("ok.sh", "#!/bin/sh\nexec sleep 1000\n");
    let script = script.display().to_string();
    let error = zpm.fails(&["start", &script, "--log-date-format", "%Q%"]);
    assert!(error.contains("invalid log_date_format \"%Q%\""), "{error}");
    let error = zpm.fails(&["start", &script, "--log-type", "xml"]);
    assert!(error.contains("--log-type"), "{error}");
    let eco = json!({"apps": [{"name": "r", "script": "ok.sh", "log_retain": 2000}]});
    std::fs::write(zpm.path("r.json"), eco.to_string()).unwrap();
    let error = zpm.fails(&["start", "r.json"]);
    assert!(error.contains("invalid log_retain 2000"), "{error}");
    zpm.ok(&["ping"]);
    let spec = |logs: Value| {
        let argv = vec![
            "/bin/sh".to_owned(),
            "-c".to_owned(),
            "sleep 1000".to_owned(),
        ];
        let mut spec = serde_json::to_value(zpm_proto::AppSpec::new(
            "raw",
            argv,
            zpm.home().display().to_string(),
        ))
        .unwrap();
        spec["logs"] = logs;
        spec
    };
    let refused = start_raw(&zpm, spec(json!({"out_file": "relative.log"})));
    assert_eq!(refused.code, zpm_rpc::ErrorCode::BadParams);
    assert!(
        refused
            .message
            .contains(r#"invalid logs.out_file "relative.log": it must be an absolute path"#),
        "{refused}"
    );
    let refused = start_raw(&zpm, spec(json!({"retain": 5000})));
    assert!(refused.message.contains("logs.retain"), "{refused}");
    let long = format!("/{}", "x".repeat(5000));
    let refused = start_raw(&zpm, spec(json!({"log_file": long})));
    assert!(refused.message.contains("logs.log_file"), "{refused}");
    assert!(zpm.ls().is_empty(), "nothing was started");
}

/// What a flood looks like through `zpm logs`: numbers, or markers of lost lines.
#[derive(Debug)]
enum Seen {
    Number(u64),
    Lost(u64),
    Dropped,
    Done,
}

fn parse_flood(line: &str) -> Seen {
    if line.starts_with("[zpm] ") && line.ends_with(" log events dropped (out of credit)") {
        // The bus's own report: the lines it stands for are marked where they were.
        return Seen::Dropped;
    }
    let body = line
        .strip_prefix("0|flood | ")
        .unwrap_or_else(|| panic!("not prefixed: {line:?}"));
    if body == "done" {
        return Seen::Done;
    }
    if let Some(lost) = body.strip_prefix("[zpm] ") {
        let n = lost
            .strip_suffix(" lines dropped")
            .expect("a lost-lines marker");
        return Seen::Lost(n.parse().unwrap());
    }
    Seen::Number(body.parse().expect("a number"))
}

/// Every number follows the one before, except across a marker, whose count matches the
/// numbers missing (give or take the line cut at each end of the hole, shown in part).
fn check_flood(seen: &[Seen]) {
    let mut last: Option<u64> = None;
    let mut marked: Option<u64> = None;
    for (i, item) in seen.iter().enumerate() {
        match (item, last) {
            (Seen::Lost(n), _) => marked = Some(*n),
            (Seen::Number(n), None) => last = Some(*n),
            (Seen::Number(n), Some(p)) if *n == p + 1 => last = Some(*n),
            (Seen::Number(n), Some(p)) if *n > p && marked.is_some() => {
                let (missing, reported) = (n - p - 1, marked.take().unwrap_or(0));
                assert!(
                    missing + 1 >= reported && missing <= reported + 1,
                    "{missing} numbers missing after {p}, {reported} reported"
                );
                last = Some(*n);
            }
            // A line cut by a hole: next to a marker.
            (Seen::Number(_), Some(_)) => {
                let by_marker = marked.is_some() || matches!(seen.get(i + 1), Some(Seen::Lost(_)));
                assert!(by_marker, "{item:?} after {last:?} at {i}, no marker near");
            }
            (Seen::Done | Seen::Dropped, _) => {}
        }
    }
}

#[test]
fn a_flood_streams_in_order_and_every_loss_is_marked() {
    let zpm = Zpm::new();
    let go = zpm.path("go");
    let body = format!(
        "#!/bin/sh\nwhile [ ! -e {} ]; do sleep 0.05; done\nseq 1 2000000\nsleep 0.5\n\
         echo done\nexec sleep 1000\n",
        go.display()
    );
    start(&zpm, "flood", &body, &[]);
    let mut follower = follow(&zpm, &["flood", "--lines", "1", "--out"]);
    let lines = lines_of(&mut follower);
    let wait = Duration::from_secs(60);
    let header = lines.recv_timeout(wait).unwrap();
    assert!(header.ends_with("last 1 lines:"), "{header}");
    std::fs::write(&go, "").unwrap();
    let mut seen = Vec::new();
    // The first line may be the end of one cut where the stream was joined.
    lines.recv_timeout(wait).unwrap();
    loop {
        let line = lines.recv_timeout(wait).expect("the flood, then done");
        seen.push(parse_flood(&line));
        if matches!(seen.last(), Some(Seen::Done)) {
            break;
        }
    }
    check_flood(&seen);
    let numbers = seen.iter().filter(|s| matches!(s, Seen::Number(_))).count();
    assert!(numbers > 1000, "the stream went on: {numbers} lines");
    // The end: the last number, or a marker accounting for the lines after it.
    let kept: Vec<&Seen> = seen
        .iter()
        .filter(|s| !matches!(s, Seen::Dropped))
        .collect();
    let end = &kept[kept.len().saturating_sub(3)..];
    let whole = match end {
        [.., Seen::Number(n), Seen::Done] => *n == 2_000_000,
        [Seen::Number(n), Seen::Lost(lost), Seen::Done] => (2_000_000 - n).abs_diff(*lost) <= 1,
        _ => false,
    };
    assert!(whole, "the end of the flood: {end:?}");
}

//! `zpm monit` driven once through a real pseudo-terminal: util-linux `script` gives it a
//! pty (sized with `stty`, since a pty made for a pipe starts at 0×0), the test writes keys
//! to script's stdin and reads everything drawn from its stdout.

use crate::harness::{Zpm, poll, status};
use std::io::{Read as _, Write as _};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

/// The script process, SIGKILLed by pid if the test ends before it exits (monit inside then
/// gets SIGHUP from its closed pty).
struct Pty(Child);

impl Drop for Pty {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn spawn_monit(zpm: &Zpm) -> Pty {
    let zpm_bin = env!("CARGO_BIN_EXE_zpm");
    assert!(!zpm_bin.contains('\''), "{zpm_bin}");
    let child = Command::new("script")
        .args([
            "-qefc",
            &format!("stty cols 120 rows 40 && exec '{zpm_bin}' monit"),
        ])
        .arg("/dev/null")
        .env("ZPM_HOME", zpm.home())
        .env("TERM", "xterm-256color")
        .current_dir(zpm.home())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running util-linux `script`, which this test needs for a pty");
    Pty(child)
}

/// Collects the pty's output on a thread until it closes.
fn collect(pty: &mut Pty) -> (Arc<Mutex<Vec<u8>>>, std::thread::JoinHandle<()>) {
    let mut stdout = pty.0.stdout.take().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = stdout.read(&mut buf) {
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    (seen, reader)
}

#[test]
fn monit_draws_the_apps_stops_one_on_s_and_quits_on_q_restoring_the_terminal() {
    let zpm = Zpm::new();
    let script = zpm.script(
        "ticker.sh",
        "#!/bin/sh\nwhile true; do echo tick; sleep 1; done\n",
    );
    let script = script.display().to_string();
    zpm.ok(&["start", &script, "--name", "ticker", "--", &zpm.marker]);
    let mut pty = spawn_monit(&zpm);
    let (seen, reader) = collect(&mut pty);
    let text = || String::from_utf8_lossy(&seen.lock().unwrap()).into_owned();
    poll("monit to draw the app online", || {
        let shown = text();
        (shown.contains("ticker") && shown.contains("online")).then_some(())
    });
    // Stdin stays open until monit is gone: at EOF, script would hand the pty an EOF of its own.
    let mut keys = pty.0.stdin.take().unwrap();
    let mut press = |key: &[u8]| {
        keys.write_all(key).unwrap();
        keys.flush().unwrap();
    };
    // `s` stops the selected (only) app through God.
    press(b"s");
    zpm.wait_ls("s in monit to stop the app", |rows| {
        rows.iter().all(|r| status(r) == "stopped")
    });
    press(b"q");
    let status = poll("monit to exit after q", || pty.0.try_wait().unwrap());
    drop(keys);
    reader.join().unwrap();
    let mut stderr = String::new();
    pty.0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "{status}: {stderr}\n{}", text());
    let out = seen.lock().unwrap().clone();
    assert!(
        out.ends_with(b"\x1b[?1049l"),
        "the terminal is not given back last: {:?}",
        String::from_utf8_lossy(&out[out.len().saturating_sub(200)..])
    );
}

//! What every daemon test needs: a fresh `ZPM_HOME`, the real `zpm` binary, a guard that
//! runs `zpm kill` when the test ends (pass or fail), polling with deadlines, and counting
//! app processes by a unique argv marker in /proc — never by trusting zpm's own view.

use assert_cmd::Command;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub const DEADLINE: Duration = Duration::from_secs(20);

pub struct Zpm {
    home: tempfile::TempDir,
    /// Unique to this test: put it in an app's argv to find its processes in /proc.
    pub marker: String,
}

impl Drop for Zpm {
    /// `zpm kill`, then SIGKILL by pid whatever of this home is left (a daemon or agent
    /// that did not exit, and the apps of this test). Agents first and again until none
    /// is left: a spawner killed after God would have relaunched it meanwhile.
    fn drop(&mut self) {
        let _ = self
            .cmd()
            .arg("kill")
            .timeout(Duration::from_secs(60))
            .output();
        for _ in 0..50 {
            let left: Vec<u32> = zpm_processes(self.home(), &["agent"])
                .into_iter()
                .chain(zpm_processes(self.home(), &["daemon"]))
                .chain(marked_processes(&self.marker))
                .collect();
            if left.is_empty() {
                return;
            }
            for pid in left {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid.cast_signed()),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Zpm {
    pub fn new() -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let home = tempfile::Builder::new().prefix("zpmt").tempdir().unwrap();
        let marker = format!(
            "zpmmark{}x{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        Self { home, marker }
    }

    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// A file path inside the test's home, for scripts and what apps write.
    pub fn path(&self, name: &str) -> PathBuf {
        self.home.path().join(name)
    }

    /// Writes an executable script.
    pub fn script(&self, name: &str, body: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, body).unwrap();
        let mut perms = std::fs::metadata(&path).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(&path, perms).unwrap();
        path
    }

    pub fn cmd(&self) -> Command {
        let mut cmd = Command::cargo_bin("zpm").unwrap();
        cmd.env("ZPM_HOME", self.home.path())
            .current_dir(self.home.path())
            .timeout(Duration::from_secs(90));
        cmd
    }

    /// Writes `body` as `NAME.sh` and starts it as app `name`, marked (its `$1`) so the
    /// guard ends it.
    pub fn start_script(&self, name: &str, body: &str) {
        let app = self.script(&format!("{name}.sh"), body);
        self.ok(&[
            "start",
            app.to_str().unwrap(),
            "--name",
            name,
            "--",
            &self.marker,
        ]);
    }

    /// Starts an app named `name` that sleeps forever.
    pub fn start_idle(&self, name: &str) {
        self.start_script(name, "#!/bin/sh\nwhile true; do sleep 1; done\n");
    }

    /// Runs `zpm ARGS`, asserts success, returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "zpm {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.daemon_logs()
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs `zpm ARGS`, asserts failure, returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.cmd().args(args).output().unwrap();
        assert!(
            !out.status.success(),
            "zpm {args:?} should have failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stderr).unwrap()
    }

    /// Runs `zpm VERB --json ARGS…` (the flag goes before any `--` app arguments).
    pub fn json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.insert(1, "--json");
        serde_json::from_str(&self.ok(&args)).unwrap()
    }

    pub fn ls(&self) -> Vec<Value> {
        self.json(&["ls"]).as_array().unwrap().clone()
    }

    /// Polls `zpm ls --json` until `done` holds; returns the rows that satisfied it.
    pub fn wait_ls(&self, what: &str, mut done: impl FnMut(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let rows = self.ls();
            if done(&rows) {
                return rows;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; last ls: {rows:#?}\n{}",
                self.daemon_logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn daemon_logs(&self) -> String {
        let read = |name: &str| std::fs::read_to_string(self.path(name)).unwrap_or_default();
        format!(
            "--- daemon.log\n{}\n--- agent-spawner.log\n{}",
            read("daemon.log"),
            read("agent-spawner.log")
        )
    }

    /// Live processes whose argv contains this test's marker, not counting a shell app's
    /// fork between fork and exec (its `sleep`): a child with its parent's very argv.
    pub fn marked(&self) -> Vec<u32> {
        let all = marked_processes(&self.marker);
        let stats = zpm_host::procfs::all_stats().unwrap_or_default();
        let parent = |pid: u32| stats.iter().find(|s| s.pid == pid).map(|s| s.ppid);
        let argv = zpm_host::procfs::cmdline;
        all.iter()
            .copied()
            .filter(|pid| {
                parent(*pid).is_none_or(|ppid| !all.contains(&ppid) || argv(ppid) != argv(*pid))
            })
            .collect()
    }

    /// Polls until exactly `n` marked processes are alive.
    pub fn wait_marked(&self, n: usize) -> Vec<u32> {
        poll(&format!("{n} processes marked {}", self.marker), || {
            let found = self.marked();
            (found.len() == n).then_some(found)
        })
    }
}

/// Polls `probe` until it yields, failing the test after `DEADLINE`.
pub fn poll<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every live process but this one, as (pid, its /proc directory, argv).
pub fn live_processes() -> impl Iterator<Item = (u32, PathBuf, Vec<String>)> {
    zpm_host::procfs::all_stats()
        .unwrap_or_default()
        .into_iter()
        .filter(|s| s.alive() && s.pid != std::process::id())
        .map(|s| {
            let path = PathBuf::from(format!("/proc/{}", s.pid));
            (s.pid, path, zpm_host::procfs::cmdline(s.pid))
        })
}

pub fn marked_processes(marker: &str) -> Vec<u32> {
    let mut found: Vec<u32> = live_processes()
        .filter(|(_, _, argv)| argv.iter().any(|a| a.contains(marker)))
        .map(|(pid, _, _)| pid)
        .collect();
    found.sort_unstable();
    found
}

/// Live `zpm daemon` / `zpm agent ROLE` processes serving `home`.
pub fn zpm_processes(home: &Path, kind: &[&str]) -> Vec<u32> {
    let want_env = format!("ZPM_HOME={}", home.display());
    live_processes()
        .filter(|(_, _, argv)| {
            argv.len() > kind.len() && argv[1..=kind.len()] == *kind && argv[0].ends_with("zpm")
        })
        .filter(|(_, dir, _)| {
            let environ = std::fs::read(dir.join("environ")).unwrap_or_default();
            environ.split(|b| *b == 0).any(|e| e == want_env.as_bytes())
        })
        .map(|(pid, _, _)| pid)
        .collect()
}

pub fn status(row: &Value) -> &str {
    row["status"].as_str().unwrap_or("")
}

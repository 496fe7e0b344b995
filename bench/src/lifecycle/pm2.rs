//! The same scenarios against PM2 (`pm2` from npm), in its own temporary PM2_HOME.

use super::procfs::{CPU_WINDOW, cpu_percent, pss_mb, rss_mb};
use super::timing::{median_ms, poll, stdout, timed};
use super::zpm::sleepers_file;
use anyhow::Context as _;
use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(120);

pub struct Pm2 {
    pub version: String,
    home: tempfile::TempDir,
}

impl Drop for Pm2 {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill"]).output();
    }
}

/// PM2's daemon-side scripts the kill -9 scenario needs: PM2's own API, polled as fast as
/// it answers, like zpm's in-process rpc client.
const CRASH_SCRIPT: &str = r"
const pm2 = require('pm2');
const list = () => new Promise((ok, fail) => pm2.list((e, l) => (e ? fail(e) : ok(l))));
const find = (l) => l.find((p) => p.name === 'victim');
(async () => {
  await new Promise((ok, fail) => pm2.connect((e) => (e ? fail(e) : ok())));
  const times = [];
  for (let i = 0; i < 20; i++) {
    let before;
    do { before = find(await list()); } while (!before || before.pm2_env.status !== 'online' || !before.pid);
    const t0 = process.hrtime.bigint();
    process.kill(before.pid, 'SIGKILL');
    for (;;) {
      const now = find(await list());
      if (now && now.pid && now.pid !== before.pid && now.pm2_env.status === 'online') break;
    }
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  console.log(JSON.stringify(times));
  pm2.disconnect();
})().catch((e) => { console.error(e); process.exit(1); });
";

impl Pm2 {
    /// PM2 if `pm2` runs here.
    pub fn find() -> Option<Self> {
        let home = tempfile::Builder::new().prefix("pm2b").tempdir().ok()?;
        let out = Command::new("pm2")
            .arg("--version")
            .env("PM2_HOME", home.path())
            .output()
            .ok()?;
        let version = String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()?
            .trim()
            .to_owned();
        (out.status.success() && !version.is_empty()).then_some(Self { version, home })
    }

    pub(crate) fn cmd(&self, args: &[&str]) -> Command {
        let mut command = Command::new("pm2");
        command
            .args(args)
            .env("PM2_HOME", self.home.path())
            .current_dir(self.home.path());
        command
    }

    fn daemon_pid(&self) -> anyhow::Result<u32> {
        let text =
            std::fs::read_to_string(self.home.path().join("pm2.pid")).context("reading pm2.pid")?;
        text.trim().parse().context("parsing pm2.pid")
    }

    /// PM2's temporary home (PM2_HOME, and the working directory of its commands).
    pub(crate) fn home(&self) -> &std::path::Path {
        self.home.path()
    }

    /// The rows of `pm2 jlist`.
    pub(crate) fn jlist(&self) -> anyhow::Result<Vec<serde_json::Value>> {
        let text = stdout(&mut self.cmd(&["jlist"]))?;
        // A freshly spawned daemon prints "[PM2] …" banners before the JSON line.
        text.lines()
            .rev()
            .find_map(|line| serde_json::from_str(line).ok())
            .context("no JSON array in pm2 jlist output")
    }

    pub fn online(&self) -> anyhow::Result<usize> {
        let rows = self.jlist()?;
        Ok(rows
            .iter()
            .filter(|r| r["pm2_env"]["status"] == "online")
            .count())
    }

    pub(crate) fn wait_online(&self, n: usize) -> anyhow::Result<()> {
        poll(&format!("{n} PM2 apps online"), LIMIT, || {
            Ok((self.online()? == n).then_some(()))
        })
    }

    /// Figures by metric name, matching zpm's.
    pub fn measure(&self) -> anyhow::Result<HashMap<String, f64>> {
        let mut figures = HashMap::new();
        timed(&mut self.cmd(&["ping"]))?;
        let daemon = self.daemon_pid()?;
        figures.insert("RSS idle, daemon processes".into(), rss_mb(daemon));
        figures.insert("PSS idle, daemon processes".into(), pss_mb(daemon));
        let pings = (0..10)
            .map(|_| timed(&mut self.cmd(&["ping"])))
            .collect::<anyhow::Result<Vec<_>>>()?;
        figures.insert("ping (CLI wall time)".into(), median_ms(pings));

        let eco50 = sleepers_file(self.home.path(), 50)?;
        timed(&mut self.cmd(&["start", &eco50.display().to_string()]))?;
        self.wait_online(50)?;
        let lists = (0..10)
            .map(|_| timed(&mut self.cmd(&["jlist"])))
            .collect::<anyhow::Result<Vec<_>>>()?;
        figures.insert("ls --json, 50 apps".into(), median_ms(lists));
        figures.insert("RSS with 50 apps, daemon processes".into(), rss_mb(daemon));
        figures.insert(
            "daemon processes cpu, 50 idle apps".into(),
            cpu_percent(&[daemon], CPU_WINDOW),
        );
        timed(&mut self.cmd(&["delete", "all"]))?;

        let eco100 = sleepers_file(self.home.path(), 100)?;
        let started = Instant::now();
        timed(&mut self.cmd(&["start", &eco100.display().to_string()]))?;
        self.wait_online(100)?;
        figures.insert(
            "start 100 apps until all online".into(),
            started.elapsed().as_secs_f64() * 1000.0,
        );
        let deleted = timed(&mut self.cmd(&["delete", "all"]))?;
        figures.insert(
            "delete all (100 apps)".into(),
            deleted.as_secs_f64() * 1000.0,
        );
        figures.insert("kill -9 → new pid online".into(), self.crash_to_online()?);
        Ok(figures)
    }

    /// The `zpm-bench logs` scenarios against PM2 (its default log files).
    pub fn measure_logs(
        &self,
        million: &[u8],
        flood_len: u64,
    ) -> anyhow::Result<HashMap<String, f64>> {
        let mut figures = HashMap::new();
        timed(&mut self.cmd(&["ping"]))?;
        let seq = super::zpm::which("seq")?.display().to_string();
        let logs = self.home.path().join("logs");
        let start =
            |name: &str, n: &str| timed(&mut self.cmd(&super::logs::seq_app(&seq, name, n)));
        let wait = |name: &str, len: u64| {
            super::logs::wait_len(&logs.join(format!("{name}-out.log")), len, || {}).map(drop)
        };
        let started = Instant::now();
        start("m1", "1000000")?;
        wait("m1", million.len() as u64)?;
        figures.insert(
            "1M lines: start → all on disk".into(),
            started.elapsed().as_secs_f64() * 1000.0,
        );
        let started = Instant::now();
        start("m10", "10000000")?;
        wait("m10", flood_len)?;
        figures.insert(
            "10M lines: start → all on disk".into(),
            started.elapsed().as_secs_f64() * 1000.0,
        );
        let tails = (0..5)
            .map(|_| timed(&mut self.cmd(&["logs", "m1", "--lines", "1000", "--nostream"])))
            .collect::<anyhow::Result<Vec<_>>>()?;
        figures.insert("logs --lines 1000 --nostream".into(), median_ms(tails));
        Ok(figures)
    }

    fn crash_to_online(&self) -> anyhow::Result<f64> {
        // PM2's CLI has no --min-uptime: use its ecosystem keys, so 20 quick kills are not
        // counted as unstable restarts (zpm's victim gets --min-uptime 0 too).
        let sleep = super::zpm::which("sleep")?;
        let victim = serde_json::json!({"apps": [{"name": "victim", "script": sleep, "args": "1000",
            "interpreter": "none", "min_uptime": 0, "max_restarts": 1000}]});
        let eco = self.home.path().join("victim.json");
        std::fs::write(&eco, victim.to_string()).context("writing victim.json")?;
        timed(&mut self.cmd(&["start", &eco.display().to_string()]))?;
        let script = self.home.path().join("crash.js");
        std::fs::write(&script, CRASH_SCRIPT).context("writing crash.js")?;
        let node_path = stdout(Command::new("npm").args(["root", "-g"]))?;
        let out = stdout(
            Command::new("node")
                .arg(&script)
                .env("PM2_HOME", self.home.path())
                .env("NODE_PATH", node_path.trim()),
        )?;
        let times: Vec<f64> = serde_json::from_str(out.lines().last().unwrap_or("[]"))
            .context("parsing crash.js output")?;
        let mut samples: Vec<Duration> = times
            .iter()
            .map(|ms| Duration::from_secs_f64(ms / 1000.0))
            .collect();
        samples.sort_unstable();
        Ok(median_ms(samples))
    }
}

impl Pm2 {
    /// SIGKILL PM2's daemon with 3 apps running: what happens to them, and what `pm2 ls`
    /// (which starts a new daemon) shows.
    pub fn god_kill(&self) -> anyhow::Result<String> {
        let marker = format!("pm2benchcrash{}", std::process::id());
        let apps: Vec<serde_json::Value> = (0..3)
            .map(|i| serde_json::json!({"name": format!("talk{i}"), "script": "/bin/sh", "interpreter": "none",
                "args": ["-c", "while true; do sleep 1; done", marker]}))
            .collect();
        let eco = self.home.path().join("crash.json");
        std::fs::write(&eco, serde_json::json!({ "apps": apps }).to_string())
            .context("writing crash.json")?;
        timed(&mut self.cmd(&["start", &eco.display().to_string()]))?;
        self.wait_online(3)?;
        let daemon = self.daemon_pid()?;
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(daemon.cast_signed()),
            nix::sys::signal::Signal::SIGKILL,
        )
        .context("kill -9 the PM2 daemon")?;
        std::thread::sleep(Duration::from_secs(1));
        let survivors = super::procfs::marked(&marker).len();
        let listed_after = self.online()?;
        let total_after = super::procfs::marked(&marker).len();
        for pid in super::procfs::marked(&marker) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid.cast_signed()),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        Ok(format!(
            "1 s after SIGKILL of the daemon {survivors} of 3 apps still run unmanaged; `pm2 ls` started a new daemon that lists {listed_after} online; {total_after} app processes exist (orphans it does not know)"
        ))
    }
}

//! The real multi-host test: God in one network namespace, a second host (`h2`: its
//! stand-in and agents) in another, the two joined only by a veth pair. A partition is the
//! link going down. Needs root and `ip` (iproute2); fails, saying so, without them.

use crate::harness::{Zpm, marked_processes, status, zpm_processes};
use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

/// God's port inside its namespace (a fresh namespace listens on nothing).
const PORT: u16 = 4750;
/// How long the link stays down: the scenario itself, not a synchronisation.
const PARTITION: Duration = Duration::from_secs(10);
/// Longest accepted time from link-up to God seeing h2 and its app again (target: 2 s).
const CONVERGED_WITHIN: Duration = Duration::from_secs(5);
const DEADLINE: Duration = Duration::from_secs(30);

fn need_root_and_ip() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the netns test creates network namespaces: run it as root"
    );
    let ip = Command::new("ip").arg("-V").output();
    assert!(
        ip.as_ref().is_ok_and(|out| out.status.success()),
        "the netns test needs `ip` (iproute2) on PATH: {ip:?}"
    );
}

/// Runs `ip ARGS`, asserting success.
fn ip(args: &[&str]) -> Output {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ip {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Two network namespaces joined by a veth pair, `10.X.Y.1/24` in `a` (God's side) and
/// `.2` in `b` (h2's), names and addresses taken from this process's pid. Dropping it (or
/// `remove`) SIGKILLs every process left in either namespace, by pid, then deletes both,
/// which deletes the veth pair.
struct Netns {
    a: String,
    b: String,
    veth_b: String,
    god_ip: String,
}

impl Netns {
    fn create() -> Self {
        let pid = std::process::id();
        let net = format!("10.{}.{}", (pid >> 8) & 0xff, pid & 0xff);
        let veth_a = format!("zva{pid}");
        let pair = Self {
            a: format!("zpmA{pid}"),
            b: format!("zpmB{pid}"),
            veth_b: format!("zvb{pid}"),
            god_ip: format!("{net}.1"),
        };
        ip(&["netns", "add", &pair.a]);
        ip(&["netns", "add", &pair.b]);
        ip(&[
            "link",
            "add",
            &veth_a,
            "netns",
            &pair.a,
            "type",
            "veth",
            "peer",
            "name",
            &pair.veth_b,
            "netns",
            &pair.b,
        ]);
        for (ns, veth, host) in [(&pair.a, &veth_a, 1), (&pair.b, &pair.veth_b, 2)] {
            ip(&[
                "-n",
                ns,
                "addr",
                "add",
                &format!("{net}.{host}/24"),
                "dev",
                veth,
            ]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
            ip(&["-n", ns, "link", "set", veth, "up"]);
        }
        pair
    }

    /// `program` run inside namespace `ns` (`ip netns exec` execs it: same pid).
    fn exec(ns: &str, program: &Path) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns]).arg(program);
        cmd
    }

    /// Takes h2's end of the link down or up.
    fn set_link(&self, up: bool) {
        let state = if up { "up" } else { "down" };
        ip(&["-n", &self.b, "link", "set", &self.veth_b, state]);
    }

    fn pids(ns: &str) -> Vec<i32> {
        let out = Command::new("ip").args(["netns", "pids", ns]).output();
        let text = out.map(|o| o.stdout).unwrap_or_default();
        let text = String::from_utf8_lossy(&text);
        text.split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }

    /// Kills what runs in the namespaces until nothing does, then deletes them.
    fn remove(&self) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left: Vec<i32> = [&self.a, &self.b]
                .into_iter()
                .flat_map(|ns| Self::pids(ns))
                .collect();
            if left.is_empty() || Instant::now() > deadline {
                break;
            }
            for pid in left {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        for ns in [&self.a, &self.b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        self.remove();
    }
}

/// Knocks from namespace `ns` on a closed port of `ip` until an answer (refused) comes
/// back: when the link carries packets again, which the kernel may delay after link-up.
fn network_back(ns: &str, ip: &str) -> std::thread::JoinHandle<Option<Instant>> {
    let netns = std::fs::File::open(format!("/run/netns/{ns}")).unwrap();
    let closed: std::net::SocketAddr = format!("{ip}:{}", PORT + 1).parse().unwrap();
    std::thread::spawn(move || {
        nix::sched::setns(netns, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let deadline = Instant::now() + DEADLINE;
        while Instant::now() < deadline {
            let knock = std::net::TcpStream::connect_timeout(&closed, Duration::from_millis(20));
            match knock.map_err(|e| e.kind()) {
                Ok(_) | Err(std::io::ErrorKind::ConnectionRefused) => return Some(Instant::now()),
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        None
    })
}

/// h2's stand-in, `zpm agent all --connect … --host h2`, in the foreground inside its
/// namespace. Dropping it sends SIGTERM (it stops its agents, the spawner its apps), and
/// SIGKILL if it has not exited within the deadline.
struct StandIn(Child);

impl StandIn {
    fn start(ns: &str, home: &Zpm, endpoint: &str, key: &Path) -> Self {
        let log = std::fs::File::create(home.path("standin.out")).unwrap();
        let child = Netns::exec(ns, &assert_cmd::cargo::cargo_bin("zpm"))
            .env("ZPM_HOME", home.home())
            .args(["agent", "all", "--connect", endpoint, "--key-file"])
            .arg(key)
            .args(["--host", "h2"])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        Self(child)
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.0.id().cast_signed());
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + DEADLINE;
        while Instant::now() < deadline {
            if !matches!(self.0.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// God in namespace A listening on its veth address with a key, and host h2 (its own
/// home, its stand-in) in namespace B. Dropped in field order: h2's stand-in (stopping its
/// agents and apps), h2's home, God's home (`zpm kill`), the namespaces (whatever is left).
struct Fleet {
    standin: StandIn,
    h2: Zpm,
    god: Zpm,
    net: Netns,
}

impl Fleet {
    fn start() -> Self {
        need_root_and_ip();
        let net = Netns::create();
        let god = Zpm::new();
        let key = god.path("fleet.key");
        god.ok(&["keygen", "--out", key.to_str().unwrap()]);
        let endpoint = format!("tcp://{}:{PORT}", net.god_ip);
        let config = format!(
            "listen = \"{endpoint}\"\nkey_file = \"{}\"\n",
            key.display()
        );
        std::fs::write(god.path("config.toml"), config).unwrap();
        // God launches from a CLI inside A, so it and its agents live in A; God's CLI
        // outside reaches it all the same (ipc is a path).
        let out = Netns::exec(&net.a, &assert_cmd::cargo::cargo_bin("zpm"))
            .env("ZPM_HOME", god.home())
            .args(["ping", "--json"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "starting God in {}: {}",
            net.a,
            String::from_utf8_lossy(&out.stderr)
        );
        let pong: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(pong["listening"], endpoint.as_str(), "{pong}");
        let h2 = Zpm::new();
        let standin = StandIn::start(&net.b, &h2, &endpoint, &key);
        let fleet = Self {
            standin,
            h2,
            god,
            net,
        };
        fleet.wait_for("h2's three agents connected", DEADLINE, || {
            (h2_agents_connected(&fleet.god) == 3).then_some(())
        });
        fleet
    }

    /// What God and h2 logged, for failure messages.
    fn report(&self) -> String {
        let read = |zpm: &Zpm, name: &str| {
            let text = std::fs::read_to_string(zpm.path(name)).unwrap_or_default();
            format!("--- {name}\n{text}\n")
        };
        let mut out = String::from("=== God's home\n");
        for name in ["daemon.log", "agent-spawner.log"] {
            out += &read(&self.god, name);
        }
        out += "=== h2's home\n";
        for name in [
            "standin.out",
            "daemon.log",
            "agent-spawner.log",
            "agent-logs.log",
            "agent-metrics.log",
        ] {
            out += &read(&self.h2, name);
        }
        out
    }

    /// Polls `probe` every 20 ms until it yields; after `within`, fails with the logs.
    fn wait_for<T>(&self, what: &str, within: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + within;
        loop {
            if let Some(found) = probe() {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "timed out ({within:?}) waiting for {what}\n{}",
                self.report()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops everything and checks that nothing of it is left.
    fn remove(self) {
        let Self {
            standin,
            h2,
            god,
            net,
        } = self;
        let marker = god.marker.clone();
        let homes = [god.home().to_path_buf(), h2.home().to_path_buf()];
        drop(standin);
        drop(h2);
        drop(god);
        net.remove();
        let listed = String::from_utf8(ip(&["netns", "list"]).stdout).unwrap();
        let names: Vec<&str> = listed.lines().filter_map(|l| l.split(' ').next()).collect();
        assert!(
            !names.contains(&net.a.as_str()) && !names.contains(&net.b.as_str()),
            "{listed}"
        );
        assert_eq!(marked_processes(&marker), Vec::<u32>::new());
        for home in homes {
            let left = zpm_processes(&home, &[]);
            assert_eq!(left, Vec::<u32>::new(), "{}", home.display());
        }
    }
}

/// The app's row in God's `ls` (one: a duplicate fails the test).
fn app_row(god: &Zpm) -> Value {
    let rows = god.ls();
    let mut far = rows.iter().filter(|r| r["name"] == "far");
    let row = far.next().unwrap().clone();
    assert!(far.next().is_none(), "far listed twice: {rows:#?}");
    row
}

/// How many of h2's agents God lists as connected.
fn h2_agents_connected(god: &Zpm) -> usize {
    let agents = god.json(&["agents"]);
    let agents = agents.as_array().unwrap();
    let connected = |a: &&Value| a["host"] == "h2" && a["connected"] == true;
    agents.iter().filter(connected).count()
}

/// The app's processes on this machine: those with the marker in their argv, but not the
/// children it forks (`sleep`, which carry its argv until they exec).
fn app_processes(marker: &str) -> Vec<u32> {
    let found = marked_processes(marker);
    let stats = zpm_host::procfs::all_stats().unwrap_or_default();
    let parent = |pid: u32| stats.iter().find(|s| s.pid == pid).map(|s| s.ppid);
    let forked = |pid: &u32| parent(*pid).is_some_and(|ppid| found.contains(&ppid));
    found.iter().copied().filter(|p| !forked(p)).collect()
}

/// The numbers of `line N` lines in `text` (complete lines only: a line being written is
/// left for the next read). Anything else in the text fails the test.
fn line_numbers(text: &str) -> Vec<u64> {
    let complete = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
    complete
        .lines()
        .map(|line| {
            line.strip_prefix("line ")
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("not an app line: {line:?}"))
        })
        .collect()
}

fn file_numbers(path: &Path) -> Vec<u64> {
    line_numbers(&std::fs::read_to_string(path).unwrap_or_default())
}

/// `numbers` is `first, first+1, …`: no gap, no duplicate.
fn assert_contiguous(what: &str, numbers: &[u64], first: u64) {
    for (i, n) in numbers.iter().enumerate() {
        let want = first + i as u64;
        assert_eq!(
            *n,
            want,
            "{what}: line {want} expected at position {i}, found {n} (around: {:?})",
            &numbers[i.saturating_sub(3)..(i + 3).min(numbers.len())]
        );
    }
}

/// Starts on h2 an app printing a numbered line every 10 ms; God's CLI sees it online
/// with its memory (h2's metrics agent) and its history (h2's logs agent). Its pid.
fn start_counter(fleet: &Fleet) -> u64 {
    let god = &fleet.god;
    let app = god.script(
        "count.sh",
        "#!/bin/sh\ni=0\nwhile true; do i=$((i+1)); echo \"line $i\"; sleep 0.01; done\n",
    );
    let app = app.to_str().unwrap();
    god.ok(&[
        "start",
        app,
        "--name",
        "far",
        "--host",
        "h2",
        "--",
        &god.marker,
    ]);
    let row = fleet.wait_for("far online on h2 with memory", DEADLINE, || {
        let row = app_row(god);
        let up = status(&row) == "online" && row["host"] == "h2";
        (up && row["memory"].as_u64() > Some(0)).then_some(row)
    });
    let pid = row["pid"].as_u64().unwrap();
    assert_eq!(app_processes(&god.marker), [u32::try_from(pid).unwrap()]);
    let log = fleet.h2.path("logs/far-out.log");
    fleet.wait_for("h2's log file has lines", DEADLINE, || {
        (file_numbers(&log).len() >= 20).then_some(())
    });
    assert!(!god.path("logs/far-out.log").exists());
    let shown = god.ok(&["logs", "far", "--lines", "10", "--nostream", "--raw"]);
    let shown = line_numbers(&shown);
    assert_eq!(shown.len(), 10, "{shown:?}");
    assert_contiguous("zpm logs --lines 10", &shown, shown[0]);
    pid
}

/// The line numbers written to h2's log file while the link was down, and when it came up.
struct Partition {
    lines: std::ops::RangeInclusive<u64>,
    up_at: Instant,
}

/// h2's end of the link down for [`PARTITION`]: God loses h2 (the app `unknown`), the
/// app goes on writing into h2's log file.
fn partition(fleet: &Fleet, log: &Path) -> Partition {
    let god = &fleet.god;
    let down_at = Instant::now();
    fleet.net.set_link(false);
    let last_before = *file_numbers(log).last().unwrap();
    fleet.wait_for("God shows far unknown", PARTITION, || {
        (status(&app_row(god)) == "unknown").then_some(())
    });
    fleet.wait_for("God shows h2's agents gone", PARTITION, || {
        (h2_agents_connected(god) == 0).then_some(())
    });
    let unknown_after = down_at.elapsed();
    let written = file_numbers(log).len();
    fleet.wait_for("far still writing on h2", PARTITION, || {
        (file_numbers(log).len() > written + 50).then_some(())
    });
    std::thread::sleep(PARTITION.saturating_sub(down_at.elapsed()));
    let last_during = *file_numbers(log).last().unwrap();
    fleet.net.set_link(true);
    let up_at = Instant::now();
    eprintln!(
        "netns: link down {:?}; far unknown and h2's agents gone after {unknown_after:?}; \
         lines {} to {last_during} written while down",
        up_at - down_at,
        last_before + 1
    );
    Partition {
        lines: last_before + 1..=last_during,
        up_at,
    }
}

/// After link-up: the same process online again, h2's agents connected, no second one,
/// within [`CONVERGED_WITHIN`].
fn converge(fleet: &Fleet, up_at: Instant, pid: u64) {
    let god = &fleet.god;
    let network = network_back(&fleet.net.b, &fleet.net.god_ip);
    let (took, row) = fleet.wait_for("far online with h2's agents again", DEADLINE, || {
        let row = app_row(god);
        let back = status(&row) == "online" && h2_agents_connected(god) == 3;
        back.then(|| (up_at.elapsed(), row))
    });
    let network = network.join().unwrap().map(|at| at - up_at);
    eprintln!(
        "netns: converged {took:?} after link-up (packets went through again after {network:?})"
    );
    assert_eq!(row["pid"].as_u64(), Some(pid), "far restarted: {row:#}");
    assert_eq!(row["restarts"], 0, "{row:#}\n{}", fleet.report());
    assert_eq!(
        app_processes(&god.marker),
        [u32::try_from(pid).unwrap()],
        "exactly one far process on the machine"
    );
    assert!(
        took <= CONVERGED_WITHIN,
        "God saw h2 and far again {took:?} after link-up (at most {CONVERGED_WITHIN:?})\n{}",
        fleet.report()
    );
}

/// Nothing lost or doubled in h2's log file, and God's `zpm logs` returns the lines
/// written during the partition. The whole file fits the tail (about 100 lines a second,
/// far below its 10,000 lines).
fn check_lines(fleet: &Fleet, log: &Path, during: &std::ops::RangeInclusive<u64>) {
    let in_file = file_numbers(log);
    assert_contiguous("h2's far-out.log", &in_file, 1);
    let shown = fleet
        .god
        .ok(&["logs", "far", "--lines", "10000", "--nostream", "--raw"]);
    let shown = line_numbers(&shown);
    let (first, last) = (shown[0], *shown.last().unwrap());
    assert_contiguous("zpm logs --lines 10000", &shown, first);
    assert!(
        first <= *during.start() && last >= *in_file.last().unwrap(),
        "zpm logs shows lines {first}..={last}; the file had 1..={} and lines {during:?} were \
         written while the link was down",
        in_file.last().unwrap(),
    );
}

#[test]
fn netns_an_app_on_a_second_host_survives_a_partition() {
    let fleet = Fleet::start();
    let pid = start_counter(&fleet);
    let log = fleet.h2.path("logs/far-out.log");
    let partition = partition(&fleet, &log);
    converge(&fleet, partition.up_at, pid);
    check_lines(&fleet, &log, &partition.lines);
    fleet.remove();
}

//! Hostile peers against the real daemon, over raw ZMTP written here byte by byte: floods
//! that never read, absurd frame headers, oversized and over-deep params, odd ids and plain
//! garbage, on God's rpc.sock and bus.sock and on the spawner's spawner.sock. After each,
//! God must be unharmed: same pids (God, spawner, app), the app never restarted and still
//! writing, `ping` answered promptly, and God's resident memory back near where it was.

use crate::harness::{DEADLINE, Zpm, poll, status, zpm_processes};
use serde::Serialize;
use serde_json::Value;
use std::io::{ErrorKind, Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub(crate) const MORE: u8 = 0x01;
pub(crate) const LONG: u8 = 0x02;
pub(crate) const COMMAND: u8 = 0x04;
/// God's RSS may end this far above where it started.
const RSS_SLACK_KB: u64 = 10 * 1024;
/// How long one blocking write to a guard may wait before the test calls it a hang.
const WRITE_STALL: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------
// Raw ZMTP 3.0, NULL mechanism, as a DEALER.

pub(crate) fn greeting() -> Vec<u8> {
    let mut g = vec![0u8; 64];
    g[0] = 0xFF;
    g[9] = 0x7F;
    g[10] = 3;
    g[11] = 0;
    g[12..16].copy_from_slice(b"NULL");
    g
}

/// One frame: flags, 1-byte size (or LONG + 8-byte size), body.
fn frame(flags: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 9);
    if body.len() > 255 {
        out.push(flags | LONG);
        out.extend_from_slice(&(body.len() as u64).to_be_bytes());
    } else {
        out.push(flags);
        out.push(body.len() as u8);
    }
    out.extend_from_slice(body);
    out
}

pub(crate) fn ready() -> Vec<u8> {
    let mut body = b"\x05READY\x0bSocket-Type".to_vec();
    body.extend_from_slice(&6u32.to_be_bytes());
    body.extend_from_slice(b"DEALER");
    frame(COMMAND, &body)
}

/// A one-frame message (what a DEALER sends).
pub(crate) fn message(payload: &[u8]) -> Vec<u8> {
    frame(0, payload)
}

pub(crate) fn is_closed(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::BrokenPipe | ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
    )
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// A blocking connection to a guarded endpoint.
struct Raw {
    stream: UnixStream,
    /// Bytes read and not yet parsed.
    pending: Vec<u8>,
    greeted: bool,
}

impl Raw {
    /// Connects without saying anything.
    fn connect(path: &Path) -> Self {
        let stream =
            UnixStream::connect(path).unwrap_or_else(|e| panic!("connect {}: {e}", path.display()));
        stream.set_write_timeout(Some(WRITE_STALL)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        Self {
            stream,
            pending: Vec::new(),
            greeted: false,
        }
    }

    /// Connects and sends the greeting and READY of a DEALER.
    fn dealer(path: &Path) -> Self {
        let mut raw = Self::connect(path);
        let mut hello = greeting();
        hello.extend(ready());
        raw.stream.write_all(&hello).unwrap();
        raw
    }

    fn send(&mut self, payload: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(&message(payload))
    }

    fn fill(&mut self, need: usize, deadline: Instant) -> std::io::Result<()> {
        let mut buf = [0u8; 16 * 1024];
        while self.pending.len() < need {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ErrorKind::TimedOut.into());
            }
            self.stream.set_read_timeout(Some(left))?;
            match self.stream.read(&mut buf)? {
                0 => return Err(ErrorKind::UnexpectedEof.into()),
                n => self.pending.extend_from_slice(&buf[..n]),
            }
        }
        Ok(())
    }

    fn take(&mut self, n: usize, deadline: Instant) -> std::io::Result<Vec<u8>> {
        self.fill(n, deadline)?;
        Ok(self.pending.drain(..n).collect())
    }

    /// The next message (its frames), skipping the server's greeting and commands.
    fn recv(&mut self, timeout: Duration) -> std::io::Result<Vec<Vec<u8>>> {
        let deadline = Instant::now() + timeout;
        if !self.greeted {
            let g = self.take(64, deadline)?;
            assert_eq!(
                (g[0], g[9], g[10]),
                (0xFF, 0x7F, 3),
                "server greeting {g:?}"
            );
            self.greeted = true;
        }
        let mut frames = Vec::new();
        loop {
            let flags = self.take(1, deadline)?[0];
            let size = if flags & LONG == 0 {
                u64::from(self.take(1, deadline)?[0])
            } else {
                let b = self.take(8, deadline)?;
                u64::from_be_bytes(b.try_into().unwrap())
            };
            assert!(
                size < 64 * 1024 * 1024,
                "server announced a {size}-byte frame"
            );
            let body = self.take(size as usize, deadline)?;
            if flags & COMMAND != 0 {
                continue;
            }
            frames.push(body);
            if flags & MORE == 0 {
                return Ok(frames);
            }
        }
    }

    /// The next reply on an rpc connection, as JSON.
    fn reply(&mut self, timeout: Duration) -> Value {
        let frames = self.recv(timeout).expect("an rpc reply");
        rmp_serde::from_slice(frames.last().unwrap()).unwrap()
    }

    /// Waits until the server has closed the connection, discarding whatever it sent.
    /// Returns how long that took from `since`, or `None` if it is still open at the deadline.
    fn closed_by(&mut self, since: Instant, deadline: Instant) -> Option<Duration> {
        let mut buf = [0u8; 16 * 1024];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.stream
                .set_read_timeout(Some(left.min(Duration::from_millis(200))))
                .unwrap();
            match self.stream.read(&mut buf) {
                Ok(0) => return Some(since.elapsed()),
                Ok(_) => {}
                Err(e) if is_closed(&e) => return Some(since.elapsed()),
                Err(e) if is_timeout(&e) || e.kind() == ErrorKind::Interrupted => {}
                Err(e) => panic!("unexpected read error: {e}"),
            }
        }
    }

    fn assert_closed_within(&mut self, since: Instant, limit: Duration, what: &str) -> Duration {
        self.closed_by(since, since + limit)
            .unwrap_or_else(|| panic!("{what}: connection still open after {limit:?}"))
    }
}

// ---------------------------------------------------------------------------------------
// msgpack payloads.

#[derive(Serialize)]
struct Request<'a, I, P> {
    v: u32,
    id: I,
    method: &'a str,
    params: P,
}

#[derive(Serialize)]
struct Notification<'a, P> {
    v: u32,
    method: &'a str,
    params: P,
}

pub(crate) fn request<I: Serialize, P: Serialize>(id: I, method: &str, params: P) -> Vec<u8> {
    rmp_serde::to_vec_named(&Request {
        v: 1,
        id,
        method,
        params,
    })
    .unwrap()
}

fn notification<P: Serialize>(method: &str, params: P) -> Vec<u8> {
    rmp_serde::to_vec_named(&Notification {
        v: 1,
        method,
        params,
    })
    .unwrap()
}

/// `bus.publish` of a well-formed event envelope whose body is `body`.
fn relay(topic: &str, body: &impl Serialize) -> Vec<u8> {
    let mut source = zpm_bus::EventSource::new("hostile", "test", 1);
    let payload = source.encode(topic, body).unwrap();
    notification(
        "bus.publish",
        zpm_bus::RelayEvent::new(topic, payload.to_vec()),
    )
}

/// A request `{v: 1, id, method, params}` whose params are the raw msgpack bytes given.
fn request_with_raw_params(id: u64, method: &str, params: &[u8]) -> Vec<u8> {
    let mut out = vec![0x84];
    for (key, value) in [
        ("v", rmp_serde::to_vec(&1u32).unwrap()),
        ("id", rmp_serde::to_vec(&id).unwrap()),
        ("method", rmp_serde::to_vec(method).unwrap()),
    ] {
        out.extend(rmp_serde::to_vec(key).unwrap());
        out.extend(value);
    }
    out.extend(rmp_serde::to_vec("params").unwrap());
    out.extend_from_slice(params);
    out
}

// ---------------------------------------------------------------------------------------
// The shared fixture: one daemon, one app that keeps writing.

fn rss_kb(pid: u32) -> u64 {
    zpm_host::procfs::rss_bytes(pid).unwrap() / 1024
}

/// `tid:state` of each of `pid`'s threads (R running, S sleeping…), for failure reports.
pub(crate) fn thread_states(pid: u32) -> String {
    let threads = zpm_host::procfs::threads(pid);
    if threads.is_empty() {
        return "gone".into();
    }
    threads
        .iter()
        .map(|(tid, name, state)| format!("{tid}:{name}:{state}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

fn one(found: &[u32], what: &str) -> u32 {
    assert_eq!(found.len(), 1, "exactly one {what}: {found:?}");
    found[0]
}

struct Fixture {
    zpm: Zpm,
    god: u32,
    spawner: u32,
    app: u64,
    counter: PathBuf,
    rss_start_kb: u64,
}

impl Fixture {
    fn start() -> Self {
        let zpm = Zpm::new();
        let counter = zpm.path("counter");
        let script = zpm.script(
            "talk.sh",
            "#!/bin/sh\ni=0\nwhile true; do echo \"line $i\"; echo $i >> \"$1\"; i=$((i+1)); sleep 0.05; done\n",
        );
        zpm.ok(&[
            "start",
            &script.display().to_string(),
            "--name",
            "talk",
            "--",
            &counter.display().to_string(),
            &zpm.marker,
        ]);
        zpm.wait_marked(1);
        let rows = zpm.wait_ls("talk online", |rows| {
            rows.len() == 1 && status(&rows[0]) == "online" && rows[0]["pid"].is_u64()
        });
        let app = rows[0]["pid"].as_u64().unwrap();
        let god = one(&zpm_processes(zpm.home(), &["daemon"]), "God");
        let spawner = one(&zpm_processes(zpm.home(), &["agent", "spawner"]), "spawner");
        let fixture = Self {
            zpm,
            god,
            spawner,
            app,
            counter,
            rss_start_kb: 0,
        };
        // A first raw connection to each endpoint, so the baseline includes what serving
        // any connection at all costs.
        fixture.ping_ms();
        eprintln!(
            "fixture in {}: God {god}, spawner {spawner}, app {app}",
            fixture.zpm.home().display()
        );
        let mut fixture = fixture;
        fixture.rss_start_kb = rss_kb(god);
        fixture
    }

    fn rpc(&self) -> PathBuf {
        self.zpm.path("rpc.sock")
    }

    fn bus(&self) -> PathBuf {
        self.zpm.path("bus.sock")
    }

    fn spawner_sock(&self) -> PathBuf {
        self.zpm.path("spawner.sock")
    }

    /// One `ping` on a fresh raw connection: milliseconds from connect to reply.
    fn ping_ms(&self) -> f64 {
        let started = Instant::now();
        let mut raw = Raw::dealer(&self.rpc());
        raw.send(&request(1u64, "ping", ())).unwrap();
        let frames = raw.recv(Duration::from_secs(5)).unwrap_or_else(|e| {
            panic!(
                "no reply to ping within 5 s ({e}); God's threads: {}\n{}",
                thread_states(self.god),
                self.zpm.daemon_logs()
            )
        });
        let reply: Value = rmp_serde::from_slice(frames.last().unwrap()).unwrap();
        let took = started.elapsed().as_secs_f64() * 1000.0;
        assert_eq!(reply["id"], 1, "{reply}");
        assert_eq!(reply["result"]["pid"], self.god, "{reply}");
        took
    }

    fn god_rss_kb(&self) -> u64 {
        rss_kb(self.god)
    }

    /// Everything that must hold after a hostile case.
    fn assert_unharmed(&self, case: &str) {
        let best = (0..3).map(|_| self.ping_ms()).fold(f64::INFINITY, f64::min);
        assert!(best < 100.0, "{case}: best of 3 pings took {best:.1} ms");
        assert_eq!(
            zpm_processes(self.zpm.home(), &["daemon"]),
            [self.god],
            "{case}: God's pid changed\n{}",
            self.zpm.daemon_logs()
        );
        assert_eq!(
            zpm_processes(self.zpm.home(), &["agent", "spawner"]),
            [self.spawner],
            "{case}: the spawner's pid changed\n{}",
            self.zpm.daemon_logs()
        );
        let rows = self.zpm.ls();
        let talk: Vec<&Value> = rows.iter().filter(|r| r["name"] == "talk").collect();
        assert_eq!(talk.len(), 1, "{case}: {rows:?}");
        assert_eq!(
            talk[0]["pid"], self.app,
            "{case}: app pid changed: {rows:?}"
        );
        assert_eq!(talk[0]["restarts"], 0, "{case}: app restarted: {rows:?}");
        assert_eq!(status(talk[0]), "online", "{case}: {rows:?}");
        let written = file_len(&self.counter);
        poll(&format!("{case}: the app keeps writing"), || {
            (file_len(&self.counter) > written).then_some(())
        });
        let deadline = Instant::now() + DEADLINE;
        let rss = loop {
            let rss = self.god_rss_kb();
            if rss <= self.rss_start_kb + RSS_SLACK_KB || Instant::now() >= deadline {
                break rss;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        eprintln!(
            "{case}: God RSS {} kB at start, {rss} kB after; best ping {best:.1} ms",
            self.rss_start_kb
        );
        assert!(
            rss <= self.rss_start_kb + RSS_SLACK_KB,
            "{case}: God's RSS stayed at {rss} kB, started at {} kB",
            self.rss_start_kb
        );
    }

    /// Cuts the guard logged in daemon.log (`peer cut off … reason=…`).
    fn cuts_logged(&self) -> Vec<String> {
        std::fs::read_to_string(self.zpm.path("daemon.log"))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("peer cut off"))
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Fixture {
    /// If God no longer answers (a wedged daemon would outlive `zpm kill`), kills what this
    /// test started, by pid: the spawner first, so that it does not relaunch God.
    fn drop(&mut self) {
        let answers = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut raw = Raw::dealer(&self.rpc());
            raw.send(&request(1u64, "ping", ())).ok()?;
            raw.recv(Duration::from_secs(3)).ok()
        }))
        .ok()
        .flatten()
        .is_some();
        if answers {
            return;
        }
        eprintln!(
            "God {} does not answer: killing spawner {}, God and app {}",
            self.god, self.spawner, self.app
        );
        for pid in [self.spawner, self.god, self.app as u32] {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid.cast_signed()),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// What a flood ended with.
#[derive(Debug)]
enum Flood {
    /// Every message was written; the connection is still open.
    AllWritten,
    /// The guard closed the connection after this many whole messages, this long after the
    /// first write.
    Cut(u64, Duration),
}

/// Writes `count` messages built by `make` in batches, never reading, until written or cut.
fn flood(raw: &mut Raw, count: u64, mut make: impl FnMut(u64) -> Vec<u8>) -> Flood {
    const BATCH: u64 = 500;
    let started = Instant::now();
    let mut sent = 0;
    let mut batch = Vec::new();
    while sent < count {
        batch.clear();
        let n = BATCH.min(count - sent);
        for i in sent..sent + n {
            batch.extend(message(&make(i)));
        }
        match raw.stream.write_all(&batch) {
            Ok(()) => sent += n,
            Err(e) if is_closed(&e) => return Flood::Cut(sent, started.elapsed()),
            Err(e) => panic!("flood write failed after {sent} messages (a hang?): {e}"),
        }
    }
    Flood::AllWritten
}

// ---------------------------------------------------------------------------------------
// The cases.

#[test]
fn rpc_clients_that_never_read_their_replies_are_cut_off() {
    let f = Fixture::start();

    let mut flooder = Raw::dealer(&f.rpc());
    let outcome = flood(&mut flooder, 105_000, |i| request(i, "ping", ()));
    let since = Instant::now();
    let cut = match outcome {
        Flood::Cut(sent, took) => {
            eprintln!("ping flooder cut after {sent} pings, {took:?}");
            took
        }
        Flood::AllWritten => flooder.assert_closed_within(since, DEADLINE, "ping flooder"),
    };
    eprintln!("ping flooder: connection closed {cut:?} after the flood started");
    f.assert_unharmed("after 105,000 unread pings");

    // A second client, sending until cut off (bounded: 2 million, or the test fails).
    let mut second = Raw::dealer(&f.rpc());
    match flood(&mut second, 2_000_000, |i| request(i, "ping", ())) {
        Flood::Cut(sent, took) => eprintln!("second flooder cut after {sent} pings, {took:?}"),
        Flood::AllWritten => panic!("2,000,000 unread pings and the client was never cut off"),
    }
    // A third one paced at about 5,000 pings a second, so that its requests do not pile
    // up in flight but its unread replies do.
    let mut paced = Raw::dealer(&f.rpc());
    let started = Instant::now();
    let mut sent = 0u64;
    let cut = loop {
        assert!(
            sent < 200_000 && started.elapsed() < DEADLINE,
            "{sent} paced unread pings in {:?} and the client was never cut off",
            started.elapsed()
        );
        match flood(&mut paced, 50, |i| request(sent + i, "ping", ())) {
            Flood::AllWritten => sent += 50,
            Flood::Cut(n, _) => break (sent + n, started.elapsed()),
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    eprintln!("paced flooder cut after {} pings, {:?}", cut.0, cut.1);
    let cuts = f.cuts_logged();
    assert!(cuts.len() >= 3, "three cuts logged: {cuts:#?}");
    eprintln!("cuts logged: {cuts:#?}");
    f.assert_unharmed("after a second unread ping flood");
    let pong = f.zpm.json(&["ping"]);
    assert_eq!(pong["pid"], f.god, "{pong}");
}

#[test]
fn bus_heartbeat_flood_and_relay_flood_do_not_stop_delivery_or_rpc() {
    let f = Fixture::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let endpoint = format!("ipc://{}", f.bus().display());
    let mut good = runtime
        .block_on(zpm_bus::Subscriber::connect(
            &endpoint,
            zpm_bus::SubscriberOptions {
                prefixes: vec!["process:".into()],
                ..zpm_bus::SubscriberOptions::default()
            },
        ))
        .unwrap();

    // Flooders hold their connections until `done`.
    let done = Arc::new(AtomicBool::new(false));
    let hold = |done: &AtomicBool| {
        let deadline = Instant::now() + DEADLINE * 2;
        while !done.load(Ordering::Relaxed) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let heartbeats = {
        let (bus, done) = (f.bus(), Arc::clone(&done));
        std::thread::spawn(move || {
            let mut raw = Raw::dealer(&bus);
            let beat = rmp_serde::to_vec_named(&serde_json::json!({"t": "heartbeat"})).unwrap();
            let outcome = flood(&mut raw, 110_000, |_| beat.clone());
            hold(&done);
            outcome
        })
    };
    let relays = {
        let (rpc, done) = (f.rpc(), Arc::clone(&done));
        std::thread::spawn(move || {
            let mut raw = Raw::dealer(&rpc);
            let outcome = flood(&mut raw, 10_000, |i| relay("hostile:flood", &i));
            hold(&done);
            outcome
        })
    };

    // While both flood: events of apps started and deleted reach the good subscriber.
    let sleeper = f.zpm.script("sleeper.sh", "#!/bin/sh\nexec sleep 1000\n");
    for round in 0..2 {
        let name = format!("extra{round}");
        f.zpm
            .ok(&["start", &sleeper.display().to_string(), "--name", &name]);
        expect_event(&runtime, &mut good, &name, "online");
        f.zpm.ok(&["delete", &name]);
        expect_event(&runtime, &mut good, &name, "delete");
        let best = (0..3).map(|_| f.ping_ms()).fold(f64::INFINITY, f64::min);
        eprintln!("round {round}: best ping during the floods {best:.1} ms");
    }
    done.store(true, Ordering::Relaxed);
    eprintln!("heartbeat flood: {:?}", heartbeats.join().unwrap());
    eprintln!("bus.publish flood: {:?}", relays.join().unwrap());
    let stats = good.stats();
    assert_eq!(stats.connections, 1, "the good subscriber never relinked");
    f.assert_unharmed("after heartbeat and bus.publish floods");
}

fn expect_event(
    runtime: &tokio::runtime::Runtime,
    sub: &mut zpm_bus::Subscriber,
    name: &str,
    event: &str,
) {
    let deadline = Instant::now() + DEADLINE;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "no process:event {event} for {name}; saw {seen:?}"
        );
        let got = runtime
            .block_on(sub.recv::<Value>(left.min(Duration::from_secs(1))))
            .unwrap();
        if let Some(e) = got {
            if e.topic == "process:event" && e.data["name"] == name && e.data["event"] == event {
                return;
            }
            seen.push((e.topic, e.data));
        }
    }
}

#[test]
fn absurd_frame_headers_are_cut_off_on_every_endpoint() {
    let f = Fixture::start();
    let sizes: [(u8, u64); 4] = [
        (LONG, 1 << 62),
        (LONG, 30 << 30),
        (LONG | MORE, u64::MAX),
        (LONG | COMMAND, 1 << 62),
    ];
    for endpoint in [f.rpc(), f.bus(), f.spawner_sock()] {
        for (flags, size) in sizes {
            for handshake in [true, false] {
                let mut raw = if handshake {
                    Raw::dealer(&endpoint)
                } else {
                    // The header straight after the greeting, before any READY.
                    let mut raw = Raw::connect(&endpoint);
                    raw.stream.write_all(&greeting()).unwrap();
                    raw
                };
                let mut header = vec![flags];
                header.extend_from_slice(&size.to_be_bytes());
                header.extend_from_slice(&[0xAB; 1024]);
                let since = Instant::now();
                // The guard may close before all of it is written.
                let _ = raw.stream.write_all(&header);
                let what = format!(
                    "{} frame flags {flags:#04x} size {size} (READY sent: {handshake})",
                    endpoint.display()
                );
                let took = raw.assert_closed_within(since, Duration::from_secs(5), &what);
                eprintln!("{what}: closed in {took:?}");
            }
        }
    }
    f.assert_unharmed("after absurd frame headers");
}

#[test]
fn memory_stays_bounded_under_a_stalled_subscriber_and_huge_requests() {
    let f = Fixture::start();
    // A subscriber that takes everything, with the largest credit, and never reads.
    let mut stalled = Raw::dealer(&f.bus());
    let subscribe = rmp_serde::to_vec_named(&serde_json::json!({
        "t": "subscribe", "v": 1, "prefixes": [""], "credit": 65_536,
    }))
    .unwrap();
    stalled.send(&subscribe).unwrap();

    // 500 events of 1 MB relayed through God.
    let big = relay("hostile:big", &zpm_rpc::Value::Binary(vec![0x5A; 1 << 20]));
    let mut publisher = Raw::dealer(&f.rpc());
    let (mut peak, mut cuts, mut sent) = (f.god_rss_kb(), 0, 0);
    let started = Instant::now();
    while sent < 500 {
        match publisher.send(&big) {
            Ok(()) => sent += 1,
            Err(e) if is_closed(&e) => {
                cuts += 1;
                assert!(cuts < 50, "the publisher was cut off {cuts} times");
                publisher = Raw::dealer(&f.rpc());
            }
            Err(e) => panic!("relay write failed after {sent} events (a hang?): {e}"),
        }
        if sent % 25 == 0 {
            peak = peak.max(f.god_rss_kb());
        }
    }
    // All of it reached God: a ping behind it on the same connection is answered.
    publisher.send(&request(77u64, "ping", ())).unwrap();
    let reply = publisher.reply(DEADLINE);
    assert_eq!(reply["id"], 77, "{reply}");
    peak = peak.max(f.god_rss_kb());
    eprintln!(
        "500 x 1 MB relayed in {:?} ({cuts} cuts); God RSS start {} kB, peak {peak} kB, \
         with the stalled subscriber connected {} kB",
        started.elapsed(),
        f.rss_start_kb,
        f.god_rss_kb()
    );
    // While it stays connected God may hold up to its byte window (8 MB) for it.
    let connected = f.god_rss_kb();
    assert!(
        connected <= f.rss_start_kb + RSS_SLACK_KB + 8 * 1024,
        "with the stalled subscriber connected God's RSS is {connected} kB, started at {} kB",
        f.rss_start_kb
    );
    eprintln!("cuts logged so far: {:#?}", f.cuts_logged());
    drop(stalled);
    f.assert_unharmed("500 x 1 MB events, stalled subscriber gone");

    // 4 million small integers: under the size cap, over the values cap.
    // Sent five times: what God keeps afterwards must not grow with each.
    let mut raw = Raw::dealer(&f.rpc());
    let params = rmp_serde::to_vec(&vec![1u8; 4_000_000]).unwrap();
    let payload = request_with_raw_params(4242, "ping", &params);
    assert!(payload.len() < 8 << 20);
    let mut after_each = Vec::new();
    for _ in 0..5 {
        raw.send(&payload).unwrap();
        let reply = raw.reply(DEADLINE);
        assert_eq!(reply["id"], 4242, "{reply}");
        assert_eq!(reply["error"]["code"], "bad_params", "{reply}");
        let message = reply["error"]["message"].as_str().unwrap();
        assert!(message.contains("262144"), "{message}");
        after_each.push(f.god_rss_kb());
    }
    eprintln!("God RSS (kB) after each 4M-value request: {after_each:?}");

    // A 200 MB frame: announced, a little sent, cut off without God reading the rest.
    let mut raw = Raw::dealer(&f.rpc());
    let mut header = vec![LONG];
    header.extend_from_slice(&200_000_000u64.to_be_bytes());
    header.extend(vec![0u8; 64 * 1024]);
    let since = Instant::now();
    let _ = raw.stream.write_all(&header);
    let took = raw.assert_closed_within(since, Duration::from_secs(5), "200 MB frame");
    eprintln!("200 MB frame: closed in {took:?}");
    f.assert_unharmed("after 4M-value params and a 200 MB frame");
}

#[test]
fn any_scalar_id_is_echoed_even_on_errors() {
    let f = Fixture::start();
    let mut raw = Raw::dealer(&f.rpc());
    raw.send(&request("abc", "ping", ())).unwrap();
    let reply = raw.reply(DEADLINE);
    assert_eq!(reply["id"], "abc", "{reply}");
    assert_eq!(reply["result"]["pid"], f.god, "{reply}");

    for id in [
        serde_json::json!(-3),
        serde_json::json!(2.5),
        serde_json::json!(true),
    ] {
        raw.send(&request(&id, "ping", ())).unwrap();
        let reply = raw.reply(DEADLINE);
        assert_eq!(reply["id"], id, "{reply}");
        assert_eq!(reply["result"]["pid"], f.god, "{reply}");
    }

    // params nested 40 deep.
    let mut nested = vec![0x91; 40];
    nested.push(0xC0);
    raw.send(&request_with_raw_params(7, "ping", &nested))
        .unwrap();
    let reply = raw.reply(DEADLINE);
    assert_eq!(reply["id"], 7, "{reply}");
    assert_eq!(reply["error"]["code"], "bad_params", "{reply}");
    let message = reply["error"]["message"].as_str().unwrap();
    assert!(message.contains("32"), "{message}");

    // The same connection still serves.
    raw.send(&request("after", "ping", ())).unwrap();
    assert_eq!(raw.reply(DEADLINE)["id"], "after");
    f.assert_unharmed("after odd ids and deep params");
}

#[test]
fn garbage_and_silent_peers_are_cut_off() {
    let f = Fixture::start();
    // Sits there saying nothing; and one that stops after a greeting.
    let silent_since = Instant::now();
    let mut silent = Raw::connect(&f.rpc());
    let mut greeted = Raw::connect(&f.bus());
    greeted.stream.write_all(&greeting()).unwrap();

    let mut noise = Vec::with_capacity(4096);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..4096 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        noise.push((x >> 32) as u8);
    }
    noise[0] = 0x17; // not 0xFF: never a greeting
    for endpoint in [f.rpc(), f.bus(), f.spawner_sock()] {
        for (what, bytes) in [
            ("HTTP", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()),
            ("random bytes", noise.clone()),
        ] {
            let mut raw = Raw::connect(&endpoint);
            let since = Instant::now();
            let _ = raw.stream.write_all(&bytes);
            let what = format!("{what} on {}", endpoint.display());
            let took = raw.assert_closed_within(since, Duration::from_secs(5), &what);
            eprintln!("{what}: closed in {took:?}");
        }
    }
    f.assert_unharmed("with a silent peer connected, after garbage");

    // The handshake deadline (5 s) cuts both silent peers.
    let took = silent.assert_closed_within(silent_since, Duration::from_secs(15), "silent peer");
    eprintln!("silent peer: closed {took:?} after connecting");
    let took = greeted.assert_closed_within(silent_since, Duration::from_secs(15), "greeting only");
    eprintln!("greeting-only peer: closed {took:?} after connecting");
    assert!(
        took >= Duration::from_secs(4),
        "cut before the deadline: {took:?}"
    );
}

//! Hostile peers against God's TCP port, where only the keyed tunnel listens: garbage and
//! cleartext ZMTP instead of a handshake, a silent peer, a thousand abandoned connections,
//! a wrong key, replayed frames — and, past a valid handshake, bytes the frame guard behind
//! the tunnel must refuse (a 2^62-byte frame header, msgpack that is not ZMTP).
//!
//! During and after each, a legitimate client is answered within 100 ms over ipc and
//! through the tunnel, God keeps its pid, and `ping`'s counters say exactly what happened.

use crate::harness::{DEADLINE, poll, zpm_processes};
use crate::hostile::{
    COMMAND, LONG, MORE, greeting, is_closed, message, ready, request, thread_states,
};
use crate::remote::ListeningGod;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpStream, UnixStream};
use tokio::runtime::Runtime;
use tokio::time::error::Elapsed;
use zpm_proto::method::{agent, god};
use zpm_rpc::NoParams;
use zpm_tunnel::{Key, Sealed};

/// A legitimate round trip must take less than this (the best of [`TRIES`]).
const PROMPT: Duration = Duration::from_millis(100);
const TRIES: usize = 3;
/// What the fresh clients of [`Rig::assert_unharmed`] add to `tcp.connections`…
const FRESH_TCP: u64 = TRIES as u64;
/// …and to `rpc.connections` (one through the tunnel and one over ipc per try).
const FRESH_RPC: u64 = 2 * TRIES as u64;
/// Longer than this without an answer, God is called wedged.
const ANSWER: Duration = Duration::from_secs(5);
/// A refused peer is cut well before the 5 s handshake deadline.
const AT_ONCE: Duration = Duration::from_secs(3);
/// A new client's connect and handshake: at once, never queued behind other peers.
const GETS_IN: Duration = Duration::from_secs(1);
/// The tunnel's handshake deadline (zpm_tunnel::HandshakeLimits::default).
const HANDSHAKE_DEADLINE: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------------------
// A DEALER speaking ZMTP by hand, over ipc or through the tunnel.

/// A byte stream a DEALER can talk over.
trait Wire {
    async fn put(&mut self, bytes: &[u8]) -> std::io::Result<()>;
    /// Appends what arrives to `into`; `false` at the end of the stream.
    async fn get(&mut self, into: &mut Vec<u8>) -> std::io::Result<bool>;
}

impl Wire for UnixStream {
    async fn put(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.write_all(bytes).await
    }

    async fn get(&mut self, into: &mut Vec<u8>) -> std::io::Result<bool> {
        Ok(self.read_buf(into).await? > 0)
    }
}

impl Wire for Sealed<TcpStream> {
    async fn put(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.send(bytes).await.map_err(std::io::Error::other)
    }

    async fn get(&mut self, into: &mut Vec<u8>) -> std::io::Result<bool> {
        self.recv(into).await.map_err(std::io::Error::other)
    }
}

/// A tunnel connection past its handshake with the cipher in hand: every frame written is
/// sealed here and kept, so that it can be replayed.
struct RawTunnel {
    tcp: TcpStream,
    noise: snow::TransportState,
    /// Sealed bytes read and not yet opened.
    sealed: Vec<u8>,
    /// Every frame written, as it went on the wire.
    sent: Vec<Vec<u8>>,
}

impl RawTunnel {
    async fn connect(addr: &str, key: &Key) -> Self {
        let (tcp, noise) = zpm_tunnel::connect(addr, key, "rpc")
            .await
            .unwrap()
            .into_parts();
        Self {
            tcp,
            noise,
            sealed: Vec::new(),
            sent: Vec::new(),
        }
    }
}

impl Wire for RawTunnel {
    async fn put(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let mut frame = Vec::new();
        zpm_tunnel::seal::seal(&mut self.noise, bytes, &mut frame).unwrap();
        self.tcp.write_all(&frame).await?;
        self.sent.push(frame);
        Ok(())
    }

    async fn get(&mut self, into: &mut Vec<u8>) -> std::io::Result<bool> {
        loop {
            let opened = zpm_tunnel::seal::unseal(&mut self.noise, &self.sealed, into)
                .map_err(std::io::Error::other)?;
            if let Some(used) = opened {
                self.sealed.drain(..used);
                return Ok(true);
            }
            if self.tcp.read_buf(&mut self.sealed).await? == 0 {
                return Ok(false);
            }
        }
    }
}

/// The frame at the start of `bytes`, if it is whole: flags, body, bytes it takes.
fn whole_frame(bytes: &[u8]) -> Option<(u8, &[u8], usize)> {
    let flags = *bytes.first()?;
    let (size, head) = if flags & LONG == 0 {
        (u64::from(*bytes.get(1)?), 2)
    } else {
        (u64::from_be_bytes(bytes.get(1..9)?.try_into().ok()?), 9)
    };
    assert!(size < 64 << 20, "the server announced a {size}-byte frame");
    let end = head + size as usize;
    Some((flags, bytes.get(head..end)?, end))
}

struct Dealer<W> {
    wire: W,
    /// Bytes from the server not yet parsed.
    inbox: Vec<u8>,
    greeted: bool,
}

impl<W: Wire> Dealer<W> {
    /// Sends the greeting and READY of a DEALER on `wire`.
    async fn open(mut wire: W) -> std::io::Result<Self> {
        let mut hello = greeting();
        hello.extend(ready());
        wire.put(&hello).await?;
        Ok(Self {
            wire,
            inbox: Vec::new(),
            greeted: false,
        })
    }

    /// The next whole message in the inbox (its frames), past the greeting and commands.
    fn next_message(&mut self) -> Option<Vec<Vec<u8>>> {
        if !self.greeted {
            let g = self.inbox.get(..64)?;
            assert_eq!(
                (g[0], g[9], g[10]),
                (0xFF, 0x7F, 3),
                "server greeting {g:?}"
            );
            self.inbox.drain(..64);
            self.greeted = true;
        }
        let (mut at, mut frames) = (0, Vec::new());
        loop {
            let (flags, body, len) = whole_frame(&self.inbox[at..])?;
            at += len;
            if flags & COMMAND != 0 {
                continue;
            }
            frames.push(body.to_vec());
            if flags & MORE == 0 {
                self.inbox.drain(..at);
                return Some(frames);
            }
        }
    }

    /// Sends `ping` with `id` and returns its reply.
    async fn ping(&mut self, id: u64) -> std::io::Result<Value> {
        self.wire.put(&message(&request(id, "ping", ()))).await?;
        loop {
            while let Some(frames) = self.next_message() {
                let reply: Value = rmp_serde::from_slice(frames.last().unwrap()).unwrap();
                if reply["id"] == id {
                    return Ok(reply);
                }
            }
            if !self.wire.get(&mut self.inbox).await? {
                return Err(ErrorKind::UnexpectedEof.into());
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Hostile bytes.

/// xorshift64: the same "random" bytes on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| (self.next() >> 32) as u8).collect()
    }
}

/// A valid msgpack document of random integers, strings, binaries and maps.
fn random_msgpack(rng: &mut Rng, items: usize) -> Vec<u8> {
    use zpm_rpc::Value as V;
    let item = |rng: &mut Rng| match rng.next() % 4 {
        0 => V::from(rng.next().cast_signed()),
        1 => V::from(format!("{:x}", rng.next())),
        2 => {
            let len = (rng.next() % 300) as usize;
            V::Binary(rng.bytes(len))
        }
        _ => V::Map(vec![(V::from("id"), V::from(rng.next()))]),
    };
    let doc = V::Array((0..items).map(|_| item(rng)).collect());
    rmp_serde::to_vec(&doc).unwrap()
}

/// A greeting, then a frame header announcing 2^62 bytes (and a little of them).
fn huge_frame_after(before: Vec<u8>, flags: u8) -> Vec<u8> {
    let mut bytes = greeting();
    bytes.extend(before);
    bytes.push(flags);
    bytes.extend_from_slice(&(1u64 << 62).to_be_bytes());
    bytes.extend_from_slice(&[0xAB; 1024]);
    bytes
}

// ---------------------------------------------------------------------------------------
// The fixture: a listening God, and a legitimate user of it over ipc and through the tunnel.

/// `ping`'s `guards`: endpoint (`tcp`, `rpc`, `bus`) → counter → value.
type Counters = BTreeMap<String, BTreeMap<String, u64>>;

fn counter(counters: &Counters, name: &str) -> u64 {
    let (endpoint, name) = name.split_once('.').unwrap();
    *counters
        .get(endpoint)
        .and_then(|c| c.get(name))
        .unwrap_or_else(|| panic!("no counter {endpoint}.{name} in {counters:?}"))
}

/// The counters that differ from `before` + `moved` (name → (expected, found)).
fn unexpected(
    before: &Counters,
    after: &Counters,
    moved: &[(&str, u64)],
) -> BTreeMap<String, (u64, u64)> {
    for (name, _) in moved {
        counter(before, name);
    }
    let mut wrong = BTreeMap::new();
    for (endpoint, names) in after {
        for (name, &found) in names {
            let full = format!("{endpoint}.{name}");
            let delta: u64 = moved.iter().filter(|(n, _)| *n == full).map(|m| m.1).sum();
            let expected = counter(before, &full) + delta;
            if found != expected {
                wrong.insert(full, (expected, found));
            }
        }
    }
    wrong
}

fn assert_exact(before: &Counters, after: &Counters, moved: &[(&str, u64)], case: &str) {
    let wrong = unexpected(before, after, moved);
    assert!(
        wrong.is_empty(),
        "{case}: counters (expected, found) {wrong:?}\nbefore {before:?}\nafter {after:?}"
    );
}

fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

/// `future`, given up after `limit` (a timer made inside the runtime that runs it).
async fn timed<F: Future>(limit: Duration, future: F) -> Result<F::Output, Elapsed> {
    tokio::time::timeout(limit, future).await
}

/// How long a new client took to connect (through the tunnel: and complete the Noise
/// handshake, CPU-bound in a debug build), then to greet and have its first ping answered.
#[derive(Debug, Clone, Copy)]
struct Fresh {
    connect: Duration,
    ping: Duration,
}

async fn greet_and_ping<W: Wire>(
    wire: W,
    id: u64,
    connect: Duration,
) -> std::io::Result<(Value, Fresh)> {
    let started = Instant::now();
    let reply = Dealer::open(wire).await?.ping(id).await?;
    let ping = started.elapsed();
    Ok((reply, Fresh { connect, ping }))
}

fn best(times: impl IntoIterator<Item = Duration>) -> Duration {
    times.into_iter().min().unwrap()
}

struct Rig {
    god: ListeningGod,
    pid: u32,
    /// `127.0.0.1:PORT`.
    addr: String,
    key: Key,
    /// Connected before any attack and kept through it.
    ipc: zpm_rpc::Client,
    /// Through a bridge, as real clients (`zpm tunnel`, the agents) are: it keeps the
    /// connection alive while the test is busy elsewhere.
    tunnel: Dealer<UnixStream>,
    next_id: u64,
    /// Last: what is above may need it to close.
    rt: Runtime,
}

impl Rig {
    fn start() -> Self {
        Self::on(ListeningGod::start())
    }

    fn on(god: ListeningGod) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let key = Key::load(&god.key).unwrap();
        let addr = god.endpoint.strip_prefix("tcp://").unwrap().to_owned();
        let ipc = {
            let _in = rt.enter();
            zpm_rpc::Client::new(&format!("ipc://{}", god.zpm.path("rpc.sock").display()))
        };
        let pong = rt
            .block_on(ipc.call_method::<god::Ping>(&NoParams {}, ANSWER))
            .unwrap();
        // The agents' own connections come first, so that counters move only for us.
        poll("every agent connected", || {
            let agents = rt
                .block_on(ipc.call_method::<agent::List>(&NoParams {}, ANSWER))
                .unwrap();
            let connected = agents.iter().filter(|a| a.connected).count();
            (connected == zpm_proto::Role::ALL.len()).then_some(())
        });
        let tunnel = rt
            .block_on(async {
                let sealed = zpm_tunnel::connect(&addr, &key, "rpc").await.unwrap();
                let (ours, bridged) = UnixStream::pair().unwrap();
                let liveness = zpm_tunnel::Liveness::default();
                tokio::spawn(zpm_tunnel::bridge(sealed, bridged, liveness));
                Dealer::open(ours).await
            })
            .unwrap();
        let mut rig = Self {
            god,
            pid: pong.pid,
            addr,
            key,
            ipc,
            tunnel,
            next_id: 1,
            rt,
        };
        rig.assert_answering("before any attack");
        rig
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Fails the test with what tells a wedged God from a slow one.
    fn wedged(&self, when: &str, what: &str, error: &dyn std::fmt::Display) -> ! {
        panic!(
            "{when}: {what} got no answer ({error}); God's threads: {}\n{}",
            thread_states(self.pid),
            self.god.zpm.daemon_logs()
        )
    }

    fn pong(&self, when: &str) -> zpm_proto::Pong {
        self.rt
            .block_on(self.ipc.call_method::<god::Ping>(&NoParams {}, ANSWER))
            .unwrap_or_else(|e| self.wedged(when, "ping over ipc", &e))
    }

    fn counters(&self) -> Counters {
        self.pong("reading the counters").guards
    }

    /// A round trip on the connection opened before the attack.
    fn ipc_ping(&self, when: &str) -> Duration {
        let started = Instant::now();
        let pong = self.pong(when);
        let took = started.elapsed();
        assert_eq!(pong.pid, self.pid, "{when}: another God answers: {pong:?}");
        took
    }

    /// A round trip through the tunnel opened before the attack.
    fn tunnel_ping(&mut self, when: &str) -> Duration {
        let id = self.id();
        let started = Instant::now();
        let reply = self.rt.block_on(timed(ANSWER, self.tunnel.ping(id)));
        let took = started.elapsed();
        let reply = match reply {
            Ok(Ok(reply)) => reply,
            Ok(Err(e)) => self.wedged(when, "ping through the tunnel", &e),
            Err(e) => self.wedged(when, "ping through the tunnel", &e),
        };
        assert_eq!(reply["result"]["pid"], self.pid, "{when}: {reply}");
        took
    }

    /// A new client over ipc or (`tunnel`) through the tunnel: connects, greets, pings.
    fn fresh_client(&mut self, when: &str, tunnel: bool) -> Fresh {
        let id = self.id();
        let rpc = self.god.zpm.path("rpc.sock");
        let (addr, key) = (&self.addr, &self.key);
        let outcome = self.rt.block_on(timed(ANSWER, async {
            let started = Instant::now();
            if tunnel {
                let sealed = zpm_tunnel::connect(addr, key, "rpc")
                    .await
                    .map_err(std::io::Error::other)?;
                greet_and_ping(sealed, id, started.elapsed()).await
            } else {
                let stream = UnixStream::connect(&rpc).await?;
                greet_and_ping(stream, id, started.elapsed()).await
            }
        }));
        let what = if tunnel {
            "a new tunnel client"
        } else {
            "a new ipc client"
        };
        let (reply, fresh) = match outcome {
            Ok(Ok(done)) => done,
            Ok(Err(e)) => self.wedged(when, what, &e),
            Err(e) => self.wedged(when, what, &e),
        };
        assert_eq!(reply["result"]["pid"], self.pid, "{when}: {reply}");
        fresh
    }

    /// The best of [`TRIES`] new clients.
    fn fresh_clients(&mut self, when: &str, tunnel: bool) -> Fresh {
        let tries: Vec<Fresh> = (0..TRIES)
            .map(|_| self.fresh_client(when, tunnel))
            .collect();
        Fresh {
            connect: best(tries.iter().map(|t| t.connect)),
            ping: best(tries.iter().map(|t| t.ping)),
        }
    }

    fn assert_same_god(&self, when: &str) {
        assert_eq!(
            zpm_processes(self.god.zpm.home(), &["daemon"]),
            [self.pid],
            "{when}: God's pid changed\n{}",
            self.god.zpm.daemon_logs()
        );
    }

    /// The clients connected before the attack are answered promptly by the same God.
    /// Moves no counter.
    fn assert_answering(&mut self, when: &str) {
        let ipc = best((0..TRIES).map(|_| self.ipc_ping(when)));
        let tunnel = best((0..TRIES).map(|_| self.tunnel_ping(when)));
        assert!(ipc < PROMPT, "{when}: best ipc round trip {ipc:?}");
        assert!(tunnel < PROMPT, "{when}: best tunnel round trip {tunnel:?}");
        self.assert_same_god(when);
    }

    /// As [`Rig::assert_answering`], and new clients get in at once: adds [`FRESH_TCP`]
    /// and [`FRESH_RPC`] connections.
    fn assert_unharmed(&mut self, when: &str) {
        self.assert_answering(when);
        let ipc = self.fresh_clients(when, false);
        let tunnel = self.fresh_clients(when, true);
        eprintln!("{when}: new clients: {ipc:?} over ipc, {tunnel:?} through the tunnel");
        assert!(ipc.ping < PROMPT, "{when}: best new ipc client {ipc:?}");
        assert!(
            tunnel.ping < PROMPT,
            "{when}: best new tunnel client {tunnel:?}"
        );
        assert!(
            tunnel.connect < GETS_IN,
            "{when}: best tunnel handshake {tunnel:?}"
        );
    }

    /// Waits for the counters named in `moved` to reach `before` + their delta, then
    /// asserts that every counter (tcp, rpc, bus) is exactly `before` + its delta.
    fn assert_moved(&self, before: &Counters, moved: &[(&str, u64)], case: &str) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let after = self.counters();
            let reached = moved
                .iter()
                .all(|&(name, delta)| counter(&after, name) >= counter(before, name) + delta);
            if reached || Instant::now() >= deadline {
                return assert_exact(before, &after, moved, case);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A plain TCP connection to God's port, made in the runtime.
    fn tcp(&self) -> TcpStream {
        self.rt.block_on(TcpStream::connect(&self.addr)).unwrap()
    }

    /// Writes `bytes`; the server may cut the connection before it has taken them all.
    fn write_some(&self, stream: &mut TcpStream, bytes: &[u8]) {
        match self.rt.block_on(stream.write_all(bytes)) {
            Ok(()) => {}
            Err(e) if is_closed(&e) => {}
            Err(e) => panic!("write: {e}"),
        }
    }

    /// A tunnel connection for `service` past its handshake, made in the runtime.
    fn sealed(&self, service: &str) -> Sealed<TcpStream> {
        self.rt
            .block_on(zpm_tunnel::connect(&self.addr, &self.key, service))
            .unwrap()
    }

    /// Waits for God to close `stream`, discarding what it sends, while the legitimate
    /// clients keep being answered. Returns how long after `since` it closed.
    fn assert_cut(
        &mut self,
        stream: &mut TcpStream,
        since: Instant,
        within: Duration,
        case: &str,
    ) -> Duration {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let read = self
                .rt
                .block_on(timed(Duration::from_millis(200), stream.read(&mut buf)));
            match read {
                Ok(Ok(0)) => return since.elapsed(),
                Ok(Err(e)) if is_closed(&e) => return since.elapsed(),
                Ok(Err(e)) => panic!("{case}: read: {e}"),
                Ok(Ok(_)) | Err(_) => {}
            }
            assert!(
                since.elapsed() < within,
                "{case}: connection still open after {within:?}"
            );
            self.assert_answering(&format!("{case}, connection still open"));
        }
    }
}

// ---------------------------------------------------------------------------------------
// The cases.

#[test]
fn remote_hostile_garbage_instead_of_a_handshake_is_cut() {
    let mut rig = Rig::start();
    let before = rig.counters();
    let mut attacker = rig.tcp();
    let since = Instant::now();
    rig.write_some(&mut attacker, &Rng(0x9E37_79B9_7F4A_7C15).bytes(64 * 1024));
    rig.assert_answering("after 64 KiB of garbage");
    let took = rig.assert_cut(&mut attacker, since, AT_ONCE, "64 KiB of garbage");
    eprintln!("garbage: cut in {took:?}");
    rig.assert_moved(
        &before,
        &[("tcp.connections", 1), ("tcp.handshakes_failed", 1)],
        "64 KiB of garbage",
    );
    rig.assert_unharmed("after 64 KiB of garbage");
}

#[test]
fn remote_hostile_huge_zmtp_frame_behind_the_tunnel_is_cut_by_the_guard() {
    let mut rig = Rig::start();
    let before = rig.counters();
    let cases = [
        (
            "2^62-byte frame after READY",
            huge_frame_after(ready(), LONG),
        ),
        (
            "2^62-byte frame before READY",
            huge_frame_after(vec![], LONG),
        ),
        (
            "2^62-byte command",
            huge_frame_after(vec![], LONG | COMMAND),
        ),
    ];
    for (case, bytes) in &cases {
        let mut sealed = rig.sealed("rpc");
        let since = Instant::now();
        rig.rt.block_on(sealed.send(bytes)).unwrap();
        rig.assert_answering(case);
        let (mut tcp, _) = sealed.into_parts();
        let took = rig.assert_cut(&mut tcp, since, AT_ONCE, case);
        eprintln!("{case}: cut in {took:?}");
    }
    let n = cases.len() as u64;
    rig.assert_moved(
        &before,
        &[
            ("tcp.connections", n),
            ("rpc.connections", n),
            ("rpc.cut_protocol", n),
        ],
        "2^62-byte frame headers through the tunnel",
    );
    rig.assert_unharmed("after 2^62-byte frame headers through the tunnel");
}

#[test]
fn remote_hostile_cleartext_zmtp_never_reaches_rpc() {
    let mut rig = Rig::start();
    let before = rig.counters();
    let mut attacker = rig.tcp();
    let since = Instant::now();
    let mut hello = greeting();
    hello.extend(ready());
    hello.extend(message(&request(1u64, "ping", ())));
    rig.write_some(&mut attacker, &hello);
    rig.assert_answering("after a cleartext ZMTP greeting");
    let took = rig.assert_cut(&mut attacker, since, AT_ONCE, "cleartext ZMTP");
    eprintln!("cleartext ZMTP: cut in {took:?}");
    // rpc.connections is among the counters that must not move.
    rig.assert_moved(
        &before,
        &[("tcp.connections", 1), ("tcp.handshakes_failed", 1)],
        "cleartext ZMTP",
    );
    rig.assert_unharmed("after cleartext ZMTP");
}

#[test]
fn remote_hostile_silent_peer_is_cut_at_the_handshake_deadline() {
    let mut rig = Rig::start();
    let before = rig.counters();
    let since = Instant::now();
    let mut silent = rig.tcp();
    let took = rig.assert_cut(&mut silent, since, DEADLINE, "silent peer");
    eprintln!("silent peer: cut after {took:?}");
    assert!(
        took >= HANDSHAKE_DEADLINE,
        "cut before the handshake deadline: {took:?}"
    );
    rig.assert_moved(
        &before,
        &[("tcp.connections", 1), ("tcp.timeouts", 1)],
        "silent peer",
    );
    rig.assert_unharmed("after a silent peer");
}

#[test]
fn remote_hostile_a_thousand_abandoned_connections() {
    const ABANDONED: u64 = 1000;
    /// God's descriptors may end this many above where they started.
    const FD_SLACK: usize = 16;
    let mut rig = Rig::start();
    let fds_before = fd_count(rig.pid);
    let before = rig.counters();
    let abandoned: Vec<std::net::TcpStream> = (0..ABANDONED)
        .map(|_| std::net::TcpStream::connect(&rig.addr).unwrap())
        .collect();
    let opened = Instant::now();
    let timed_out =
        |now: &Counters| counter(now, "tcp.timeouts") - counter(&before, "tcp.timeouts");
    // Every one accepted, none refused, none carried to rpc. (On a starved machine the
    // first may time out before the last is accepted.)
    let accepted = poll("1000 connections accepted", || {
        let now = rig.counters();
        let connections = counter(&now, "tcp.connections");
        (connections >= counter(&before, "tcp.connections") + ABANDONED).then_some(now)
    });
    let moved = [
        ("tcp.connections", ABANDONED),
        ("tcp.timeouts", timed_out(&accepted)),
    ];
    assert_exact(&before, &accepted, &moved, "1000 connections accepted");
    // A connection's timeout is counted before it is closed: God holds at least the rest.
    let fds_held = fd_count(rig.pid);
    let held = ABANDONED - timed_out(&rig.counters());
    assert!(
        fds_held >= fds_before + held as usize,
        "God holds {fds_held} descriptors, {fds_before} before {held} connections"
    );
    rig.assert_unharmed("with 1000 abandoned connections open");
    let held = ABANDONED - timed_out(&rig.counters());
    eprintln!(
        "new clients got through with {held} abandoned connections open, {:?} after they were",
        opened.elapsed()
    );
    assert!(held > 0, "every abandoned connection had timed out already");
    rig.assert_moved(
        &before,
        &[
            ("tcp.connections", ABANDONED + FRESH_TCP),
            ("tcp.timeouts", ABANDONED),
            ("rpc.connections", FRESH_RPC),
        ],
        "1000 abandoned connections timed out",
    );
    eprintln!(
        "1000 abandoned connections: timed out within {:?}",
        opened.elapsed()
    );
    let fds = poll("God's descriptors back near where they were", || {
        let fds = fd_count(rig.pid);
        (fds <= fds_before + FD_SLACK).then_some(fds)
    });
    eprintln!("God's descriptors: {fds_before} before, {fds_held} held, {fds} after");
    drop(abandoned);
    rig.assert_unharmed("after 1000 abandoned connections");
}

#[test]
fn remote_hostile_sealed_msgpack_that_is_not_zmtp_is_cut_by_the_guard() {
    let mut rig = Rig::start();
    let before = rig.counters();
    let junk = random_msgpack(&mut Rng(0x2545_F491_4F6C_DD1D), 2000);
    assert_ne!(junk[0], 0xFF, "must not open like a ZMTP greeting");
    let mut sealed = rig.sealed("rpc");
    let since = Instant::now();
    rig.rt.block_on(sealed.send(&junk)).unwrap();
    rig.assert_answering("after sealed msgpack");
    let (mut tcp, _) = sealed.into_parts();
    let took = rig.assert_cut(&mut tcp, since, AT_ONCE, "sealed msgpack");
    eprintln!("sealed msgpack ({} bytes): cut in {took:?}", junk.len());
    // Not a greeting is a protocol violation; cut_handshake counts only the 5 s deadline.
    rig.assert_moved(
        &before,
        &[
            ("tcp.connections", 1),
            ("rpc.connections", 1),
            ("rpc.cut_protocol", 1),
        ],
        "sealed msgpack",
    );
    rig.assert_unharmed("after sealed msgpack");
}

#[test]
fn remote_hostile_wrong_key_fails_the_handshake() {
    let mut rig = Rig::start();
    let before = rig.counters();
    let wrong = Key::generate().unwrap();
    for service in ["rpc", "bus", "probe"] {
        let started = Instant::now();
        let refused = rig
            .rt
            .block_on(zpm_tunnel::connect(&rig.addr, &wrong, service));
        let took = started.elapsed();
        let error = refused
            .err()
            .unwrap_or_else(|| panic!("{service}: a wrong key got in"));
        eprintln!("wrong key for {service}: {error} in {took:?}");
        assert!(took < AT_ONCE, "{service}: refused only after {took:?}");
        rig.assert_answering(&format!("after a wrong key for {service}"));
    }
    rig.assert_moved(
        &before,
        &[("tcp.connections", 3), ("tcp.handshakes_failed", 3)],
        "wrong key",
    );
    rig.assert_unharmed("after wrong keys");
}

#[test]
fn remote_hostile_replayed_frames_are_rejected() {
    let mut rig = Rig::start();
    let before = rig.counters();
    let (addr, key) = (rig.addr.clone(), rig.key.clone());
    // A legitimate connection: its frames 0 (greeting, READY) and 1 (ping) are recorded.
    let mut legit = rig
        .rt
        .block_on(async { Dealer::open(RawTunnel::connect(&addr, &key).await).await })
        .unwrap();
    let reply = rig.rt.block_on(legit.ping(1)).unwrap();
    assert_eq!(reply["result"]["pid"], rig.pid, "{reply}");
    let (first, ping) = (legit.wire.sent[0].clone(), legit.wire.sent[1].clone());

    // The ping again on the same connection: its nonce is spent.
    let since = Instant::now();
    let mut tcp = legit.wire.tcp;
    rig.write_some(&mut tcp, &ping);
    rig.assert_answering("after a replay on the same connection");
    rig.assert_cut(&mut tcp, since, AT_ONCE, "replay on the same connection");

    // The first frame on a new connection: the right nonce, but another session's keys.
    let mut other = rig.rt.block_on(RawTunnel::connect(&addr, &key));
    let since = Instant::now();
    rig.write_some(&mut other.tcp, &first);
    rig.assert_answering("after a replay on a new connection");
    rig.assert_cut(&mut other.tcp, since, AT_ONCE, "replay on a new connection");

    rig.assert_moved(
        &before,
        &[
            ("tcp.connections", 2),
            ("tcp.frames_rejected", 2),
            ("rpc.connections", 2),
        ],
        "replayed frames",
    );
    rig.assert_unharmed("after replayed frames");
}

/// As [`ListeningGod::start`], but God is launched with a soft limit of `nofile` open files
/// (its hard limit untouched), the default of most Linux sessions and systemd services.
fn listening_god_with_soft_nofile(nofile: u32) -> ListeningGod {
    let zpm = crate::harness::Zpm::new();
    let key = zpm.path("fleet.key");
    zpm.ok(&["keygen", "--out", key.to_str().unwrap()]);
    let endpoint = format!("tcp://127.0.0.1:{}", crate::remote::free_port());
    let config = format!(
        "listen = \"{endpoint}\"\nkey_file = \"{}\"\n",
        key.display()
    );
    std::fs::write(zpm.path("config.toml"), config).unwrap();
    // `zpm ping` launches God, which inherits the limit.
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -Sn {nofile} && exec \"$0\" ping"))
        .arg(assert_cmd::cargo::cargo_bin("zpm"))
        .env("ZPM_HOME", zpm.home())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let god = ListeningGod { zpm, endpoint, key };
    let pid = zpm_processes(god.zpm.home(), &["daemon"]);
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", pid[0])).unwrap();
    let open_files = limits.lines().find(|l| l.starts_with("Max open files"));
    assert!(
        open_files.is_some_and(|l| l.split_whitespace().nth(3) == Some(&nofile.to_string())),
        "{open_files:?}"
    );
    god
}

/// More idle connections than God has descriptors (the usual soft limit of 1024 open
/// files): while they are open new clients may have to wait, but once they have timed out
/// the port must serve again.
///
/// About 985 connections exhaust God's descriptors and `accept` fails with EMFILE; the
/// tunnel's accept loop must back off and go on (it once returned the error and closed the
/// port for good: a peer without the key took God off the network).
#[test]
fn remote_hostile_descriptor_exhaustion_does_not_close_the_port() {
    const ABANDONED: usize = 1000;
    let mut rig = Rig::on(listening_god_with_soft_nofile(1024));
    let before = rig.counters();
    let abandoned: Vec<std::net::TcpStream> = (0..ABANDONED)
        .map_while(|_| std::net::TcpStream::connect(&rig.addr).ok())
        .collect();
    eprintln!("{} of {ABANDONED} connections made", abandoned.len());
    rig.assert_answering("with God out of descriptors");
    poll("every accepted connection timed out", || {
        let now = rig.counters();
        let moved = |name| counter(&now, name) - counter(&before, name);
        let accepted = moved("tcp.connections");
        (accepted > 0 && moved("tcp.timeouts") == accepted).then_some(())
    });
    drop(abandoned);
    rig.assert_unharmed("after God ran out of descriptors");
}

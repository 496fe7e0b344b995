//! The load during a reload: client threads, each sending `GET /` on a new TCP connection
//! as soon as the last one was answered, every outcome timestamped so it can be put in
//! its phase (steady state before, during the reload, after).

use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{ErrorKind, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// What one request on a new connection came to: the pid in the body, or why it failed.
pub type Outcome = Result<u32, &'static str>;

/// One request: when it started (since the load started) and its outcome.
pub struct Sample {
    pub start: Duration,
    pub outcome: Outcome,
}

/// One request on a new connection, `timeout` for all of it.
pub fn request(addr: SocketAddr, timeout: Duration) -> Outcome {
    let deadline = Instant::now() + timeout;
    let left = || {
        deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or("timeout")
    };
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(classify)?;
    stream.set_write_timeout(Some(left()?)).map_err(classify)?;
    stream
        .write_all(b"GET / HTTP/1.0\r\nHost: bench\r\n\r\n")
        .map_err(classify)?;
    let mut response = Vec::with_capacity(256);
    let mut chunk = [0u8; 1024];
    loop {
        stream.set_read_timeout(Some(left()?)).map_err(classify)?;
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => response.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(classify(e)),
        }
    }
    if response.is_empty() {
        return Err("closed without a response");
    }
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("bad response")?;
    if !(head.starts_with("HTTP/1.1 200 ") || head.starts_with("HTTP/1.0 200 ")) {
        return Err("bad status");
    }
    body.trim().parse().map_err(|_| "bad response")
}

fn classify(e: std::io::Error) -> &'static str {
    match e.kind() {
        ErrorKind::ConnectionRefused => "refused",
        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe => {
            "reset"
        }
        ErrorKind::TimedOut | ErrorKind::WouldBlock => "timeout",
        _ => "other i/o error",
    }
}

/// Client threads running until stopped.
pub struct Load {
    started: Instant,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<Vec<Sample>>>,
}

impl Load {
    /// `clients` threads hammering `addr`.
    pub fn start(addr: SocketAddr, clients: usize, timeout: Duration) -> Self {
        let started = Instant::now();
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..clients)
            .map(|_| {
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || {
                    let mut samples = Vec::with_capacity(16 * 1024);
                    while !stop.load(Ordering::Relaxed) {
                        let start = started.elapsed();
                        let outcome = request(addr, timeout);
                        samples.push(Sample { start, outcome });
                    }
                    samples
                })
            })
            .collect();
        Self {
            started,
            stop,
            threads,
        }
    }

    /// Time since the load started.
    pub fn now(&self) -> Duration {
        self.started.elapsed()
    }

    /// Stops the clients (each finishes its request in flight) and returns every sample.
    pub fn finish(self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        self.threads
            .into_iter()
            .flat_map(|t| t.join().unwrap_or_default())
            .collect()
    }
}

/// The requests that started within one phase.
#[derive(Serialize, Debug, Default, Clone)]
pub struct Phase {
    pub seconds: f64,
    pub requests: u64,
    pub ok: u64,
    pub failed: u64,
    /// Answered requests per second of the phase.
    pub ok_per_second: f64,
    /// Failures by kind: refused, reset, timeout, closed without a response, bad status…
    pub failures: BTreeMap<String, u64>,
    /// Distinct pids that answered.
    pub pids: BTreeSet<u32>,
}

impl Phase {
    /// The samples that started in `[from, to)`.
    pub fn of(samples: &[Sample], from: Duration, to: Duration) -> Self {
        let mut phase = Phase {
            seconds: (to.saturating_sub(from)).as_secs_f64(),
            ..Phase::default()
        };
        for sample in samples.iter().filter(|s| s.start >= from && s.start < to) {
            phase.requests += 1;
            match sample.outcome {
                Ok(pid) => {
                    phase.ok += 1;
                    phase.pids.insert(pid);
                }
                Err(kind) => {
                    phase.failed += 1;
                    *phase.failures.entry(kind.to_owned()).or_default() += 1;
                }
            }
        }
        if phase.seconds > 0.0 {
            phase.ok_per_second = phase.ok as f64 / phase.seconds;
        }
        phase
    }
}

/// Sends requests one after another until `n` distinct pids answered or `limit` passed;
/// returns the pids seen (also warms the servers up).
pub fn pids_answering(addr: SocketAddr, n: usize, limit: Duration) -> BTreeSet<u32> {
    let deadline = Instant::now() + limit;
    let mut seen = BTreeSet::new();
    let mut answered = 0;
    // At least 200 answers, so every instance got a few requests before the measurement.
    while (seen.len() < n || answered < 200) && Instant::now() < deadline {
        match request(addr, Duration::from_secs(2)) {
            Ok(pid) => {
                seen.insert(pid);
                answered += 1;
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A server answering `n` connections with `reply`, then gone.
    fn serve(n: usize, reply: &'static [u8]) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        std::thread::spawn(move || {
            for stream in listener.incoming().take(n) {
                let mut stream = stream.expect("accept");
                let mut head = [0u8; 256];
                let _ = stream.read(&mut head);
                let _ = stream.write_all(reply);
            }
        });
        addr
    }

    #[test]
    fn a_request_yields_the_pid_or_why_not() {
        let ok = serve(1, b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n4242");
        assert_eq!(request(ok, Duration::from_secs(2)), Ok(4242));
        let bad = serve(1, b"HTTP/1.1 502 Bad Gateway\r\n\r\n");
        assert_eq!(request(bad, Duration::from_secs(2)), Err("bad status"));
        let empty = serve(1, b"");
        assert_eq!(
            request(empty, Duration::from_secs(2)),
            Err("closed without a response")
        );
        let closed = TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr");
        assert_eq!(request(closed, Duration::from_secs(2)), Err("refused"));
    }

    #[test]
    fn samples_go_to_the_phase_they_started_in() {
        let at = |ms, outcome| Sample {
            start: Duration::from_millis(ms),
            outcome,
        };
        let samples = [
            at(10, Ok(1)),
            at(999, Ok(2)),
            at(1000, Err("refused")),
            at(1500, Ok(3)),
        ];
        let before = Phase::of(&samples, Duration::ZERO, Duration::from_secs(1));
        assert_eq!((before.requests, before.ok, before.failed), (2, 2, 0));
        assert!((before.ok_per_second - 2.0).abs() < 1e-9);
        let during = Phase::of(&samples, Duration::from_secs(1), Duration::from_secs(2));
        assert_eq!((during.requests, during.failed), (2, 1));
        assert_eq!(during.failures.get("refused"), Some(&1));
        assert_eq!(during.pids.into_iter().collect::<Vec<_>>(), [3]);
    }
}

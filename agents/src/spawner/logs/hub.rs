//! [`LogHub`]: every app's output buffers on this host, and the `logs.fetch` long-poll.

use super::LogLimits;
use super::buffer::StreamBuf;
use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::sync::futures::Notified;
use tokio::time::Instant;
use zpm_proto::{LogChunk, LogStream, LogsFetch, LogsFetched};

/// Upper bound on the bytes one fetch returns, whatever `max_bytes` asks for.
pub const MAX_FETCH_BYTES: usize = 8 * 1024 * 1024;
/// Upper bound on how long one fetch waits for new bytes, whatever `wait_ms` asks for.
pub const MAX_FETCH_WAIT: Duration = Duration::from_secs(30);

type Key = (u32, LogStream);

/// All apps' output buffers on this host. Shared as `Arc<LogHub>` between the pumps (one per
/// app pipe) and the `logs.fetch` endpoint.
pub struct LogHub {
    limits: LogLimits,
    /// Names this hub's offsets (`LogsFetched::epoch`): its creation time in µs, so a
    /// replacement spawner's hub never has the same.
    epoch: u64,
    state: Mutex<State>,
    /// Woken when bytes arrive: long-polling fetches wait on it.
    arrived: Notify,
    /// Woken when bytes are acknowledged or a buffer goes away: full pumps wait on it.
    room: Notify,
}

#[derive(Default)]
struct State {
    streams: BTreeMap<Key, StreamBuf>,
    /// The host's registered log consumer, if any: the one reader whose cursors acknowledge
    /// and whose presence makes a full buffer stop the pipe.
    consumer: Option<Consumer>,
    /// Turns the tie-break of the fetch budget, so equal streams take turns.
    rotation: usize,
    /// Until then, a peer was refused the consumer role (the previous holder's claim had
    /// not lapsed: typically a logs agent relaunched under a new identity). Buffers stay
    /// attached meanwhile, so nothing is dropped between the old claim lapsing and the new
    /// claimant's next fetch.
    claim_waiting: Option<Instant>,
}

/// The peer holding the consumer role.
struct Consumer {
    /// Its rpc routing identity.
    peer: Vec<u8>,
    /// Its fetches in progress: while one is waiting, it is attached.
    polling: usize,
    /// After its last fetch ended it stays attached (and holds the role) until then.
    until: Instant,
}

/// Why a fetch was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// Another peer holds the consumer role and is still fetching.
    #[error(
        "another peer is this host's log consumer (it fetched within the last {ttl:?}); \
         read without `consume`, or claim again once it has stopped"
    )]
    ConsumerTaken { ttl: Duration },
}

/// What a pump may do before reading.
pub(super) enum Room {
    /// Read at most this many bytes.
    Read(usize),
    /// The buffer is full and a consumer is attached: wait for room, but look again at
    /// this instant at the latest (the consumer may be gone by then).
    Wait(Instant),
}

/// What became of bytes a pump read.
pub(super) enum Stored {
    /// All of them are held (or discarded, if the app is not registered).
    All,
    /// Only the first `taken`: the buffer is full and a consumer is attached.
    Part { taken: usize, recheck_at: Instant },
}

impl LogHub {
    pub fn new(limits: LogLimits) -> Arc<Self> {
        Arc::new(Self {
            limits: LogLimits {
                per_stream_bytes: limits.per_stream_bytes.max(1),
                ..limits
            },
            epoch: zpm_bus::now_ms()
                .saturating_mul(1000)
                .saturating_add(u64::from(std::process::id() % 1000)),
            state: Mutex::new(State::default()),
            arrived: Notify::new(),
            room: Notify::new(),
        })
    }

    pub fn limits(&self) -> LogLimits {
        self.limits
    }

    /// Creates (or keeps, if present) the out and err buffers of app `id`. A restarted app
    /// keeps its buffers, so its offsets continue. Call it before pumping the app's pipes:
    /// bytes pumped for an unregistered app are read and discarded.
    pub fn register(&self, id: u32) {
        let mut state = self.lock();
        for stream in [LogStream::Out, LogStream::Err] {
            state.streams.entry((id, stream)).or_default();
        }
    }

    /// Forgets app `id` (after `delete`): its buffers are freed, and a pump still running
    /// for it drains its pipe into nothing.
    pub fn remove(&self, id: u32) {
        {
            let mut state = self.lock();
            for stream in [LogStream::Out, LogStream::Err] {
                state.streams.remove(&(id, stream));
            }
        }
        self.room.notify_waiters();
    }

    /// Total bytes dropped so far for (`id`, `stream`) because nobody fetched them in time.
    pub fn dropped(&self, id: u32, stream: LogStream) -> u64 {
        self.lock()
            .streams
            .get(&(id, stream))
            .map_or(0, StreamBuf::dropped)
    }

    /// The offsets held for (`id`, `stream`): `start..end`. `None` if not registered.
    pub fn held(&self, id: u32, stream: LogStream) -> Option<Range<u64>> {
        self.lock()
            .streams
            .get(&(id, stream))
            .map(|buf| buf.start()..buf.end())
    }

    /// Serves one `logs.fetch` (long-poll) from `peer` (its rpc routing identity). Every
    /// registered stream is read from its cursor in `after`, or from its oldest byte if not
    /// listed; at most `max_bytes` in all, shared fairly. With nothing to return, waits up to
    /// `wait_ms` for bytes to arrive.
    ///
    /// With `consume`, `peer` claims (or keeps) the consumer role and its cursors
    /// acknowledge (free) every byte below them; while another peer holds the role this
    /// fails with [`FetchError::ConsumerTaken`]. Without, nothing is freed and nobody is
    /// attached: a plain reader can never hold an app back.
    pub async fn fetch(&self, request: LogsFetch, peer: &[u8]) -> Result<LogsFetched, FetchError> {
        let wait = Duration::from_millis(u64::from(request.wait_ms)).min(MAX_FETCH_WAIT);
        let budget = (request.max_bytes as usize).clamp(1, MAX_FETCH_BYTES);
        let stale = request.epoch.is_some_and(|e| e != self.epoch);
        let cursors: HashMap<Key, Cursor> = request
            .after
            .iter()
            .filter(|_| !stale)
            .map(|cursor| {
                let at = Cursor {
                    read: cursor.offset,
                    ack: cursor.acknowledged(),
                };
                ((cursor.id, cursor.stream), at)
            })
            .collect();
        let deadline = Instant::now() + wait;
        let _claim = if request.consume {
            Some(Claim::take(self, peer)?)
        } else {
            None
        };
        let acknowledge = request.consume;
        loop {
            // Created before looking, so bytes that arrive after the look still wake us.
            let arrived = self.arrived.notified();
            let now = Instant::now();
            let (chunks, freed) = collect(&mut self.lock(), &cursors, budget, acknowledge);
            if freed {
                self.room.notify_waiters();
            }
            if !chunks.is_empty() || now >= deadline {
                return Ok(LogsFetched {
                    chunks,
                    epoch: self.epoch,
                });
            }
            let _ = tokio::time::timeout_at(deadline, arrived).await;
        }
    }

    /// A future that completes when room may have been made in some buffer. Create it
    /// before [`LogHub::room_for`] / [`LogHub::store`] so no wake-up is missed.
    pub(super) fn room_made(&self) -> Notified<'_> {
        self.room.notified()
    }

    /// How much a pump of (`id`, `stream`) may read now, at most `max_read`.
    pub(super) fn room_for(&self, id: u32, stream: LogStream, max_read: usize) -> Room {
        let limit = self.limits.per_stream_bytes;
        let now = Instant::now();
        let state = self.lock();
        let attached = self.attached(&state, now);
        match (state.streams.get(&(id, stream)), attached) {
            (None, _) => Room::Read(max_read),
            (Some(buf), Some(recheck_at)) => match limit.saturating_sub(buf.len()) {
                0 => Room::Wait(recheck_at),
                free => Room::Read(free.min(max_read)),
            },
            (Some(_), None) => Room::Read(max_read.min(limit)),
        }
    }

    /// Stores bytes a pump read from (`id`, `stream`): within the limit while a consumer is
    /// attached, otherwise dropping the oldest bytes to make room.
    pub(super) fn store(&self, id: u32, stream: LogStream, bytes: &[u8]) -> Stored {
        let limit = self.limits.per_stream_bytes;
        let now = Instant::now();
        let (outcome, stored, dropped) = {
            let mut state = self.lock();
            let attached = self.attached(&state, now);
            match (state.streams.get_mut(&(id, stream)), attached) {
                (None, _) => (Stored::All, false, 0),
                (Some(buf), Some(recheck_at)) => {
                    let taken = buf.push_within(bytes, limit);
                    let outcome = if taken == bytes.len() {
                        Stored::All
                    } else {
                        Stored::Part { taken, recheck_at }
                    };
                    (outcome, taken > 0, 0)
                }
                (Some(buf), None) => {
                    let dropped = buf.push_dropping(bytes, limit);
                    (Stored::All, !bytes.is_empty(), dropped)
                }
            }
        };
        if dropped > 0 {
            tracing::trace!(
                id,
                ?stream,
                dropped,
                "no log consumer: dropped the oldest bytes"
            );
        }
        if stored {
            self.arrived.notify_waiters();
        }
        outcome
    }

    /// `Some(when to look again)` while the registered consumer is attached, or a refused
    /// claimant waits for the role.
    fn attached(&self, state: &State, now: Instant) -> Option<Instant> {
        let waiting = state.claim_waiting.filter(|until| now < *until);
        match (self.consumer_attached(state, now), waiting) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    /// `Some(when to look again)` while the registered consumer is attached.
    fn consumer_attached(&self, state: &State, now: Instant) -> Option<Instant> {
        let consumer = state.consumer.as_ref()?;
        if consumer.polling > 0 {
            return Some(now + self.limits.consumer_ttl);
        }
        (now < consumer.until).then_some(consumer.until)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every critical section leaves the state consistent, so a panic elsewhere while
        // holding the lock does not poison anything real.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A fetch of the registered consumer in progress: it holds the role and keeps the consumer
/// attached; when it ends (or is cancelled), the consumer stays attached for the ttl.
struct Claim<'a> {
    hub: &'a LogHub,
    peer: &'a [u8],
}

impl<'a> Claim<'a> {
    /// Takes the role for `peer` if it is free, lapsed, or already `peer`'s.
    fn take(hub: &'a LogHub, peer: &'a [u8]) -> Result<Self, FetchError> {
        let now = Instant::now();
        let mut state = hub.lock();
        let held_by_other = state.consumer.as_ref().is_some_and(|c| c.peer != peer)
            && hub.consumer_attached(&state, now).is_some();
        if held_by_other {
            state.claim_waiting = Some(now + hub.limits.consumer_ttl);
            return Err(FetchError::ConsumerTaken {
                ttl: hub.limits.consumer_ttl,
            });
        }
        state.claim_waiting = None;
        match &mut state.consumer {
            Some(consumer) if consumer.peer == peer => consumer.polling += 1,
            slot => {
                if slot.is_some() {
                    tracing::info!("the log consumer's role lapsed; a new peer claims it");
                }
                *slot = Some(Consumer {
                    peer: peer.to_vec(),
                    polling: 1,
                    until: now,
                });
            }
        }
        Ok(Self { hub, peer })
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        let until = Instant::now() + self.hub.limits.consumer_ttl;
        let mut state = self.hub.lock();
        // Only the holder's own fetches are counted; the role cannot change hands while one
        // is in progress, but check rather than trust it.
        if let Some(consumer) = state.consumer.as_mut().filter(|c| c.peer == self.peer) {
            consumer.polling = consumer.polling.saturating_sub(1);
            consumer.until = consumer.until.max(until);
        }
    }
}

/// Where a fetch reads one stream from, and below which it acknowledges (`ack <= read`).
#[derive(Clone, Copy)]
struct Cursor {
    read: u64,
    ack: u64,
}

/// One stream's part in a fetch.
struct Pick {
    key: Key,
    from: u64,
    available: usize,
    dropped: u64,
    give: usize,
}

/// Picks up to `budget` bytes across all streams from the cursors, first acknowledging up to
/// their `ack` if `acknowledge` (the consumer's fetch). Returns the chunks and whether any
/// bytes were freed.
fn collect(
    state: &mut State,
    cursors: &HashMap<Key, Cursor>,
    budget: usize,
    acknowledge: bool,
) -> (Vec<LogChunk>, bool) {
    let mut freed = false;
    let mut picks = Vec::new();
    for (key, buf) in &mut state.streams {
        let cursor = cursors.get(key).copied().unwrap_or(Cursor {
            read: buf.start(),
            ack: buf.start(),
        });
        let asked = cursor.read.min(buf.end());
        if acknowledge {
            freed |= buf.ack(cursor.ack.min(asked)) > 0;
        }
        let from = asked.max(buf.start());
        let available = (buf.end() - from) as usize;
        let dropped = from - asked;
        if available > 0 || dropped > 0 {
            picks.push(Pick {
                key: *key,
                from,
                available,
                dropped,
                give: 0,
            });
        }
    }
    share(&mut picks, budget, state.rotation);
    state.rotation = state.rotation.wrapping_add(1);
    let chunks = picks
        .into_iter()
        .filter(|pick| pick.give > 0 || pick.dropped > 0)
        .filter_map(|pick| {
            let buf = state.streams.get(&pick.key)?;
            Some(LogChunk {
                id: pick.key.0,
                stream: pick.key.1,
                offset: pick.from,
                data: buf.read(pick.from, pick.give),
                dropped: pick.dropped,
            })
        })
        .collect();
    (chunks, freed)
}

/// Water-filling: the streams with the least to give are served first, each taking at most
/// an equal share of what is left, so what a quiet stream does not need goes to the chatty
/// ones and no stream starves. Ties take turns by `rotation`.
fn share(picks: &mut [Pick], budget: usize, rotation: usize) {
    let n = picks.len();
    if n == 0 {
        return;
    }
    let turn = rotation % n;
    let mut order: Vec<usize> = (0..n).filter(|&i| picks[i].available > 0).collect();
    order.sort_by_key(|&i| (picks[i].available, (i + n - turn) % n));
    let mut remaining = budget;
    let mut left = order.len();
    for i in order {
        let give = picks[i].available.min(remaining.div_ceil(left));
        picks[i].give = give;
        remaining -= give;
        left -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zpm_proto::LogCursor;

    const OUT: LogStream = LogStream::Out;
    const ERR: LogStream = LogStream::Err;

    fn hub(per_stream_bytes: usize) -> Arc<LogHub> {
        LogHub::new(LogLimits {
            per_stream_bytes,
            consumer_ttl: Duration::from_secs(60),
        })
    }

    /// The peer identity of the consumer in these tests.
    const CONSUMER: &[u8] = b"consumer";

    /// A fetch that claims the consumer role.
    fn request(after: &[(u32, LogStream, u64)], max_bytes: u32, wait_ms: u32) -> LogsFetch {
        LogsFetch {
            epoch: None,
            after: after
                .iter()
                .map(|&(id, stream, offset)| LogCursor {
                    id,
                    stream,
                    offset,
                    ack: None,
                })
                .collect(),
            max_bytes,
            wait_ms,
            consume: true,
        }
    }

    /// A fetch of a plain reader.
    fn read(after: &[(u32, LogStream, u64)], max_bytes: u32) -> LogsFetch {
        LogsFetch {
            consume: false,
            ..request(after, max_bytes, 0)
        }
    }

    async fn consume(hub: &LogHub, request: LogsFetch) -> LogsFetched {
        hub.fetch(request, CONSUMER).await.unwrap()
    }

    fn store_all(hub: &LogHub, id: u32, stream: LogStream, bytes: &[u8]) {
        assert!(matches!(hub.store(id, stream, bytes), Stored::All));
    }

    fn chunk(id: u32, stream: LogStream, offset: u64, data: &[u8], dropped: u64) -> LogChunk {
        LogChunk {
            id,
            stream,
            offset,
            data: data.to_vec(),
            dropped,
        }
    }

    #[tokio::test]
    async fn fetch_continues_mid_line_and_acknowledges() {
        let hub = hub(1024);
        hub.register(1);
        store_all(&hub, 1, OUT, b"first line\nsecond ha");
        let got = consume(&hub, request(&[], 1000, 0)).await;
        assert_eq!(got.chunks, [chunk(1, OUT, 0, b"first line\nsecond ha", 0)]);
        store_all(&hub, 1, OUT, b"lf\n");
        let got = consume(&hub, request(&[(1, OUT, 20)], 1000, 0)).await;
        assert_eq!(got.chunks, [chunk(1, OUT, 20, b"lf\n", 0)]);
        assert_eq!(
            hub.held(1, OUT),
            Some(20..23),
            "bytes below 20 were acknowledged"
        );
        // Unlisted streams are read from the oldest byte held; nothing was acknowledged.
        let got = consume(&hub, request(&[], 1000, 0)).await;
        assert_eq!(got.chunks, [chunk(1, OUT, 20, b"lf\n", 0)]);
        let got = consume(&hub, request(&[(1, OUT, 23)], 1000, 0)).await;
        assert!(got.chunks.is_empty());
        assert_eq!(hub.held(1, OUT), Some(23..23));
    }

    /// A cursor with `ack` below `offset`: the consumer holds `[ack, offset)` in memory.
    fn held_back(id: u32, stream: LogStream, offset: u64, ack: u64) -> LogsFetch {
        let mut request = request(&[(id, stream, offset)], 1000, 0);
        request.after[0].ack = Some(ack);
        request
    }

    #[tokio::test]
    async fn ack_below_offset_keeps_those_bytes_without_sending_them_again() {
        let hub = hub(1024);
        hub.register(1);
        store_all(&hub, 1, OUT, b"line 1\npart");
        let got = consume(&hub, request(&[], 1000, 0)).await;
        assert_eq!(got.chunks, [chunk(1, OUT, 0, b"line 1\npart", 0)]);
        // The consumer wrote "line 1\n" and holds "part" until its line is complete.
        let got = consume(&hub, held_back(1, OUT, 11, 7)).await;
        assert!(got.chunks.is_empty(), "held bytes are not sent again");
        assert_eq!(hub.held(1, OUT), Some(7..11), "nor freed");
        store_all(&hub, 1, OUT, b"ial\n");
        let got = consume(&hub, held_back(1, OUT, 11, 7)).await;
        assert_eq!(got.chunks, [chunk(1, OUT, 11, b"ial\n", 0)]);
        assert_eq!(hub.held(1, OUT), Some(7..15));
        // After a failed write the consumer asks again from what it wrote: still there.
        let got = consume(&hub, held_back(1, OUT, 7, 7)).await;
        assert_eq!(got.chunks, [chunk(1, OUT, 7, b"partial\n", 0)]);
        // An ack past the offset counts as the offset.
        consume(&hub, held_back(1, OUT, 12, 99)).await;
        assert_eq!(hub.held(1, OUT), Some(12..15));
        // A plain reader's ack frees nothing.
        let mut plain = held_back(1, OUT, 15, 15);
        plain.consume = false;
        hub.fetch(plain, b"stray").await.unwrap();
        assert_eq!(hub.held(1, OUT), Some(12..15));
        consume(&hub, request(&[(1, OUT, 15)], 1000, 0)).await;
        assert_eq!(
            hub.held(1, OUT),
            Some(15..15),
            "no ack: the offset acknowledges"
        );
    }

    #[tokio::test]
    async fn offset_below_start_reports_dropped_and_beyond_end_is_the_end() {
        let hub = LogHub::new(LogLimits {
            per_stream_bytes: 8,
            consumer_ttl: Duration::from_millis(1),
        });
        hub.register(3);
        // Nobody has ever fetched: the oldest bytes go.
        store_all(&hub, 3, ERR, b"0123456789abcdef");
        assert_eq!(hub.dropped(3, ERR), 8);
        assert_eq!(hub.held(3, ERR), Some(8..16));
        let got = consume(&hub, request(&[(3, ERR, 2)], 1000, 0)).await;
        assert_eq!(got.chunks, [chunk(3, ERR, 8, b"89abcdef", 6)]);
        // A confused consumer ahead of the end is treated as being at the end.
        let got = consume(&hub, request(&[(3, ERR, 500)], 1000, 0)).await;
        assert!(got.chunks.is_empty());
        assert_eq!(hub.held(3, ERR), Some(16..16));
        // Everything it asks for was dropped: an empty chunk still tells it so.
        while hub.attached(&hub.lock(), Instant::now()).is_some() {
            tokio::time::sleep(Duration::from_millis(1)).await; // the 1 ms ttl lapses
        }
        store_all(&hub, 3, ERR, b"ABCDEFGHIJ");
        assert_eq!(hub.dropped(3, ERR), 10);
        let got = consume(&hub, request(&[(3, ERR, 16), (3, OUT, 0)], 0, 0)).await;
        assert_eq!(
            got.chunks,
            [chunk(3, ERR, 18, b"C", 2)],
            "max_bytes 0 still moves"
        );
    }

    #[tokio::test]
    async fn max_bytes_is_respected_and_shared_fairly() {
        let hub = hub(64 * 1024);
        for id in 0..3 {
            hub.register(id);
        }
        store_all(&hub, 0, OUT, &vec![b'a'; 50_000]);
        store_all(&hub, 1, OUT, &[b'b'; 10]);
        store_all(&hub, 2, ERR, &vec![b'c'; 30_000]);
        let got = consume(&hub, request(&[], 1000, 0)).await;
        let sizes: Vec<_> = got
            .chunks
            .iter()
            .map(|c| (c.id, c.stream, c.data.len()))
            .collect();
        assert_eq!(sizes, [(0, OUT, 495), (1, OUT, 10), (2, ERR, 495)]);

        // A consumer that follows its cursors gets every byte, and the chatty app does not
        // hold up the quiet one.
        let mut cursors: HashMap<Key, u64> = HashMap::new();
        let mut received: HashMap<Key, usize> = HashMap::new();
        for round in 0..200 {
            let tick = format!("tick {round}\n");
            store_all(&hub, 1, OUT, tick.as_bytes());
            let after: Vec<_> = cursors.iter().map(|(&(i, s), &o)| (i, s, o)).collect();
            let got = consume(&hub, request(&after, 4096, 0)).await;
            let total: usize = got.chunks.iter().map(|c| c.data.len()).sum();
            assert!(total <= 4096);
            assert!(
                got.chunks
                    .iter()
                    .any(|c| c.id == 1 && c.data.ends_with(tick.as_bytes())),
                "the quiet app is served on every round"
            );
            for c in got.chunks {
                assert_eq!(c.dropped, 0);
                assert_eq!(
                    c.offset,
                    cursors.get(&(c.id, c.stream)).copied().unwrap_or(0)
                );
                cursors.insert((c.id, c.stream), c.offset + c.data.len() as u64);
                *received.entry((c.id, c.stream)).or_default() += c.data.len();
            }
        }
        assert_eq!(received[&(0, OUT)], 50_000);
        assert_eq!(received[&(2, ERR)], 30_000);
    }

    #[tokio::test]
    async fn tiny_budgets_take_turns() {
        let hub = hub(1024);
        for id in 0..4 {
            hub.register(id);
            store_all(&hub, id, OUT, b"xxxx");
        }
        let mut served = [0usize; 4];
        for _ in 0..8 {
            let got = consume(&hub, request(&[], 2, 0)).await;
            let total: usize = got.chunks.iter().map(|c| c.data.len()).sum();
            assert_eq!(total, 2);
            for c in got.chunks {
                served[c.id as usize] += 1;
            }
        }
        assert_eq!(served, [4, 4, 4, 4]);
    }

    #[tokio::test]
    async fn registered_again_keeps_offsets_and_remove_forgets() {
        let hub = hub(1024);
        hub.register(7);
        store_all(&hub, 7, OUT, b"run 1\n");
        hub.register(7); // a restart
        store_all(&hub, 7, OUT, b"run 2\n");
        assert_eq!(hub.held(7, OUT), Some(0..12));
        hub.remove(7);
        assert_eq!(hub.held(7, OUT), None);
        store_all(&hub, 7, OUT, b"late bytes of a deleted app\n");
        assert_eq!(hub.held(7, OUT), None);
        assert!(consume(&hub, request(&[], 1000, 0)).await.chunks.is_empty());
        assert_eq!(hub.dropped(7, OUT), 0);
    }

    #[tokio::test]
    async fn fetch_waits_for_bytes_then_answers() {
        let hub = hub(1024);
        hub.register(1);
        let started = std::time::Instant::now();
        let got = consume(&hub, request(&[], 1000, 50)).await;
        assert!(got.chunks.is_empty());
        assert!(started.elapsed() >= Duration::from_millis(50));

        let waiting = tokio::spawn({
            let hub = Arc::clone(&hub);
            async move { consume(&hub, request(&[], 1000, 20_000)).await }
        });
        // Wait until the fetch is really waiting, then give it bytes.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while hub.attached(&hub.lock(), Instant::now()).is_none() {
            assert!(std::time::Instant::now() < deadline);
            tokio::task::yield_now().await;
        }
        store_all(&hub, 1, ERR, b"wake up");
        let got = tokio::time::timeout(Duration::from_secs(10), waiting)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.chunks, [chunk(1, ERR, 0, b"wake up", 0)]);
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[tokio::test]
    async fn a_plain_reader_frees_nothing_and_never_attaches() {
        let hub = hub(8);
        hub.register(1);
        store_all(&hub, 1, OUT, b"01234567");
        for _ in 0..3 {
            // The poller of the bug report: from offset 0, one byte at a time.
            let got = hub.fetch(read(&[], 1), b"stray").await.unwrap();
            assert_eq!(got.chunks, [chunk(1, OUT, 0, b"0", 0)]);
            let got = hub.fetch(read(&[(1, OUT, 4)], 1), b"stray").await.unwrap();
            assert_eq!(got.chunks, [chunk(1, OUT, 4, b"4", 0)]);
        }
        assert_eq!(
            hub.held(1, OUT),
            Some(0..8),
            "a reader acknowledges nothing"
        );
        assert!(hub.attached(&hub.lock(), Instant::now()).is_none());
        // So a full buffer keeps taking bytes (dropping the oldest) instead of stopping.
        store_all(&hub, 1, OUT, b"89");
        assert_eq!(hub.held(1, OUT), Some(2..10));
        assert_eq!(hub.dropped(1, OUT), 2);

        // The consumer's cursor frees; a reader behind it is told what it missed.
        consume(&hub, request(&[(1, OUT, 6)], 1, 0)).await;
        assert_eq!(hub.held(1, OUT), Some(6..10));
        let got = hub
            .fetch(read(&[(1, OUT, 3)], 100), b"stray")
            .await
            .unwrap();
        assert_eq!(got.chunks, [chunk(1, OUT, 6, b"6789", 3)]);
        assert_eq!(hub.held(1, OUT), Some(6..10));
    }

    #[tokio::test]
    async fn the_first_claimant_holds_the_role_and_a_second_gets_a_conflict() {
        let hub = LogHub::new(LogLimits {
            per_stream_bytes: 8,
            consumer_ttl: Duration::from_millis(50),
        });
        hub.register(1);
        store_all(&hub, 1, OUT, b"abcdef");
        consume(&hub, request(&[(1, OUT, 2)], 100, 0)).await;
        let refused = hub.fetch(request(&[(1, OUT, 5)], 100, 0), b"other").await;
        assert!(
            matches!(refused, Err(FetchError::ConsumerTaken { .. })),
            "{refused:?}"
        );
        assert_eq!(
            hub.held(1, OUT),
            Some(2..6),
            "the refused claim freed nothing"
        );
        // The holder goes on; the other peer may still read.
        let got = hub.fetch(read(&[], 100), b"other").await.unwrap();
        assert_eq!(got.chunks, [chunk(1, OUT, 2, b"cdef", 0)]);
        consume(&hub, request(&[(1, OUT, 3)], 100, 0)).await;
        assert_eq!(hub.held(1, OUT), Some(3..6));

        // While a fetch of the holder is waiting, the role is held whatever the ttl.
        let waiting = tokio::spawn({
            let hub = Arc::clone(&hub);
            async move { consume(&hub, request(&[(1, OUT, 6)], 100, 20_000)).await }
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while hub.lock().consumer.as_ref().is_none_or(|c| c.polling == 0) {
            assert!(std::time::Instant::now() < deadline);
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(Duration::from_millis(60)).await; // past the ttl: still held
        let refused = hub.fetch(request(&[], 100, 0), b"other").await;
        assert!(
            refused.is_err(),
            "claimed while the holder polls: {refused:?}"
        );
        store_all(&hub, 1, OUT, b"g");
        let got = tokio::time::timeout(Duration::from_secs(10), waiting)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.chunks, [chunk(1, OUT, 6, b"g", 0)]);

        // The holder stops fetching: once its ttl lapses, the next claimant takes the role.
        while hub.attached(&hub.lock(), Instant::now()).is_some() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let got = hub.fetch(request(&[(1, OUT, 7)], 100, 0), b"other").await;
        assert_eq!(
            got,
            Ok(LogsFetched {
                chunks: vec![],
                epoch: hub.epoch
            })
        );
        assert_eq!(hub.held(1, OUT), Some(7..7));
        let refused = hub.fetch(request(&[], 100, 0), CONSUMER).await;
        assert!(
            refused.is_err(),
            "the old holder lost the role: {refused:?}"
        );
    }

    #[tokio::test]
    async fn a_refused_claimant_keeps_the_buffers_attached_until_it_takes_over() {
        let ttl = Duration::from_millis(200);
        let hub = LogHub::new(LogLimits {
            per_stream_bytes: 4,
            consumer_ttl: ttl,
        });
        hub.register(1);
        consume(&hub, request(&[], 100, 0)).await;
        // The consumer dies; its successor (a new peer) is refused while the claim lives.
        let refused = hub.fetch(request(&[], 100, 0), b"successor").await;
        assert!(matches!(refused, Err(FetchError::ConsumerTaken { .. })));
        // Past the old claim's ttl, but the successor asked less than a ttl ago... and
        // keeps asking: a full buffer still stops the pipe rather than dropping.
        let lapse = std::time::Instant::now() + ttl;
        while std::time::Instant::now() < lapse {
            let _ = hub.fetch(request(&[], 100, 0), b"successor").await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        store_all(&hub, 1, OUT, b"abcd");
        assert!(matches!(
            hub.store(1, OUT, b"e"),
            Stored::Part { taken: 0, .. }
        ));
        assert_eq!(hub.dropped(1, OUT), 0);
        // Its next fetch takes the role and gets every byte.
        let got = hub.fetch(request(&[], 100, 0), b"successor").await.unwrap();
        assert_eq!(got.chunks, [chunk(1, OUT, 0, b"abcd", 0)]);
        assert_eq!(got.epoch, hub.epoch);
    }

    #[tokio::test]
    async fn cursors_of_another_epoch_are_ignored() {
        let hub = hub(64);
        hub.register(1);
        store_all(&hub, 1, OUT, b"new spawner");
        let stale = LogsFetch {
            epoch: Some(hub.epoch + 1),
            ..request(&[(1, OUT, 5000)], 100, 0)
        };
        let got = consume(&hub, stale).await;
        assert_eq!(got.chunks, [chunk(1, OUT, 0, b"new spawner", 0)]);
        assert_eq!(
            hub.held(1, OUT),
            Some(0..11),
            "a stale cursor acknowledged nothing"
        );
    }
}

//! Reading one app pipe into its buffer, with backpressure while a consumer is attached.

use super::LogHub;
use super::hub::{Room, Stored};
use std::io::ErrorKind;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::futures::Notified;
use tokio::time::Instant;
use zpm_proto::LogStream;

/// Read size of a quiet pipe; it doubles after every read that fills it, up to [`MAX_READ`].
const MIN_READ: usize = 1024;
/// Largest single read.
const MAX_READ: usize = 16 * 1024;
/// A pipe silent this long gets its read buffer shrunk back to [`MIN_READ`], so idle apps
/// cost little.
const IDLE_SHRINK_AFTER: Duration = Duration::from_secs(1);

impl LogHub {
    /// Reads `reader` (an app's stdout or stderr pipe) into the buffer of (`id`, `stream`)
    /// until EOF (or a read error), then returns. Spawn it as a task, after
    /// [`LogHub::register`].
    ///
    /// When the buffer is full and a consumer is attached it stops reading, so the app blocks
    /// on write, until a fetch frees room or the consumer's ttl lapses; with no consumer
    /// attached it drops the oldest bytes instead and keeps reading.
    pub async fn pump<R: AsyncRead + Unpin + Send>(
        self: Arc<Self>,
        id: u32,
        stream: LogStream,
        mut reader: R,
        mut watch: Option<crate::spawner::serve::LineWatch>,
    ) {
        let mut buf = vec![0u8; MIN_READ];
        loop {
            let want = loop {
                let room_made = self.room_made();
                match self.room_for(id, stream, buf.len()) {
                    Room::Read(n) => break n,
                    Room::Wait(recheck_at) => wait_for_room(room_made, recheck_at).await,
                }
            };
            let grown = buf.len() > MIN_READ;
            let read = reader.read(&mut buf[..want]);
            let outcome = if grown {
                // `read` is cancel safe: if the timeout wins, nothing was consumed.
                if let Ok(outcome) = tokio::time::timeout(IDLE_SHRINK_AFTER, read).await {
                    outcome
                } else {
                    buf = vec![0u8; MIN_READ];
                    continue;
                }
            } else {
                read.await
            };
            let n = match outcome {
                Ok(0) => return,
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::debug!(id, ?stream, error = %e, "app pipe read failed; pump stops");
                    return;
                }
            };
            if watch.as_mut().is_some_and(|w| w.feed(&buf[..n])) {
                watch = None;
            }
            let mut pending = &buf[..n];
            loop {
                let room_made = self.room_made();
                match self.store(id, stream, pending) {
                    Stored::All => break,
                    Stored::Part { taken, recheck_at } => {
                        pending = &pending[taken..];
                        wait_for_room(room_made, recheck_at).await;
                    }
                }
            }
            if n == buf.len() && buf.len() < MAX_READ {
                buf.resize((buf.len() * 2).min(MAX_READ), 0);
            }
        }
    }
}

/// Waits until a fetch may have made room, or until `recheck_at` (when the consumer may
/// have gone away), whichever comes first.
async fn wait_for_room(room_made: Notified<'_>, recheck_at: Instant) {
    tokio::select! {
        () = room_made => {}
        () = tokio::time::sleep_until(recheck_at) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::super::LogLimits;
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::AsyncWriteExt;
    use tokio::task::JoinHandle;
    use zpm_proto::{LogCursor, LogsFetch};

    const OUT: LogStream = LogStream::Out;
    const DEADLINE: Duration = Duration::from_secs(20);

    fn hub(per_stream_bytes: usize, consumer_ttl: Duration) -> Arc<LogHub> {
        let hub = LogHub::new(LogLimits {
            per_stream_bytes,
            consumer_ttl,
        });
        hub.register(1);
        hub
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8).collect()
    }

    async fn fetch(hub: &LogHub, offset: Option<u64>, wait_ms: u32) -> Vec<zpm_proto::LogChunk> {
        let after = offset
            .map(|offset| LogCursor {
                id: 1,
                stream: OUT,
                offset,
                ack: None,
            })
            .into_iter()
            .collect();
        // As the registered consumer: these tests are about its backpressure.
        let request = LogsFetch {
            epoch: None,
            after,
            max_bytes: 1 << 20,
            wait_ms,
            consume: true,
        };
        hub.fetch(request, b"consumer").await.unwrap().chunks
    }

    /// Writes `data` into a duplex pipe pumped into app 1's out buffer, counting progress.
    fn pumped_writer(hub: &Arc<LogHub>, data: Vec<u8>) -> (JoinHandle<()>, Arc<AtomicUsize>) {
        let (mut writer, reader) = tokio::io::duplex(64);
        tokio::spawn(Arc::clone(hub).pump(1, OUT, reader, None));
        let written = Arc::new(AtomicUsize::new(0));
        let progress = Arc::clone(&written);
        let task = tokio::spawn(async move {
            let mut pos = 0;
            while pos < data.len() {
                pos += writer.write(&data[pos..]).await.unwrap();
                progress.store(pos, Ordering::SeqCst);
            }
        });
        (task, written)
    }

    async fn until(what: &str, mut condition: impl FnMut() -> bool) {
        let deadline = std::time::Instant::now() + DEADLINE;
        while !condition() {
            assert!(std::time::Instant::now() < deadline, "timed out: {what}");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    fn held_len(hub: &LogHub) -> u64 {
        hub.held(1, OUT).map_or(0, |r| r.end - r.start)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn attached_consumer_stops_the_pipe_until_it_fetches() {
        let hub = hub(1024, Duration::from_secs(120));
        assert!(fetch(&hub, None, 0).await.is_empty()); // attach
        let data = pattern(8192);
        let (writer, written) = pumped_writer(&hub, data.clone());
        until("buffer full", || held_len(&hub) == 1024).await;
        // Not a synchronisation: nothing may happen in this time.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!writer.is_finished(), "the app's write must block");
        assert!(written.load(Ordering::SeqCst) <= 1024 + 64);
        assert_eq!(held_len(&hub), 1024, "the pump stopped reading");

        let mut got = Vec::new();
        let mut cursor = 0;
        let deadline = std::time::Instant::now() + DEADLINE;
        while got.len() < data.len() {
            assert!(std::time::Instant::now() < deadline);
            for chunk in fetch(&hub, Some(cursor), 1000).await {
                assert_eq!((chunk.offset, chunk.dropped), (cursor, 0));
                cursor += chunk.data.len() as u64;
                got.extend_from_slice(&chunk.data);
            }
            assert!(held_len(&hub) <= 1024);
        }
        assert_eq!(got, data);
        until("writer done", || writer.is_finished()).await;
        assert_eq!(hub.dropped(1, OUT), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn consumer_gone_past_its_ttl_switches_to_dropping() {
        let hub = hub(1024, Duration::from_millis(300));
        assert!(fetch(&hub, None, 0).await.is_empty()); // attach, then go away
        let data = pattern(8192);
        let (writer, _) = pumped_writer(&hub, data.clone());
        until("writer done after the ttl", || writer.is_finished()).await;
        until("pipe drained", || {
            hub.held(1, OUT).is_some_and(|r| r.end == 8192)
        })
        .await;
        assert_eq!(hub.held(1, OUT), Some(7168..8192));
        assert_eq!(hub.dropped(1, OUT), 7168);
        let chunks = fetch(&hub, Some(0), 0).await;
        assert_eq!(chunks.len(), 1);
        assert_eq!((chunks[0].offset, chunks[0].dropped), (7168, 7168));
        assert_eq!(chunks[0].data, data[7168..]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn without_consumer_the_pipe_is_drained_and_oldest_dropped() {
        let hub = hub(1000, Duration::from_secs(120));
        let data = pattern(100_000);
        // A plain reader: the pump ends at its EOF.
        Arc::clone(&hub).pump(1, OUT, &data[..], None).await;
        assert_eq!(hub.held(1, OUT), Some(99_000..100_000));
        assert_eq!(hub.dropped(1, OUT), 99_000);
        let chunks = fetch(&hub, None, 0).await;
        assert_eq!(chunks[0].data, data[99_000..]);
        assert_eq!(
            chunks[0].dropped, 0,
            "an unlisted stream starts at the oldest byte"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn removing_the_app_unblocks_its_pump() {
        let hub = hub(1024, Duration::from_secs(120));
        assert!(fetch(&hub, None, 0).await.is_empty()); // attach
        let (writer, _) = pumped_writer(&hub, pattern(8192));
        until("buffer full", || held_len(&hub) == 1024).await;
        assert!(!writer.is_finished());
        hub.remove(1);
        until("writer done after remove", || writer.is_finished()).await;
        assert_eq!(hub.held(1, OUT), None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn long_poll_wakes_when_the_pump_brings_bytes() {
        let hub = hub(1024, Duration::from_secs(120));
        let (mut writer, reader) = tokio::io::duplex(64);
        tokio::spawn(Arc::clone(&hub).pump(1, OUT, reader, None));
        let started = std::time::Instant::now();
        let poll = tokio::spawn({
            let hub = Arc::clone(&hub);
            async move { fetch(&hub, Some(0), 15_000).await }
        });
        writer.write_all(b"partial line, no newline").await.unwrap();
        let chunks = tokio::time::timeout(DEADLINE, poll).await.unwrap().unwrap();
        assert!(started.elapsed() < Duration::from_secs(15));
        let got: Vec<u8> = chunks.into_iter().flat_map(|c| c.data).collect();
        assert!(b"partial line, no newline".starts_with(&got) && !got.is_empty());
    }
}

//! The fetch loop: fetch → write → save the ledger → fetch (whose cursors acknowledge what
//! the ledger now covers), as the host's registered log consumer.

use super::{LogError, Now, Writer};
use crate::spawner::logs::fetch_logs;
use std::convert::Infallible;
use std::io;
use std::time::Duration;
use zpm_proto::{LogsFetch, LogsFetched};
use zpm_rpc::{CallError, Client};

/// A fetch never waits less, so a deadline that keeps coming back cannot spin the loop.
const MIN_WAIT: Duration = Duration::from_millis(10);

/// Tuning of [`pull`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PullOptions {
    /// `max_bytes` of each fetch.
    pub max_bytes: u32,
    /// Longest `wait_ms` of a fetch; shorter when a partial line is due sooner.
    pub wait: Duration,
    /// Pause after a failed fetch or ledger save.
    pub error_pause: Duration,
    /// How much longer than its `wait_ms` a fetch may take before it counts as lost.
    pub call_margin: Duration,
}

impl Default for PullOptions {
    fn default() -> Self {
        Self {
            max_bytes: 4 << 20,
            wait: Duration::from_millis(300),
            error_pause: Duration::from_millis(500),
            call_margin: Duration::from_secs(10),
        }
    }
}

/// Why a [`step`] did not complete.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error("logs.fetch failed: {0}")]
    Fetch(#[from] CallError),
    #[error("the log ledger could not be saved: {0}")]
    Ledger(#[from] io::Error),
}

/// One round: writes the partial lines due, fetches (long-polling until bytes arrive, the
/// next partial line is due, or `options.wait`), shows what came to `seen` (the live
/// `log:*` events), writes it and saves the ledger. Returns the number of chunks written.
pub async fn step(
    client: &Client,
    writer: &mut Writer,
    options: &PullOptions,
    seen: impl FnOnce(&LogsFetched),
) -> Result<usize, StepError> {
    let now = Now::current();
    writer.flush_due(now)?;
    writer.save()?;
    let wait = writer
        .next_deadline()
        .map_or(options.wait, |at| at.saturating_duration_since(now.mono))
        .clamp(MIN_WAIT, options.wait.max(MIN_WAIT));
    let request = LogsFetch {
        after: writer.cursors(),
        max_bytes: options.max_bytes,
        wait_ms: u32::try_from(wait.as_millis()).unwrap_or(u32::MAX),
        consume: true,
        epoch: writer.epoch(),
    };
    let fetched = fetch_logs(client, &request, wait + options.call_margin).await?;
    let chunks = fetched.chunks.len();
    seen(&fetched);
    let written = writer.apply(fetched, Now::current());
    // Other tasks get a turn between a batch's writes and its fsyncs. A run cancelled
    // here is a process killed before its save: the ledger is made for that.
    tokio::task::yield_now().await;
    written?;
    writer.save()?;
    Ok(chunks)
}

/// Runs [`step`] forever (cancel it by dropping the future; every state it can stop in is
/// one the ledger resumes from). File failures go to `on_error`, each outage once; fetch
/// and ledger failures are logged and retried after `options.error_pause`.
///
/// The file writes and fsyncs are blocking calls on the calling task: run it where that is
/// acceptable (the logs agent's own runtime).
pub async fn pull(
    client: &Client,
    writer: &mut Writer,
    options: &PullOptions,
    mut on_error: impl FnMut(LogError),
) -> Infallible {
    let mut failing = false;
    loop {
        let outcome = step(client, writer, options, |_| {}).await;
        for error in writer.take_errors() {
            on_error(error);
        }
        match outcome {
            Ok(_) => failing = false,
            Err(e) => {
                if !failing {
                    tracing::warn!(error = %e, "log writer: will retry");
                }
                failing = true;
                tokio::time::sleep(options.error_pause).await;
            }
        }
    }
}

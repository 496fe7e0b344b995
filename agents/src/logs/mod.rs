//! The logs agent (DESIGN.md, "The log data path"); `run` is the process, `pull` the
//! fetch loop. Its writing side: the bytes pulled from
//! the spawner with `logs.fetch` go into files, per app and stream, with optional timestamp
//! prefixes or json lines, size rotation with retention and gzip, and a ledger that makes a
//! restart after SIGKILL lose nothing and write nothing twice.
//!
//! - A *route* is one source stream (app id, out or err) into one file. A stream has one
//!   route per distinct file it goes to (`out_file` or `error_file`, and `log_file`).
//! - A file with a single route in raw format without timestamps receives the bytes exactly
//!   as the app wrote them. Any other file is written line by line: a partial line is held
//!   until its newline, [`Options::flush_timeout`] or [`Options::max_partial`]; when
//!   written early, the rest of the line follows later without a second prefix, so a line
//!   is never doubled, and in a file shared by several sources lines never interleave.
//! - [`Writer::apply`] writes fetched chunks, [`Writer::save`] records in the ledger what
//!   is in the files, and [`Writer::cursors`] acknowledges only what the saved ledger
//!   covers. On [`Writer::open`], files longer than the ledger says are cut back, so the
//!   bytes fetched again are written exactly once.
//!
//! Timestamps are in the local time zone (`TZ`, else `/etc/localtime`, else UTC), read when
//! the writer opens and on [`Writer::reopen_all`].
//!
//! The ledger guards against the agent being killed, not against power loss: the log files
//! are not fsynced, so after a crash of the host a file may be shorter than recorded (bytes
//! lost, accepted as is).

mod error;
mod format;
mod ledger;
mod live;
mod pull;
mod relay;
mod rotate;
mod route;
mod run;
mod serve;
mod sink;
mod tail;
mod writer;

pub use error::{LogError, LogErrorKind};
pub use ledger::saved_targets;
pub use pull::{PullOptions, StepError, pull, step};
pub use run::{LogsError, LogsOptions, run};
pub use serve::MAX_TAIL_LINES;
pub use tail::tail;
pub use writer::Writer;

use std::ops::Add;
use std::time::{Duration, Instant, SystemTime};

/// Tuning of a [`Writer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// A partial line (no newline yet) of a line-by-line file is written this long after
    /// its first byte arrived, even without its newline.
    pub flush_timeout: Duration,
    /// A partial line this long is written at once: the spawner's buffer is bounded, so an
    /// endless line held back unacknowledged would stop the app.
    pub max_partial: usize,
    /// A file that failed to open or write is tried again after this long.
    pub retry_every: Duration,
    /// Bytes of an app with no target are kept unacknowledged this long (its target is
    /// probably on its way), then discarded and counted.
    pub unknown_hold: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            flush_timeout: Duration::from_millis(500),
            max_partial: 64 * 1024,
            retry_every: Duration::from_secs(1),
            unknown_hold: Duration::from_secs(10),
        }
    }
}

/// The time of an operation: `mono` for timeouts, `wall` for timestamps. Injected, so
/// tests can step time without sleeping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    pub mono: Instant,
    pub wall: SystemTime,
}

impl Now {
    pub fn current() -> Self {
        Self {
            mono: Instant::now(),
            wall: SystemTime::now(),
        }
    }
}

impl Add<Duration> for Now {
    type Output = Self;

    fn add(self, later: Duration) -> Self {
        Self {
            mono: self.mono + later,
            wall: self.wall + later,
        }
    }
}

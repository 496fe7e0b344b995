//! `watch`: one thread per watching app instance owns a notify (inotify) watcher over
//! the app's paths and turns bursts of changes into one [`WatchEvent::Changed`] each: after
//! the first change it waits for `delay_ms` of quiet, at most [`MAX_BURST_DELAYS`] delays
//! (so a constant writer still triggers). notify's callback filters and hands relevant
//! changes over a bounded queue; when it is full the change is dropped and counted (a
//! change is a change: the burst already pending covers it) and the tree rescanned, since
//! a new directory may have been among the dropped. Dropping the [`Watcher`] ends it all.

mod filter;
mod tree;

use filter::Filter;
pub use filter::OwnFiles;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use zpm_proto::watch::Watch;

/// Changes waiting for the watch thread.
const QUEUE: usize = 1024;
/// A burst lasts at most this many `delay_ms`, however busy the writer.
pub const MAX_BURST_DELAYS: u32 = 10;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    /// A burst of changes ended; `path` is its first changed path.
    Changed(String),
    /// Something cannot be watched (a missing path, the inotify limit…): said, not fatal.
    Failed(String),
}

enum Message {
    /// A relevant path changed; `maybe_dir`: it may be a new directory to watch.
    Changed {
        path: PathBuf,
        maybe_dir: bool,
    },
    /// The kernel's queue overflowed: changes were lost, watches may be missing.
    Rescan,
    Error(String),
    Stop,
}

/// The handle the supervisor holds: its events, and what it was built from.
pub struct Watcher {
    events: mpsc::Receiver<WatchEvent>,
    built_from: (Watch, String, OwnFiles),
    stop: Arc<AtomicBool>,
    wake: SyncSender<Message>,
}

impl Watcher {
    /// Starts watching per `watch` (its paths, or `cwd` when it names none), never
    /// reacting to `own` files.
    pub fn start(watch: &Watch, cwd: &str, own: OwnFiles, id: u32) -> Self {
        let (wake, queue) = sync_channel(QUEUE);
        let (out, events) = mpsc::channel(2);
        let stop = Arc::new(AtomicBool::new(false));
        let roots = watch.paths_or(cwd).into_iter().map(PathBuf::from).collect();
        let (filter, bad_globs) = Filter::new(roots, &watch.ignore, own.clone());
        let worker = Worker {
            id,
            filter: Arc::new(filter),
            delay: Duration::from_millis(watch.delay_ms),
            queue,
            callback_tx: wake.clone(),
            out: out.clone(),
            stop: Arc::clone(&stop),
            dropped: Arc::default(),
            bad_globs,
        };
        let spawned = std::thread::Builder::new()
            .name(format!("watch-{id}"))
            .spawn(move || worker.run());
        if let Err(e) = spawned {
            let _ = out.try_send(WatchEvent::Failed(format!("cannot start watching: {e}")));
        }
        Self {
            events,
            built_from: (watch.clone(), cwd.to_owned(), own),
            stop,
            wake,
        }
    }

    /// True if it watches what `watch` for an app in `cwd` (with these `own` files) asks.
    pub fn watches(&self, watch: &Watch, cwd: &str, own: &OwnFiles) -> bool {
        self.built_from.0 == *watch && self.built_from.1 == cwd && self.built_from.2 == *own
    }

    /// The next event; never resolves once the thread is gone.
    pub async fn next(&mut self) -> WatchEvent {
        match self.events.recv().await {
            Some(event) => event,
            None => std::future::pending().await,
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // A full queue is drained soon, and the flag read after each message.
        let _ = self.wake.try_send(Message::Stop);
    }
}

struct Worker {
    id: u32,
    filter: Arc<Filter>,
    delay: Duration,
    queue: Receiver<Message>,
    callback_tx: SyncSender<Message>,
    out: mpsc::Sender<WatchEvent>,
    stop: Arc<AtomicBool>,
    dropped: Arc<AtomicU64>,
    bad_globs: Vec<String>,
}

/// What a burst gathered.
#[derive(Default)]
struct Burst {
    first: Option<String>,
    rescan: bool,
}

impl Worker {
    fn run(self) {
        let Some(mut watcher) = self.watcher() else {
            return;
        };
        self.cover(&mut watcher);
        while let Some(first) = self.receive() {
            let mut burst = Burst::default();
            self.absorb(first, &mut burst, &mut watcher);
            if burst.first.is_none() && !burst.rescan {
                continue;
            }
            if !self.quiet_down(&mut burst, &mut watcher) {
                return;
            }
            if self.dropped.swap(0, Ordering::Relaxed) > 0 || burst.rescan {
                self.cover(&mut watcher);
            }
            let path = burst.first.unwrap_or_else(|| self.root_text());
            tracing::debug!(id = self.id, %path, "watched files changed");
            // A change already waiting for the supervisor covers this one.
            let _ = self.out.try_send(WatchEvent::Changed(path));
        }
    }

    /// notify's watcher, its callback filtering on notify's thread and never blocking.
    fn watcher(&self) -> Option<notify::RecommendedWatcher> {
        let tx = self.callback_tx.clone();
        let filter = Arc::clone(&self.filter);
        let dropped = Arc::clone(&self.dropped);
        let callback = move |result: notify::Result<notify::Event>| {
            let message = match result {
                Ok(event) if event.need_rescan() => Message::Rescan,
                Ok(event) => match filter.relevant(&event) {
                    Some(path) => Message::Changed {
                        path: path.to_path_buf(),
                        maybe_dir: may_be_new_dir(event.kind),
                    },
                    None => return,
                },
                Err(e) => Message::Error(e.to_string()),
            };
            if tx.try_send(message).is_err() {
                dropped.fetch_add(1, Ordering::Relaxed);
            }
        };
        match notify::recommended_watcher(callback) {
            Ok(watcher) => Some(watcher),
            Err(e) => {
                self.fail(format!("cannot watch: {e}"));
                None
            }
        }
    }

    /// (Re)adds a watch on every directory of every root; says what cannot be watched.
    fn cover(&self, watcher: &mut notify::RecommendedWatcher) {
        let mut problems = tree::Problems::default();
        let mut directories = 0;
        for root in self.filter.roots() {
            tree::add(watcher, root, &self.filter, &mut directories, &mut problems);
        }
        let mut all: Vec<String> = self.bad_globs.clone();
        if !problems.is_empty() {
            all.push(problems.summary());
        }
        if !all.is_empty() {
            self.fail(all.join("; "));
        }
        tracing::debug!(id = self.id, directories, "watching");
    }

    /// The next message; `None` when told to stop.
    fn receive(&self) -> Option<Message> {
        let message = self.queue.recv().ok()?;
        self.unless_stopped(message)
    }

    /// The next message before `until`: `Ok(None)` if none came, `Err` when told to stop.
    fn receive_until(&self, until: Instant) -> Result<Option<Message>, ()> {
        match self
            .queue
            .recv_timeout(until.saturating_duration_since(Instant::now()))
        {
            Ok(message) => self.unless_stopped(message).map(Some).ok_or(()),
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => Err(()),
        }
    }

    fn unless_stopped(&self, message: Message) -> Option<Message> {
        if self.stop.load(Ordering::SeqCst) || matches!(message, Message::Stop) {
            return None;
        }
        Some(message)
    }

    /// Waits until `delay` passed without a change (or the burst's cap); false if told to
    /// stop meanwhile.
    fn quiet_down(&self, burst: &mut Burst, watcher: &mut notify::RecommendedWatcher) -> bool {
        let started = Instant::now();
        let cap = started + self.delay * MAX_BURST_DELAYS;
        let mut last = started;
        loop {
            let until = (last + self.delay).min(cap);
            if Instant::now() >= until {
                return true;
            }
            match self.receive_until(until) {
                Err(()) => return false,
                Ok(None) => return true,
                Ok(Some(message)) => {
                    if self.absorb(message, burst, watcher) {
                        last = Instant::now();
                    }
                }
            }
        }
    }

    /// Takes one message into the burst; true if it was a change.
    fn absorb(
        &self,
        message: Message,
        burst: &mut Burst,
        watcher: &mut notify::RecommendedWatcher,
    ) -> bool {
        match message {
            Message::Changed { path, maybe_dir } => {
                if maybe_dir && path.is_dir() {
                    let mut problems = tree::Problems::default();
                    let mut directories = 0;
                    tree::add(
                        watcher,
                        &path,
                        &self.filter,
                        &mut directories,
                        &mut problems,
                    );
                    if !problems.is_empty() {
                        self.fail(problems.summary());
                    }
                }
                burst
                    .first
                    .get_or_insert_with(|| path.to_string_lossy().into_owned());
                true
            }
            Message::Rescan => {
                burst.rescan = true;
                true
            }
            Message::Error(e) => {
                self.fail(e);
                false
            }
            Message::Stop => false,
        }
    }

    fn root_text(&self) -> String {
        self.filter
            .roots()
            .first()
            .map_or_else(String::new, |root| root.to_string_lossy().into_owned())
    }

    fn fail(&self, why: String) {
        tracing::warn!(id = self.id, error = %why, "watch");
        let _ = self.out.try_send(WatchEvent::Failed(why));
    }
}

/// A created or renamed-in path may be a directory whose contents need watches.
fn may_be_new_dir(kind: notify::EventKind) -> bool {
    use notify::event::{CreateKind, ModifyKind};
    matches!(
        kind,
        notify::EventKind::Create(CreateKind::Folder | CreateKind::Any | CreateKind::Other)
            | notify::EventKind::Modify(ModifyKind::Name(_))
    )
}

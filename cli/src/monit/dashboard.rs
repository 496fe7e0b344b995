//! The event loop: keys, bus updates, rpc replies and timers change the state; the screen
//! is redrawn after each, at most once per [`FRAME`] for bus updates so that a busy bus
//! costs a bounded number of frames, at once for a key.

use super::feed::Update;
use super::keys::{self, Action, Verb};
use super::refetch::Refetch;
use super::state::MonitState;
use super::term::Screen;
use super::{LIST_TIMEOUT, message};
use anyhow::Context as _;
use crossterm::event::{Event as TermEvent, EventStream};
use futures::StreamExt as _;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use zpm_proto::ProcessInfo;
use zpm_proto::commands::Target;
use zpm_proto::method::app;
use zpm_rpc::Client;

/// Long enough for God to stop a slow app (kill_timeout) before it answers.
const ACTION_TIMEOUT: Duration = Duration::from_secs(60);
/// Uptimes count seconds.
const TICK: Duration = Duration::from_secs(1);
/// Bus updates are drawn at most this often.
const FRAME: Duration = Duration::from_millis(50);

/// The answers of rpc calls, which run as tasks so the screen never waits on the daemon.
enum Reply {
    List(Result<Vec<ProcessInfo>, String>),
    App {
        verb: Verb,
        name: String,
        result: Result<(), String>,
    },
}

struct Dashboard {
    screen: Screen,
    state: MonitState,
    client: Arc<Client>,
    replies: mpsc::Sender<Reply>,
    refetch: Refetch,
    /// One action at a time: a held-down `r` must not queue a restart per key repeat.
    acting: bool,
    /// When to draw next; `None`: nothing changed since the last frame.
    frame_due: Option<Instant>,
    drawn_at: Instant,
}

/// Runs until `q` (or Esc, Ctrl-C, SIGTERM, or the terminal's end).
pub async fn run(
    screen: Screen,
    state: MonitState,
    client: Client,
    mut updates: mpsc::Receiver<Update>,
) -> anyhow::Result<()> {
    let (replies, mut answers) = mpsc::channel(16);
    let now = Instant::now();
    let mut dashboard = Dashboard {
        screen,
        state,
        client: Arc::new(client),
        replies,
        refetch: Refetch::default(),
        acting: false,
        frame_due: Some(now),
        drawn_at: now,
    };
    let mut input = EventStream::new();
    let mut term = signal(SignalKind::terminate()).context("watching for SIGTERM")?;
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        dashboard.draw_if_due()?;
        let refetch_due = dashboard.refetch.due();
        let frame_due = dashboard.frame_due;
        tokio::select! {
            key = input.next() => match key {
                Some(Ok(TermEvent::Key(key))) => {
                    if dashboard.on_key(key) {
                        return Ok(());
                    }
                }
                Some(Ok(_)) => dashboard.redraw(), // a resize or a paste
                Some(Err(e)) => return Err(e).context("reading the terminal"),
                None => return Ok(()),
            },
            Some(update) = updates.recv() => {
                dashboard.apply(update);
                // What else is queued joins this frame, up to a bound: a burst is one frame.
                for _ in 1..256 {
                    let Ok(update) = updates.try_recv() else { break };
                    dashboard.apply(update);
                }
            }
            Some(answer) = answers.recv() => dashboard.on_reply(answer),
            () = sleep_until(refetch_due), if refetch_due.is_some() => dashboard.list(),
            () = sleep_until(frame_due), if frame_due.is_some() => {}
            _ = tick.tick() => dashboard.redraw(),
            _ = term.recv() => return Ok(()),
        }
    }
}

async fn sleep_until(due: Option<Instant>) {
    if let Some(due) = due {
        tokio::time::sleep_until(due.into()).await;
    }
}

impl Dashboard {
    fn draw_if_due(&mut self) -> anyhow::Result<()> {
        let now = Instant::now();
        if self.frame_due.is_some_and(|due| due <= now) {
            self.state.now = now;
            self.screen.draw(&self.state)?;
            self.frame_due = None;
            self.drawn_at = now;
        }
        Ok(())
    }

    /// Draw at the next turn of the loop.
    fn redraw(&mut self) {
        self.frame_due = Some(Instant::now());
    }

    /// Draw within a frame of the last one.
    fn redraw_soon(&mut self) {
        let due = self.drawn_at + FRAME;
        self.frame_due = Some(self.frame_due.map_or(due, |d| d.min(due)));
    }

    /// True to quit.
    fn on_key(&mut self, key: crossterm::event::KeyEvent) -> bool {
        self.redraw();
        match keys::on_key(&mut self.state, key) {
            Action::Quit => return true,
            Action::None => {}
            Action::App { .. } if self.acting => {
                self.state
                    .set_status("wait: the last action is still running", true);
            }
            Action::App { verb, id, name } => {
                self.state
                    .set_status(format!("{} {name}…", verb.doing()), false);
                self.acting = true;
                self.app_verb(verb, id, name);
            }
        }
        false
    }

    fn apply(&mut self, update: Update) {
        match update {
            Update::AppsChanged => self.refetch.changed(Instant::now()),
            Update::Metrics { host, report } => self.state.apply_metrics(&host, report),
            Update::Log(event) => self.state.apply_log(&event),
        }
        self.redraw_soon();
    }

    fn on_reply(&mut self, reply: Reply) {
        self.redraw();
        let now = Instant::now();
        match reply {
            Reply::List(Ok(apps)) => {
                self.state.set_apps(apps, now);
                self.refetch.done(now);
            }
            Reply::List(Err(e)) => {
                self.state
                    .set_status(format!("listing the apps: {e}"), true);
                self.refetch.done(now);
            }
            Reply::App { verb, name, result } => {
                self.acting = false;
                match result {
                    Ok(()) => self
                        .state
                        .set_status(format!("{} {name}", verb.done()), false),
                    Err(e) => {
                        let text = format!("{} {name}: {e}", verb.doing());
                        self.state.set_status(text, true);
                    }
                }
                self.refetch.changed(now);
            }
        }
    }

    /// Asks God for the list, in a task: the answer comes back as a [`Reply`].
    fn list(&mut self) {
        self.refetch.start();
        let (client, replies) = (Arc::clone(&self.client), self.replies.clone());
        tokio::spawn(async move {
            let apps = client.call_method::<app::List>(&None, LIST_TIMEOUT).await;
            let _ = replies.send(Reply::List(apps.map_err(message))).await;
        });
    }

    fn app_verb(&self, verb: Verb, id: u32, name: String) {
        let (client, replies) = (Arc::clone(&self.client), self.replies.clone());
        tokio::spawn(async move {
            let target = Target::new(vec![id.to_string()]);
            let result = match verb {
                Verb::Restart => {
                    client
                        .call_method::<app::Restart>(&target, ACTION_TIMEOUT)
                        .await
                }
                Verb::Stop => {
                    client
                        .call_method::<app::Stop>(&target, ACTION_TIMEOUT)
                        .await
                }
            };
            let result = result.map(drop).map_err(message);
            let _ = replies.send(Reply::App { verb, name, result }).await;
        });
    }
}

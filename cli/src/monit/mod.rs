//! `zpm monit`: PM2's terminal dashboard. It draws from what it is told, never polls: one
//! bus subscriber (`process:`, `metrics`, `log:`), an `app.list` at start and again after
//! process events (debounced), and a redraw on a key, an event, a reply or a 1 s tick (for
//! uptimes). The state is plain data ([`state`]), drawn by a pure function ([`view`]) and
//! changed by a pure key handler ([`keys`]); [`dashboard`] wires them to the world.

mod dashboard;
mod feed;
mod keys;
mod refetch;
mod state;
mod tail;
mod term;
mod view;

use crate::connect::ensure_daemon;
use anyhow::Context as _;
use std::time::{Duration, Instant};
use zpm_host::home::Home;
use zpm_proto::method::app;
use zpm_rpc::CallError;

/// A list is small and God answers at once; a daemon that does not is shown as an error.
const LIST_TIMEOUT: Duration = Duration::from_secs(5);

pub async fn run(home: &Home) -> anyhow::Result<()> {
    term::ensure_terminal()?;
    let (client, _) = ensure_daemon(home).await?;
    // Subscribed before the first list, so no change falls between the two.
    let updates = feed::subscribe(home).await?;
    let apps = client
        .call_method::<app::List>(&None, LIST_TIMEOUT)
        .await
        .map_err(|e| anyhow::anyhow!(message(e)))
        .context("listing the apps")?;
    let mut state = state::MonitState::new(Instant::now());
    state.set_apps(apps, Instant::now());
    let screen = term::Screen::enter()?;
    dashboard::run(screen, state, client, updates).await
}

/// What God said, or what went wrong reaching it.
fn message(error: CallError) -> String {
    match error {
        CallError::Remote(e) => e.message,
        other => other.to_string(),
    }
}

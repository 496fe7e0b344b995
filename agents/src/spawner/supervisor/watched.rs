//! `watch` in the supervisor: the watcher runs while the app does (or is down by itself),
//! follows spec changes, and a change restarts the run here, with reason `watch` — except
//! for a ready-gated app, which must be reloaded without downtime across all its
//! instances: that God orchestrates (`proc.changed`), as it does `zpm reload`.

use super::Supervisor;
use crate::spawner::watch::{OwnFiles, WatchEvent, Watcher};
use zpm_proto::RestartReason;
use zpm_proto::watch::Watch;

/// The next event of `watcher`; never, without one.
pub(super) async fn next_change(watcher: &mut Option<Watcher>) -> WatchEvent {
    match watcher {
        Some(watcher) => watcher.next().await,
        None => std::future::pending().await,
    }
}

impl Supervisor {
    /// Watches iff `active` and `watch` is on; rebuilt when the paths, globs, delay or
    /// cwd changed.
    pub(super) fn sync_watch(&mut self, active: bool) {
        if !(active && self.spec.watch.enabled) {
            self.watcher = None;
            return;
        }
        let own = OwnFiles::of(&self.spec.logs, &self.shared.home);
        if self
            .watcher
            .as_ref()
            .is_some_and(|w| w.watches(&self.spec.watch, &self.spec.cwd, &own))
        {
            return;
        }
        self.watcher = Some(Watcher::start(
            &self.spec.watch,
            &self.spec.cwd,
            own,
            self.id,
        ));
    }

    /// `zpm watch`/`unwatch`: the spec (and what is re-announced to a new God) changes; the
    /// watcher follows at the next [`Self::sync_watch`].
    pub(super) fn set_watch(&mut self, watch: Watch) {
        if !watch.enabled {
            self.watcher = None;
        }
        self.spec.watch = watch;
        self.reporter.hold(self.instance, &self.spec);
    }

    /// Why to restart the run now, if this event calls for it here.
    pub(super) fn on_watch_event(&mut self, event: WatchEvent) -> Option<RestartReason> {
        match event {
            WatchEvent::Failed(why) => {
                // Not fatal: the app keeps running, and `zpm describe` shows why.
                self.reporter.status_text(format!("watch: {why}"));
                None
            }
            WatchEvent::Changed(path) if self.reloads_on_change() => {
                self.reporter.changed(path);
                None
            }
            WatchEvent::Changed(path) => Some(RestartReason::Watch { path }),
        }
    }

    /// A ready-gated app (or one on shared sockets) is reloaded by God, not restarted.
    fn reloads_on_change(&self) -> bool {
        self.spec.ready.gated() || !self.spec.listen.is_empty()
    }
}

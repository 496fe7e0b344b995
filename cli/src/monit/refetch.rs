//! When to ask God for the app list again: a burst of process events (a restart is several:
//! stop, exit, start, online) costs one `app.list`, and never two run at once.

use std::time::{Duration, Instant};

/// Events closer together than this share one list.
pub const DEBOUNCE: Duration = Duration::from_millis(100);

#[derive(Debug, Default)]
pub struct Refetch {
    due: Option<Instant>,
    in_flight: bool,
    /// Something changed while a list was on its way: its answer may be stale.
    dirty: bool,
}

impl Refetch {
    /// When the next list is to be asked, if one is.
    pub fn due(&self) -> Option<Instant> {
        self.due
    }

    /// An app changed at `now`.
    pub fn changed(&mut self, now: Instant) {
        if self.in_flight {
            self.dirty = true;
        } else if self.due.is_none() {
            self.due = Some(now + DEBOUNCE);
        }
    }

    /// The list is being asked.
    pub fn start(&mut self) {
        self.due = None;
        self.in_flight = true;
    }

    /// Its answer (or error) came.
    pub fn done(&mut self, now: Instant) {
        self.in_flight = false;
        if std::mem::take(&mut self.dirty) {
            self.changed(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_costs_one_list_and_changes_during_it_one_more() {
        let t0 = Instant::now();
        let mut refetch = Refetch::default();
        assert_eq!(refetch.due(), None);
        refetch.changed(t0);
        refetch.changed(t0 + Duration::from_millis(50));
        assert_eq!(
            refetch.due(),
            Some(t0 + DEBOUNCE),
            "not pushed back by the burst"
        );
        refetch.start();
        assert_eq!(refetch.due(), None);
        refetch.changed(t0 + DEBOUNCE);
        assert_eq!(refetch.due(), None, "never two at once");
        let t1 = t0 + Duration::from_secs(1);
        refetch.done(t1);
        assert_eq!(refetch.due(), Some(t1 + DEBOUNCE), "the change during it");
        refetch.start();
        refetch.done(t1);
        assert_eq!(refetch.due(), None);
    }
}

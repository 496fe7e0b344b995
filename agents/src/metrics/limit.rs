//! max_memory_restart: which apps exceed their memory limit, and when to ask God to
//! restart one.
//!
//! Debounce, per app, counted in samples (one per interval) rather than clock time so it is
//! a pure function of what was sampled: an app may be asked for only once its current pid
//! has been seen in two consecutive samples, i.e. a full interval has passed with that pid.
//! So an app that was just restarted (by us, a crash or a user), or that the agent has just
//! started watching, is never restarted on its first, possibly start-up-inflated reading.
//! After asking, the same pid is not asked for again: the restart we asked for brings a new
//! pid, which starts the rule over. Should the pid stay the same for `retry_after` samples
//! (the request was lost, God was down or refused), we ask once more.

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use zpm_proto::metrics::AppMetrics;

/// `(id, memory seen)` of every app whose tree holds more resident bytes than its limit.
/// Apps without a limit, or with a limit of 0 (none), are never over.
pub fn over_limit<S: BuildHasher>(
    apps: &[AppMetrics],
    limits: &HashMap<u32, u64, S>,
) -> Vec<(u32, u64)> {
    apps.iter()
        .filter(|a| {
            limits
                .get(&a.id)
                .is_some_and(|&limit| limit > 0 && a.memory > limit)
        })
        .map(|a| (a.id, a.memory))
        .collect()
}

#[derive(Debug)]
pub struct RestartDebounce {
    retry_after: u32,
    apps: HashMap<u32, Track>,
}

#[derive(Debug)]
struct Track {
    pid: Option<u32>,
    /// Consecutive samples that saw `pid`, this one included.
    samples: u32,
    /// Value of `samples` when we last asked for this pid.
    asked_at: Option<u32>,
}

impl RestartDebounce {
    /// `retry_after`: samples with an unchanged pid after which a request is repeated (at
    /// least 1).
    pub fn new(retry_after: u32) -> Self {
        Self {
            retry_after: retry_after.max(1),
            apps: HashMap::new(),
        }
    }

    /// Takes one sample; returns the `(id, memory seen)` to ask God to restart now.
    pub fn check<S: BuildHasher>(
        &mut self,
        apps: &[AppMetrics],
        limits: &HashMap<u32, u64, S>,
    ) -> Vec<(u32, u64)> {
        let present: HashSet<u32> = apps.iter().map(|a| a.id).collect();
        self.apps.retain(|id, _| present.contains(id));
        for a in apps {
            let track = self.apps.entry(a.id).or_insert(Track {
                pid: a.pid,
                samples: 0,
                asked_at: None,
            });
            if track.pid == a.pid {
                track.samples = track.samples.saturating_add(1);
            } else {
                *track = Track {
                    pid: a.pid,
                    samples: 1,
                    asked_at: None,
                };
            }
        }
        over_limit(apps, limits)
            .into_iter()
            .filter(|(id, _)| {
                let Some(track) = self.apps.get_mut(id) else {
                    return false;
                };
                let due = track.pid.is_some()
                    && track.samples >= 2
                    && track
                        .asked_at
                        .is_none_or(|at| track.samples - at >= self.retry_after);
                if due {
                    track.asked_at = Some(track.samples);
                }
                due
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(id: u32, pid: Option<u32>, memory: u64) -> AppMetrics {
        AppMetrics {
            id,
            pid,
            cpu: 0.0,
            memory,
            processes: 1,
        }
    }

    #[test]
    fn over_means_strictly_above_a_nonzero_limit() {
        let limits = HashMap::from([(1, 100), (2, 100), (3, 0)]);
        let apps = [
            app(1, Some(10), 101),
            app(2, Some(20), 100),
            app(3, Some(30), 1 << 40),
            app(4, Some(40), 1 << 40),
        ];
        assert_eq!(over_limit(&apps, &limits), [(1, 101)]);
    }

    #[test]
    fn a_restart_is_asked_once_per_pid_and_only_after_a_full_interval() {
        let limits = HashMap::from([(1, 100)]);
        let mut d = RestartDebounce::new(10);
        let mut check = |pid, memory| d.check(&[app(1, pid, memory)], &limits);
        // First sight: maybe just started.
        assert!(check(Some(10), 500).is_empty());
        assert_eq!(check(Some(10), 500), [(1, 500)]);
        // Asked: the restart is on its way.
        assert!(check(Some(10), 600).is_empty());
        // Restarted: the new pid must live a full interval first.
        assert!(check(None, 0).is_empty());
        assert!(check(Some(11), 900).is_empty());
        assert_eq!(check(Some(11), 900), [(1, 900)]);
        // A crash restart resets the wait just the same.
        assert!(check(Some(12), 900).is_empty());
        assert!(check(Some(12), 50).is_empty());
        assert_eq!(check(Some(12), 900), [(1, 900)]);
    }

    #[test]
    fn a_request_that_changed_nothing_is_repeated_after_retry_after() {
        let limits = HashMap::from([(1, 100)]);
        let mut d = RestartDebounce::new(3);
        let asked: Vec<bool> = (0..9)
            .map(|_| !d.check(&[app(1, Some(10), 500)], &limits).is_empty())
            .collect();
        assert_eq!(
            asked,
            [false, true, false, false, true, false, false, true, false]
        );
    }

    #[test]
    fn apps_that_leave_are_forgotten() {
        let limits = HashMap::from([(1, 100)]);
        let mut d = RestartDebounce::new(3);
        d.check(&[app(1, Some(10), 500)], &limits);
        d.check(&[], &limits);
        assert!(d.check(&[app(1, Some(10), 500)], &limits).is_empty());
    }
}

//! The restart policy, PM2's semantics: what to do when an app's process exits.
//! Pure logic over the spec, the exit and the run's uptime, so every rule is unit-tested.

use std::time::Duration;
use zpm_proto::AppSpec;

/// A run at least this long resets the exponential backoff.
pub const BACKOFF_RESET_AFTER: Duration = Duration::from_secs(30);
/// The exponential backoff never waits longer than this.
pub const BACKOFF_MAX: Duration = Duration::from_secs(15);

/// What the policy decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The app is done: autorestart is off, or it exited with a stop exit code.
    Stop,
    /// Too many unstable restarts in a row.
    Errored,
    /// Start it again after this delay.
    Restart(Duration),
}

/// What the policy remembers between runs of one app.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RestartState {
    /// Consecutive runs shorter than `min_uptime`.
    pub unstable_restarts: u32,
    /// Current exponential backoff delay (0 = not backing off).
    pub backoff: Duration,
}

impl RestartState {
    /// Decides what follows an exit with `exit_code` (None when killed by a signal) after
    /// the process ran for `uptime`.
    pub fn on_exit(
        &mut self,
        spec: &AppSpec,
        exit_code: Option<i32>,
        uptime: Duration,
    ) -> Decision {
        if !spec.autorestart || exit_code.is_some_and(|code| spec.stop_exit_codes.contains(&code)) {
            return Decision::Stop;
        }
        let stable = uptime >= Duration::from_millis(spec.min_uptime_ms);
        if stable {
            self.unstable_restarts = 0;
        } else if self.unstable_restarts >= spec.max_restarts {
            return Decision::Errored;
        } else {
            self.unstable_restarts += 1;
        }
        Decision::Restart(self.delay(spec, uptime))
    }

    fn delay(&mut self, spec: &AppSpec, uptime: Duration) -> Duration {
        let restart_delay = Duration::from_millis(spec.restart_delay_ms);
        if spec.exp_backoff_restart_delay_ms == 0 {
            return restart_delay;
        }
        if uptime >= BACKOFF_RESET_AFTER {
            self.backoff = Duration::ZERO;
            return restart_delay;
        }
        self.backoff = if self.backoff.is_zero() {
            Duration::from_millis(spec.exp_backoff_restart_delay_ms)
        } else {
            self.backoff.mul_f64(1.5).min(BACKOFF_MAX)
        };
        self.backoff.max(restart_delay)
    }

    /// A manual restart or start forgets the crash history, as PM2 does.
    pub fn reset(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> AppSpec {
        AppSpec::new("app", vec!["x".into()], "/")
    }

    const SHORT: Duration = Duration::from_millis(10);
    const LONG: Duration = Duration::from_secs(5);

    #[test]
    fn crash_loop_becomes_errored_after_max_restarts() {
        let spec = AppSpec {
            max_restarts: 3,
            ..spec()
        };
        let mut state = RestartState::default();
        for _ in 0..3 {
            assert_eq!(
                state.on_exit(&spec, Some(1), SHORT),
                Decision::Restart(Duration::ZERO)
            );
        }
        assert_eq!(state.on_exit(&spec, Some(1), SHORT), Decision::Errored);
    }

    #[test]
    fn a_stable_run_resets_the_unstable_count_and_restarts_at_once() {
        let spec = AppSpec {
            max_restarts: 2,
            ..spec()
        };
        let mut state = RestartState::default();
        state.on_exit(&spec, Some(1), SHORT);
        state.on_exit(&spec, Some(1), SHORT);
        assert_eq!(
            state.on_exit(&spec, Some(1), LONG),
            Decision::Restart(Duration::ZERO)
        );
        assert_eq!(state.unstable_restarts, 0);
        assert_eq!(
            state.on_exit(&spec, None, SHORT),
            Decision::Restart(Duration::ZERO)
        );
    }

    #[test]
    fn stop_exit_codes_and_no_autorestart_stop() {
        let spec_codes = AppSpec {
            stop_exit_codes: vec![0, 3],
            ..spec()
        };
        let mut state = RestartState::default();
        assert_eq!(state.on_exit(&spec_codes, Some(3), SHORT), Decision::Stop);
        assert_eq!(
            state.on_exit(&spec_codes, Some(2), SHORT),
            Decision::Restart(Duration::ZERO)
        );
        assert_eq!(
            state.on_exit(&spec_codes, None, SHORT),
            Decision::Restart(Duration::ZERO)
        );
        let no_restart = AppSpec {
            autorestart: false,
            ..spec()
        };
        assert_eq!(state.on_exit(&no_restart, Some(1), LONG), Decision::Stop);
    }

    #[test]
    fn restart_delay_applies() {
        let spec = AppSpec {
            restart_delay_ms: 250,
            ..spec()
        };
        let mut state = RestartState::default();
        assert_eq!(
            state.on_exit(&spec, Some(1), LONG),
            Decision::Restart(Duration::from_millis(250))
        );
    }

    #[test]
    fn exponential_backoff_grows_by_half_caps_and_resets() {
        let spec = AppSpec {
            exp_backoff_restart_delay_ms: 100,
            max_restarts: 100,
            ..spec()
        };
        let mut state = RestartState::default();
        let delays: Vec<u128> = (0..4)
            .map(|_| match state.on_exit(&spec, Some(1), SHORT) {
                Decision::Restart(d) => d.as_millis(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(delays, vec![100, 150, 225, 337]);
        for _ in 0..20 {
            state.on_exit(&spec, Some(1), SHORT);
        }
        assert_eq!(state.backoff, BACKOFF_MAX);
        assert_eq!(
            state.on_exit(&spec, Some(1), BACKOFF_RESET_AFTER),
            Decision::Restart(Duration::ZERO)
        );
        assert_eq!(
            state.on_exit(&spec, Some(1), SHORT),
            Decision::Restart(Duration::from_millis(100))
        );
    }
}

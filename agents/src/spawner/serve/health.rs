//! Health checks of a ready run: every `interval`, every configured check, all within
//! `timeout`. A failure or a skip is told to the supervisor; `retries` failures in a row
//! make it restart the instance. One check at a time: when a check outlasts the interval,
//! the ticks it covered are skipped and counted, never queued.

use super::links::RunSignal;
use super::probe::Check;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use zpm_proto::health::{Health, HealthStatus};

pub async fn watch(checks: Vec<Check>, health: Health, signals: mpsc::Sender<RunSignal>) {
    let interval = Duration::from_millis(health.interval_ms);
    let timeout = Duration::from_millis(health.timeout_ms);
    let mut state = HealthStatus::default();
    let mut next = Instant::now() + interval;
    loop {
        tokio::time::sleep_until(next).await;
        let before = state.clone();
        match check_all(&checks, timeout).await {
            Ok(()) => {
                state.passed = state.passed.saturating_add(1);
                state.failures = 0;
                state.last = None;
            }
            Err(why) => {
                state.failures += 1;
                state.last = Some(why);
            }
        }
        let now = Instant::now();
        next += interval;
        while next <= now {
            next += interval;
            state.skipped += 1;
        }
        // Only the first pass is news (`depends_on: healthy`); later ones would be a
        // report per interval for nothing.
        let news = HealthStatus {
            passed: before.passed.max(1).min(state.passed),
            ..state.clone()
        } != before;
        if news
            && signals
                .send(RunSignal::Health(state.clone()))
                .await
                .is_err()
        {
            return;
        }
        if state.failures >= health.retries {
            return;
        }
    }
}

/// Every check passes within `timeout`, or why not.
async fn check_all(checks: &[Check], timeout: Duration) -> Result<(), String> {
    let all = async {
        for check in checks {
            if !check.passes().await {
                return Err(format!("health_{} failed", check.kind()));
            }
        }
        Ok(())
    };
    tokio::time::timeout(timeout, all)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {} ms", timeout.as_millis())))
}

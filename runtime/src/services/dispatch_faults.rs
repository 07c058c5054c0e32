//! The dispatcher facing a journal that cannot write (a full or read-only disk, a lock held
//! too long): it backs off instead of failing every 100 ms, says so once, and keeps a
//! delivered job's outcome until the journal takes it.
//!
//! Owns: [`PollFaults`] (the poll loop's back-off and its log lines) and [`record_outcome`]
//! (recording an outcome with retries). Must not touch: what is claimed or delivered
//! (`dispatch`), SQL (`journal`), or what kind an error is (`error`).

use std::time::{Duration, Instant};

use super::down_log::DownLog;
use super::error::StoreError;
use super::job_store::Outcome;
use super::Services;

/// First wait after a failed poll or record; it doubles up to [`FAULT_WAIT_MAX`].
const FAULT_WAIT_START: Duration = Duration::from_millis(100);
/// Longest wait between two tries while the journal keeps failing.
const FAULT_WAIT_MAX: Duration = Duration::from_secs(2);

/// The poll loop's view of store failures (the SQLite journal's or PostgreSQL's): how long
/// to wait before the next poll, and the log lines `DownLog` allows (the first failure, then
/// one per period, and one when the store works again).
#[derive(Default)]
pub(super) struct PollFaults {
    log: DownLog,
    wait: Duration,
}

impl PollFaults {
    /// A poll succeeded.
    pub(super) fn ok(&mut self) {
        self.log.ok("jobs");
        self.wait = Duration::ZERO;
    }

    /// A poll failed with `err`: returns how long to wait before the next one.
    pub(super) fn failed(&mut self, err: &StoreError) -> Duration {
        self.log
            .failed("jobs (no delivery until the store works again)", err);
        self.wait = next_wait(self.wait);
        self.wait
    }
}

fn next_wait(wait: Duration) -> Duration {
    if wait.is_zero() {
        FAULT_WAIT_START
    } else {
        wait.saturating_mul(2).min(FAULT_WAIT_MAX)
    }
}

/// Records the outcome of job `id`, trying again (backing off) while the journal fails,
/// until the job's lease runs out: past it the job is delivered again anyway, which the
/// lease exists for. Each failure is logged once.
pub(super) async fn record_outcome(services: &Services, id: i64, target: &str, outcome: Outcome) {
    let give_up = Instant::now() + services.settings().lease;
    let mut wait = Duration::ZERO;
    let mut logged: Option<String> = None;
    loop {
        let Err(err) = services.store().record(id, outcome.clone()).await else {
            if logged.is_some() {
                tracing::info!("job {id} ({target}): its outcome is recorded now");
            }
            return;
        };
        wait = next_wait(wait);
        let message = err.to_string();
        if Instant::now() + wait >= give_up || matches!(err, StoreError::Closed) {
            tracing::error!("job {id} ({target}): its outcome was not recorded: {message}");
            return;
        }
        if logged.as_deref() != Some(message.as_str()) {
            tracing::warn!(
                "job {id} ({target}): its outcome is not recorded yet ({message}); trying again"
            );
            logged = Some(message);
        }
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_from_100ms_to_2s() {
        let mut wait = Duration::ZERO;
        let mut seen = Vec::new();
        for _ in 0..7 {
            wait = next_wait(wait);
            seen.push(wait.as_millis());
        }
        assert_eq!(seen, [100, 200, 400, 800, 1600, 2000, 2000]);
    }

    #[test]
    fn a_failure_is_logged_once_and_the_wait_resets_on_success() {
        let mut faults = PollFaults::default();
        let err = StoreError::Closed;
        assert_eq!(faults.failed(&err), FAULT_WAIT_START);
        assert_eq!(faults.failed(&err), FAULT_WAIT_START * 2);
        faults.ok();
        assert_eq!(faults.wait, Duration::ZERO);
        assert_eq!(faults.failed(&err), FAULT_WAIT_START);
    }
}

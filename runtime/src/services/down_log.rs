//! Logging a store that is down without one line per attempt.
//!
//! Owns: `DownLog`, which logs the first failure at once, then at most one line per
//! `EVERY` (with how long and how many failures since), and one "back" line when the store
//! answers again. Must not touch: what failed or how it is retried (its callers decide).

use std::fmt::Display;
use std::time::{Duration, Instant};

/// While the store stays down, one line per this long.
pub const EVERY: Duration = Duration::from_secs(30);

/// The state of one retry loop's log.
#[derive(Debug, Default)]
pub struct DownLog {
    /// Since when the store is down, the last line logged, and the failures since it.
    down: Option<(Instant, Instant, u64)>,
}

impl DownLog {
    /// A failure: logs it if it is the first, or if the last line is `EVERY` old.
    pub fn failed(&mut self, what: &str, err: &dyn Display) {
        self.failed_at(Instant::now(), what, err);
    }

    fn failed_at(&mut self, now: Instant, what: &str, err: &dyn Display) -> bool {
        if self.down.is_none() {
            tracing::error!("{what}: {err}");
            self.down = Some((now, now, 0));
            return true;
        }
        let Some((since, logged, count)) = &mut self.down else {
            return false;
        };
        if now.duration_since(*logged) < EVERY {
            *count += 1;
            tracing::debug!("{what}: {err}");
            return false;
        }
        let secs = now.duration_since(*since).as_secs();
        tracing::error!(
            "{what}: still failing after {secs} s ({} more failure(s)): {err}",
            *count + 1
        );
        *logged = now;
        *count = 0;
        true
    }

    /// A success: logs that the store is back if it was down.
    pub fn ok(&mut self, what: &str) {
        if let Some((since, _, _)) = self.down.take() {
            let secs = since.elapsed().as_secs();
            tracing::warn!("{what}: the store is back (it was down {secs} s)");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_the_first_failure_then_once_per_period() {
        let mut log = DownLog::default();
        let t0 = Instant::now();
        assert!(log.failed_at(t0, "jobs", &"refused"));
        assert!(!log.failed_at(t0 + Duration::from_secs(1), "jobs", &"refused"));
        assert!(!log.failed_at(t0 + EVERY - Duration::from_millis(1), "jobs", &"refused"));
        assert!(log.failed_at(t0 + EVERY, "jobs", &"refused"));
        assert!(!log.failed_at(t0 + EVERY + Duration::from_secs(1), "jobs", &"refused"));
        assert!(log.down.is_some());
        log.ok("jobs");
        assert!(log.down.is_none());
        assert!(log.failed_at(t0 + EVERY * 2, "jobs", &"refused"));
    }
}

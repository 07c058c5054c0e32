//! Settings of the shared services: the `[jobs]` table and `[[timer]]` tables, as types.
//!
//! Owns: `JobsConfig` (retry policy, concurrency, leases, the store backend) with its
//! defaults, `PostgresBackend` and the check of its URL, `TimerConfig`, and `Schedule` — how a timer's period is written (`every`, `cron`, one-shot) and when it
//! next falls due. Must not touch: the journal or delivery (`services`), or TOML reading
//! (`toml_jobs`).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use super::error::{ConfigError, ValueError};

/// The `[jobs]` table: how durable jobs are retried and run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobsConfig {
    /// Deliveries tried before a job moves to the dead-letter table (per job unless overridden).
    pub max_attempts: u32,
    /// Jobs one worker delivers at the same time (their own budget, apart from client requests).
    pub concurrency: usize,
    /// Delay before the first retry; doubled for each further one, with jitter.
    pub backoff: Duration,
    /// Upper bound of a retry delay.
    pub max_backoff: Duration,
    /// How long a claimed job stays with its worker before another may take it over.
    pub lease: Duration,
    /// Where jobs and timers live: `None` for the SQLite journal in `state_dir` (one node),
    /// or a PostgreSQL database shared by several nodes (`[jobs] backend = "postgres://..."`).
    pub backend: Option<PostgresBackend>,
}

impl JobsConfig {
    /// `--jobs-backend URL` replaces the file's `[jobs] backend` (its `password_file` stays);
    /// a bad URL is an error naming the flag.
    pub(super) fn apply_backend_flag(&mut self, url: Option<&str>) -> Result<(), ConfigError> {
        let Some(url) = url else {
            return Ok(());
        };
        check_backend_url(url).map_err(|m| ConfigError::flag("--jobs-backend", String::from(m)))?;
        let password_file = self.backend.take().and_then(|b| b.password_file);
        self.backend = Some(PostgresBackend {
            url: url.to_string(),
            password_file,
        });
        Ok(())
    }
}

/// A PostgreSQL database as `[jobs] backend` (or `--jobs-backend`) names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresBackend {
    /// `postgres://user[:password]@host[:port]/db[?...]`, checked by `check_backend_url`.
    pub url: String,
    /// `[jobs] password_file`: the password, when the URL has none (else `PGPASSWORD`).
    pub password_file: Option<PathBuf>,
}

/// Checks a `[jobs] backend` value: a `postgres://` or `postgresql://` URL that the client
/// can read. The message completes "key `jobs.backend`: ...".
pub fn check_backend_url(url: &str) -> Result<(), ValueError> {
    let scheme_ok = url.starts_with("postgres://") || url.starts_with("postgresql://");
    if !scheme_ok {
        return Err(format!(
            "{url:?} is not a PostgreSQL URL (postgres://user:pass@host:port/db); \
             leave it out for the SQLite journal"
        )
        .into());
    }
    url.parse::<postgres::Config>()
        .map(drop)
        .map_err(|e| format!("is not a valid PostgreSQL URL: {e}").into())
}

impl Default for JobsConfig {
    fn default() -> Self {
        JobsConfig {
            max_attempts: 5,
            concurrency: 8,
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
            lease: Duration::from_secs(300),
            backend: None,
        }
    }
}

/// One `[[timer]]` table: a named durable timer that delivers a request on a schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimerConfig {
    pub name: String,
    pub schedule: Schedule,
    /// Route path the request goes to (the router picks Python or WASM).
    pub path: String,
    pub method: String,
    pub body: Vec<u8>,
    /// Where it was declared, for start-up errors: the file as shown and the line of `path`.
    pub file: String,
    pub path_line: usize,
}

/// When a durable timer fires.
#[derive(Clone)]
pub enum Schedule {
    /// Every period, counted from when it was set.
    Every(Duration),
    /// Once, at its first due time; the timer is removed after firing.
    Once,
    /// A five-field cron expression in local time (`*/5 * * * *`).
    Cron(Box<croner::Cron>),
}

impl Schedule {
    /// Parses a cron expression (five fields, or six with seconds first).
    pub fn cron(expression: &str) -> Result<Schedule, ValueError> {
        let cron = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Optional)
            .build()
            .parse(expression)
            .map_err(|e| format!("is not a valid cron expression: {e}"))?;
        Ok(Schedule::Cron(Box::new(cron)))
    }

    /// The first due time strictly after `now_ms` for a timer last due at `last_due_ms`
    /// (Unix milliseconds); `None` for a one-shot that has fired. Missed periods are skipped:
    /// a timer that was down for an hour fires once, then keeps its rhythm.
    pub fn next_after(&self, last_due_ms: i64, now_ms: i64) -> Option<i64> {
        match self {
            Schedule::Once => None,
            Schedule::Every(period) => {
                let period = i64::try_from(period.as_millis()).unwrap_or(i64::MAX).max(1);
                let behind = now_ms.saturating_sub(last_due_ms).max(0);
                let periods = behind / period + 1;
                Some(last_due_ms.saturating_add(periods.saturating_mul(period)))
            }
            Schedule::Cron(cron) => {
                let now =
                    chrono::DateTime::from_timestamp_millis(now_ms)?.with_timezone(&chrono::Local);
                let next = cron.find_next_occurrence(&now, false).ok()?;
                Some(next.timestamp_millis())
            }
        }
    }

    /// The first due time of a timer set at `now_ms`.
    pub fn first_due(&self, now_ms: i64, delay: Duration) -> i64 {
        let delay = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
        match self {
            Schedule::Every(period) => {
                now_ms.saturating_add(i64::try_from(period.as_millis()).unwrap_or(i64::MAX))
            }
            Schedule::Once => now_ms.saturating_add(delay),
            Schedule::Cron(_) => self.next_after(now_ms, now_ms).unwrap_or(i64::MAX),
        }
    }
}

/// Stored form, as kept in the journal: `every 30000`, `once`, `cron */5 * * * *`.
impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Schedule::Every(period) => write!(f, "every {}", period.as_millis()),
            Schedule::Once => write!(f, "once"),
            Schedule::Cron(cron) => write!(f, "cron {}", cron.as_str()),
        }
    }
}

impl FromStr for Schedule {
    type Err = ValueError;

    fn from_str(stored: &str) -> Result<Schedule, ValueError> {
        let (kind, rest) = stored.split_once(' ').unwrap_or((stored, ""));
        match kind {
            "every" => rest
                .parse::<u64>()
                .ok()
                .filter(|ms| *ms > 0)
                .map(|ms| Schedule::Every(Duration::from_millis(ms)))
                .ok_or_else(|| format!("bad period in schedule {stored:?}").into()),
            "once" => Ok(Schedule::Once),
            "cron" => Schedule::cron(rest),
            _ => Err(format!("unknown schedule {stored:?}").into()),
        }
    }
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        self.to_string() == other.to_string()
    }
}

impl Eq for Schedule {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_skips_missed_periods() {
        let every = Schedule::Every(Duration::from_millis(1000));
        assert_eq!(every.next_after(10_000, 10_000), Some(11_000));
        assert_eq!(every.next_after(10_000, 10_999), Some(11_000));
        assert_eq!(every.next_after(10_000, 13_500), Some(14_000));
        assert_eq!(every.first_due(5_000, Duration::ZERO), 6_000);
    }

    #[test]
    fn once_fires_once() {
        assert_eq!(Schedule::Once.next_after(1, 2), None);
        assert_eq!(
            Schedule::Once.first_due(100, Duration::from_millis(50)),
            150
        );
    }

    #[test]
    fn cron_finds_the_next_minute() {
        let cron = Schedule::cron("* * * * *").expect("valid");
        let now = 1_700_000_000_000_i64; // a whole second
        let next = cron.next_after(now, now).expect("a next time");
        assert!(next > now && next <= now + 60_000, "{next}");
        assert_eq!(next % 60_000, 0);
        assert!(Schedule::cron("61 * * * *").is_err());
    }

    #[test]
    fn stored_form_round_trips() {
        for text in ["every 1500", "once", "cron */5 * * * *"] {
            let schedule: Schedule = text.parse().expect("parses");
            assert_eq!(schedule.to_string(), text);
        }
        assert!("every 0".parse::<Schedule>().is_err());
        assert!("hourly".parse::<Schedule>().is_err());
    }
}

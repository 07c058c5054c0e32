//! `wsrun.toml`'s service tables: `[jobs]` (retry policy of durable jobs) and `[[timer]]`
//! (durable timers declared in the file), plus the start-up check that every timer's path is
//! served by a route.
//!
//! Owns: which keys these tables take, their value rules (counts >= 1, durations > 0,
//! `max_backoff >= backoff`, one schedule per timer, unique names, request-shaped `path` and
//! `method`), and locating every error by file, line and dotted key (`jobs.lease`,
//! `timer[2].every`, timers counted from 1 in file order). Must not touch: `[server]` or routes
//! (`toml_file`, `toml_routes`), the typed readers (`toml_values`), the journal or delivery
//! (`services`).

use std::ops::Range;
use std::time::Duration;

use toml::de::{DeTable, DeValue};

use super::error::ConfigError;
use super::jobs::{check_backend_url, PostgresBackend, Schedule, TimerConfig};
use super::model::Config;
use super::toml_values::{in_order, At, Doc, Key, Res, Value};
use super::units::format_duration;

const JOBS_KEYS: &[&str] = &[
    "max_attempts",
    "concurrency",
    "backoff",
    "max_backoff",
    "lease",
    "backend",
    "password_file",
];
const TIMER_KEYS: &[&str] = &["name", "every", "cron", "path", "method", "body"];

impl Doc<'_> {
    /// The `[jobs]` table.
    pub(super) fn jobs(&self, k: &Key, value: &Value, config: &mut Config) -> Res<()> {
        let DeValue::Table(table) = value.get_ref() else {
            let msg = match value.get_ref() {
                DeValue::Array(_) => "write it as one [jobs] table, not [[jobs]]".to_string(),
                other => format!("expected a table ([jobs]), found {}", other.type_str()),
            };
            return Err(self.err(k.span(), "jobs", msg));
        };
        let jobs = &mut config.jobs;
        // Where `backoff` and `max_backoff` were written, to blame the right one.
        let mut backoff_at = None;
        let mut max_backoff_at = None;
        let mut password_file = None;
        for (k, v) in in_order(table) {
            let name: &str = k.get_ref();
            let at = self.at(format!("jobs.{name}"), v);
            match name {
                "max_attempts" => {
                    jobs.max_attempts =
                        u32::try_from(at.count()?).map_err(|_| at.err("is too large"))?
                }
                "concurrency" => jobs.concurrency = at.count()?,
                "backoff" => {
                    jobs.backoff = positive(&at)?;
                    backoff_at = Some(v.span());
                }
                "max_backoff" => {
                    jobs.max_backoff = positive(&at)?;
                    max_backoff_at = Some(v.span());
                }
                "lease" => jobs.lease = positive(&at)?,
                "backend" => {
                    let url = at.string()?;
                    check_backend_url(url).map_err(|m| at.err(m))?;
                    jobs.backend = Some(PostgresBackend {
                        url: url.to_string(),
                        password_file: None,
                    });
                }
                "password_file" => password_file = Some((at.path()?, v.span())),
                _ => return Err(at.unknown(k, JOBS_KEYS, &[])),
            }
        }
        if let Some((file, span)) = password_file {
            let Some(backend) = &mut jobs.backend else {
                let msg = "is for a PostgreSQL backend: set jobs.backend too";
                return Err(self.err(span, "jobs.password_file", msg));
            };
            backend.password_file = Some(file);
        }
        if jobs.max_backoff < jobs.backoff {
            let (max, min) = (
                format_duration(jobs.max_backoff),
                format_duration(jobs.backoff),
            );
            let (span, key, msg) = match (max_backoff_at, backoff_at) {
                (Some(span), _) => (
                    span,
                    "jobs.max_backoff",
                    format!("({max}) must be at least jobs.backoff ({min})"),
                ),
                (None, span) => (
                    span.unwrap_or_else(|| k.span()),
                    "jobs.backoff",
                    format!("({min}) is above jobs.max_backoff ({max}, the default); raise it too"),
                ),
            };
            return Err(self.err(span, key, msg));
        }
        Ok(())
    }

    /// `[[timer]]` tables, appended to `config.timers`.
    pub(super) fn timers(&self, k: &Key, value: &Value, config: &mut Config) -> Res<()> {
        let items = match value.get_ref() {
            DeValue::Array(items) => items,
            DeValue::Table(_) => {
                let msg = "write timers as [[timer]] (an array of tables), not [timer]";
                return Err(self.err(k.span(), "timer", msg));
            }
            _ => return Err(self.at("timer".into(), value).type_err("[[timer]] tables")),
        };
        for item in items {
            let n = config.timers.len() + 1;
            let DeValue::Table(table) = item.get_ref() else {
                return Err(self.at(format!("timer[{n}]"), item).type_err("a table"));
            };
            let timer = self.timer(n, item.span(), table, &config.timers)?;
            config.timers.push(timer);
        }
        Ok(())
    }

    fn timer(
        &self,
        n: usize,
        header: Range<usize>,
        table: &DeTable,
        earlier: &[TimerConfig],
    ) -> Res<TimerConfig> {
        let name_n = format!("timer[{n}]");
        let mut name = None;
        let mut schedule: Option<(Schedule, &str)> = None;
        let mut path = None;
        let mut method = "POST".to_string();
        let mut body = Vec::new();
        for (k, v) in in_order(table) {
            let key: &str = k.get_ref();
            let at = self.at(format!("{name_n}.{key}"), v);
            match key {
                "name" => name = Some(timer_name(&at, earlier)?),
                "every" | "cron" => {
                    if let Some((_, other)) = &schedule {
                        let msg = format!(
                            "a timer takes exactly one of `every` or `cron`, and `{other}` is already set"
                        );
                        return Err(at.err_at(k.span(), msg));
                    }
                    let parsed = match key {
                        "every" => Schedule::Every(positive(&at)?),
                        _ => Schedule::cron(at.string()?).map_err(|m| at.err(m))?,
                    };
                    schedule = Some((parsed, key));
                }
                "path" => path = Some((timer_path(&at)?, self.line(v.span().start))),
                "method" => method = timer_method(&at)?,
                "body" => body = at.string()?.as_bytes().to_vec(),
                _ => return Err(at.unknown(k, TIMER_KEYS, &[])),
            }
        }
        let Some(name) = name else {
            let msg = "is required, e.g. name = \"cleanup\"";
            return Err(self.err(header, &format!("{name_n}.name"), msg));
        };
        let Some((schedule, _)) = schedule else {
            let msg = "needs a schedule: every = \"30s\" or cron = \"*/5 * * * *\"";
            return Err(self.err(header, &name_n, msg));
        };
        let Some((path, path_line)) = path else {
            let msg =
                "is required: the route path the timer's request goes to, e.g. \"/tasks/cleanup\"";
            return Err(self.err(header, &format!("{name_n}.path"), msg));
        };
        Ok(TimerConfig {
            name,
            schedule,
            path,
            method,
            body,
            file: self.file.to_string(),
            path_line,
        })
    }
}

/// A duration above zero.
fn positive(at: &At) -> Res<Duration> {
    let duration = at.duration()?;
    if duration.is_zero() {
        return Err(at.err("must be more than zero"));
    }
    Ok(duration)
}

fn timer_name(at: &At, earlier: &[TimerConfig]) -> Res<String> {
    let name = at.string()?.trim();
    if name.is_empty() {
        return Err(at.err("is empty"));
    }
    if name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(at.err("must be at most 200 printable characters"));
    }
    if let Some(i) = earlier.iter().position(|t| t.name == name) {
        let msg = format!(
            "timer `{name}` is declared twice (first as timer[{}])",
            i + 1
        );
        return Err(at.err(msg));
    }
    Ok(name.to_string())
}

fn timer_path(at: &At) -> Res<String> {
    let path = at.string()?;
    if !path.starts_with('/') {
        return Err(at.err(format!("`{path}` must start with `/`")));
    }
    if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(at.err("holds spaces or control characters (percent-encode them, e.g. %20)"));
    }
    Ok(path.to_string())
}

fn timer_method(at: &At) -> Res<String> {
    let method = at.string()?;
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if method.is_empty() || !method.bytes().all(token) {
        return Err(at.err(format!(
            "`{method}` is not an HTTP method (a token such as POST)"
        )));
    }
    Ok(method.to_string())
}

/// The first `[[timer]]` whose path no route serves, as an error naming its file, line and
/// `timer[N].path`. `serves` answers for a path without its query (routes with no hosts).
/// With `--watch`, a path may be served by a handler that appears later, so none is refused.
pub fn check_timer_routes(
    config: &Config,
    serves: impl Fn(&str) -> bool,
) -> Result<(), ConfigError> {
    if config.watch.is_some() {
        return Ok(());
    }
    for (i, timer) in config.timers.iter().enumerate() {
        let path = timer.path.split(['?', '#']).next().unwrap_or("/");
        if !serves(path) {
            let key = format!("timer[{}].path", i + 1);
            let msg = format!("no route serves `{path}` (for requests without a Host)");
            return Err(ConfigError::new(
                &timer.file,
                Some(timer.path_line),
                Some(&key),
                msg,
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "toml_jobs_tests.rs"]
mod tests;

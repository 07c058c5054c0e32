//! The limits and capabilities of a WebAssembly route, as written and as resolved.
//!
//! Owns: `WasmSettings` (what a `[[route]]` or `[[tenant]]` table says; every key optional),
//! `WasmLimits` (what a route runs with after route -> tenant -> default fallback), the safe
//! defaults, and the grammar of `allow_outbound` origins and `env` names. Must not touch: the
//! TOML reader or the command line (they call in here), or anything at run time.
//!
//! Defaults are for untrusted code: 128 MiB of linear memory (and host resources sized to
//! it), 30 s of wall-clock time and 10 s of running time, 100 instances at once per route and
//! per tenant and worker, 2 GiB per tenant and worker, no outbound HTTP, an empty
//! environment, 64 KiB / 1000 lines of log per request and 100 log lines a second per route;
//! when outbound HTTP is allowed: 8 requests in flight per instance, 32 per route or tenant
//! and worker, 5 s to resolve and connect; job quotas per tenant (`JobQuotas`).

use std::time::Duration;

use super::error::ValueError;

/// Linear memory a guest may grow to when nothing says otherwise.
pub const DEFAULT_MEMORY: u64 = 128 * 1024 * 1024;
/// Wall-clock time an instance may run (start to last response byte) when nothing says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Instances of one route running at once in one worker when nothing says otherwise.
pub const DEFAULT_MAX_CONCURRENCY: usize = 100;
/// Running time (computing, not waiting) of one instance when nothing says otherwise; the
/// budget in effect is never above the route's `timeout`.
pub const DEFAULT_CPU_TIME: Duration = Duration::from_secs(10);
/// The most requests `requests_per_instance` lets one instance serve.
pub const MAX_REQUESTS_PER_INSTANCE: u32 = 1_000_000;
/// Instances of all of one tenant's routes running at once in one worker when the tenant does
/// not set `max_concurrency` (the worker's instance pool has 1000 slots for everyone).
pub const DEFAULT_TENANT_MAX_CONCURRENCY: usize = 100;
/// Bytes of stdout/stderr lines one instance may log when nothing says otherwise.
pub const DEFAULT_LOG_BYTES: u64 = 64 * 1024;
/// Stdout/stderr lines (empty ones too) one instance may log when nothing says otherwise.
pub const DEFAULT_LOG_LINES: u64 = 1000;
/// Log lines a second all instances of a route may log when nothing says otherwise (with a
/// burst of twice as many).
pub const DEFAULT_LOG_RATE: u64 = 100;
/// Outgoing requests one instance may have in flight when nothing says otherwise.
pub const DEFAULT_OUTBOUND_PER_REQUEST: usize = 8;
/// Outgoing requests in flight per route (or tenant, for `[[tenant]]`) and worker by default.
pub const DEFAULT_MAX_OUTBOUND: usize = 32;
/// Time to resolve, connect and handshake one outgoing request when nothing says otherwise.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest `memory` accepted: the guest address space of wasm32.
pub const MAX_MEMORY: u64 = 4 * 1024 * 1024 * 1024;
/// The most host memory one guest resource may hold (a `Fields` at the field-size limit, or an
/// outgoing body's buffered chunks): what `max_resources` is sized against.
pub const RESOURCE_WORST_BYTES: u64 = 128 * 1024;
/// Bounds of the derived `max_resources` default (a hello-world handler uses about 10).
pub const MIN_DEFAULT_RESOURCES: usize = 64;
pub const MAX_DEFAULT_RESOURCES: usize = 1024;
/// Linear memory all of one tenant's instances in one worker may hold at once, when the
/// tenant does not say (`memory_total`): a tenant cannot take the whole worker.
pub const DEFAULT_TENANT_MEMORY_TOTAL: u64 = 2 * 1024 * 1024 * 1024;
/// The largest `max_resources` accepted.
pub const MAX_RESOURCES: usize = 1 << 20;

// Job and timer quotas (issue 11, finding 4): per tenant, or per route outside any tenant.
/// Jobs a tenant may hold in the journal (pending or dead-lettered) when nothing says otherwise.
pub const DEFAULT_MAX_JOBS: u64 = 1000;
/// Bytes of those jobs (method, path, headers and body) when nothing says otherwise.
pub const DEFAULT_MAX_JOB_BYTES: u64 = 64 * 1024 * 1024;
/// Durable timers a tenant may have set when nothing says otherwise.
pub const DEFAULT_MAX_TIMERS: u64 = 100;
/// The shortest period a tenant's `every` timer may have when nothing says otherwise.
pub const DEFAULT_MIN_TIMER_PERIOD: Duration = Duration::from_secs(1);
/// The most attempts a tenant's job may ask for when nothing says otherwise (more is refused).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 10;

/// WASM keys as written in one table; `None` means "not said here".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WasmSettings {
    pub memory: Option<u64>,
    pub timeout: Option<Duration>,
    pub max_concurrency: Option<usize>,
    pub allow_outbound: Option<Vec<Origin>>,
    pub env: Option<Vec<(String, String)>>,
    pub max_resources: Option<usize>,
    /// Tenant only: the tenant's shared memory budget per worker (not inherited by routes).
    pub memory_total: Option<u64>,
    // Job and timer quotas: on a `[[tenant]]` or a plain wasm `[[route]]`.
    pub max_jobs: Option<u64>,
    pub max_job_bytes: Option<u64>,
    pub max_timers: Option<u64>,
    pub min_timer_period: Option<Duration>,
    pub max_attempts: Option<u32>,
    pub cpu_time: Option<Duration>,
    pub log_bytes: Option<u64>,
    pub log_lines: Option<u64>,
    pub log_rate: Option<u64>,
    pub outbound_per_request: Option<usize>,
    pub max_outbound: Option<usize>,
    pub connect_timeout: Option<Duration>,
    pub requests_per_instance: Option<u32>,
}

impl WasmSettings {
    /// True when no WASM key was written.
    pub fn is_empty(&self) -> bool {
        *self == WasmSettings::default()
    }

    /// The limits a route runs with: its own value, else the tenant's, else the default.
    /// A tenant's `max_concurrency` and `max_outbound` are its own caps and are not inherited
    /// by its routes.
    pub fn resolve(&self, tenant: Option<&WasmSettings>) -> WasmLimits {
        let fallback = tenant.cloned().unwrap_or_default();
        let memory = self.memory.or(fallback.memory).unwrap_or(DEFAULT_MEMORY);
        let timeout = self.timeout.or(fallback.timeout).unwrap_or(DEFAULT_TIMEOUT);
        WasmLimits {
            memory,
            timeout,
            max_concurrency: self.max_concurrency.unwrap_or(DEFAULT_MAX_CONCURRENCY),
            allow_outbound: self
                .allow_outbound
                .clone()
                .or(fallback.allow_outbound)
                .unwrap_or_default(),
            env: self.env.clone().or(fallback.env).unwrap_or_default(),
            max_resources: self
                .max_resources
                .or(fallback.max_resources)
                .unwrap_or_else(|| default_resources(memory)),
            quotas: JobQuotas {
                max_jobs: self
                    .max_jobs
                    .or(fallback.max_jobs)
                    .unwrap_or(DEFAULT_MAX_JOBS),
                max_job_bytes: self
                    .max_job_bytes
                    .or(fallback.max_job_bytes)
                    .unwrap_or(DEFAULT_MAX_JOB_BYTES),
                max_timers: self
                    .max_timers
                    .or(fallback.max_timers)
                    .unwrap_or(DEFAULT_MAX_TIMERS),
                min_timer_period: self
                    .min_timer_period
                    .or(fallback.min_timer_period)
                    .unwrap_or(DEFAULT_MIN_TIMER_PERIOD),
                max_attempts: self
                    .max_attempts
                    .or(fallback.max_attempts)
                    .unwrap_or(DEFAULT_MAX_ATTEMPTS),
            },
            cpu_time: self
                .cpu_time
                .or(fallback.cpu_time)
                .unwrap_or(DEFAULT_CPU_TIME)
                .min(timeout),
            log_bytes: self
                .log_bytes
                .or(fallback.log_bytes)
                .unwrap_or(DEFAULT_LOG_BYTES),
            log_lines: self
                .log_lines
                .or(fallback.log_lines)
                .unwrap_or(DEFAULT_LOG_LINES),
            log_rate: self
                .log_rate
                .or(fallback.log_rate)
                .unwrap_or(DEFAULT_LOG_RATE),
            outbound_per_request: self
                .outbound_per_request
                .or(fallback.outbound_per_request)
                .unwrap_or(DEFAULT_OUTBOUND_PER_REQUEST),
            max_outbound: self.max_outbound.unwrap_or(DEFAULT_MAX_OUTBOUND),
            connect_timeout: self
                .connect_timeout
                .or(fallback.connect_timeout)
                .unwrap_or(DEFAULT_CONNECT_TIMEOUT),
            requests_per_instance: self
                .requests_per_instance
                .or(fallback.requests_per_instance)
                .unwrap_or(1),
        }
    }
}

/// `max_resources` when nothing says otherwise: as many worst-case resources as fit in the
/// route's `memory`, so host-side memory is bounded by the same budget as linear memory
/// (16 MiB -> 128 resources, 128 MiB -> 1024), within 64..=1024.
pub fn default_resources(memory: u64) -> usize {
    let fit = usize::try_from(memory / RESOURCE_WORST_BYTES).unwrap_or(usize::MAX);
    fit.clamp(MIN_DEFAULT_RESOURCES, MAX_DEFAULT_RESOURCES)
}

/// What a tenant's (or a plain wasm route's) handlers may keep in the job journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobQuotas {
    /// Jobs held in the journal, pending or dead-lettered; past it `enqueue` is refused.
    pub max_jobs: u64,
    /// Stored bytes of those jobs (method, path, headers and body).
    pub max_job_bytes: u64,
    /// Durable timers set at once.
    pub max_timers: u64,
    /// Shortest period of an `every` timer.
    pub min_timer_period: Duration,
    /// Highest `max_attempts` a job may ask for; a higher one is refused.
    pub max_attempts: u32,
}

/// What one WASM route runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WasmLimits {
    /// Bytes of linear memory an instance may grow to; growing past it fails inside the guest.
    pub memory: u64,
    /// Wall-clock budget of one instance; past it the request gets 504 (or is cut if streaming).
    pub timeout: Duration,
    /// Instances at once per worker; past it the request gets 503 with Retry-After.
    pub max_concurrency: usize,
    /// Origins outgoing requests may go to; empty means none.
    pub allow_outbound: Vec<Origin>,
    /// The guest's whole environment.
    pub env: Vec<(String, String)>,
    /// Host resources (fields, requests, bodies, streams, ...) an instance may hold at once;
    /// with the per-resource caps this bounds the host memory a guest can make the worker hold.
    pub max_resources: usize,
    /// Job and timer quotas of the route's tenant (or of the route, outside any tenant).
    pub quotas: JobQuotas,
    /// Running time of one instance (at most `timeout`); past it the instance is stopped and
    /// the request gets 500 naming the budget (or is cut if streaming).
    pub cpu_time: Duration,
    /// Bytes of log lines one instance may write; the rest is dropped and counted.
    pub log_bytes: u64,
    /// Log lines one instance may write; the rest is dropped and counted.
    pub log_lines: u64,
    /// Log lines a second for all instances of the route (burst: twice as many).
    pub log_rate: u64,
    /// Outgoing requests one instance may have in flight; past it: `connection-limit-reached`.
    pub outbound_per_request: usize,
    /// Outgoing requests the route's instances may have in flight per worker (the tenant has
    /// its own cap, `TenantConfig::defaults.max_outbound`); past it: `connection-limit-reached`.
    pub max_outbound: usize,
    /// Budget to resolve, connect and handshake one outgoing request (never past `timeout`).
    pub connect_timeout: Duration,
    /// Requests one instance serves, one after another, before it is dropped: 1 (the
    /// default) is a fresh instance per request; more keeps a finished instance warm for the
    /// route's next request (its globals and heap carry over; `memory`, `max_resources` and
    /// the log budget are then the instance's, `timeout` and `cpu_time` each request's).
    pub requests_per_instance: u32,
}

impl Default for WasmLimits {
    fn default() -> Self {
        WasmSettings::default().resolve(None)
    }
}

/// An origin outgoing requests may reach: `scheme://host[:port]`, or `*` for any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Any,
    Exact {
        scheme: String,
        host: String,
        port: u16,
    },
}

impl Origin {
    /// Does a request to `scheme://host:port` fall under this origin? (`host` any case.)
    pub fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        match self {
            Origin::Any => true,
            Origin::Exact {
                scheme: s,
                host: h,
                port: p,
            } => s.eq_ignore_ascii_case(scheme) && h.eq_ignore_ascii_case(host) && *p == port,
        }
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Any => write!(f, "*"),
            Origin::Exact { scheme, host, port } => write!(f, "{scheme}://{host}:{port}"),
        }
    }
}

/// The port a scheme implies when none is written.
pub fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// Parses an `allow_outbound` entry: `https://api.example.com`, `http://127.0.0.1:9000`, `*`.
pub fn parse_origin(s: &str) -> Result<Origin, ValueError> {
    let t = s.trim();
    if t == "*" {
        return Ok(Origin::Any);
    }
    let bad =
        |why: &str| format!("`{s}` is not an origin ({why}; e.g. \"https://api.example.com\")");
    let (scheme, rest) = t.split_once("://").ok_or_else(|| bad("no scheme"))?;
    let scheme = scheme.to_ascii_lowercase();
    let implied = default_port(&scheme).ok_or_else(|| bad("the scheme must be http or https"))?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() || rest.contains(['/', '?', '#', '@']) {
        return Err(bad("only scheme://host[:port], without a path").into());
    }
    // The port separator is the last `:` outside an IPv6 literal's brackets.
    let host_end = rest.rfind(']').map_or(0, |i| i + 1);
    let (host, port) = match rest[host_end..].rfind(':') {
        Some(i) => {
            let (host, port) = rest.split_at(host_end + i);
            let port = port[1..]
                .parse()
                .map_err(|_| bad("the port is not a number"))?;
            (host, port)
        }
        None => (rest, implied),
    };
    if host.is_empty() {
        return Err(bad("no host").into());
    }
    Ok(Origin::Exact {
        scheme,
        host: host.to_ascii_lowercase(),
        port,
    })
}

/// Checks an environment variable name: not empty, no `=` and no NUL.
pub fn check_env_name(name: &str) -> Result<(), ValueError> {
    if name.is_empty() || name.contains(['=', '\0']) {
        return Err(format!(
            "`{name}` cannot be an environment variable name (empty, or has `=` or NUL)"
        )
        .into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_parse_and_match() {
        let o = parse_origin("https://API.example.com").unwrap();
        assert!(o.allows("https", "api.example.com", 443));
        assert!(!o.allows("http", "api.example.com", 80));
        assert!(!o.allows("https", "api.example.com", 8443));
        let local = parse_origin("http://127.0.0.1:9000/").unwrap();
        assert!(local.allows("http", "127.0.0.1", 9000));
        assert_eq!(local.to_string(), "http://127.0.0.1:9000");
        assert_eq!(parse_origin("*"), Ok(Origin::Any));
        let v6 = parse_origin("http://[::1]:8080").unwrap();
        assert!(v6.allows("http", "[::1]", 8080));
        assert!(parse_origin("http://[::1]")
            .unwrap()
            .allows("http", "[::1]", 80));
        for bad in [
            "example.com",
            "ftp://x",
            "http://x/path",
            "http://x:port",
            "http://",
        ] {
            assert!(parse_origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn route_then_tenant_then_default() {
        let tenant = WasmSettings {
            memory: Some(32 << 20),
            max_concurrency: Some(4),
            env: Some(vec![("A".into(), "1".into())]),
            ..WasmSettings::default()
        };
        let route = WasmSettings {
            timeout: Some(Duration::from_secs(1)),
            ..WasmSettings::default()
        };
        let limits = route.resolve(Some(&tenant));
        assert_eq!(limits.memory, 32 << 20);
        assert_eq!(limits.timeout, Duration::from_secs(1));
        assert_eq!(limits.max_concurrency, DEFAULT_MAX_CONCURRENCY);
        assert_eq!(limits.env, vec![("A".to_string(), "1".to_string())]);
        assert!(limits.allow_outbound.is_empty());
        assert_eq!(WasmLimits::default().memory, DEFAULT_MEMORY);
        assert_eq!(limits.max_resources, 256);
        assert_eq!(WasmLimits::default().max_resources, 1024);
        assert_eq!(default_resources(16 << 20), 128);
        assert_eq!(default_resources(64 << 10), MIN_DEFAULT_RESOURCES);
    }

    #[test]
    fn quotas_come_from_the_tenant_else_the_defaults() {
        let tenant = WasmSettings {
            max_jobs: Some(5),
            min_timer_period: Some(Duration::from_millis(100)),
            ..WasmSettings::default()
        };
        let quotas = WasmSettings::default().resolve(Some(&tenant)).quotas;
        assert_eq!(quotas.max_jobs, 5);
        assert_eq!(quotas.min_timer_period, Duration::from_millis(100));
        assert_eq!(quotas.max_job_bytes, DEFAULT_MAX_JOB_BYTES);
        assert_eq!(quotas.max_timers, DEFAULT_MAX_TIMERS);
        assert_eq!(quotas.max_attempts, DEFAULT_MAX_ATTEMPTS);
    }

    #[test]
    fn cpu_time_and_log_budgets_resolve() {
        let short = WasmSettings {
            timeout: Some(Duration::from_secs(1)),
            ..WasmSettings::default()
        };
        let limits = short.resolve(None);
        assert_eq!(
            limits.cpu_time,
            Duration::from_secs(1),
            "not above the timeout"
        );
        assert_eq!(WasmLimits::default().cpu_time, DEFAULT_CPU_TIME);
        let logs = WasmSettings {
            log_lines: Some(5),
            ..WasmSettings::default()
        };
        let tenant_logs = WasmSettings {
            log_lines: Some(7),
            log_rate: Some(3),
            ..WasmSettings::default()
        };
        let limits = logs.resolve(Some(&tenant_logs));
        assert_eq!((limits.log_lines, limits.log_rate), (5, 3));
        assert_eq!(limits.log_bytes, DEFAULT_LOG_BYTES);
    }

    #[test]
    fn outbound_caps_resolve_like_concurrency() {
        let tenant = WasmSettings {
            outbound_per_request: Some(2),
            max_outbound: Some(4),
            connect_timeout: Some(Duration::from_secs(1)),
            ..WasmSettings::default()
        };
        let limits = WasmSettings::default().resolve(Some(&tenant));
        assert_eq!(limits.outbound_per_request, 2);
        assert_eq!(limits.connect_timeout, Duration::from_secs(1));
        // The tenant's `max_outbound` is the tenant-wide cap, not each route's.
        assert_eq!(limits.max_outbound, DEFAULT_MAX_OUTBOUND);
        let defaults = WasmLimits::default();
        assert_eq!(defaults.outbound_per_request, DEFAULT_OUTBOUND_PER_REQUEST);
        assert_eq!(defaults.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
    }
}

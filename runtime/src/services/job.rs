//! What a job is: a request to a route of this server, and the records the journal keeps.
//!
//! Owns: `JobRequest` (method, host, path, headers, body), `NewJob`, the stored records, the
//! rules every caller's input goes through (Python, WASM and `[[timer]]` alike: method case,
//! host case, the host a handler's jobs go to, validation), the names of the headers a
//! delivery carries, `ServiceError`, and the compact header encoding the journal stores.
//! Must not touch: SQL (`journal`) or delivery.

use std::time::Duration;

use super::error::StoreError;
use crate::config::{JobQuotas, Schedule};

/// A request that a job delivers in-process through the router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRequest {
    pub method: String,
    /// The Host the router matches (empty: the routes that list no hosts).
    pub host: String,
    /// Path and optional query, e.g. `/tasks/cleanup?full=1`.
    pub path: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

/// A job as a caller hands it to `Services::enqueue`.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub request: JobRequest,
    pub delay: Duration,
    pub max_attempts: u32,
    /// Who queued it, for `wsrun jobs` (`python`, `wasm /api/v2`, `timer cleanup`).
    pub origin: String,
    /// Whose journal space it takes, and the quotas checked before it is stored.
    pub quota: Quota,
}

/// Whose journal space a job or timer takes, and the quotas that bound it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Quota {
    /// `tenant NAME`, or `route HOST/PREFIX` for a wasm route outside any tenant; empty for
    /// the operator's own jobs and timers (Python, `[[timer]]`), which are not counted.
    pub account: String,
    /// The limits checked when a job or timer is stored; `None`: not checked.
    pub limits: Option<JobQuotas>,
}

impl Quota {
    /// The operator's: not counted, not limited.
    pub fn operator() -> Quota {
        Quota::default()
    }
}

/// The bytes a job takes in the journal, as `max_job_bytes` counts them.
pub fn stored_size(request: &JobRequest) -> u64 {
    let headers: usize = request
        .headers
        .iter()
        .map(|(name, value)| name.len() + value.len() + 3)
        .sum();
    let total = request.method.len() + request.path.len() + headers + request.body.len();
    u64::try_from(total).unwrap_or(u64::MAX)
}

/// A job as the journal holds it.
#[derive(Debug, Clone)]
pub struct JobRecord {
    pub id: i64,
    pub request: JobRequest,
    pub origin: String,
    /// Whose journal space it takes (`Quota::account`; empty for the operator's).
    pub account: String,
    /// Deliveries started so far (the one in progress included).
    pub attempts: u32,
    pub max_attempts: u32,
    pub created_at: i64,
    /// When it is (or was) due; for a dead job, when it failed for the last time.
    pub run_at: i64,
    pub last_error: Option<String>,
}

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    Pending,
    Dead,
}

/// A durable timer as the journal holds it.
#[derive(Debug, Clone)]
pub struct TimerRecord {
    /// Whose name space the name is in: a tenant's name, or empty for everyone else (the
    /// operator's and routes outside tenants). Kept apart from `name`, so no two tenants'
    /// names can meet whatever they are called.
    pub owner: String,
    pub name: String,
    pub schedule: Schedule,
    pub request: JobRequest,
    /// `config` for `[[timer]]` tables (kept in step with the file), `api` otherwise.
    pub source: String,
    pub next_due: i64,
    /// Whose journal space it and its jobs take (read back without `limits`).
    pub quota: Quota,
}

/// Why a service call was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceError {
    /// No route of this server serves the path (for this host).
    #[error("no route serves {path:?}{}", for_host(host))]
    NoRoute { host: String, path: String },
    /// An argument is out of its domain; the message says which and why.
    #[error("{0}")]
    Invalid(String),
    /// A quota of the caller's tenant (or route) is used up for now; the message names it.
    #[error("{0}")]
    OverQuota(String),
    /// An argument passes a limit that is set for the caller (`max_attempts`,
    /// `min_timer_period`) or for the target (`max_body_size`); the message names it.
    #[error("{0}")]
    OverLimit(String),
    /// The store could not do it; the error says which kind of failure and where.
    #[error(transparent)]
    Store(StoreError),
    /// The services are not running in this process (e.g. after shutdown began).
    #[error("{0}")]
    Unavailable(String),
}

impl From<StoreError> for ServiceError {
    /// A store's quota refusal is the caller's `OverQuota`; anything else is a store failure.
    fn from(err: StoreError) -> ServiceError {
        match err {
            StoreError::OverQuota(message) => ServiceError::OverQuota(message),
            err => ServiceError::Store(err),
        }
    }
}

fn for_host(host: &str) -> String {
    match host {
        "" => String::new(),
        host => format!(" for host {host:?}"),
    }
}

/// The header a delivery carries with the job's id.
pub const JOB_ID_HEADER: &str = "wsrun-job-id";
/// The header a delivery carries with the attempt number (1 for the first).
pub const JOB_ATTEMPT_HEADER: &str = "wsrun-job-attempt";
/// The headers only a job delivery carries: a client's copies are dropped on the way in.
pub const DELIVERY_HEADERS: [&str; 2] = [JOB_ID_HEADER, JOB_ATTEMPT_HEADER];
/// Header names a caller may not set: the server writes them on delivery.
pub const RESERVED_HEADERS: &[&str] = &[JOB_ID_HEADER, JOB_ATTEMPT_HEADER, "host"];

/// The Host a job queued by a route's handler goes to: the route's first host (for a tenant,
/// the tenant's first), so it reaches the routes the handler's own requests can; empty for a
/// route without hosts (the routes that list no hosts).
pub fn route_job_host(route_hosts: &[String]) -> &str {
    route_hosts.first().map_or("", String::as_str)
}

impl JobRequest {
    /// A job request as every caller (Python, WASM, `[[timer]]`) makes one: the method in
    /// upper case, the host in lower case (as the router matches it); `validate` checks the rest.
    pub fn new(
        method: &str,
        host: &str,
        path: String,
        headers: Vec<(String, Vec<u8>)>,
        body: Vec<u8>,
    ) -> JobRequest {
        JobRequest {
            method: method.to_ascii_uppercase(),
            host: host.to_ascii_lowercase(),
            path,
            headers,
            body,
        }
    }

    /// Checks method, path, headers and (through `routes`) that a route serves the path.
    pub fn validate(&self) -> Result<(), ServiceError> {
        let invalid = |m: String| Err(ServiceError::Invalid(m));
        if self.method.is_empty() || !self.method.bytes().all(is_token_byte) {
            return invalid(format!("method {:?} is not an HTTP method", self.method));
        }
        if !self.path.starts_with('/') {
            return invalid(format!("path {:?} must start with '/'", self.path));
        }
        if self.path.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return invalid(format!(
                "path {:?} holds spaces or control characters (percent-encode them)",
                self.path
            ));
        }
        for (name, value) in &self.headers {
            if name.is_empty() || !name.bytes().all(is_token_byte) {
                return invalid(format!("header name {name:?} is not a valid token"));
            }
            let lower = name.to_ascii_lowercase();
            if RESERVED_HEADERS.contains(&lower.as_str()) {
                return invalid(format!("header {name:?} is set by the server"));
            }
            if value
                .iter()
                .any(|&b| b == b'\r' || b == b'\n' || b == 0 || b == 0x7f)
            {
                return invalid(format!("header {name:?} has a control character"));
            }
        }
        Ok(())
    }

    /// The path without its query string.
    pub fn route_path(&self) -> &str {
        self.path.split(['?', '#']).next().unwrap_or("/")
    }
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Headers as stored: `name: value` lines joined by `\n` (values never hold CR or LF).
pub fn encode_headers(headers: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.push(b'\n');
    }
    out
}

/// The inverse of `encode_headers`; lines without a colon are skipped.
pub fn decode_headers(stored: &[u8]) -> Vec<(String, Vec<u8>)> {
    stored
        .split(|&b| b == b'\n')
        .filter_map(|line| {
            let colon = line.iter().position(|&b| b == b':')?;
            let name = std::str::from_utf8(&line[..colon]).ok()?.to_string();
            let value = line[colon + 1..]
                .strip_prefix(b" ")
                .unwrap_or(&line[colon + 1..]);
            Some((name, value.to_vec()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, path: &str, headers: &[(&str, &[u8])]) -> JobRequest {
        JobRequest {
            method: method.into(),
            host: String::new(),
            path: path.into(),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_vec()))
                .collect(),
            body: Vec::new(),
        }
    }

    #[test]
    fn headers_round_trip() {
        let headers = vec![
            ("X-A".to_string(), b"1: two".to_vec()),
            ("Content-Type".to_string(), b"text/plain".to_vec()),
        ];
        assert_eq!(decode_headers(&encode_headers(&headers)), headers);
        assert!(decode_headers(b"").is_empty());
    }

    #[test]
    fn bad_requests_are_refused_with_a_reason() {
        assert!(request("POST", "/a?b=1", &[("X-Ok", b"v")])
            .validate()
            .is_ok());
        let cases = [
            request("PO ST", "/a", &[]),
            request("POST", "a", &[]),
            request("POST", "/a b", &[]),
            request("POST", "/a", &[("Bad Name", b"v")]),
            request("POST", "/a", &[("X", b"a\r\nb")]),
            request("POST", "/a", &[("wsrun-job-id", b"1")]),
        ];
        for case in cases {
            assert!(
                matches!(case.validate(), Err(ServiceError::Invalid(_))),
                "{case:?}"
            );
        }
        assert_eq!(request("GET", "/a/b?x#y", &[]).route_path(), "/a/b");
    }

    #[test]
    fn every_caller_gets_the_same_method_and_host_rule() {
        let r = JobRequest::new("post", "Acme.Example", "/a".into(), Vec::new(), Vec::new());
        assert_eq!(
            (r.method.as_str(), r.host.as_str()),
            ("POST", "acme.example")
        );
        assert_eq!(route_job_host(&[]), "");
        let hosts = vec!["a.example".to_string(), "b.example".to_string()];
        assert_eq!(route_job_host(&hosts), "a.example");
        let no_route = ServiceError::NoRoute {
            host: "h".into(),
            path: "/p".into(),
        };
        assert_eq!(
            no_route.to_string(),
            "no route serves \"/p\" for host \"h\""
        );
        let no_route = ServiceError::NoRoute {
            host: String::new(),
            path: "/p".into(),
        };
        assert_eq!(no_route.to_string(), "no route serves \"/p\"");
    }
}

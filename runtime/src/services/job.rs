//! What a job is: a request to a route of this server, and the records the journal keeps.
//!
//! Owns: `JobRequest` (method, host, path, headers, body), `NewJob`, the stored records, the
//! validation every caller's input goes through (Python and WASM alike), and the compact
//! header encoding the journal stores. Must not touch: SQL (`journal`) or delivery.

use std::fmt;
use std::time::Duration;

use crate::config::Schedule;

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
}

/// A job as the journal holds it.
#[derive(Debug, Clone)]
pub struct JobRecord {
    pub id: i64,
    pub request: JobRequest,
    pub origin: String,
    /// Deliveries started so far (the one in progress included).
    pub attempts: u32,
    pub max_attempts: u32,
    pub created_at: i64,
    /// When it is (or was) due; for a dead job, when it failed for the last time.
    pub run_at: i64,
    pub last_error: Option<String>,
}

/// A durable timer as the journal holds it.
#[derive(Debug, Clone)]
pub struct TimerRecord {
    pub name: String,
    pub schedule: Schedule,
    pub request: JobRequest,
    /// `config` for `[[timer]]` tables (kept in step with the file), `api` otherwise.
    pub source: String,
    pub next_due: i64,
}

/// Why a service call was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceError {
    /// No route of this server serves the path (for this host).
    NoRoute { host: String, path: String },
    /// An argument is out of its domain; the message says which and why.
    Invalid(String),
    /// The journal could not be written; the message names the file.
    Journal(String),
    /// The services are not running in this process (e.g. after shutdown began).
    Unavailable(String),
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceError::NoRoute { host, path } if host.is_empty() => {
                write!(f, "no route serves {path:?}")
            }
            ServiceError::NoRoute { host, path } => {
                write!(f, "no route serves {path:?} for host {host:?}")
            }
            ServiceError::Invalid(message)
            | ServiceError::Journal(message)
            | ServiceError::Unavailable(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for ServiceError {}

/// Header names a caller may not set: the server writes them on delivery.
pub const RESERVED_HEADERS: &[&str] = &["wsrun-job-id", "wsrun-job-attempt", "host"];

impl JobRequest {
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
}

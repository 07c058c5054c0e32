//! The JSON access line (`access_log_format = "json"`): one object per response.
//!
//! Owns: the JSON record (what it captures when the request arrives, and the route it was
//! routed to) and its line:
//! `{"time","remote","method","path","status","bytes","duration_ms","route","tenant","worker",
//! "pid"}` plus `"handler_version"` for WASM routes and `"variant": "canary"` for a response a
//! canary served. Must not touch: the sink or the combined
//! format (`access_log`), or routing (the caller notes the route it matched).
//!
//! Field meanings: `time` is when the request head had been read (RFC 3339, UTC, ms);
//! `remote` the client's IP address (as the combined format); `path` the raw request target
//! (with its query); `bytes` the body bytes sent, `null` when the response did not complete;
//! `duration_ms` from the head read to the last byte handed to the socket; `route` the matched
//! route's prefix (`""` when none matched); `tenant` its `[[tenant]]` name (`""` for none);
//! `worker` the worker's index (0-based) and `pid` its process id; `handler_version` the
//! SHA-256 (hex) of the WebAssembly file whose version was current when the request was
//! routed.

use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use super::handler::Handler;
use crate::router::Route;

/// The route a request was routed to, as the JSON line names it.
#[derive(Default)]
pub struct RouteLabel {
    pub prefix: String,
    pub tenant: String,
    pub handler_version: Option<String>,
    /// `canary` when a canary served the request.
    pub variant: Option<&'static str>,
}

impl RouteLabel {
    pub fn of(route: &Route<Handler>) -> RouteLabel {
        let handler_version = match route.handler.primary() {
            Handler::Wasm(wasm) => wasm.current().map(|v| v.digest.clone()),
            _ => None,
        };
        RouteLabel {
            prefix: route.prefix.clone(),
            tenant: route.tenant.clone().unwrap_or_default(),
            handler_version,
            variant: None,
        }
    }
}

/// What a JSON line captures when the request arrives.
pub struct JsonLine {
    method: String,
    target: String,
    remote: SocketAddr,
    time: SystemTime,
    started: Instant,
    pub route: RouteLabel,
}

/// The line as serialized.
#[derive(Serialize)]
struct Fields<'a> {
    time: String,
    remote: String,
    method: &'a str,
    path: &'a str,
    status: u16,
    bytes: Option<u64>,
    duration_ms: f64,
    route: &'a str,
    tenant: &'a str,
    worker: usize,
    pid: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    handler_version: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<&'a str>,
}

impl JsonLine {
    pub fn new(method: &str, target: &str, remote: SocketAddr, started: Instant) -> JsonLine {
        JsonLine {
            method: method.to_string(),
            target: target.to_string(),
            remote,
            time: SystemTime::now(),
            started,
            route: RouteLabel::default(),
        }
    }

    /// The line (with its newline) for the response's status and body bytes.
    pub fn line(&self, worker: usize, status: u16, bytes: Option<u64>) -> String {
        let fields = Fields {
            time: DateTime::<Utc>::from(self.time).to_rfc3339_opts(SecondsFormat::Millis, true),
            remote: self.remote.ip().to_string(),
            method: &self.method,
            path: &self.target,
            status,
            bytes,
            duration_ms: self.started.elapsed().as_secs_f64() * 1000.0,
            route: &self.route.prefix,
            tenant: &self.route.tenant,
            worker,
            pid: std::process::id(),
            handler_version: self.route.handler_version.as_deref(),
            variant: self.route.variant,
        };
        let mut line = serde_json::to_string(&fields).unwrap_or_else(|_| "{}".to_string());
        line.push('\n');
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_one_json_object_with_every_field() {
        let remote: SocketAddr = ([10, 0, 0, 7], 5555).into();
        let mut line = JsonLine::new("POST", "/a\"b?x=1", remote, Instant::now());
        line.route.prefix = "/api".to_string();
        let text = line.line(3, 201, Some(42));
        assert!(text.ends_with("}\n") && !text[..text.len() - 1].contains('\n'));
        let value: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        assert_eq!(value["path"], "/a\"b?x=1");
        assert_eq!(value["remote"], "10.0.0.7");
        assert_eq!(value["status"], 201);
        assert_eq!(value["bytes"], 42);
        assert_eq!(value["route"], "/api");
        assert_eq!(value["tenant"], "");
        assert_eq!(value["worker"], 3);
        assert!(value.get("handler_version").is_none());
        let time = value["time"].as_str().unwrap_or_default();
        assert!(time.ends_with('Z') && time.len() == "2026-12-02T14:50:00.123Z".len());
    }
}

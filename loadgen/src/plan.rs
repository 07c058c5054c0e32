//! What a run sends and when it stops: the target parsed from the URL, the pre-serialised
//! request bytes (GET and POST), the stop condition (`-n` or `-d`), the rate and timeouts.
//!
//! Owns: checking the load flags (errors name the flag, and become exit 2) and building the
//! bytes every connection writes. Must not touch: sockets, timing, output.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use crate::args::{LoadArgs, Mode, SlowPart};

/// Body size when `--post-clients` is given without `--body-size`.
const DEFAULT_POST_BODY: u64 = 1024;
/// A body byte: printable, so a server that logs bodies logs something readable.
const BODY_BYTE: u8 = b'x';
/// Largest body a request may carry (each connection holds one copy of its request).
const MAX_BODY: u64 = 64 << 20;

/// Where requests go.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub addr: SocketAddr,
    /// `host[:port]` as the URL gave it: the Host header.
    pub authority: String,
    /// Path and query, at least `/`.
    pub path: String,
    /// The URL as given (stored with the run).
    pub url: String,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stop {
    Requests(u64),
    Duration(Duration),
}

/// Everything a load run needs, checked.
#[derive(Debug, Clone)]
pub struct Plan {
    pub mode: Mode,
    pub target: Target,
    pub connections: usize,
    pub stop: Stop,
    pub timeout: Duration,
    pub rate: Option<f64>,
    pub keepalive: bool,
    /// The method every GET-side connection uses (`--method`, default GET).
    pub method: String,
    /// Connections `0..post_clients` send `post_request`, the rest `request`.
    pub post_clients: usize,
    pub request: Vec<u8>,
    pub post_request: Vec<u8>,
    pub body_size: u64,
    pub slow_part: SlowPart,
    pub slow_rate: u64,
    pub scenario: String,
}

impl Plan {
    /// The bytes connection `index` writes for each request.
    pub fn request_for(&self, index: usize) -> &[u8] {
        match index < self.post_clients {
            true => &self.post_request,
            false => &self.request,
        }
    }
}

/// A flag error: `--flag: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanError(pub String);

impl std::fmt::Display for PlanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn flag_err(flag: &str, message: impl std::fmt::Display) -> PlanError {
    PlanError(format!("{flag}: {message}"))
}

/// Checks the flags and builds the plan.
pub fn build(args: &LoadArgs) -> Result<Plan, PlanError> {
    let url = args
        .url
        .as_deref()
        .ok_or_else(|| flag_err("URL", "give the URL to load, e.g. http://127.0.0.1:8000/"))?;
    let target = parse_url(url).map_err(|m| flag_err("URL", m))?;
    if args.connections == 0 {
        return Err(flag_err("--connections", "must be at least 1"));
    }
    let stop = match (args.requests, &args.duration) {
        (Some(0), _) => return Err(flag_err("--requests", "must be at least 1")),
        (Some(n), _) => Stop::Requests(n),
        (None, Some(d)) => {
            Stop::Duration(parse_duration(d).map_err(|m| flag_err("--duration", m))?)
        }
        (None, None) => Stop::Duration(Duration::from_secs(10)),
    };
    let timeout = parse_duration(&args.timeout).map_err(|m| flag_err("--timeout", m))?;
    if let Some(rate) = args.rate {
        if !(rate.is_finite() && rate > 0.0) {
            return Err(flag_err(
                "--rate",
                format!("`{rate}` is not a positive number"),
            ));
        }
    }
    let post_clients = args.post_clients.unwrap_or(0);
    if post_clients > args.connections {
        let msg = format!(
            "{post_clients} is more than the {} connections",
            args.connections
        );
        return Err(flag_err("--post-clients", msg));
    }
    let headers = parse_headers(&args.headers)?;
    let body_size = match (args.body_size, post_clients) {
        (Some(n), _) if n > MAX_BODY => return Err(flag_err("--body-size", "at most 64 MiB")),
        (Some(n), _) => n,
        (None, 0) => 0,
        (None, _) => DEFAULT_POST_BODY,
    };
    let method = match &args.method {
        Some(m) => check_method(m)?,
        None if args.body_size.is_some() && post_clients == 0 => "POST".to_string(),
        None => "GET".to_string(),
    };
    let keepalive = !args.no_keepalive;
    let own_body = match method.as_str() {
        "GET" | "HEAD" if args.body_size.is_none() => 0,
        _ if post_clients > 0 => 0,
        _ => body_size,
    };
    let request = serialise(&method, &target, &headers, own_body, keepalive);
    let post_request = serialise("POST", &target, &headers, body_size, keepalive);
    let scenario = args.scenario.clone().unwrap_or_else(|| match post_clients {
        0 => format!("{} {} {}", args.mode.name(), method, target.path),
        m => format!("{} {method}+{m}xPOST {}", args.mode.name(), target.path),
    });
    Ok(Plan {
        mode: args.mode,
        target,
        connections: args.connections,
        stop,
        timeout,
        rate: args.rate,
        keepalive,
        method,
        post_clients,
        request,
        post_request,
        body_size,
        slow_part: args.slow_part,
        slow_rate: args.slow_rate.max(1),
        scenario,
    })
}

/// `http://host[:port][/path]` to a resolved address, the Host header and the path.
pub fn parse_url(url: &str) -> Result<Target, String> {
    let rest = match url.split_once("://") {
        Some(("http", rest)) => rest,
        Some((scheme, _)) => {
            return Err(format!(
                "`{url}`: only http:// is supported, not {scheme}://"
            ))
        }
        None => return Err(format!("`{url}` is not an http:// URL")),
    };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let path = match path.starts_with('?') {
        true => format!("/{path}"),
        false => path.to_string(),
    };
    if authority.is_empty() || authority.contains('@') || path.contains(['\r', '\n', ' ']) {
        return Err(format!("`{url}` has no usable host and path"));
    }
    let (host, port) = split_port(authority).map_err(|m| format!("`{url}`: {m}"))?;
    let addr = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("`{url}`: cannot resolve `{host}`: {e}"))?
        .next()
        .ok_or_else(|| format!("`{url}`: `{host}` has no address"))?;
    let url = url.to_string();
    let authority = authority.to_string();
    Ok(Target {
        addr,
        authority,
        path,
        url,
    })
}

fn split_port(authority: &str) -> Result<(&str, u16), String> {
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((host, "")) => (host, None),
            Some((host, port)) => (host, Some(port.strip_prefix(':').unwrap_or(port))),
            None => return Err("unclosed `[`".to_string()),
        },
        None => match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    let port = match port {
        None => 80,
        Some(p) => p.parse().map_err(|_| format!("`{p}` is not a port"))?,
    };
    Ok((host, port))
}

/// `10s`, `500ms`, `2m`, `1h` or plain seconds (`1.5`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (number, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = t.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (t, 1.0)
    };
    match number.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v * scale < 1e9 => {
            Ok(Duration::from_secs_f64(v * scale))
        }
        _ => Err(format!("`{text}` is not a duration (e.g. 10s, 500ms, 2m)")),
    }
}

fn check_method(method: &str) -> Result<String, PlanError> {
    match !method.is_empty() && method.bytes().all(|b| b.is_ascii_alphabetic()) {
        true => Ok(method.to_ascii_uppercase()),
        false => Err(flag_err("--method", format!("`{method}` is not a method"))),
    }
}

fn parse_headers(raw: &[String]) -> Result<Vec<(String, String)>, PlanError> {
    raw.iter()
        .map(|h| {
            let bad = || flag_err("-H", format!("`{h}` is not `Name: value`"));
            let (name, value) = h.split_once(':').ok_or_else(bad)?;
            let name = name.trim();
            let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
            if name.is_empty() || !name.bytes().all(token) || value.contains(['\r', '\n']) {
                return Err(bad());
            }
            Ok((name.to_string(), value.trim().to_string()))
        })
        .collect()
}

/// The request bytes: head, then `body_size` body bytes. Headers the user gave win over the
/// defaults of the same name (Host, Connection, User-Agent).
fn serialise(
    method: &str,
    target: &Target,
    headers: &[(String, String)],
    body_size: u64,
    keepalive: bool,
) -> Vec<u8> {
    let has = |name: &str| headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    let mut head = format!("{method} {} HTTP/1.1\r\n", target.path);
    if !has("host") {
        head.push_str(&format!("Host: {}\r\n", target.authority));
    }
    if !has("user-agent") {
        head.push_str("User-Agent: wsrun-bench\r\n");
    }
    if !keepalive && !has("connection") {
        head.push_str("Connection: close\r\n");
    }
    if body_size > 0 || method == "POST" || method == "PUT" {
        head.push_str(&format!("Content-Length: {body_size}\r\n"));
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.resize(bytes.len() + body_size as usize, BODY_BYTE);
    bytes
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;

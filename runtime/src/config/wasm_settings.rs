//! The limits and capabilities of a WebAssembly route, as written and as resolved.
//!
//! Owns: `WasmSettings` (what a `[[route]]` or `[[tenant]]` table says; every key optional),
//! `WasmLimits` (what a route runs with after route -> tenant -> default fallback), the safe
//! defaults, and the grammar of `allow_outbound` origins and `env` names. Must not touch: the
//! TOML reader or the command line (they call in here), or anything at run time.
//!
//! Defaults are for untrusted code: 128 MiB of linear memory, 30 s of wall-clock time,
//! 100 instances at once per route and worker, no outbound HTTP, an empty environment; when
//! outbound HTTP is allowed: 8 requests in flight per instance, 32 per route or tenant and
//! worker, 5 s to resolve and connect.

use std::time::Duration;

use super::error::ValueError;

/// Linear memory a guest may grow to when nothing says otherwise.
pub const DEFAULT_MEMORY: u64 = 128 * 1024 * 1024;
/// Wall-clock time an instance may run (start to last response byte) when nothing says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Instances of one route running at once in one worker when nothing says otherwise.
pub const DEFAULT_MAX_CONCURRENCY: usize = 100;
/// Outgoing requests one instance may have in flight when nothing says otherwise.
pub const DEFAULT_OUTBOUND_PER_REQUEST: usize = 8;
/// Outgoing requests in flight per route (or tenant, for `[[tenant]]`) and worker by default.
pub const DEFAULT_MAX_OUTBOUND: usize = 32;
/// Time to resolve, connect and handshake one outgoing request when nothing says otherwise.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest `memory` accepted: the guest address space of wasm32.
pub const MAX_MEMORY: u64 = 4 * 1024 * 1024 * 1024;

/// WASM keys as written in one table; `None` means "not said here".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WasmSettings {
    pub memory: Option<u64>,
    pub timeout: Option<Duration>,
    pub max_concurrency: Option<usize>,
    pub allow_outbound: Option<Vec<Origin>>,
    pub env: Option<Vec<(String, String)>>,
    pub outbound_per_request: Option<usize>,
    pub max_outbound: Option<usize>,
    pub connect_timeout: Option<Duration>,
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
        WasmLimits {
            memory: self.memory.or(fallback.memory).unwrap_or(DEFAULT_MEMORY),
            timeout: self.timeout.or(fallback.timeout).unwrap_or(DEFAULT_TIMEOUT),
            max_concurrency: self.max_concurrency.unwrap_or(DEFAULT_MAX_CONCURRENCY),
            allow_outbound: self
                .allow_outbound
                .clone()
                .or(fallback.allow_outbound)
                .unwrap_or_default(),
            env: self.env.clone().or(fallback.env).unwrap_or_default(),
            outbound_per_request: self
                .outbound_per_request
                .or(fallback.outbound_per_request)
                .unwrap_or(DEFAULT_OUTBOUND_PER_REQUEST),
            max_outbound: self.max_outbound.unwrap_or(DEFAULT_MAX_OUTBOUND),
            connect_timeout: self
                .connect_timeout
                .or(fallback.connect_timeout)
                .unwrap_or(DEFAULT_CONNECT_TIMEOUT),
        }
    }
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
    /// Outgoing requests one instance may have in flight; past it: `connection-limit-reached`.
    pub outbound_per_request: usize,
    /// Outgoing requests the route's instances may have in flight per worker (the tenant has
    /// its own cap, `TenantConfig::defaults.max_outbound`); past it: `connection-limit-reached`.
    pub max_outbound: usize,
    /// Budget to resolve, connect and handshake one outgoing request (never past `timeout`).
    pub connect_timeout: Duration,
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

//! Where an outgoing request may go: the authority a guest wrote, normalised, and the class
//! of an IP address.
//!
//! Owns: `Authority` (scheme, host and port of an outgoing request: no userinfo, no empty
//! host, a port that is a number from 1 to 65535, a host name lower-cased without its
//! trailing dot, an IPv6 literal only in brackets), `Host`, how an `allow_outbound` origin
//! matches one (`origin_match`), and `non_public`, which says why an address is not a public
//! unicast one (loopback, private, link-local, metadata, ...; IPv4 embedded in IPv6 counts as
//! its IPv4 address). Pure functions: must not touch the network, the caps or the log.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::config::{default_port, Origin};

/// The host of an outgoing request: a name to resolve, or an address as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// Lower-case, without a trailing dot.
    Name(String),
    Ip(IpAddr),
}

impl Host {
    /// `example.com`, `127.0.0.1`, `::1`, or the host part of an origin as written.
    pub fn parse(text: &str) -> Result<Host, &'static str> {
        if let Some(inner) = text.strip_prefix('[') {
            let inner = inner.strip_suffix(']').ok_or("unclosed `[`")?;
            let ip: Ipv6Addr = inner
                .parse()
                .map_err(|_| "not an IPv6 address in `[...]`")?;
            return Ok(Host::Ip(IpAddr::V6(ip)));
        }
        if let Ok(ip) = text.parse::<Ipv4Addr>() {
            return Ok(Host::Ip(IpAddr::V4(ip)));
        }
        let name = text.strip_suffix('.').unwrap_or(text).to_ascii_lowercase();
        if name.is_empty() {
            return Err("empty host");
        }
        let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_');
        if !name.chars().all(ok) || name.starts_with('.') || name.contains("..") {
            return Err("not a host name");
        }
        Ok(Host::Name(name))
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(name) => f.write_str(name),
            Host::Ip(IpAddr::V4(ip)) => write!(f, "{ip}"),
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
        }
    }
}

/// The normalised target of an outgoing request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authority {
    /// `http` or `https`.
    pub scheme: &'static str,
    pub host: Host,
    pub port: u16,
}

impl Authority {
    /// Checks and normalises `scheme` and `authority` (`host[:port]`) as a guest wrote them.
    pub fn parse(scheme: &str, authority: &str) -> Result<Authority, &'static str> {
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => "http",
            "https" => "https",
            _ => return Err("the scheme must be http or https"),
        };
        if authority.contains('@') {
            return Err("userinfo (`user@`) in the authority");
        }
        // The port separator is the last `:` after an IPv6 literal's closing bracket.
        let host_end = if authority.starts_with('[') {
            authority.find(']').map_or(authority.len(), |i| i + 1)
        } else {
            0
        };
        let (host, port) = match authority[host_end..].rfind(':') {
            Some(i) => {
                let (host, port) = authority.split_at(host_end + i);
                (host, Some(parse_port(&port[1..])?))
            }
            None => (authority, None),
        };
        if host.is_empty() {
            return Err("empty host");
        }
        let host = Host::parse(host)?;
        let port = port.or_else(|| default_port(scheme)).unwrap_or(0);
        Ok(Authority { scheme, host, port })
    }
}

impl fmt::Display for Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

fn parse_port(text: &str) -> Result<u16, &'static str> {
    let bad = "the port is not a number from 1 to 65535";
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad);
    }
    match text.parse::<u16>() {
        Ok(0) | Err(_) => Err(bad),
        Ok(port) => Ok(port),
    }
}

/// How an `allow_outbound` entry matches a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match {
    No,
    /// Allowed; the addresses it resolves to must be public.
    Public,
    /// Allowed to this very address: the origin is written as the IP literal the request names.
    Literal,
}

/// Does `origin` allow `target`? `*` allows any public address, never a literal.
pub fn origin_match(origin: &Origin, target: &Authority) -> Match {
    let (scheme, host, port) = match origin {
        Origin::Any => return Match::Public,
        Origin::Exact { scheme, host, port } => (scheme, host, *port),
    };
    if !scheme.eq_ignore_ascii_case(target.scheme) || port != target.port {
        return Match::No;
    }
    match Host::parse(host) {
        Ok(host) if host == target.host => match host {
            Host::Ip(_) => Match::Literal,
            Host::Name(_) => Match::Public,
        },
        _ => Match::No,
    }
}

/// The best match among `origins` (a literal beats `*`).
pub fn allowed_by(origins: &[Origin], target: &Authority) -> Match {
    let mut best = Match::No;
    for origin in origins {
        match origin_match(origin, target) {
            Match::Literal => return Match::Literal,
            Match::Public => best = Match::Public,
            Match::No => {}
        }
    }
    best
}

/// Why `ip` is not a public unicast address, or `None` when it is one.
pub fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(ip) => non_public_v4(ip),
        IpAddr::V6(ip) => non_public_v6(ip),
    }
}

fn non_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, _, _] = ip.octets();
    let why = match (a, b) {
        _ if ip == Ipv4Addr::new(169, 254, 169, 254) => "cloud metadata",
        _ if ip.is_broadcast() => "broadcast",
        (0, _) => "unspecified",
        (127, _) => "loopback",
        (10, _) | (192, 168) => "private",
        (172, 16..=31) => "private",
        (169, 254) => "link-local",
        (100, 64..=127) => "shared (CGNAT)",
        (224..=239, _) => "multicast",
        (240..=255, _) => "reserved",
        _ => return None,
    };
    Some(why)
}

fn non_public_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    if ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
        return Some("cloud metadata");
    }
    if let Some(v4) = embedded_v4(&s) {
        return non_public_v4(v4);
    }
    match s[0] {
        0xfe80..=0xfebf => Some("link-local"),
        0xfec0..=0xfeff => Some("site-local"),
        0xfc00..=0xfdff => Some("private (unique local)"),
        0xff00..=0xffff => Some("multicast"),
        _ => None,
    }
}

/// The IPv4 address inside an IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`),
/// NAT64 (`64:ff9b::a.b.c.d`) or 6to4 (`2002:AABB:CCDD::`) IPv6 address.
fn embedded_v4(s: &[u16; 8]) -> Option<Ipv4Addr> {
    let tail = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    match s {
        [0, 0, 0, 0, 0, 0xffff, hi, lo] | [0, 0, 0, 0, 0, 0, hi, lo] => Some(tail(*hi, *lo)),
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => Some(tail(*hi, *lo)),
        [0x2002, hi, lo, ..] => Some(tail(*hi, *lo)),
        _ => None,
    }
}

#[cfg(test)]
#[path = "address_tests.rs"]
mod tests;

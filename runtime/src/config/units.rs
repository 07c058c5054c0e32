//! Small value grammars shared by the command line, `wsrun.toml` and (later) the Python host's
//! script loader: sizes, durations, listen addresses, access log formats, route prefixes, host names and
//! `module:attr` targets.
//!
//! Owns: turning one user-written string into one checked value, with a plain-English error
//! (`ValueError`, no location: callers add file, line and key). Must not touch: files, the
//! environment, DNS, or any `Config` type other than `RouteTarget`.
//!
//! Choices: size units are binary and case-insensitive — `K`, `KB` and `KiB` all mean 1024 (as
//! nginx reads them), `M`/`MB`/`MiB` 1024², `G`/`GB`/`GiB` 1024³, `T`/`TB`/`TiB` 1024⁴; sizes are
//! whole numbers (`1.5MiB` is refused). Durations take `ms`, `s`, `m`, `h` (case-insensitive),
//! a bare number means seconds, and fractions are exact to the nanosecond (`1.5s`, `0.25`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use super::error::ValueError;
use super::route::RouteTarget;

/// Port used when an address gives only a host (`127.0.0.1`, `[::1]`, `localhost`), and by
/// the default listen address. The one place 8888 is written.
pub const DEFAULT_PORT: u16 = 8888;

/// Where the server listens when nothing says otherwise: every IPv4 interface, `DEFAULT_PORT`.
pub const DEFAULT_BIND: SocketAddr =
    SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), DEFAULT_PORT);

/// How access log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessLogFormat {
    /// Apache's combined format (the default).
    Combined,
    /// One JSON object per line.
    Json,
}

impl AccessLogFormat {
    /// The name a user writes (`combined`, `json`).
    pub fn name(self) -> &'static str {
        match self {
            AccessLogFormat::Combined => "combined",
            AccessLogFormat::Json => "json",
        }
    }
}

/// Reads an access log format name (`combined`, `json`, any case).
pub fn parse_access_log_format(name: &str) -> Result<AccessLogFormat, ValueError> {
    [AccessLogFormat::Combined, AccessLogFormat::Json]
        .into_iter()
        .find(|f| f.name().eq_ignore_ascii_case(name.trim()))
        .ok_or_else(|| {
            format!("`{name}` is not an access log format: use \"combined\" or \"json\"").into()
        })
}

/// Log levels accepted by `--log-level` and `server.log_level`.
pub const LOG_LEVELS: [&str; 5] = ["error", "warn", "info", "debug", "trace"];

/// Checks a log level (case-insensitive) and returns it lower-cased.
pub fn parse_log_level(s: &str) -> Result<String, ValueError> {
    let level = s.trim().to_ascii_lowercase();
    if LOG_LEVELS.contains(&level.as_str()) {
        Ok(level)
    } else {
        Err(format!(
            "`{s}` is not a log level (use one of: {})",
            LOG_LEVELS.join(", ")
        )
        .into())
    }
}

/// Parses a byte size: `123`, `512K`/`512KB`/`512KiB`, `10M`/`10MB`/`10MiB`, `1G`/`1GB`/`1GiB`.
pub fn parse_size(s: &str) -> Result<u64, ValueError> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    if digits.is_empty() {
        return Err(format!(
            "`{s}` is not a size (expected a whole number with an optional unit: 512KiB, 10MiB, 1GiB)"
        ).into());
    }
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        other if other.starts_with('.') => {
            return Err(
                format!("`{s}`: sizes must be whole numbers (write 1536KiB, not 1.5MiB)").into(),
            )
        }
        other => {
            return Err(format!("`{s}`: unknown size unit `{other}` (use K, M, G or T)").into())
        }
    };
    let n: u64 = digits.parse().map_err(|_| format!("`{s}` is too large"))?;
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("`{s}` is too large").into())
}

/// Parses a duration: `250ms`, `2s`, `1.5s`, `5m`, `1h`; a bare number is seconds.
pub fn parse_duration(s: &str) -> Result<Duration, ValueError> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let bad = || format!("`{s}` is not a duration (expected e.g. 250ms, 2s, 1.5s, 5m, 1h)");
    let unit_nanos: u128 = match unit.trim().to_ascii_lowercase().as_str() {
        "ms" => 1_000_000,
        "" | "s" => 1_000_000_000,
        "m" => 60 * 1_000_000_000,
        "h" => 3600 * 1_000_000_000,
        _ => return Err(bad().into()),
    };
    let (whole, frac) = num.split_once('.').unwrap_or((num, ""));
    if (whole.is_empty() && frac.is_empty()) || frac.contains('.') {
        return Err(bad().into());
    }
    let too_long = || format!("`{s}` is too long a duration");
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| too_long())?
    };
    let mut nanos = whole.checked_mul(unit_nanos).ok_or_else(too_long)?;
    // Fraction digits past nanosecond precision cannot matter; ignore them (truncation).
    let mut scale = unit_nanos;
    for d in frac.bytes().take(30) {
        scale /= 10;
        // Checked: a whole part just under the limit plus its fraction must not wrap around
        // to a tiny duration (`340282366920938463463374607431768.9ms` was 688 µs).
        let digit = u128::from(d - b'0') * scale;
        nanos = nanos.checked_add(digit).ok_or_else(too_long)?;
    }
    let secs = u64::try_from(nanos / 1_000_000_000).map_err(|_| too_long())?;
    // The remainder is below 10⁹, so it always fits in u32.
    let sub = (nanos % 1_000_000_000) as u32;
    Ok(Duration::new(secs, sub))
}

/// How every duration is shown (help defaults, config errors, `wsrun jobs`, log lines); the
/// text reads back through `parse_duration` to the same value. Below a second: milliseconds
/// (`250ms`, `0.5ms`); whole hours: `1h`; otherwise seconds with the fraction they need
/// (`2s`, `300s`, `1.25s`).
pub fn format_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let nanos = d.subsec_nanos();
    if secs == 0 && nanos == 0 {
        return "0s".to_string();
    }
    if secs == 0 {
        return with_fraction(u64::from(nanos), 1_000_000, "ms");
    }
    if nanos == 0 && secs % 3600 == 0 {
        return format!("{}h", secs / 3600);
    }
    format!("{secs}{}s", fraction(u64::from(nanos), 1_000_000_000))
}

/// `amount` (in units of 1/`per`) as a decimal number of units, without trailing zeros.
fn with_fraction(amount: u64, per: u64, unit: &str) -> String {
    format!("{}{}{unit}", amount / per, fraction(amount % per, per))
}

/// `.25` for 25/100, empty for 0: the decimal digits of `rest / per` (`per` a power of ten).
fn fraction(rest: u64, per: u64) -> String {
    if rest == 0 {
        return String::new();
    }
    let width = per.ilog10() as usize;
    let digits = format!("{rest:0width$}");
    format!(".{}", digits.trim_end_matches('0'))
}

/// How every size is shown: the largest binary unit that divides it evenly (`10MiB`, `16KiB`,
/// `512`); the text reads back through `parse_size` to the same value.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [(u32, &str); 4] = [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")];
    for (shift, unit) in UNITS {
        let one = 1u64 << shift;
        if bytes >= one && bytes % one == 0 {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    bytes.to_string()
}

/// Parses a listen address: `HOST:PORT`, `:PORT`, bare `PORT`, a bare host (port 8888),
/// IPv6 as `[::1]:8000`. Hosts are IP literals or `localhost` (127.0.0.1); `:PORT` and `PORT`
/// listen on every IPv4 interface. No DNS look-ups happen here.
pub fn parse_bind(s: &str) -> Result<SocketAddr, ValueError> {
    let t = s.trim();
    let any = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    if t.is_empty() {
        return Err("empty address (expected HOST:PORT, :PORT or PORT)".into());
    }
    if t.starts_with("unix:") || t.starts_with('/') {
        return Err(format!("`{s}`: unix sockets are not supported; use HOST:PORT").into());
    }
    if t.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(SocketAddr::new(any, parse_port(t, s)?));
    }
    if let Ok(addr) = t.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if let Ok(ip) = t.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, DEFAULT_PORT));
    }
    if let Some(inner) = t.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        return match inner.parse::<std::net::Ipv6Addr>() {
            Ok(ip) => Ok(SocketAddr::new(IpAddr::V6(ip), DEFAULT_PORT)),
            Err(_) => Err(format!("`{s}`: `{inner}` is not an IPv6 address").into()),
        };
    }
    if t.starts_with('[') {
        return Err(format!("`{s}` is not a valid address (IPv6 form: [::1]:8000)").into());
    }
    let (host, port) = match t.rsplit_once(':') {
        Some((h, p)) => (h, parse_port(p, s)?),
        None => (t, DEFAULT_PORT),
    };
    let ip = match host {
        "" => any,
        h if h.eq_ignore_ascii_case("localhost") => IpAddr::V4(Ipv4Addr::LOCALHOST),
        h if h.contains(':') => {
            return Err(format!("`{s}`: write IPv6 addresses in brackets, e.g. [::1]:8000").into())
        }
        h => h.parse().map_err(|_| {
            format!("`{s}`: `{h}` is not an IP address (use an IP literal or localhost)")
        })?,
    };
    Ok(SocketAddr::new(ip, port))
}

fn parse_port(p: &str, whole: &str) -> Result<u16, ValueError> {
    if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("`{whole}`: `{p}` is not a port number").into());
    }
    p.parse()
        .map_err(|_| format!("`{whole}`: port {p} is out of range (0-65535)").into())
}

/// Normalises a route prefix: it must start with `/`; a trailing `/` is dropped (except for
/// `/` itself); empty (`//`), `.` and `..` segments, `?`, `#`, whitespace and control characters
/// are refused.
pub fn normalize_prefix(s: &str) -> Result<String, ValueError> {
    if !s.starts_with('/') {
        return Err(format!("prefix `{s}` must start with `/`").into());
    }
    if let Some(c) = s
        .chars()
        .find(|c| matches!(c, '?' | '#') || c.is_whitespace() || c.is_control())
    {
        return Err(format!("prefix `{s}` must not contain {c:?}").into());
    }
    if s.contains("//") {
        return Err(format!("prefix `{s}` must not contain `//`").into());
    }
    let body = if s.len() > 1 {
        s.strip_suffix('/').unwrap_or(s)
    } else {
        s
    };
    if body.len() > 1 {
        for seg in body[1..].split('/') {
            match seg {
                "" => return Err(format!("prefix `{s}` must not contain `//`").into()),
                "." | ".." => {
                    return Err(format!("prefix `{s}` must not contain `{seg}` segments").into())
                }
                _ => {}
            }
        }
    }
    Ok(body.to_string())
}

/// Normalises a host name for routing: lower-cased, a trailing `.` dropped; a leading `*.`
/// wildcard and bracketed IPv6 literals are allowed; a port is refused.
pub fn normalize_host(s: &str) -> Result<String, ValueError> {
    let h = s.trim().to_ascii_lowercase();
    if let Some(inner) = h.strip_prefix('[') {
        return match inner
            .strip_suffix(']')
            .map(str::parse::<std::net::Ipv6Addr>)
        {
            Some(Ok(_)) => Ok(h),
            _ => Err(
                format!("host `{s}` is not a valid bracketed IPv6 address (no port allowed)")
                    .into(),
            ),
        };
    }
    if let Some((name, port)) = h.rsplit_once(':') {
        return Err(format!(
            "host `{s}` has a port (`:{port}`); list host names only, e.g. `{name}` \
             (routes match any port the server listens on)"
        )
        .into());
    }
    let h = h.strip_suffix('.').unwrap_or(&h);
    let name = h.strip_prefix("*.").unwrap_or(h);
    if name.is_empty() {
        return Err(format!("host `{s}` is empty (omit `hosts` to match any host)").into());
    }
    for label in name.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok {
            return Err(format!(
                "host `{s}` is not a host name (letters, digits, `-`, dots; an optional leading `*.`)"
            ).into());
        }
    }
    Ok(h.to_string())
}

/// Parses a WSGI target `module:attr`; both sides are dotted Python identifiers. Factory calls
/// such as `create_app()` are refused: name the WSGI callable itself.
pub fn parse_python_target(s: &str) -> Result<RouteTarget, ValueError> {
    let Some((module, attr)) = s.split_once(':') else {
        return Err(format!("`{s}` is not `module:attr` (e.g. `{s}:application`)").into());
    };
    if !is_dotted_identifier(module) {
        return Err(format!(
            "`{module}` in `{s}` is not a dotted Python module name (e.g. `pkg.app`)"
        )
        .into());
    }
    if attr.contains('(') {
        return Err(format!(
            "`{attr}` in `{s}`: factory calls are not supported; name the WSGI callable itself"
        )
        .into());
    }
    if !is_dotted_identifier(attr) {
        return Err(format!(
            "`{attr}` in `{s}` is not a dotted Python identifier (e.g. `app` or `wsgi.application`)"
        )
        .into());
    }
    Ok(RouteTarget::Python {
        module: module.to_string(),
        attr: attr.to_string(),
    })
}

fn is_dotted_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|part| {
            let mut chars = part.chars();
            matches!(chars.next(), Some(c) if c == '_' || c.is_alphabetic())
                && chars.all(|c| c == '_' || c.is_alphanumeric())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_shown_one_way_and_read_back() {
        #[rustfmt::skip]
        let cases = [
            (Duration::ZERO, "0s"), (Duration::from_millis(250), "250ms"),
            (Duration::from_micros(500), "0.5ms"), (Duration::from_nanos(1), "0.000001ms"),
            (Duration::from_secs(2), "2s"), (Duration::from_millis(1250), "1.25s"),
            (Duration::from_secs(60), "60s"), (Duration::from_secs(300), "300s"),
            (Duration::from_secs(3600), "1h"), (Duration::from_secs(7200), "2h"),
            (Duration::from_secs(5400), "5400s"), (Duration::new(1, 1), "1.000000001s"),
        ];
        for (d, text) in cases {
            assert_eq!(format_duration(d), text);
            assert_eq!(parse_duration(text), Ok(d), "{text} reads back");
        }
    }

    #[test]
    fn sizes_are_shown_in_the_largest_even_unit_and_read_back() {
        #[rustfmt::skip]
        let cases = [
            (0, "0"), (512, "512"), (1536, "1536"), (16 << 10, "16KiB"), (10 << 20, "10MiB"),
            ((1 << 20) + 1024, "1025KiB"), (3 << 30, "3GiB"), (1 << 40, "1TiB"),
        ];
        for (n, text) in cases {
            assert_eq!(format_size(n), text);
            assert_eq!(parse_size(text), Ok(n), "{text} reads back");
        }
    }

    #[test]
    fn sizes_accept_every_unit_spelling() {
        assert_eq!(parse_size("123"), Ok(123));
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("7b"), Ok(7));
        for s in ["512K", "512KB", "512KiB", "512kb", "512kib", "512 KiB"] {
            assert_eq!(parse_size(s), Ok(512 * 1024), "{s}");
        }
        for s in ["10M", "10MB", "10MiB", "10mib"] {
            assert_eq!(parse_size(s), Ok(10 * 1024 * 1024), "{s}");
        }
        for s in ["1G", "1GB", "1GiB", "1gb"] {
            assert_eq!(parse_size(s), Ok(1 << 30), "{s}");
        }
        assert_eq!(parse_size("2TiB"), Ok(2 << 40));
    }

    #[test]
    fn sizes_refuse_bad_input_and_overflow() {
        for s in ["", "KB", "-1", "1.5MiB", "10XB", "ten", "1 2"] {
            assert!(parse_size(s).is_err(), "{s} should fail");
        }
        assert!(parse_size("1.5MiB")
            .unwrap_err()
            .to_string()
            .contains("whole numbers"));
        assert!(parse_size("99999999999999999999")
            .unwrap_err()
            .to_string()
            .contains("too large"));
        assert!(parse_size("17179869184GiB")
            .unwrap_err()
            .to_string()
            .contains("too large"));
        assert_eq!(parse_size("16777215TiB"), Ok(16777215 << 40));
        assert!(parse_size("16777216TiB").is_err());
    }

    #[test]
    fn durations_accept_units_fractions_and_bare_seconds() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("0.1s"), Ok(Duration::from_millis(100)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration(".5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2S"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("0.0000000019s"), Ok(Duration::from_nanos(1)));
    }

    #[test]
    fn durations_refuse_bad_input_and_overflow() {
        for s in ["", "s", ".", "1.2.3s", "-1s", "2d", "ms5", "1 h x"] {
            assert!(parse_duration(s).is_err(), "{s} should fail");
        }
        let huge = format!("{}s", u64::MAX);
        assert!(parse_duration(&huge).is_ok());
        let over = format!("{}1s", u64::MAX);
        assert!(parse_duration(&over)
            .unwrap_err()
            .to_string()
            .contains("too long"));
        assert!(parse_duration("99999999999999999999999999999999999999999h").is_err());
    }

    #[test]
    fn bind_forms() {
        let ok = |s: &str| {
            parse_bind(s)
                .unwrap_or_else(|e| panic!("{s}: {e}"))
                .to_string()
        };
        assert_eq!(ok("127.0.0.1:8000"), "127.0.0.1:8000");
        assert_eq!(ok(":8000"), "0.0.0.0:8000");
        assert_eq!(ok("8000"), "0.0.0.0:8000");
        assert_eq!(ok("localhost:9000"), "127.0.0.1:9000");
        assert_eq!(ok("LocalHost"), "127.0.0.1:8888");
        assert_eq!(ok("10.1.2.3"), "10.1.2.3:8888");
        assert_eq!(ok("[::1]:8000"), "[::1]:8000");
        assert_eq!(ok("[::]"), "[::]:8888");
        assert_eq!(ok("::1"), "[::1]:8888");
        assert_eq!(ok("0"), "0.0.0.0:0");
    }

    #[test]
    fn bind_errors() {
        let err = |s: &str| parse_bind(s).expect_err(s).to_string();
        assert!(err("").contains("empty"));
        assert!(err("example.com:80").contains("not an IP address"));
        assert!(err("127.0.0.1:70000").contains("out of range"));
        assert!(err("99999").contains("out of range"));
        assert!(err("127.0.0.1:").contains("not a port"));
        assert!(err(":http").contains("not a port"));
        assert!(err("[::1]:8000x").contains("not a valid address"));
        assert!(err("[zz]").contains("not an IPv6"));
        assert!(err("unix:/tmp/s").contains("unix sockets"));
        assert!(err("fe80::1::2:80").contains("brackets"));
    }

    #[test]
    fn prefixes_normalise_and_refuse() {
        assert_eq!(normalize_prefix("/"), Ok("/".to_string()));
        assert_eq!(normalize_prefix("/api/"), Ok("/api".to_string()));
        assert_eq!(normalize_prefix("/api/v2"), Ok("/api/v2".to_string()));
        assert_eq!(normalize_prefix("/a.b/..c"), Ok("/a.b/..c".to_string()));
        let err = |s: &str| normalize_prefix(s).expect_err(s).to_string();
        assert!(err("api").contains("start with `/`"));
        assert!(err("").contains("start with `/`"));
        assert!(err("//").contains("`//`"));
        assert!(err("/a//b").contains("`//`"));
        assert!(err("/a//").contains("`//`"));
        assert!(err("/a/../b").contains("`..`"));
        assert!(err("/..").contains("`..`"));
        assert!(err("/./x").contains("`.`"));
        assert!(err("/a?b").contains("'?'"));
        assert!(err("/a#b").contains("'#'"));
        assert!(err("/a b").contains("' '"));
    }

    #[test]
    fn hosts_normalise_and_refuse() {
        assert_eq!(normalize_host("Example.COM"), Ok("example.com".to_string()));
        assert_eq!(normalize_host("*.acme.test"), Ok("*.acme.test".to_string()));
        assert_eq!(
            normalize_host("acme.localhost."),
            Ok("acme.localhost".to_string())
        );
        assert_eq!(normalize_host("[::1]"), Ok("[::1]".to_string()));
        let err = |s: &str| normalize_host(s).expect_err(s).to_string();
        assert!(err("example.com:8080").contains("has a port"));
        assert!(err("[::1]:80").contains("IPv6"));
        assert!(err("").contains("empty"));
        assert!(err(".").contains("empty"));
        assert!(err("*.").contains("not a host name"));
        assert!(err("a..b").contains("not a host name"));
        assert!(err("a.*.b").contains("not a host name"));
        assert!(err("*").contains("not a host name"));
        assert!(err("a b").contains("not a host name"));
    }

    #[test]
    fn log_levels() {
        assert_eq!(parse_log_level("WARN"), Ok("warn".to_string()));
        assert_eq!(parse_log_level("trace"), Ok("trace".to_string()));
        assert!(parse_log_level("verbose")
            .unwrap_err()
            .to_string()
            .contains("error, warn, info, debug, trace"));
    }

    #[test]
    fn python_targets() {
        let t = parse_python_target("pkg.mod:wsgi.application").expect("valid");
        assert_eq!(
            t,
            RouteTarget::Python {
                module: "pkg.mod".into(),
                attr: "wsgi.application".into()
            }
        );
        assert!(parse_python_target("_p2:app").is_ok());
        let err = |s: &str| parse_python_target(s).expect_err(s).to_string();
        assert!(err("app").contains("not `module:attr`"));
        assert!(err(":app").contains("module name"));
        assert!(err("pkg..mod:app").contains("module name"));
        assert!(err("pkg/mod:app").contains("module name"));
        assert!(err("1pkg:app").contains("module name"));
        assert!(err("app:").contains("identifier"));
        assert!(err("app:a:b").contains("identifier"));
        assert!(err("app:x-y").contains("identifier"));
        assert!(err("app:create_app()").contains("factory calls"));
    }
}

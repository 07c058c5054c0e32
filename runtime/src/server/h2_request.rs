//! The request-level rules of the HTTP/1 `guard`, for requests that came over HTTP/2.
//!
//! h2 already refuses, before hyper makes a request of them: malformed, repeated, unknown or
//! misplaced pseudo-headers, upper-case field names, connection-specific fields
//! (`connection`, `keep-alive`, `proxy-connection`, `transfer-encoding`, `upgrade`, `te` other
//! than `trailers`) and a body longer or shorter than its `content-length`. This module adds
//! what the guard checks on an HTTP/1.1 head and h2 does not: one valid `host`, agreeing
//! with `:authority`; one valid `content-length`; a `host` at all (an app's `HTTP_HOST`,
//! made from `:authority` when the client sent only that); no repeated singleton
//! (`field_rules`). Owns: `check`. Must not touch:
//! routing or bodies (`service`), frames or flood limits (`h2`).

use http::request::Parts;
use http::{header, HeaderValue};

use super::guard::{is_valid_host, parse_decimal};
use crate::field_rules::singleton_names;

/// Checks an HTTP/2 request's fields; `Err` is the reason for a 400.
pub fn check(parts: &mut Parts) -> Result<(), &'static str> {
    check_singletons(parts)?;
    for name in [
        header::CONNECTION,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ] {
        if parts.headers.contains_key(name) {
            return Err("connection-specific header field in an HTTP/2 request");
        }
    }
    if parts.headers.contains_key("keep-alive") || parts.headers.contains_key("proxy-connection") {
        return Err("connection-specific header field in an HTTP/2 request");
    }
    let mut lengths = parts.headers.get_all(header::CONTENT_LENGTH).iter();
    if let Some(length) = lengths.next() {
        if lengths.next().is_some() {
            return Err("multiple Content-Length headers");
        }
        if parse_decimal(length.as_bytes()).is_none() {
            return Err("invalid Content-Length");
        }
    }
    let authority = parts.uri.authority().map(|a| a.as_str().to_owned());
    let mut hosts = parts.headers.get_all(header::HOST).iter();
    match (hosts.next(), hosts.next()) {
        (Some(_), Some(_)) => Err("duplicate Host header"),
        (Some(host), None) => {
            if !is_valid_host(host.as_bytes()) {
                return Err("invalid Host header");
            }
            match authority {
                Some(a) if !a.as_bytes().eq_ignore_ascii_case(host.as_bytes()) => {
                    Err("Host header differs from :authority")
                }
                _ => Ok(()),
            }
        }
        (None, _) => {
            let Some(authority) = authority.filter(|a| is_valid_host(a.as_bytes())) else {
                return Err("missing :authority and Host");
            };
            let value = HeaderValue::from_str(&authority).map_err(|_| "invalid :authority")?;
            parts.headers.insert(header::HOST, value);
            Ok(())
        }
    }
}

/// Refuses a repeated `field_rules` singleton, as the HTTP/1 guard does.
fn check_singletons(parts: &Parts) -> Result<(), &'static str> {
    // Most requests repeat no field name at all: then there is nothing to look up.
    if parts.headers.len() == parts.headers.keys_len() {
        return Ok(());
    }
    for (name, reason) in singleton_names() {
        if parts.headers.get_all(name).iter().nth(1).is_some() {
            return Err(reason);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(uri: &str, fields: &[(&str, &str)]) -> Parts {
        let mut builder = http::Request::builder()
            .uri(uri)
            .version(http::Version::HTTP_2);
        for (name, value) in fields {
            builder = builder.header(*name, *value);
        }
        builder.body(()).map(|r| r.into_parts().0).unwrap()
    }

    #[test]
    fn host_is_made_from_the_authority() {
        let mut p = parts("https://a.test:8443/x", &[]);
        assert_eq!(check(&mut p), Ok(()));
        assert_eq!(p.headers[header::HOST], "a.test:8443");
    }

    /// A request's URI, its fields, and a word of the expected refusal.
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);

    #[test]
    fn what_the_guard_refuses_is_refused() {
        let cases: &[Case] = &[
            ("https://a.test/", &[("host", "b.test")], "differs"),
            (
                "https://a.test/",
                &[("host", "a.test"), ("host", "a.test")],
                "duplicate",
            ),
            ("/", &[("host", "a b")], "invalid Host"),
            ("/", &[], "missing"),
            (
                "https://a.test/",
                &[("content-length", "1"), ("content-length", "1")],
                "multiple",
            ),
            (
                "https://a.test/",
                &[("content-length", "+1")],
                "invalid Content-Length",
            ),
            (
                "https://a.test/",
                &[("connection", "keep-alive")],
                "connection-specific",
            ),
            (
                "https://a.test/",
                &[("keep-alive", "5")],
                "connection-specific",
            ),
        ];
        for (uri, fields, why) in cases {
            let got = check(&mut parts(uri, fields));
            assert!(
                got.is_err_and(|e| e.contains(why)),
                "{uri} {fields:?}: {got:?}"
            );
        }
        assert_eq!(
            check(&mut parts("https://A.test/", &[("host", "a.TEST")])),
            Ok(())
        );
    }
}

//! Which request fields may appear where: the singletons a request carries at most once, and
//! the fields a chunked request's trailer section must never carry.
//!
//! Owns: the two lists and their lookups, one definition for every protocol (the HTTP/1 `guard`,
//! the HTTP/2 request check, the body spooler that sees HTTP/2 trailers). Must not touch: I/O,
//! framing state or what a refusal looks like on the wire — callers answer 400 with the reason
//! given here.
//!
//! Why these lists (RFC 9110):
//! - A singleton repeated is two requests in one: a proxy in front may act on the first value
//!   while the app reads the last (or the joined) one. Section 5.3 lets a recipient combine
//!   repeated fields only for list-valued ones; for these it is an error, refused even when
//!   the values are equal (as nginx does for Host and Content-Length) so no reader has to guess.
//! - Section 6.5.1: a sender must not put in trailers the fields needed for framing, routing,
//!   request modifiers, authentication or response control, and a recipient must not merge
//!   such trailers into the header section. wsrun refuses them (400) rather than drop them
//!   silently, since a client that sends them is either broken or probing for a smuggling gap;
//!   every other trailer field is dropped (apps never see trailers as headers).

/// Request fields that must appear at most once, with the reason given when one repeats.
/// Lower-case; compared without regard to case.
const SINGLETONS: &[(&str, &str)] = &[
    ("host", "duplicate Host header"),
    ("content-length", "multiple Content-Length headers"),
    ("content-type", "repeated Content-Type header"),
    ("authorization", "repeated Authorization header"),
    ("proxy-authorization", "repeated Proxy-Authorization header"),
    ("range", "repeated Range header"),
    ("if-range", "repeated If-Range header"),
    ("if-modified-since", "repeated If-Modified-Since header"),
    ("if-unmodified-since", "repeated If-Unmodified-Since header"),
    ("max-forwards", "repeated Max-Forwards header"),
];

/// Fields never allowed in a trailer section (RFC 9110 section 6.5.1's categories, plus the
/// connection-specific fields of section 7.6.1). Lower-case.
const FORBIDDEN_TRAILERS: &[&str] = &[
    // message framing
    "content-length",
    "transfer-encoding",
    "trailer",
    // routing and connection control
    "host",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    // request modifiers: controls and conditionals
    "cache-control",
    "expect",
    "max-forwards",
    "pragma",
    "range",
    "if-match",
    "if-none-match",
    "if-modified-since",
    "if-unmodified-since",
    "if-range",
    // authentication and state
    "authorization",
    "proxy-authorization",
    "www-authenticate",
    "proxy-authenticate",
    "cookie",
    "set-cookie",
    // response control data and processing of the content
    "content-encoding",
    "content-type",
    "content-range",
    "content-location",
    "age",
    "date",
    "expires",
    "location",
    "retry-after",
    "vary",
];

/// Position of `name` in the singleton list (at most 16 entries: callers keep a bit mask).
pub fn singleton_index(name: &[u8]) -> Option<usize> {
    // Most fields of a real request (User-Agent, Accept, Cookie, ...) differ in length from
    // every singleton, so this is one length comparison per entry for them.
    SINGLETONS.iter().position(|(known, _)| {
        known.len() == name.len() && known.as_bytes().eq_ignore_ascii_case(name)
    })
}

/// The reason for a 400 when the singleton at `index` repeats.
pub fn repeated_reason(index: usize) -> &'static str {
    SINGLETONS
        .get(index)
        .map_or("repeated singleton header field", |(_, reason)| reason)
}

/// The lower-case names of all singletons (the HTTP/2 check looks each up).
pub fn singleton_names() -> impl Iterator<Item = (&'static str, &'static str)> {
    SINGLETONS.iter().copied()
}

/// Whether a trailer section must not carry `name` (a 400 when it does).
pub fn is_forbidden_trailer(name: &[u8]) -> bool {
    FORBIDDEN_TRAILERS
        .iter()
        .any(|known| known.len() == name.len() && known.as_bytes().eq_ignore_ascii_case(name))
}

/// The reason sent with a forbidden trailer's 400.
pub const FORBIDDEN_TRAILER_REASON: &str = "forbidden field in chunked trailer section";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn singletons_are_found_in_any_case_and_fit_a_mask() {
        assert!(SINGLETONS.len() <= 16);
        assert_eq!(singleton_index(b"Content-Type"), Some(2));
        assert_eq!(singleton_index(b"AUTHORIZATION"), Some(3));
        assert_eq!(singleton_index(b"Content-Types"), None);
        assert_eq!(singleton_index(b"cookie"), None);
        assert_eq!(repeated_reason(2), "repeated Content-Type header");
    }

    #[test]
    fn framing_routing_and_auth_fields_are_forbidden_trailers() {
        for name in [
            &b"Content-Length"[..],
            b"transfer-encoding",
            b"HOST",
            b"Authorization",
        ] {
            assert!(is_forbidden_trailer(name), "{name:?}");
        }
        for name in [&b"X-Checksum"[..], b"Server-Timing", b"digest"] {
            assert!(!is_forbidden_trailer(name), "{name:?}");
        }
    }

    #[test]
    fn lists_are_lower_case() {
        for (name, _) in SINGLETONS {
            assert_eq!(*name, name.to_ascii_lowercase());
        }
        for name in FORBIDDEN_TRAILERS {
            assert_eq!(*name, name.to_ascii_lowercase());
        }
    }
}

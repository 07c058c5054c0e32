//! Conditional requests (RFC 9110 13): a file's validators against the request's preconditions.
//!
//! Owns: entity-tag lists (`*`, weak `W/"x"` and strong `"x"` tags), the strong and weak
//! comparisons, HTTP-date comparisons at one-second resolution, the evaluation order of 13.2.2
//! (`If-Match`, else `If-Unmodified-Since` -> 412; `If-None-Match`, else `If-Modified-Since` ->
//! 304) and `If-Range`. Must not touch: files, ranges or building responses.

use std::time::{SystemTime, UNIX_EPOCH};

use http::{header, HeaderMap};

/// A representation's validators.
#[derive(Debug, Clone)]
pub struct Validators {
    /// A strong entity-tag, quotes included.
    pub etag: String,
    /// Last-Modified, in whole seconds since the epoch.
    pub modified: Option<u64>,
}

impl Validators {
    /// From a file's modification time and length; `tag` tells representations apart (the
    /// coding of a precompressed sibling).
    pub fn of_file(modified: Option<SystemTime>, len: u64, tag: &str) -> Validators {
        let since = modified.and_then(|m| m.duration_since(UNIX_EPOCH).ok());
        let nanos = since.map_or(0, |d| d.as_nanos());
        let etag = if tag.is_empty() {
            format!("\"{nanos:x}-{len:x}\"")
        } else {
            format!("\"{nanos:x}-{len:x}-{tag}\"")
        };
        Validators {
            etag,
            modified: since.map(|d| d.as_secs()),
        }
    }
}

/// What the preconditions say.
#[derive(Debug, PartialEq, Eq)]
pub enum Precondition {
    /// Send the representation (or its ranges).
    Proceed,
    /// 304 Not Modified.
    NotModified,
    /// 412 Precondition Failed.
    Failed,
}

/// Evaluates the preconditions of a GET or HEAD in RFC 9110 13.2.2's order.
pub fn evaluate(headers: &HeaderMap, v: &Validators) -> Precondition {
    if let Some(value) = text(headers, header::IF_MATCH) {
        if !matches_any(value, &v.etag, Comparison::Strong) {
            return Precondition::Failed;
        }
    } else if let Some(since) = date(headers, header::IF_UNMODIFIED_SINCE) {
        if v.modified.is_none_or(|m| m > since) {
            return Precondition::Failed;
        }
    }
    if let Some(value) = text(headers, header::IF_NONE_MATCH) {
        if matches_any(value, &v.etag, Comparison::Weak) {
            return Precondition::NotModified;
        }
    } else if let Some(since) = date(headers, header::IF_MODIFIED_SINCE) {
        if v.modified.is_some_and(|m| m <= since) {
            return Precondition::NotModified;
        }
    }
    Precondition::Proceed
}

/// Whether a `Range` may be honoured: no `If-Range`, or one that still holds (a strong
/// entity-tag match, or exactly the Last-Modified date).
pub fn if_range_holds(headers: &HeaderMap, v: &Validators) -> bool {
    let Some(value) = text(headers, header::IF_RANGE) else {
        return true;
    };
    let value = value.trim();
    if value.starts_with('"') || value.starts_with("W/") {
        return matches_any(value, &v.etag, Comparison::Strong);
    }
    match (httpdate::parse_http_date(value), v.modified) {
        (Ok(date), Some(modified)) => epoch_secs(date) == Some(modified),
        _ => false,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Comparison {
    Strong,
    Weak,
}

/// Whether the list `value` (`*` or entity-tags) matches `etag` (a strong tag of ours).
fn matches_any(value: &str, etag: &str, comparison: Comparison) -> bool {
    if value.trim() == "*" {
        return true;
    }
    entity_tags(value).any(|(weak, tag)| tag == etag && !(weak && comparison == Comparison::Strong))
}

/// The `(weak, "opaque")` tags of a list; stops at the first malformed one.
fn entity_tags(value: &str) -> impl Iterator<Item = (bool, &str)> {
    let mut rest = value;
    std::iter::from_fn(move || {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            return None;
        }
        let weak = rest.starts_with("W/");
        let tagged = if weak { &rest[2..] } else { rest };
        if !tagged.starts_with('"') {
            rest = "";
            return None;
        }
        let Some(end) = tagged[1..].find('"') else {
            rest = "";
            return None;
        };
        let (tag, after) = tagged.split_at(end + 2);
        rest = after;
        Some((weak, tag))
    })
}

fn text(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// A date header in seconds since the epoch; an invalid date is no date (RFC 9110 13.1.3).
fn date(headers: &HeaderMap, name: header::HeaderName) -> Option<u64> {
    let value = text(headers, name)?;
    epoch_secs(httpdate::parse_http_date(value.trim()).ok()?)
}

fn epoch_secs(time: SystemTime) -> Option<u64> {
    time.duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    const TAG: &str = "\"abc-10\"";
    const MODIFIED: u64 = 1_700_000_000; // Tue, 14 Nov 2023 22:13:20 GMT

    fn v() -> Validators {
        Validators {
            etag: TAG.to_string(),
            modified: Some(MODIFIED),
        }
    }

    fn headers(fields: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in fields {
            map.append(*name, HeaderValue::from_str(value).expect("value"));
        }
        map
    }

    fn at(secs: u64) -> String {
        httpdate::fmt_http_date(UNIX_EPOCH + std::time::Duration::from_secs(secs))
    }

    #[test]
    fn if_none_match_uses_the_weak_comparison() {
        let run = |value| evaluate(&headers(&[("if-none-match", value)]), &v());
        assert_eq!(run(TAG), Precondition::NotModified);
        assert_eq!(run("W/\"abc-10\""), Precondition::NotModified);
        assert_eq!(run("\"x\", W/\"abc-10\""), Precondition::NotModified);
        assert_eq!(run("*"), Precondition::NotModified);
        assert_eq!(run("\"abc-1\""), Precondition::Proceed);
        assert_eq!(run("abc-10"), Precondition::Proceed);
    }

    #[test]
    fn if_match_uses_the_strong_comparison() {
        let run = |value| evaluate(&headers(&[("if-match", value)]), &v());
        assert_eq!(run(TAG), Precondition::Proceed);
        assert_eq!(run("*"), Precondition::Proceed);
        assert_eq!(run("W/\"abc-10\""), Precondition::Failed);
        assert_eq!(run("\"other\""), Precondition::Failed);
    }

    #[test]
    fn dates_compare_at_one_second() {
        let ims = |secs| evaluate(&headers(&[("if-modified-since", &at(secs))]), &v());
        assert_eq!(ims(MODIFIED), Precondition::NotModified);
        assert_eq!(ims(MODIFIED + 5), Precondition::NotModified);
        assert_eq!(ims(MODIFIED - 1), Precondition::Proceed);
        let ius = |secs| evaluate(&headers(&[("if-unmodified-since", &at(secs))]), &v());
        assert_eq!(ius(MODIFIED), Precondition::Proceed);
        assert_eq!(ius(MODIFIED - 1), Precondition::Failed);
        let bad = headers(&[("if-modified-since", "yesterday")]);
        assert_eq!(evaluate(&bad, &v()), Precondition::Proceed);
    }

    #[test]
    fn rfc_9110_precedence() {
        // If-Match wins over If-Unmodified-Since (which alone would fail).
        let h = headers(&[
            ("if-match", TAG),
            ("if-unmodified-since", &at(MODIFIED - 9)),
        ]);
        assert_eq!(evaluate(&h, &v()), Precondition::Proceed);
        // A failed If-Match is 412 even when If-None-Match would give 304.
        let h = headers(&[("if-match", "\"x\""), ("if-none-match", TAG)]);
        assert_eq!(evaluate(&h, &v()), Precondition::Failed);
        // If-None-Match wins over If-Modified-Since (which alone would give 304).
        let h = headers(&[
            ("if-none-match", "\"x\""),
            ("if-modified-since", &at(MODIFIED)),
        ]);
        assert_eq!(evaluate(&h, &v()), Precondition::Proceed);
    }

    #[test]
    fn if_range_needs_a_strong_match_or_the_exact_date() {
        let run = |value: &str| if_range_holds(&headers(&[("if-range", value)]), &v());
        assert!(if_range_holds(&HeaderMap::new(), &v()));
        assert!(run(TAG));
        assert!(!run("W/\"abc-10\""));
        assert!(!run("\"other\""));
        assert!(run(&at(MODIFIED)));
        assert!(!run(&at(MODIFIED + 1)));
        assert!(!run("garbage"));
    }

    #[test]
    fn etags_carry_their_representation() {
        let plain = Validators::of_file(Some(UNIX_EPOCH), 16, "");
        let br = Validators::of_file(Some(UNIX_EPOCH), 16, "br");
        assert_eq!(plain.etag, "\"0-10\"");
        assert_eq!(br.etag, "\"0-10-br\"");
    }
}

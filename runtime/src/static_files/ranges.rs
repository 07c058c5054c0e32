//! Byte ranges (RFC 9110 14): the `Range` field and `multipart/byteranges` bodies.
//!
//! Owns: parsing `bytes=` range sets against a length (first-last, first-, -suffix), telling
//! an ignorable field from an unsatisfiable one, the `Content-Range` values, and laying out a
//! multipart body (part heads around file regions, its exact length). Must not touch:
//! preconditions (`conditional`, which rules on `If-Range`), files' names or the status line.

use std::fs::File;
use std::sync::Arc;

use bytes::Bytes;

use crate::body::{FileRegion, ResponseBody};

/// More ranges than this in one request are ignored (the whole file is sent): a client has no
/// need for more, and many tiny overlapping ranges would turn a small file into a large body.
const MAX_RANGES: usize = 32;

/// One satisfiable range, `first..=last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub first: u64,
    pub last: u64,
}

impl ByteRange {
    pub fn len(self) -> u64 {
        self.last - self.first + 1
    }

    /// The `Content-Range` value of this range of a representation of `total` bytes.
    pub fn content_range(self, total: u64) -> String {
        format!("bytes {}-{}/{total}", self.first, self.last)
    }
}

/// What a `Range` field asks of a representation.
#[derive(Debug, PartialEq, Eq)]
pub enum RangeRequest {
    /// Not a byte range set we honour: send the whole representation (200).
    Ignore,
    /// None of the ranges overlaps the representation: 416.
    Unsatisfiable,
    /// 206 with these ranges, in the order asked.
    Ranges(Vec<ByteRange>),
}

/// Parses a `Range` value against a representation of `len` bytes.
pub fn parse(value: &str, len: u64) -> RangeRequest {
    let Some((unit, set)) = value.split_once('=') else {
        return RangeRequest::Ignore;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return RangeRequest::Ignore;
    }
    let mut ranges = Vec::new();
    let mut specs = 0;
    for spec in set.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        specs += 1;
        if specs > MAX_RANGES {
            return RangeRequest::Ignore;
        }
        let Some((first, last)) = spec.split_once('-') else {
            return RangeRequest::Ignore;
        };
        let (first, last) = (first.trim(), last.trim());
        let range = if first.is_empty() {
            let Some(suffix) = number(last) else {
                return RangeRequest::Ignore;
            };
            (suffix > 0 && len > 0).then(|| ByteRange {
                first: len.saturating_sub(suffix),
                last: len - 1,
            })
        } else {
            let Some(first) = number(first) else {
                return RangeRequest::Ignore;
            };
            let last = if last.is_empty() {
                u64::MAX
            } else {
                match number(last) {
                    Some(last) if last >= first => last,
                    _ => return RangeRequest::Ignore,
                }
            };
            (first < len).then(|| ByteRange {
                first,
                last: last.min(len - 1),
            })
        };
        ranges.extend(range);
    }
    match (specs, ranges.is_empty()) {
        (0, _) => RangeRequest::Ignore,
        (_, true) => RangeRequest::Unsatisfiable,
        _ => RangeRequest::Ranges(ranges),
    }
}

fn number(digits: &str) -> Option<u64> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// A `multipart/byteranges` body of `ranges` of `file` (`total` bytes of type `content_type`)
/// and its exact length; parts are separated by `boundary`.
pub fn multipart(
    file: File,
    ranges: &[ByteRange],
    total: u64,
    content_type: &str,
    boundary: &str,
) -> (ResponseBody, u64) {
    let file = Arc::new(file);
    let mut parts = Vec::with_capacity(ranges.len() * 2 + 1);
    let mut length = 0;
    for range in ranges {
        let head = format!(
            "\r\n--{boundary}\r\nContent-Type: {content_type}\r\nContent-Range: {}\r\n\r\n",
            range.content_range(total)
        );
        length += head.len() as u64 + range.len();
        parts.push(ResponseBody::full(Bytes::from(head)));
        let region = FileRegion::shared(file.clone(), range.first, range.len());
        parts.push(ResponseBody::File(region));
    }
    let tail = format!("\r\n--{boundary}--\r\n");
    length += tail.len() as u64;
    parts.push(ResponseBody::full(Bytes::from(tail)));
    (ResponseBody::chain(parts), length)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(first: u64, last: u64) -> ByteRange {
        ByteRange { first, last }
    }

    #[test]
    fn single_ranges() {
        assert_eq!(parse("bytes=0-4", 10), RangeRequest::Ranges(vec![r(0, 4)]));
        assert_eq!(parse("bytes=5-", 10), RangeRequest::Ranges(vec![r(5, 9)]));
        assert_eq!(parse("bytes=-3", 10), RangeRequest::Ranges(vec![r(7, 9)]));
        assert_eq!(parse("bytes=-30", 10), RangeRequest::Ranges(vec![r(0, 9)]));
        assert_eq!(
            parse("bytes=8-100", 10),
            RangeRequest::Ranges(vec![r(8, 9)])
        );
        assert_eq!(
            parse("Bytes = 1-1", 10),
            RangeRequest::Ranges(vec![r(1, 1)])
        );
    }

    #[test]
    fn several_ranges_keep_their_order() {
        assert_eq!(
            parse("bytes=6-7, 0-1,-1", 10),
            RangeRequest::Ranges(vec![r(6, 7), r(0, 1), r(9, 9)])
        );
        // Unsatisfiable members are dropped when another is satisfiable.
        assert_eq!(
            parse("bytes=50-60, 0-1", 10),
            RangeRequest::Ranges(vec![r(0, 1)])
        );
    }

    #[test]
    fn unsatisfiable_sets() {
        assert_eq!(parse("bytes=10-", 10), RangeRequest::Unsatisfiable);
        assert_eq!(parse("bytes=10-20, 30-", 10), RangeRequest::Unsatisfiable);
        assert_eq!(parse("bytes=-0", 10), RangeRequest::Unsatisfiable);
        assert_eq!(parse("bytes=0-", 0), RangeRequest::Unsatisfiable);
        assert_eq!(parse("bytes=-5", 0), RangeRequest::Unsatisfiable);
    }

    #[test]
    fn malformed_or_foreign_fields_are_ignored() {
        for value in [
            "bytes=5-1",
            "bytes=a-b",
            "bytes=1-2-3",
            "bytes=--1",
            "bytes=",
            "items=0-1",
            "0-1",
            "bytes=+1-2",
            "bytes=99999999999999999999999-",
        ] {
            assert_eq!(parse(value, 10), RangeRequest::Ignore, "{value}");
        }
        let many = format!("bytes={}", vec!["0-0"; MAX_RANGES + 1].join(","));
        assert_eq!(parse(&many, 10), RangeRequest::Ignore);
    }

    #[test]
    fn content_range_values() {
        assert_eq!(r(0, 4).content_range(10), "bytes 0-4/10");
        assert_eq!(r(0, 4).len(), 5);
    }
}

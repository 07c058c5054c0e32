//! The header fields an app passed to `start_response`, kept as one byte buffer.
//!
//! Owns: `HeadFields` (each field's name and the span of its value in a shared buffer) and
//! `FieldValue`, the one place a value is checked against the rule for a valid field value
//! (RFC 9110 field-value bytes: no control characters but HTAB). A value is checked once, when
//! the app gives it; `push` takes only a checked value, so no CR or LF can reach a head.
//! Must not touch: which fields an app may set (hop-by-hop fields are `start_response`'s
//! business) or how a head is written out (the inline path writes the bytes as they are;
//! hyper's path makes `HeaderValue`s from them in `python::with_head`).
//!
//! Why not `Vec<(HeaderName, HeaderValue)>`: every `HeaderValue` made from a `str` is its own
//! allocation, and the inline path only ever copies the bytes into its output buffer. With one
//! buffer for all values a response head costs two allocations however many fields it has
//! (profiled on the Flask bench: 3 of the 5 allocations per request were header values).

use http::HeaderName;

/// Field names and values in the order the app gave them.
#[derive(Debug, Default)]
pub struct HeadFields {
    names: Vec<(HeaderName, usize, usize)>,
    values: Vec<u8>,
}

/// Room for a typical value, so that a handful of fields fit the first allocation.
const VALUE_ROOM: usize = 40;

impl HeadFields {
    /// Room for `fields` fields (a hint).
    pub fn with_capacity(fields: usize) -> HeadFields {
        HeadFields {
            names: Vec::with_capacity(fields),
            values: Vec::with_capacity(fields * VALUE_ROOM),
        }
    }

    /// Adds a field (its value already checked: see `FieldValue::new`).
    pub fn push(&mut self, name: HeaderName, value: FieldValue<'_>) {
        let start = self.values.len();
        self.values.extend_from_slice(value.0);
        self.names.push((name, start, self.values.len()));
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The fields in order, each value as its bytes.
    pub fn iter(&self) -> impl Iterator<Item = (&HeaderName, &[u8])> {
        self.names
            .iter()
            .map(|(name, start, end)| (name, &self.values[*start..*end]))
    }
}

/// Bytes checked to be a field value `http::HeaderValue` would accept: visible bytes, spaces
/// and tabs, no other control characters (so no CR or LF that could split the head).
#[derive(Debug, Clone, Copy)]
pub struct FieldValue<'a>(&'a [u8]);

impl<'a> FieldValue<'a> {
    /// `value` as a field value, or `None` if it has a byte a field value may not carry.
    pub fn new(value: &'a [u8]) -> Option<FieldValue<'a>> {
        // Without an early exit, so the compiler checks many bytes at a time: a refused value
        // is an app's bug, and every value of every response passes here.
        let refused = value.iter().fold(false, |refused, &byte| {
            refused | ((byte < 0x20 && byte != b'\t') | (byte == 0x7f))
        });
        (!refused).then_some(FieldValue(value))
    }
}

/// Whether `value` is a `Content-Length` a response may carry: 1 to 19 decimal digits (so it
/// fits a `u64`), spaces and tabs around allowed. Anything else ("+5", "1,2", "abc") would
/// leave the server and the client to disagree on where the body ends.
pub fn is_content_length(value: &[u8]) -> bool {
    let digits = value.trim_ascii();
    (1..=19).contains(&digits.len()) && digits.iter().all(u8::is_ascii_digit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
    use http::HeaderValue;

    #[test]
    fn fields_come_back_in_order_with_their_own_values() {
        let mut fields = HeadFields::with_capacity(1);
        for (name, value) in [
            (CONTENT_TYPE, &b"application/json"[..]),
            (CONTENT_LENGTH, b"31"),
            (CONTENT_TYPE, b""),
        ] {
            fields.push(name, FieldValue::new(value).expect("a valid value"));
        }
        let seen: Vec<(&str, &[u8])> = fields.iter().map(|(n, v)| (n.as_str(), v)).collect();
        assert_eq!(
            seen,
            [
                ("content-type", &b"application/json"[..]),
                ("content-length", b"31"),
                ("content-type", b""),
            ]
        );
        assert_eq!(fields.len(), 3);
    }

    #[test]
    fn a_value_is_refused_exactly_when_http_refuses_it() {
        for byte in 0..=255u8 {
            let value = [b'a', byte, b'b'];
            let ours = FieldValue::new(&value).is_some();
            let http = HeaderValue::from_bytes(&value).is_ok();
            assert_eq!(ours, http, "byte {byte:#04x}");
        }
        assert!(FieldValue::new(b"a\r\nset-cookie: x=1").is_none());
        assert!(FieldValue::new(b"").is_some());
    }

    #[test]
    fn a_content_length_is_decimal_digits_that_fit_a_u64() {
        for good in [&b"0"[..], b"31", b" 31\t", b"9999999999999999999"] {
            assert!(is_content_length(good), "{good:?}");
        }
        for bad in [
            &b""[..],
            b" ",
            b"+5",
            b"-1",
            b"1,2",
            b"0x10",
            b"abc",
            b"99999999999999999999",
        ] {
            assert!(!is_content_length(bad), "{bad:?}");
        }
    }
}

//! Splitting a request target into path and query, and decoding query strings.
//!
//! Owns the pure string logic behind `Request::path`, `Request::query` and
//! `Request::query_param`: split at the first `?`, split pairs at `&` and `=`,
//! decode `%XX` escapes and `+` as a space. It must not call any wasi import
//! and does not validate or normalise paths (the host passes them as received).

/// The part of `target` before the first `?` (the whole string if there is none).
pub fn path_of(target: &str) -> &str {
    target.split_once('?').map_or(target, |(path, _)| path)
}

/// The part of `target` after the first `?`, or `None` if there is no `?`.
pub fn query_of(target: &str) -> Option<&str> {
    target.split_once('?').map(|(_, query)| query)
}

/// Decodes an `application/x-www-form-urlencoded` query into `(name, value)`
/// pairs, in order. A bare `name` (no `=`) gives an empty value; empty pieces
/// (`a&&b`) are skipped. Invalid escapes are kept literally, and bytes that do
/// not form UTF-8 after decoding are replaced by U+FFFD.
pub fn decode_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| {
            let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
            (decode_component(name), decode_component(value))
        })
        .collect()
}

/// Decodes one query component: `+` becomes a space and `%XX` the byte `XX`.
pub fn decode_component(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match (hex_value(bytes[i + 1]), hex_value(bytes[i + 2])) {
                    (Some(hi), Some(lo)) => {
                        out.push(hi << 4 | lo);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_path_and_query() {
        assert_eq!(path_of("/a/b?x=1&y"), "/a/b");
        assert_eq!(query_of("/a/b?x=1&y"), Some("x=1&y"));
        assert_eq!(path_of("/plain"), "/plain");
        assert_eq!(query_of("/plain"), None);
        assert_eq!(query_of("/empty?"), Some(""));
        assert_eq!(query_of("/two?a=?b"), Some("a=?b"));
    }

    #[test]
    fn decodes_pairs() {
        let pairs = decode_pairs("env=HOME&log=hello+world%21&files&&x=a%3Db");
        let expect = [
            ("env", "HOME"),
            ("log", "hello world!"),
            ("files", ""),
            ("x", "a=b"),
        ];
        let got: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        assert_eq!(got, expect);
    }

    #[test]
    fn bad_escapes_stay_literal() {
        assert_eq!(decode_component("100%"), "100%");
        assert_eq!(decode_component("%4"), "%4");
        assert_eq!(decode_component("%zz%41"), "%zzA");
        assert_eq!(decode_component("%C3%A9"), "é");
        assert_eq!(decode_component("%FF"), "\u{fffd}");
    }
}

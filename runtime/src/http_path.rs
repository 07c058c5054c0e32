//! Request paths as the router reads them: `%XX` decoding, written once.
//!
//! Owns: `percent_decode` (the one decoding rule shared by client requests, job deliveries and
//! every "is this path routed?" check) and `route_path` (a path as a caller writes it, query
//! and fragment dropped, decoded). Must not touch: routing decisions (`router`) or what a
//! handler sees (the server hands handlers the decoded path it matched).

use std::borrow::Cow;

/// `%XX` decoding of a path; other bytes kept as they are. Borrowed when nothing is encoded.
pub fn percent_decode(path: &[u8]) -> Cow<'_, [u8]> {
    if !path.contains(&b'%') {
        return Cow::Borrowed(path);
    }
    let mut out = Vec::with_capacity(path.len());
    let mut i = 0;
    while i < path.len() {
        let byte = path[i];
        if byte == b'%' {
            if let (Some(hi), Some(lo)) =
                (path.get(i + 1).and_then(hex), path.get(i + 2).and_then(hex))
            {
                out.push(hi << 4 | lo);
                i += 3;
                continue;
            }
        }
        out.push(byte);
        i += 1;
    }
    Cow::Owned(out)
}

/// The path the router matches for a target written by a caller (`/a%20b?x=1` -> `/a b`):
/// the query and fragment dropped, then percent-decoded, exactly as a request's path is.
pub fn route_path(written: &str) -> Cow<'_, [u8]> {
    let path = written.split(['?', '#']).next().unwrap_or_default();
    percent_decode(path.as_bytes())
}

fn hex(byte: &u8) -> Option<u8> {
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
    fn percent_decoding() {
        assert_eq!(&*percent_decode(b"/caf%C3%A9"), b"/caf\xc3\xa9");
        assert_eq!(&*percent_decode(b"/a%2fb"), b"/a/b");
        assert_eq!(&*percent_decode(b"/bad%zz%4"), b"/bad%zz%4");
        assert!(matches!(percent_decode(b"/plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn written_paths_lose_query_and_fragment_then_decode() {
        assert_eq!(&*route_path("/a%20b?x=%41"), b"/a b");
        assert_eq!(&*route_path("/t#frag"), b"/t");
        assert_eq!(&*route_path("/plain"), b"/plain");
    }
}

//! Content codings: the `Codec` names wsrun speaks and `Accept-Encoding` negotiation.
//!
//! Owns: parsing an `Accept-Encoding` field (RFC 9110 12.5.3: tokens, `q` weights, `*`) and
//! picking, in the server's order of preference, the first coding the client accepts. Used by
//! static routes (precompressed siblings) and by the response compression layer alike. Must not
//! touch: headers other than the one value it is given, or any codec implementation.

use std::fmt;

/// A content coding wsrun can send (compressing itself, or from a precompressed file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    Zstd,
    Br,
    Gzip,
}

impl Codec {
    /// Every codec, in the default order of preference (smallest and fastest first).
    pub const ALL: [Codec; 3] = [Codec::Zstd, Codec::Br, Codec::Gzip];

    /// The coding's token, as in `Content-Encoding`.
    pub fn token(self) -> &'static str {
        match self {
            Codec::Zstd => "zstd",
            Codec::Br => "br",
            Codec::Gzip => "gzip",
        }
    }

    /// The file name suffix of a precompressed sibling (`app.js.br`).
    pub fn file_suffix(self) -> &'static str {
        match self {
            Codec::Zstd => ".zst",
            Codec::Br => ".br",
            Codec::Gzip => ".gz",
        }
    }

    /// The codec a token names (case-insensitive; `x-gzip` is `gzip`).
    pub fn from_token(token: &str) -> Option<Codec> {
        Codec::ALL
            .into_iter()
            .find(|c| token.eq_ignore_ascii_case(c.token()))
            .or_else(|| token.eq_ignore_ascii_case("x-gzip").then_some(Codec::Gzip))
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.token())
    }
}

/// The client's weight (in thousandths) for `codec` from an `Accept-Encoding` value: its own
/// entry's `q`, else the `*` entry's, else 0 (not acceptable).
pub fn weight(accept: &str, codec: Codec) -> u16 {
    let mut star = None;
    for (token, q) in entries(accept) {
        if token == "*" {
            star = Some(q);
        } else if Codec::from_token(token) == Some(codec) {
            return q;
        }
    }
    star.unwrap_or(0)
}

/// The coding to use: among `offered` (in the server's order of preference), the one the client
/// weighs highest; ties go to the server's order. `None` when the client accepts none of them.
pub fn negotiate(accept: &str, offered: impl IntoIterator<Item = Codec>) -> Option<Codec> {
    let mut best: Option<(Codec, u16)> = None;
    for codec in offered {
        let q = weight(accept, codec);
        if q > 0 && best.is_none_or(|(_, b)| q > b) {
            best = Some((codec, q));
        }
    }
    best.map(|(codec, _)| codec)
}

/// Whether an `Accept-Encoding` value accepts at least one of `codecs`.
pub fn accepts_any(accept: &str, codecs: &[Codec]) -> bool {
    codecs.iter().any(|&c| weight(accept, c) > 0)
}

/// `(token, q in thousandths)` for each entry; an entry with a malformed `q` counts as `q=0`.
fn entries(accept: &str) -> impl Iterator<Item = (&str, u16)> {
    accept.split(',').filter_map(|entry| {
        let mut params = entry.split(';');
        let token = params.next()?.trim();
        if token.is_empty() {
            return None;
        }
        let mut q = 1000;
        for param in params {
            if let Some((name, value)) = param.split_once('=') {
                if name.trim().eq_ignore_ascii_case("q") {
                    q = parse_q(value.trim()).unwrap_or(0);
                }
            }
        }
        Some((token, q))
    })
}

/// A qvalue (`0`, `0.5`, `1.000`; RFC 9110 12.4.2) in thousandths.
fn parse_q(value: &str) -> Option<u16> {
    let (int, frac) = value.split_once('.').unwrap_or((value, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut thousandths: u16 = 0;
    for i in 0..3 {
        let digit = frac.as_bytes().get(i).map_or(0, |b| u16::from(b - b'0'));
        thousandths = thousandths * 10 + digit;
    }
    match int {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q_values_are_read_in_thousandths() {
        assert_eq!(parse_q("1"), Some(1000));
        assert_eq!(parse_q("1.000"), Some(1000));
        assert_eq!(parse_q("0.5"), Some(500));
        assert_eq!(parse_q("0.001"), Some(1));
        assert_eq!(parse_q("0"), Some(0));
        assert_eq!(parse_q("1.5"), None);
        assert_eq!(parse_q("0.0001"), None);
        assert_eq!(parse_q("abc"), None);
        assert_eq!(parse_q("2"), None);
    }

    #[test]
    fn the_clients_weights_win_then_the_servers_order() {
        let all = Codec::ALL;
        assert_eq!(negotiate("gzip, br, zstd", all), Some(Codec::Zstd));
        assert_eq!(negotiate("gzip;q=1, br;q=0.5", all), Some(Codec::Gzip));
        assert_eq!(negotiate("gzip, deflate", all), Some(Codec::Gzip));
        assert_eq!(negotiate("GZIP", all), Some(Codec::Gzip));
        assert_eq!(negotiate("x-gzip", all), Some(Codec::Gzip));
        assert_eq!(negotiate("identity", all), None);
        assert_eq!(negotiate("", all), None);
        assert_eq!(negotiate("br;q=0, gzip;q=0", all), None);
        assert_eq!(negotiate("br ; q=0.9 , gzip ; q=0.8", all), Some(Codec::Br));
    }

    #[test]
    fn a_star_covers_codings_not_named() {
        assert_eq!(negotiate("*", Codec::ALL), Some(Codec::Zstd));
        assert_eq!(negotiate("zstd;q=0, *", Codec::ALL), Some(Codec::Br));
        assert_eq!(negotiate("*;q=0", Codec::ALL), None);
        assert_eq!(negotiate("*;q=0, gzip", Codec::ALL), Some(Codec::Gzip));
    }

    #[test]
    fn only_offered_codings_are_chosen() {
        assert_eq!(negotiate("br, gzip", [Codec::Gzip]), Some(Codec::Gzip));
        assert_eq!(negotiate("br", [Codec::Gzip]), None);
        assert_eq!(negotiate("br", []), None);
        assert!(accepts_any("deflate, gzip;q=0.1", &[Codec::Gzip]));
        assert!(!accepts_any("deflate, gzip;q=0", &[Codec::Gzip]));
    }

    #[test]
    fn a_malformed_q_refuses_the_entry() {
        assert_eq!(negotiate("gzip;q=high", Codec::ALL), None);
        assert_eq!(negotiate("gzip;q=", Codec::ALL), None);
    }
}

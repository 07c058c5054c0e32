//! What a file is sent as: its media type, and which precompressed sibling stands in for it.
//!
//! Owns: the `Content-Type` of a file name (the `mime_guess` table, `charset=utf-8` added to
//! text types) and the choice among `FILE.zst`, `FILE.br`, `FILE.gz` by `Accept-Encoding`
//! (a sibling counts only if it is a regular file whose real path is under the root). Must not
//! touch: opening the chosen file, validators or the response.

use std::path::{Path, PathBuf};

use http::HeaderValue;

use crate::accept_encoding::{negotiate, weight, Codec};

/// The `Content-Type` for a file named `path`.
pub fn content_type(path: &Path) -> HeaderValue {
    let guess = mime_guess::from_path(path).first_raw();
    match guess {
        Some(kind) if kind.starts_with("text/") || kind == "application/javascript" => {
            HeaderValue::from_str(&format!("{kind}; charset=utf-8"))
                .unwrap_or(HeaderValue::from_static("application/octet-stream"))
        }
        Some(kind) => HeaderValue::from_static(kind),
        None => HeaderValue::from_static("application/octet-stream"),
    }
}

/// The precompressed sibling of `path` to send for `accept` (an `Accept-Encoding` value), if
/// the client accepts one that exists.
pub fn precompressed(root: &Path, path: &Path, accept: &str) -> Option<(PathBuf, Codec)> {
    let mut found: Vec<(Codec, PathBuf)> = Vec::new();
    for codec in Codec::ALL {
        if weight(accept, codec) == 0 {
            continue;
        }
        let mut name = path.as_os_str().to_owned();
        name.push(codec.file_suffix());
        let Ok(real) = PathBuf::from(name).canonicalize() else {
            continue;
        };
        if real.starts_with(root) && real.is_file() {
            found.push((codec, real));
        }
    }
    let codec = negotiate(accept, found.iter().map(|(c, _)| *c))?;
    let (_, real) = found.into_iter().find(|(c, _)| *c == codec)?;
    Some((real, codec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_come_from_the_table() {
        let ct = |name: &str| content_type(Path::new(name));
        assert_eq!(ct("a.html"), "text/html; charset=utf-8");
        assert_eq!(ct("a.CSS"), "text/css; charset=utf-8");
        assert_eq!(ct("a.png"), "image/png");
        assert_eq!(ct("a.wasm"), "application/wasm");
        assert_eq!(ct("a.json"), "application/json");
        assert_eq!(ct("noext"), "application/octet-stream");
    }

    #[test]
    fn the_best_existing_sibling_the_client_accepts() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let root = dir.path().canonicalize().expect("canonical");
        let file = root.join("app.js");
        std::fs::write(&file, "js").expect("file");
        std::fs::write(root.join("app.js.gz"), "gz").expect("file");
        std::fs::write(root.join("app.js.br"), "br").expect("file");
        let pick = |accept| precompressed(&root, &file, accept).map(|(_, c)| c);
        assert_eq!(pick("gzip, br, zstd"), Some(Codec::Br));
        assert_eq!(pick("gzip"), Some(Codec::Gzip));
        assert_eq!(pick("br;q=0.1, gzip"), Some(Codec::Gzip));
        assert_eq!(pick("zstd"), None);
        assert_eq!(pick("identity"), None);
    }
}

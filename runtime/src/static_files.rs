//! Static file routes (`static = "public/"` in wsrun.toml).
//!
//! Owns: mapping a route-relative path to a file under the route's root (never outside it:
//! `..` segments and symlinks that leave the root are 404), validators (ETag, Last-Modified)
//! and 304s, and sending the file from Rust. Must not touch: Python or routing.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use http::request::Parts;
use http::{header, HeaderValue, Method, Response, StatusCode};

use crate::body::{plain, FileRegion, ResponseBody};

/// A directory served as-is.
#[derive(Debug)]
pub struct StaticDir {
    root: PathBuf,
}

impl StaticDir {
    /// `root` must exist; it is resolved once so the containment check is exact.
    pub fn new(root: &Path) -> std::io::Result<StaticDir> {
        Ok(StaticDir {
            root: root.canonicalize()?,
        })
    }

    /// Serves `rel` (percent-decoded, relative to the route prefix).
    pub fn serve(&self, parts: &Parts, rel: &[u8]) -> Response<ResponseBody> {
        if parts.method != Method::GET && parts.method != Method::HEAD {
            let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed\n");
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return response;
        }
        match self.resolve(rel) {
            Some(path) => send_file(parts, &path),
            None => plain(StatusCode::NOT_FOUND, "Not Found\n"),
        }
    }

    fn resolve(&self, rel: &[u8]) -> Option<PathBuf> {
        let rel = std::str::from_utf8(rel).ok()?;
        let mut path = self.root.clone();
        for segment in rel.split('/').filter(|s| !s.is_empty()) {
            if segment == "." || segment == ".." || segment.contains('\\') {
                return None;
            }
            path.push(segment);
        }
        let mut path = path.canonicalize().ok()?;
        if path.is_dir() {
            path = path.join("index.html").canonicalize().ok()?;
        }
        (path.starts_with(&self.root) && path.is_file()).then_some(path)
    }
}

fn send_file(parts: &Parts, path: &Path) -> Response<ResponseBody> {
    let Ok(file) = File::open(path) else {
        return plain(StatusCode::NOT_FOUND, "Not Found\n");
    };
    let Ok(meta) = file.metadata() else {
        return plain(StatusCode::NOT_FOUND, "Not Found\n");
    };
    let modified = meta.modified().ok();
    let mtime_ns = modified
        .and_then(|m| m.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let etag = format!("\"{:x}-{:x}\"", mtime_ns, meta.len());
    let mut response = if not_modified(parts, &etag) {
        let mut r = Response::new(ResponseBody::Empty);
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        Response::new(ResponseBody::File(FileRegion::new(file, 0, meta.len())))
    };
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    if let Some(modified) = modified {
        if let Ok(value) = HeaderValue::from_str(&httpdate::fmt_http_date(modified)) {
            headers.insert(header::LAST_MODIFIED, value);
        }
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(path)),
    );
    response
}

fn not_modified(parts: &Parts, etag: &str) -> bool {
    let Some(value) = parts
        .headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    value
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.trim_start_matches("W/") == etag)
}

fn content_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "txt" | "md" => "text/plain; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "ico" => "image/x-icon",
        "webp" => "image/webp",
        "wasm" => "application/wasm",
        "pdf" => "application/pdf",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}

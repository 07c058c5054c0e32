//! Static file routes (`static = "public/"` in wsrun.toml): one request, from its path to the
//! response.
//!
//! Owns: `StaticDir` (a route's root and its `StaticOptions`) and the order of the steps for a
//! request: method check, `open` (one openat2 beneath the root for a plain file), else `resolve`
//! (path -> file, directory redirect, index or listing),
//! `mime` (type and precompressed sibling), `conditional` (412/304), `ranges` (206/416) and
//! `send` (headers and body). Must not touch: routing, Python, the connection, or response
//! compression (the server's compression layer sees static responses like any other).
//!
//! Metadata calls (`stat`, `open`) run on the event loop, as nginx makes them; file contents are
//! read by `body::FileRegion`, which never blocks the loop on a read that misses the page cache.

mod conditional;
mod listing;
mod mime;
mod open;
mod options;
mod ranges;
mod resolve;
mod send;

use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use http::request::Parts;
use http::{header, HeaderValue, Method, Response, StatusCode};

use crate::body::{plain, ResponseBody};
use open::Opened;
pub use options::StaticOptions;
use resolve::Resolved;

/// A directory served as-is.
#[derive(Debug)]
pub struct StaticDir {
    root: PathBuf,
    /// The root directory, open: `open::beneath` resolves request paths from it.
    root_fd: OwnedFd,
    options: StaticOptions,
}

impl StaticDir {
    /// `root` must exist; it is resolved once so the containment check is exact.
    pub fn new(root: &Path, options: StaticOptions) -> std::io::Result<StaticDir> {
        let root = root.canonicalize()?;
        let root_fd = OwnedFd::from(File::open(&root)?);
        Ok(StaticDir {
            root,
            root_fd,
            options,
        })
    }

    /// Serves `rel` (percent-decoded, relative to the route prefix).
    pub async fn serve(&self, parts: &Parts, rel: &[u8]) -> Response<ResponseBody> {
        if parts.method != Method::GET && parts.method != Method::HEAD {
            let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed\n");
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return response;
        }
        let head = parts.method == Method::HEAD;
        match open::beneath(&self.root_fd, &self.root, rel, self.options.hidden) {
            Opened::File(path, file, meta) => {
                let opened = Some((file, meta));
                return send::file(parts, &self.root, &path, opened, &self.options);
            }
            Opened::Missing => return not_found(),
            Opened::Resolve => {}
        }
        match resolve::resolve(&self.root, rel, &self.options) {
            Resolved::File(path) => send::file(parts, &self.root, &path, None, &self.options),
            Resolved::AddSlash => send::add_slash(&parts.uri),
            Resolved::Listing { dir, shown } => {
                let page = listing::page(dir, shown, self.options.hidden).await;
                match page {
                    Some(html) => send::html(html, head),
                    None => not_found(),
                }
            }
            Resolved::NotFound => not_found(),
        }
    }
}

fn not_found() -> Response<ResponseBody> {
    plain(StatusCode::NOT_FOUND, "Not Found\n")
}

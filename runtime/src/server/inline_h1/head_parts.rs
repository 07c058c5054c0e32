//! An inline `GET` as the `http` types that static routes, WASM routes and a shadow's copy
//! take.
//!
//! Owns: building `http::request::Parts` from an inline head (method `GET`, HTTP/1.1, the
//! target as a `Uri`, every field in order). Must not touch: what a route answers
//! (`static_files`, `wasm`), the connection, or how the reply is written (`reply`).
//!
//! Why: a static file's or a WASM hello's request and response are small, so hyper's
//! dispatcher and encoder were most of the server's own CPU on them (issues 14 and 13); the
//! `Parts` built here cost a fraction of that.

use http::request::Parts;
use http::{HeaderName, HeaderValue, Method, Request, Uri, Version};

use crate::python::FieldSpan;

/// The head whose target and fields lie in `buf` as `Parts`; `None` when the target or a field
/// is one the `http` types refuse (hyper's path then answers the request, as it did before).
pub fn parts(buf: &[u8], target: &str, fields: &[FieldSpan]) -> Option<Parts> {
    let uri = Uri::try_from(target).ok()?;
    let (mut parts, ()) = Request::new(()).into_parts();
    parts.method = Method::GET;
    parts.version = Version::HTTP_11;
    parts.uri = uri;
    parts.headers.reserve(fields.len());
    for span in fields {
        let name = HeaderName::from_bytes(span.name(buf)).ok()?;
        let value = HeaderValue::from_bytes(span.value(buf)).ok()?;
        parts.headers.append(name, value);
    }
    Some(parts)
}

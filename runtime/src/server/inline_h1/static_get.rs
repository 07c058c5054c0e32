//! A static route's `GET` on the inline path: the head as the `http` types the static file
//! code takes.
//!
//! Owns: building `http::request::Parts` from an inline head (method `GET`, HTTP/1.1, the
//! target as a `Uri`, every field in order). Must not touch: what a static route answers
//! (`static_files`), the connection, or how the reply is written (`reply`).
//!
//! Why: a static file's request and response are small, so hyper's dispatcher and encoder were
//! most of the server's own CPU on a 4 KiB file (issue 14); the `Parts` built here cost a
//! fraction of that.

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

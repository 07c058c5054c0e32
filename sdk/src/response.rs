//! A complete response: status, headers and a body held in memory.
//!
//! Owns [`Response`], plain data built by a handler and sent by `responder`
//! (which adds `content-length`). For bodies too large to hold in memory use
//! `Responder::start` and a `BodyWriter` instead. This module must not call
//! any wasi import.

use crate::headers::Headers;

/// An HTTP response whose body is fully in memory.
///
/// ```
/// use wsrun_sdk::Response;
///
/// let res = Response::text(200, "hi\n").with_header("cache-control", "no-store");
/// assert_eq!(res.status(), 200);
/// assert_eq!(res.headers().get("content-type"), Some("text/plain; charset=utf-8"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    status: u16,
    headers: Headers,
    body: Vec<u8>,
}

impl Response {
    /// A response with `status`, no headers and an empty body.
    pub fn new(status: u16) -> Self {
        Self {
            status,
            headers: Headers::new(),
            body: Vec::new(),
        }
    }

    /// A `text/plain; charset=utf-8` response.
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Self::new(status)
            .with_header("content-type", "text/plain; charset=utf-8")
            .with_body(body.into())
    }

    /// A response with the given `content-type` and body bytes.
    pub fn bytes(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Self::new(status)
            .with_header("content-type", content_type)
            .with_body(body)
    }

    /// Builder: sets the status code.
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// Builder: appends a header (earlier ones of the same name are kept).
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.headers.append(name, value);
        self
    }

    /// Builder: replaces all headers.
    pub fn with_headers(mut self, headers: Headers) -> Self {
        self.headers = headers;
        self
    }

    /// Builder: replaces the body.
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The headers.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The headers, for changing in place.
    pub fn headers_mut(&mut self) -> &mut Headers {
        &mut self.headers
    }

    /// The body.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// Splits the response into status, headers and body.
    pub fn into_parts(self) -> (u16, Headers, Vec<u8>) {
        (self.status, self.headers, self.body)
    }
}

#[cfg(test)]
mod tests {
    use super::Response;

    #[test]
    fn builders() {
        let res = Response::bytes(201, "application/json", b"{}".to_vec())
            .with_header("x-a", "1")
            .with_status(202);
        assert_eq!(res.status(), 202);
        assert_eq!(res.headers().get("Content-Type"), Some("application/json"));
        assert_eq!(res.body(), b"{}");
        let (status, headers, body) = res.into_parts();
        assert_eq!((status, headers.len(), body.len()), (202, 2, 2));
    }

    #[test]
    fn text_sets_type() {
        let mut res = Response::text(404, "nope");
        res.headers_mut().insert("content-type", "text/html");
        assert_eq!(res.headers().get_all("content-type").count(), 1);
        assert_eq!(res.body(), b"nope");
    }
}

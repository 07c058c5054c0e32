//! The incoming request, as typed Rust data plus a streaming body.
//!
//! Owns [`Request`] and [`Method`]: copies method, target, scheme, authority
//! and headers out of the wasi `incoming-request` when first asked for (each
//! once), and hands the request resource to [`Body`] when the body is taken;
//! the body owns its lifetime from there. It must not create responses or
//! write to any output stream.

use std::fmt;
use std::sync::OnceLock;

use wasi::http::types::{IncomingRequest, Method as WasiMethod, Scheme};

use crate::body::Body;
use crate::headers::Headers;
use crate::query;

/// The request header in which wsrun passes the route prefix (`SCRIPT_NAME`).
pub const SCRIPT_NAME_HEADER: &str = "wsrun-script-name";

/// An HTTP request method.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    /// `GET`
    Get,
    /// `HEAD`
    Head,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `DELETE`
    Delete,
    /// `CONNECT`
    Connect,
    /// `OPTIONS`
    Options,
    /// `TRACE`
    Trace,
    /// `PATCH`
    Patch,
    /// Any other method, as sent.
    Other(String),
}

impl Method {
    /// The method's name as it appears on the wire, e.g. `"GET"`.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Connect => "CONNECT",
            Method::Options => "OPTIONS",
            Method::Trace => "TRACE",
            Method::Patch => "PATCH",
            Method::Other(name) => name,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<WasiMethod> for Method {
    fn from(method: WasiMethod) -> Self {
        match method {
            WasiMethod::Get => Method::Get,
            WasiMethod::Head => Method::Head,
            WasiMethod::Post => Method::Post,
            WasiMethod::Put => Method::Put,
            WasiMethod::Delete => Method::Delete,
            WasiMethod::Connect => Method::Connect,
            WasiMethod::Options => Method::Options,
            WasiMethod::Trace => Method::Trace,
            WasiMethod::Patch => Method::Patch,
            WasiMethod::Other(name) => Method::Other(name),
        }
    }
}

/// An incoming HTTP request.
///
/// Its parts are read from the host when first asked for (each once), so a
/// handler pays, in host calls and in the imports its component links, only
/// for what it reads; the body streams through [`Request::body`].
#[derive(Debug)]
pub struct Request {
    /// The host's request, until its body is taken (`None` for a request built
    /// in memory). Taking the body reads every other part first.
    live: Option<IncomingRequest>,
    method: OnceLock<Method>,
    path_with_query: OnceLock<String>,
    scheme: OnceLock<Option<String>>,
    authority: OnceLock<Option<String>>,
    headers: OnceLock<Headers>,
    body: Option<Body>,
}

impl Request {
    /// Wraps a request handed over by the host; nothing is read yet.
    pub(crate) fn from_wasi(request: IncomingRequest) -> Self {
        Self {
            live: Some(request),
            method: OnceLock::new(),
            path_with_query: OnceLock::new(),
            scheme: OnceLock::new(),
            authority: OnceLock::new(),
            headers: OnceLock::new(),
            body: None,
        }
    }

    /// Builds a request in memory with an empty body, e.g. to unit-test a
    /// handler on the host. Add headers and a body with the `with_*` methods.
    pub fn new(method: Method, path_with_query: impl Into<String>) -> Self {
        Self {
            live: None,
            method: OnceLock::from(method),
            path_with_query: OnceLock::from(path_with_query.into()),
            scheme: OnceLock::from(None),
            authority: OnceLock::from(None),
            headers: OnceLock::from(Headers::new()),
            body: Some(Body::empty()),
        }
    }

    /// Builder: appends a header.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.headers();
        if let Some(headers) = self.headers.get_mut() {
            headers.append(name, value);
        }
        self
    }

    /// Builder: replaces the body with `data`.
    pub fn with_body(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.read_parts();
        self.live = None;
        self.body = Some(Body::from_bytes(data));
        self
    }

    /// Builder: sets scheme and authority.
    pub fn with_origin(mut self, scheme: &str, authority: &str) -> Self {
        self.scheme = OnceLock::from(Some(scheme.to_string()));
        self.authority = OnceLock::from(Some(authority.to_string()));
        self
    }

    /// The request method.
    pub fn method(&self) -> &Method {
        self.method.get_or_init(|| {
            self.live
                .as_ref()
                .map_or(Method::Get, |r| r.method().into())
        })
    }

    /// The full request target: path and query, e.g. `/app/items?page=2`.
    /// With wsrun this is the full path, route prefix included.
    pub fn path_with_query(&self) -> &str {
        self.path_with_query.get_or_init(|| {
            self.live
                .as_ref()
                .and_then(|r| r.path_with_query())
                .unwrap_or_else(|| "/".into())
        })
    }

    /// The path without the query, e.g. `/app/items`.
    pub fn path(&self) -> &str {
        query::path_of(self.path_with_query())
    }

    /// The raw query after `?` (not decoded), or `None` if there is no `?`.
    pub fn query(&self) -> Option<&str> {
        query::query_of(self.path_with_query())
    }

    /// The decoded query as `(name, value)` pairs, in order (`+` and `%XX`
    /// decoded; a bare `name` has an empty value).
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        self.query().map(query::decode_pairs).unwrap_or_default()
    }

    /// The decoded value of the first query parameter called `name`.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query_pairs()
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }

    /// The route prefix this handler is mounted at (wsrun's `wsrun-script-name`
    /// header, the WSGI `SCRIPT_NAME`); empty if the header is absent.
    pub fn script_name(&self) -> &str {
        self.headers().get(SCRIPT_NAME_HEADER).unwrap_or("")
    }

    /// The URL scheme (`"http"`, `"https"`, ...) if the host supplied one.
    pub fn scheme(&self) -> Option<&str> {
        self.scheme
            .get_or_init(|| {
                self.live
                    .as_ref()
                    .and_then(|r| r.scheme())
                    .map(|s| match s {
                        Scheme::Http => "http".to_string(),
                        Scheme::Https => "https".to_string(),
                        Scheme::Other(other) => other,
                    })
            })
            .as_deref()
    }

    /// The authority (`host[:port]`) if the host supplied one.
    pub fn authority(&self) -> Option<&str> {
        self.authority
            .get_or_init(|| self.live.as_ref().and_then(|r| r.authority()))
            .as_deref()
    }

    /// All request headers.
    pub fn headers(&self) -> &Headers {
        self.headers.get_or_init(|| {
            self.live.as_ref().map_or_else(Headers::new, |r| {
                // `fields` is a child of the request: dropped before it.
                let fields = r.headers();
                Headers::from(fields.entries())
            })
        })
    }

    /// The first value of header `name` (case-insensitive) as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers().get(name)
    }

    /// The request body, for streaming reads.
    pub fn body(&mut self) -> &mut Body {
        if self.body.is_none() {
            // The body owns the host's request from here: read the rest first.
            self.read_parts();
        }
        let live = &mut self.live;
        self.body.get_or_insert_with(|| live_body(live))
    }

    /// Reads every part not read yet, while the host's request is still here.
    fn read_parts(&self) {
        self.method();
        self.path_with_query();
        self.scheme();
        self.authority();
        self.headers();
    }

    /// Consumes the request, keeping only its body (the other parts unread
    /// stay unread).
    pub fn into_body(mut self) -> Body {
        match self.body.take() {
            Some(body) => body,
            None => live_body(&mut self.live),
        }
    }
}

/// The body of the host's request, taking the request with it (an empty body if there is none).
fn live_body(live: &mut Option<IncomingRequest>) -> Body {
    live.take().map_or_else(Body::empty, Body::from_wasi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accessors() {
        let mut req = Request::new(Method::Post, "/api/items?name=a+b&flag")
            .with_header("Wsrun-Script-Name", "/api")
            .with_header("X-Multi", "1")
            .with_header("x-multi", "2")
            .with_origin("http", "example.test:8080")
            .with_body("payload");
        assert_eq!(req.method().as_str(), "POST");
        assert_eq!(req.path(), "/api/items");
        assert_eq!(req.query(), Some("name=a+b&flag"));
        assert_eq!(req.query_param("name").as_deref(), Some("a b"));
        assert_eq!(req.query_param("flag").as_deref(), Some(""));
        assert_eq!(req.query_param("none"), None);
        assert_eq!(req.script_name(), "/api");
        assert_eq!(
            req.headers().get_all("X-MULTI").collect::<Vec<_>>(),
            ["1", "2"]
        );
        assert_eq!(req.authority(), Some("example.test:8080"));
        assert_eq!(req.scheme(), Some("http"));
        assert_eq!(req.body().read_all().unwrap(), b"payload");
    }

    #[test]
    fn a_request_stays_send_and_sync() {
        // Reading parts lazily (a `OnceLock` each) must not take these away from handlers.
        fn send_and_sync<T: Send + Sync>() {}
        send_and_sync::<Request>();
    }

    #[test]
    fn defaults() {
        let req = Request::new(Method::Other("PURGE".into()), "/");
        assert_eq!(req.method().to_string(), "PURGE");
        assert_eq!(req.script_name(), "");
        assert!(req.query_pairs().is_empty());
        assert_eq!(req.into_body().read_chunk().unwrap(), None);
    }
}

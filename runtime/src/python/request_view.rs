//! What the environ is built from: a request head, seen the same way whichever shape it
//! arrived in.
//!
//! Owns: the `RequestView` contract (method, target, path, server and peer addresses, header
//! fields in arrival order) and its two shapes — `RequestParts`, owned and built from `http`
//! types (hyper's path, Python threads), and `RawGet`, borrowed straight from the bytes of a
//! `GET` head the inline path parsed (no header map, no URI, nothing allocated). Must not
//! touch: Python objects (`environ` turns a view into a dict), parsing, or validation.

use std::net::SocketAddr;

use http::{HeaderMap, Method, Uri, Version};

/// A request head as the environ reads it.
pub trait RequestView {
    fn method(&self) -> &Method;
    fn version(&self) -> Version;
    /// The request target's path and query, as received (`RAW_URI`, `REQUEST_URI`).
    fn raw_target(&self) -> &str;
    /// The query, without `?`; `None` or empty when there is none.
    fn query(&self) -> Option<&str>;
    /// The percent-decoded path below the route's prefix (`PATH_INFO`).
    fn path_info(&self) -> &[u8];
    /// Host name without the port.
    fn server_name(&self) -> &str;
    fn server_port(&self) -> u16;
    fn remote(&self) -> SocketAddr;
    /// Length of the spooled body; `CONTENT_LENGTH` when the request has a body.
    fn body_len(&self) -> Option<u64>;
    /// Calls `each` with every header field (name as received, value), in arrival order.
    /// Fields only a job delivery may carry are already left out.
    fn for_each_field<E>(&self, each: impl FnMut(&[u8], &[u8]) -> Result<(), E>) -> Result<(), E>;
    /// Arrived over TLS (`wsgi.url_scheme` is `https`).
    fn https(&self) -> bool;
}

/// An owned request head, from `http` types.
pub struct RequestParts {
    pub method: Method,
    pub version: Version,
    /// The request target as received: `RAW_URI`, `REQUEST_URI` and `QUERY_STRING` come from it.
    pub uri: Uri,
    /// The percent-decoded path; `PATH_INFO` is `path[path_info_start..]`.
    pub path: Vec<u8>,
    pub path_info_start: usize,
    pub headers: HeaderMap,
    /// Host name without the port (from the Host header or an absolute-form target).
    pub server_name: String,
    pub server_port: u16,
    pub remote: SocketAddr,
    /// Length of the spooled body; `CONTENT_LENGTH` when the request has a body.
    pub body_len: Option<u64>,
    /// Arrived over TLS: `wsgi.url_scheme` is `https`.
    pub https: bool,
}

impl RequestView for RequestParts {
    fn method(&self) -> &Method {
        &self.method
    }
    fn https(&self) -> bool {
        self.https
    }
    fn version(&self) -> Version {
        self.version
    }
    fn raw_target(&self) -> &str {
        self.uri.path_and_query().map_or("", |pq| pq.as_str())
    }
    fn query(&self) -> Option<&str> {
        self.uri.query()
    }
    fn path_info(&self) -> &[u8] {
        self.path.get(self.path_info_start..).unwrap_or_default()
    }
    fn server_name(&self) -> &str {
        &self.server_name
    }
    fn server_port(&self) -> u16 {
        self.server_port
    }
    fn remote(&self) -> SocketAddr {
        self.remote
    }
    fn body_len(&self) -> Option<u64> {
        self.body_len
    }
    fn for_each_field<E>(
        &self,
        mut each: impl FnMut(&[u8], &[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        // The server strips job-delivery fields from these before they get here.
        for (name, value) in &self.headers {
            each(name.as_str().as_bytes(), value.as_bytes())?;
        }
        Ok(())
    }
}

/// Where one header field lies in a head's bytes.
#[derive(Debug, Clone, Copy)]
pub struct FieldSpan {
    pub name: (u32, u32),
    pub value: (u32, u32),
}

impl FieldSpan {
    pub fn name<'b>(&self, head: &'b [u8]) -> &'b [u8] {
        head.get(self.name.0 as usize..self.name.1 as usize)
            .unwrap_or_default()
    }
    pub fn value<'b>(&self, head: &'b [u8]) -> &'b [u8] {
        head.get(self.value.0 as usize..self.value.1 as usize)
            .unwrap_or_default()
    }
}

/// A `GET` over HTTP/1.1, borrowed from the bytes of its head.
pub struct RawGet<'a> {
    /// The head's bytes; `fields` point into them.
    pub head: &'a [u8],
    pub fields: &'a [FieldSpan],
    /// The origin-form target as received.
    pub target: &'a str,
    /// The percent-decoded path; `PATH_INFO` is `path[path_info_start..]`.
    pub path: &'a [u8],
    pub path_info_start: usize,
    pub server_name: &'a str,
    pub server_port: u16,
    pub remote: SocketAddr,
    /// Arrived over TLS: `wsgi.url_scheme` is `https`.
    pub https: bool,
}

impl RequestView for RawGet<'_> {
    fn method(&self) -> &Method {
        &Method::GET
    }
    fn https(&self) -> bool {
        self.https
    }
    fn version(&self) -> Version {
        Version::HTTP_11
    }
    fn raw_target(&self) -> &str {
        self.target
    }
    fn query(&self) -> Option<&str> {
        self.target.split_once('?').map(|(_, query)| query)
    }
    fn path_info(&self) -> &[u8] {
        self.path.get(self.path_info_start..).unwrap_or_default()
    }
    fn server_name(&self) -> &str {
        self.server_name
    }
    fn server_port(&self) -> u16 {
        self.server_port
    }
    fn remote(&self) -> SocketAddr {
        self.remote
    }
    fn body_len(&self) -> Option<u64> {
        None
    }
    fn for_each_field<E>(
        &self,
        mut each: impl FnMut(&[u8], &[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        for span in self.fields {
            let name = span.name(self.head);
            let delivery_only = crate::services::job::DELIVERY_HEADERS
                .iter()
                .any(|delivery| name.eq_ignore_ascii_case(delivery.as_bytes()));
            if !delivery_only {
                each(name, span.value(self.head))?;
            }
        }
        Ok(())
    }
}

//! Response compression: the one place a response's body may be re-encoded, for every route
//! kind (Python, WASM, static): hyper's path (`service::serve` calls `apply` last) and the
//! inline path (`inline_h1`, for a request with an `Accept-Encoding` field) both call `apply`.
//!
//! Owns: the rules — compress only when `[server] compression` lists a coding the client
//! accepts (`Accept-Encoding`, q-values first, then the server's order), the route allows it,
//! the type is compressible (text/*, JSON, JavaScript, XML, SVG, wasm and the like) and the
//! body is at least `compression_min_size` or of unknown length; never a HEAD, a 206, a 204 or
//! 304, a response with `Content-Encoding` or `Cache-Control: no-transform`. `Vary:
//! Accept-Encoding` is added to an eligible response when the request's `Accept-Encoding`
//! takes a coding wsrun has (compressed or not); a request without one gets no `Vary` (a cache
//! that keeps such an identity answer may give it to any client, which is correct). A compressed
//! response loses `Content-Length` (unless compressed whole here) and `Accept-Ranges`, and a
//! strong ETag becomes weak. A whole body goes through the worker's memo (`compress_cache`),
//! so one sent again is not compressed again. Must not touch: the codecs themselves
//! (`compress_stream`), routing, or how either path writes the response.

use http::{header, HeaderMap, HeaderValue, Method, Response, StatusCode};
use http_body::Body;

use super::compress_cache::{compress_whole, route_scope};
use super::compress_stream::CompressedBody;
use super::handler::Handler;
use crate::accept_encoding::{accepts_any, negotiate, Codec};
use crate::body::ResponseBody;
use crate::config::ServerConfig;
use crate::router::Route;

/// What of the request the compression decision needs, taken before the handler runs.
pub struct Negotiation<'c> {
    /// `[server] compression`, empty when off or when the route says `compress = false`.
    pub codecs: &'c [Codec],
    pub min_size: u64,
    pub accept: Option<HeaderValue>,
    pub head: bool,
    /// The route, for the memo of compressed bodies (`compress_cache::route_scope`).
    pub scope: u64,
    /// `[server] compression_cache`: bytes the memo may keep per worker (0: off).
    pub cache_budget: u64,
}

impl<'c> Negotiation<'c> {
    /// The plan for a request to `route` under `server`'s compression settings.
    pub fn new(
        server: &'c ServerConfig,
        route: &Route<Handler>,
        method: &Method,
        headers: &HeaderMap,
    ) -> Negotiation<'c> {
        let accept = headers.get(header::ACCEPT_ENCODING).cloned();
        Negotiation::for_route(server, route, accept, method == Method::HEAD)
    }

    /// The same from the request's `Accept-Encoding` value and whether it is a HEAD (the
    /// inline path, which has no `HeaderMap`). The route's memo scope is hashed only when
    /// the request accepts some coding.
    pub fn for_route(
        server: &'c ServerConfig,
        route: &Route<Handler>,
        accept: Option<HeaderValue>,
        head: bool,
    ) -> Negotiation<'c> {
        let scope = match accept {
            Some(_) => route_scope(route.tenant.as_deref(), &route.prefix),
            None => 0,
        };
        Negotiation {
            codecs: route_codecs(server, route),
            min_size: server.compression_min_size,
            accept,
            head,
            scope,
            cache_budget: server.compression_cache,
        }
    }
}

/// The codings `route` may answer with: `[server] compression`, or none where the route says
/// `compress = false`.
pub fn route_codecs<'c>(server: &'c ServerConfig, route: &Route<Handler>) -> &'c [Codec] {
    if route.compress {
        &server.compression
    } else {
        &[]
    }
}

/// The response, compressed when the rules allow (see the module header).
pub fn apply(plan: &Negotiation<'_>, response: Response<ResponseBody>) -> Response<ResponseBody> {
    // Cheapest tests first: most requests of a load generator or an API client carry no
    // `Accept-Encoding`, and they must not pay for the content-type and size checks.
    if plan.codecs.is_empty() || plan.head {
        return response;
    }
    let accept = plan.accept.as_ref().and_then(|v| v.to_str().ok());
    let Some(accept) = accept.filter(|a| accepts_any(a, &Codec::ALL)) else {
        return response;
    };
    if !eligible(&response, plan.min_size) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    add_vary(&mut parts.headers);
    let Some(codec) = negotiate(accept, plan.codecs.iter().copied()) else {
        return Response::from_parts(parts, body);
    };
    let headers = &mut parts.headers;
    let body = match body {
        ResponseBody::Full(Some(bytes)) => {
            match compress_whole(plan.scope, plan.cache_budget, codec, &bytes) {
                Ok(packed) => {
                    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(packed.len()));
                    ResponseBody::full(packed)
                }
                Err(err) => {
                    tracing::error!("{codec} compression failed: {err}");
                    return Response::from_parts(parts, ResponseBody::Full(Some(bytes)));
                }
            }
        }
        body => {
            headers.remove(header::CONTENT_LENGTH);
            match CompressedBody::new(body, codec) {
                Ok(stream) => ResponseBody::Stream(Box::new(stream)),
                Err(err) => {
                    // Only an allocation failure of the encoder gets here; the body was given
                    // to the encoder and is gone, so the client gets an error.
                    tracing::error!("{codec} encoder: {err}");
                    let mut failed = crate::body::plain(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "Internal Server Error\n",
                    );
                    failed
                        .headers_mut()
                        .insert(header::CONNECTION, HeaderValue::from_static("close"));
                    return failed;
                }
            }
        }
    };
    headers.insert(
        header::CONTENT_ENCODING,
        HeaderValue::from_static(codec.token()),
    );
    headers.remove(header::ACCEPT_RANGES);
    weaken_etag(headers);
    Response::from_parts(parts, body)
}

/// Whether the response may be compressed at all, whatever the client accepts.
fn eligible(response: &Response<ResponseBody>, min_size: u64) -> bool {
    let status = response.status();
    let never = status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::PARTIAL_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    if never {
        return false;
    }
    let headers = response.headers();
    if headers.contains_key(header::CONTENT_ENCODING) || no_transform(headers) {
        return false;
    }
    let compressible = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(compressible_type);
    if !compressible {
        return false;
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match declared.or(response.body().size_hint().exact()) {
        Some(len) => len >= min_size,
        None => true,
    }
}

fn no_transform(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|d| d.trim().eq_ignore_ascii_case("no-transform"))
}

/// Types worth compressing: text, and the structured or code types that are text underneath.
pub fn compressible_type(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    let essence = essence.to_ascii_lowercase();
    let (kind, subtype) = essence.split_once('/').unwrap_or((&essence, ""));
    if kind == "text" {
        return true;
    }
    let structured = subtype.ends_with("+json") || subtype.ends_with("+xml");
    structured
        || matches!(
            essence.as_str(),
            "application/json"
                | "application/javascript"
                | "application/x-javascript"
                | "application/ecmascript"
                | "application/xml"
                | "application/wasm"
                | "application/x-ndjson"
                | "application/graphql"
                | "image/svg+xml"
                | "image/x-icon"
                | "image/vnd.microsoft.icon"
                | "font/ttf"
                | "font/otf"
                | "application/vnd.ms-fontobject"
        )
}

/// Adds `Accept-Encoding` to `Vary` unless it (or `*`) is already there.
fn add_vary(headers: &mut HeaderMap) {
    let present = headers
        .get_all(header::VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|f| f == "*" || f.eq_ignore_ascii_case("accept-encoding"));
    if !present {
        headers.append(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    }
}

/// A strong ETag names the identity bytes; the compressed ones get the weak form of it.
fn weaken_etag(headers: &mut HeaderMap) {
    let Some(etag) = headers.get(header::ETAG).and_then(|v| v.to_str().ok()) else {
        return;
    };
    if etag.starts_with("W/") {
        return;
    }
    if let Ok(weak) = HeaderValue::from_str(&format!("W/{etag}")) {
        headers.insert(header::ETAG, weak);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, ctype: &str, body: &'static [u8]) -> Response<ResponseBody> {
        let mut r = Response::new(ResponseBody::full(body));
        *r.status_mut() = StatusCode::from_u16(status).expect("status");
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_str(ctype).expect("ct"),
        );
        r
    }

    fn plan<'c>(codecs: &'c [Codec], accept: &str, method: Method) -> Negotiation<'c> {
        Negotiation {
            codecs,
            min_size: 16,
            accept: Some(HeaderValue::from_str(accept).expect("ae")),
            head: method == Method::HEAD,
            scope: 0,
            cache_budget: 1 << 20,
        }
    }

    const JSON: &[u8] =
        br#"{"a": "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"}"#;

    fn encoding(r: &Response<ResponseBody>) -> Option<&str> {
        r.headers()
            .get(header::CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok())
    }

    fn vary(r: &Response<ResponseBody>) -> bool {
        r.headers().contains_key(header::VARY)
    }

    #[test]
    fn compressible_types() {
        for t in [
            "text/html; charset=utf-8",
            "application/json",
            "image/svg+xml",
        ] {
            assert!(compressible_type(t), "{t}");
        }
        for t in [
            "application/vnd.api+json",
            "application/atom+xml",
            "application/wasm",
        ] {
            assert!(compressible_type(t), "{t}");
        }
        for t in [
            "image/png",
            "application/octet-stream",
            "video/mp4",
            "application/zip",
        ] {
            assert!(!compressible_type(t), "{t}");
        }
    }

    #[test]
    fn the_preferred_accepted_codec_is_used() {
        let all = Codec::ALL;
        let r = apply(
            &plan(&all, "gzip, br", Method::GET),
            response(200, "application/json", JSON),
        );
        assert_eq!(encoding(&r), Some("br"));
        assert!(vary(&r));
        let length = r.headers()[header::CONTENT_LENGTH].to_str().expect("len");
        assert!(length.parse::<usize>().expect("n") < JSON.len());
    }

    #[test]
    fn never_compressed() {
        let all = Codec::ALL;
        let p = plan(&all, "gzip", Method::GET);
        let small = apply(&p, response(200, "text/plain", b"tiny"));
        assert_eq!(encoding(&small), None);
        assert!(!vary(&small), "small bodies never vary");
        let image = apply(&p, response(200, "image/png", JSON));
        assert_eq!(encoding(&image), None);
        let partial = apply(&p, response(206, "text/plain", JSON));
        assert_eq!(encoding(&partial), None);
        let head = apply(
            &plan(&all, "gzip", Method::HEAD),
            response(200, "text/plain", JSON),
        );
        assert_eq!(encoding(&head), None);
        let mut encoded = response(200, "text/plain", JSON);
        encoded
            .headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("br"));
        assert_eq!(encoding(&apply(&p, encoded)), Some("br"));
        let mut kept = response(200, "text/plain", JSON);
        kept.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, No-Transform"),
        );
        assert_eq!(encoding(&apply(&p, kept)), None);
        let off = apply(
            &plan(&[], "gzip", Method::GET),
            response(200, "text/plain", JSON),
        );
        assert_eq!(encoding(&off), None);
        assert!(!vary(&off));
    }

    #[test]
    fn vary_without_a_codec_the_client_takes() {
        let r = apply(
            &plan(&[Codec::Gzip], "br", Method::GET),
            response(200, "text/plain", JSON),
        );
        assert_eq!(encoding(&r), None);
        assert!(vary(&r));
    }

    #[test]
    fn no_vary_for_a_request_without_a_coding_of_ours() {
        for accept in ["identity", "deflate", "gzip;q=0"] {
            let r = apply(
                &plan(&Codec::ALL, accept, Method::GET),
                response(200, "text/plain", JSON),
            );
            assert_eq!(encoding(&r), None);
            assert!(!vary(&r), "{accept}");
        }
    }

    #[test]
    fn a_strong_etag_becomes_weak() {
        let mut r = response(200, "text/plain", JSON);
        r.headers_mut()
            .insert(header::ETAG, HeaderValue::from_static("\"abc\""));
        let r = apply(&plan(&Codec::ALL, "gzip", Method::GET), r);
        assert_eq!(r.headers()[header::ETAG], "W/\"abc\"");
    }
}

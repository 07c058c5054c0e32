//! One request, from hyper's parsed head to the handler's response.
//!
//! Owns: the per-request pipeline — HTTP/2 requests checked as the guard checks HTTP/1.1
//! heads (`h2_request`), Host and path resolution, routing (404), the body limit
//! (413 before reading when Content-Length says so), spooling, and dispatch to the route's
//! handler, then response compression (`compress::apply`, the one place it happens); it notes
//! the matched route for a JSON access line when asked (`RouteLabel`) and its metrics label
//! slot, and counts spooled body bytes. Must not touch:
//! connection-level concerns (timeouts between requests, the strict framing checks in
//! `guard`, writing the access log) or what a handler does inside.

use std::rc::Rc;

use http::request::Parts;
use http::{header, HeaderValue, Request, Response, StatusCode, Version};
use http_body::Body;
use hyper::body::Incoming;

use super::access_json::RouteLabel;
use super::compress::{apply, Negotiation};
use super::context::WorkerContext;
use super::h2_request;
use super::handler::Handler;
use super::handler_run::{run_kind, Site};
use super::migrating;
use super::peer::Peer;
use crate::body::{plain, ResponseBody};
use crate::http_path::percent_decode;
use crate::router::Route;
use crate::spool::{spool, SpoolError, SpooledBody, StorageFault};

/// Serves one request; notes its route in `label` when given one, and its metrics label slot
/// in `slot` when a route matched.
pub async fn serve(
    ctx: &Rc<WorkerContext>,
    peer: Peer,
    req: Request<Incoming>,
    label: Option<&mut RouteLabel>,
    slot: &mut u16,
) -> Response<ResponseBody> {
    let (mut parts, body) = req.into_parts();
    if parts.version == Version::HTTP_2 {
        if let Err(why) = h2_request::check(&mut parts) {
            tracing::debug!("{}: refused an HTTP/2 request: {why}", peer.remote);
            return plain(StatusCode::BAD_REQUEST, format!("Bad Request: {why}\n"));
        }
    }
    strip_job_headers(&mut parts.headers);
    let server_name = request_host(&parts, peer);
    let path = percent_decode(parts.uri.path().as_bytes());
    if path.contains(&0) {
        return closing(plain(StatusCode::BAD_REQUEST, "Bad Request: NUL in path\n"));
    }
    let router = ctx.router();
    let Some(matched) = router.find(&server_name, &path) else {
        return plain(StatusCode::NOT_FOUND, "Not Found\n");
    };
    let route = matched.route;
    *slot = route.metrics_slot();
    let label = label.map(|label| {
        *label = RouteLabel::of(route);
        label
    });
    let declared_len = match content_length(&parts) {
        Ok(len) => len,
        Err(response) => return response,
    };
    let has_body = declared_len.is_some_and(|n| n > 0) || !body.is_end_stream();
    let spooled = if has_body {
        let limits = ctx.spool_limits(route.max_body_size);
        let spooled = match spool(body, declared_len, &limits).await {
            Ok(spooled) => spooled,
            Err(err) => return spool_failure(err, &parts),
        };
        if let Some(m) = ctx.metrics {
            m.spooled(spooled.len());
        }
        spooled
    } else {
        SpooledBody::Empty
    };
    let body_len = (has_body || declared_len.is_some()).then(|| spooled.len());
    let server = &ctx.config.server;
    let negotiation = Negotiation::new(server, route, &parts.method, &parts.headers);
    let target = Target {
        route,
        path: path.into_owned(),
        path_info_start: matched.path_info_start,
        server_name,
    };
    let response = run_handler(ctx, peer, target, parts, spooled, body_len).await;
    if let Some(label) = label {
        label.variant = migrating::variant(&response);
    }
    apply(&negotiation, response)
}

/// Where a request goes: its route, its decoded path, and the name it was addressed to.
pub struct Target<'r> {
    pub route: &'r Route<Handler>,
    pub path: Vec<u8>,
    pub path_info_start: usize,
    pub server_name: String,
}

/// Hands a routed request with its spooled body to the route's handler (client requests and
/// jobs alike). `body_len` is the CONTENT_LENGTH an app sees (`None`: no body was declared).
/// A route with a shadow or canary goes through `migrating`, which calls `run_kind` itself.
pub async fn run_handler(
    ctx: &Rc<WorkerContext>,
    peer: Peer,
    target: Target<'_>,
    parts: Parts,
    spooled: SpooledBody,
    body_len: Option<u64>,
) -> Response<ResponseBody> {
    let Target {
        route,
        path,
        path_info_start,
        server_name,
    } = target;
    let site = Site {
        script_name: route.script_name(),
        path,
        path_info_start,
        server_name,
    };
    if let Handler::Migrating(m) = &route.handler {
        return migrating::run(ctx, peer, m, route, site, parts, spooled, body_len).await;
    }
    run_kind(ctx, peer, &route.handler, site, parts, spooled, body_len).await
}

/// Only a job delivery carries `wsrun-job-id`/`wsrun-job-attempt`; a client's copies are
/// dropped so an app can trust them.
pub fn strip_job_headers(headers: &mut http::HeaderMap) {
    for name in crate::services::job::DELIVERY_HEADERS {
        headers.remove(name);
    }
}

/// SERVER_NAME (the router matches it without regard to case): from an absolute-form target,
/// else the Host header, else the local address. The port is dropped.
pub fn request_host(parts: &Parts, peer: Peer) -> String {
    parts
        .uri
        .host()
        .map(str::to_owned)
        .or_else(|| {
            parts
                .headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(|host| host_name(host).to_owned())
        })
        .unwrap_or_else(|| peer.local_ip().to_string())
}

/// A `Host` value without its port: `example.com:8080` is `example.com`, `[::1]:80` is `::1`.
pub fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        // [v6]:port -> v6 keeps its brackets off for SERVER_NAME
        return rest.split(']').next().unwrap_or(rest);
    }
    // `:` is ASCII, so its byte offset is a char boundary.
    match memchr::memrchr(b':', host.as_bytes()) {
        Some(colon) => host.get(..colon).unwrap_or(host),
        None => host,
    }
}

/// The Content-Length the client declared (the guard already rejected malformed ones).
#[allow(clippy::result_large_err)]
fn content_length(parts: &Parts) -> Result<Option<u64>, Response<ResponseBody>> {
    let Some(value) = parts.headers.get(header::CONTENT_LENGTH) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map(Some)
        .ok_or_else(|| {
            closing(plain(
                StatusCode::BAD_REQUEST,
                "Bad Request: invalid Content-Length\n",
            ))
        })
}

fn spool_failure(err: SpoolError, parts: &Parts) -> Response<ResponseBody> {
    let response = match &err {
        SpoolError::TooLarge(limit) => plain(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("Payload Too Large: the request body limit is {limit} bytes\n"),
        ),
        SpoolError::TimedOut => plain(
            StatusCode::REQUEST_TIMEOUT,
            "Request Timeout: the body arrived too slowly\n",
        ),
        SpoolError::Malformed(_) | SpoolError::ClientGone => {
            plain(StatusCode::BAD_REQUEST, format!("Bad Request: {err}\n"))
        }
        SpoolError::Io(_) => {
            tracing::error!("{} {}: {err}", parts.method, parts.uri);
            storage_failure(err.storage_fault())
        }
    };
    tracing::debug!("{} {}: {err}", parts.method, parts.uri);
    closing(response)
}

/// The answer to a spool write that failed: the client learns whether to retry later.
fn storage_failure(fault: Option<StorageFault>) -> Response<ResponseBody> {
    match fault {
        Some(StorageFault::Full) => plain(
            StatusCode::INSUFFICIENT_STORAGE,
            "Insufficient Storage: no room to keep the request body\n",
        ),
        Some(StorageFault::Unavailable) => plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "Service Unavailable: the request body cannot be stored now\n",
        ),
        _ => plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error\n"),
    }
}

/// Marks a response as the last on its connection.
pub fn closing(mut response: Response<ResponseBody>) -> Response<ResponseBody> {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_stripped_from_hosts() {
        assert_eq!(host_name("example.com:8080"), "example.com");
        assert_eq!(host_name("example.com"), "example.com");
        assert_eq!(host_name("[::1]:80"), "::1");
    }
}

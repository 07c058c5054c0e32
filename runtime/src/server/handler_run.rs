//! Running one handler of a route: the one match on `Handler`'s kinds at request time.
//!
//! Owns: `Site` (what a handler needs of its route and target) and `run_kind`, which hands a
//! request to a Python app, a static directory or a WASM component (the route's own, or a
//! shadow's or canary's, for `migrating`). Must not touch: routing, spooling, compression
//! (`service`) or choosing between a route's handlers (`migrating`).

use http::request::Parts;
use http::{Request, Response, StatusCode};

use super::context::WorkerContext;
use super::handler::Handler;
use super::peer::Peer;
use crate::body::{plain, ResponseBody};
use crate::python::RequestParts;
use crate::spool::SpooledBody;
use crate::wasm;

/// Where a request is served: what a handler needs of its route and target.
pub struct Site<'a> {
    pub script_name: &'a str,
    pub path: Vec<u8>,
    pub path_info_start: usize,
    pub server_name: String,
}

/// Runs one handler of a route (the route's own, or its shadow's or canary's).
pub async fn run_kind(
    ctx: &WorkerContext,
    peer: Peer,
    handler: &Handler,
    site: Site<'_>,
    parts: Parts,
    spooled: SpooledBody,
    body_len: Option<u64>,
) -> Response<ResponseBody> {
    let Site {
        script_name,
        path,
        path_info_start,
        server_name,
    } = site;
    match handler {
        Handler::Python(app) => {
            let request = RequestParts {
                uri: parts.uri,
                method: parts.method,
                version: parts.version,
                path,
                path_info_start,
                headers: parts.headers,
                server_name,
                server_port: peer.local.port(),
                remote: peer.remote,
                body_len,
                https: peer.tls,
            };
            ctx.wsgi.handle(app, script_name, request, spooled).await
        }
        Handler::Static(dir) => {
            let rel = path.get(path_info_start..).unwrap_or_default();
            dir.serve(&parts, rel).await
        }
        Handler::Wasm(wasm_route) => {
            let Some(host) = &ctx.wasm else {
                tracing::error!(
                    "{}: no WebAssembly host in this worker",
                    wasm_route.info.prefix
                );
                return plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error\n");
            };
            let request = guest_request(peer, script_name, &server_name, parts, spooled);
            host.handle(wasm_route, request).await
        }
        Handler::Migrating(_) => {
            tracing::error!("a migration handler inside another");
            plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error\n")
        }
    }
}

/// The request a WASM handler of a route sees (the route's own, or its shadow's on the shadow
/// thread).
pub fn guest_request(
    peer: Peer,
    script_name: &str,
    server_name: &str,
    parts: Parts,
    spooled: SpooledBody,
) -> Request<wasm::GuestRequestBody> {
    // Only a request without `Host` (HTTP/1.0, or HTTP/2 with `:authority`) needs it made.
    let authority = || format!("{server_name}:{}", peer.local.port());
    let mut request = wasm::guest_request(parts, spooled, script_name, authority);
    if peer.tls {
        request.extensions_mut().insert(wasm::Tls);
    }
    request
}

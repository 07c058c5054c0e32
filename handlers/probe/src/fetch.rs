//! Outgoing HTTP for `?fetch=URL`, on the raw `wasi:http/outgoing-handler`.
//!
//! Owns URL splitting (scheme, authority, path) and the wasi resources of one
//! outgoing request; child resources (the pollable) are dropped before their
//! parents. Only answers with status text: it never relays the fetched body.

use wsrun_sdk::Response;
use wsrun_sdk::wasi::http::outgoing_handler;
use wsrun_sdk::wasi::http::types::{ErrorCode, Fields, Method, OutgoingRequest, Scheme};

/// Performs `GET url` and describes the outcome as a response.
pub fn get(url: &str) -> Response {
    let Some((scheme, authority, path)) = split_url(url) else {
        return Response::text(
            400,
            format!("bad url {url:?}: want http(s)://host[:port]/path\n"),
        );
    };
    match send(scheme, authority, path) {
        Ok(status) => Response::text(200, format!("fetched {status}")),
        Err(code) => Response::text(502, format!("fetch error: {code:?}")),
    }
}

/// `http://host:port/p?q` -> (`Http`, `host:port`, `/p?q`).
fn split_url(url: &str) -> Option<(Scheme, &str, &str)> {
    let (scheme, rest) = if let Some(rest) = url.strip_prefix("http://") {
        (Scheme::Http, rest)
    } else if let Some(rest) = url.strip_prefix("https://") {
        (Scheme::Https, rest)
    } else {
        return None;
    };
    let cut = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(cut);
    if authority.is_empty() {
        return None;
    }
    Some((scheme, authority, if path.is_empty() { "/" } else { path }))
}

fn send(scheme: Scheme, authority: &str, path: &str) -> Result<u16, ErrorCode> {
    let request = OutgoingRequest::new(Fields::new());
    let invalid = |what: &str| ErrorCode::InternalError(Some(format!("invalid {what}")));
    request
        .set_method(&Method::Get)
        .map_err(|()| invalid("method"))?;
    request
        .set_scheme(Some(&scheme))
        .map_err(|()| invalid("scheme"))?;
    request
        .set_authority(Some(authority))
        .map_err(|()| invalid("authority"))?;
    request
        .set_path_with_query(Some(path))
        .map_err(|()| invalid("path"))?;

    let pending = outgoing_handler::handle(request, None)?;
    {
        let ready = pending.subscribe();
        ready.block();
    }
    match pending.get() {
        Some(Ok(Ok(response))) => Ok(response.status()),
        Some(Ok(Err(code))) => Err(code),
        Some(Err(())) => Err(ErrorCode::InternalError(Some(
            "response already taken".into(),
        ))),
        None => Err(ErrorCode::InternalError(Some("response not ready".into()))),
    }
}

//! Attacks of the `outbound` group (see lib.rs), on the raw `wasi:http/outgoing-handler`:
//!
//! - `sockets&n=N&url=URL[&hold=MS]`: starts N `GET URL` at once and keeps them pending;
//!   counts which ended how within a short wait (`refused ConnectionLimitReached 1992`,
//!   `pending 8`), writes that line to stderr (`outbound: started N`), then keeps the pending
//!   ones open for `hold` ms more before answering the counts;
//! - `rebind&url=URL`: one `GET URL` (a name that resolves to a loopback address);
//! - `userinfo&url=URL`: one `GET URL` whose authority carries `user@`.
//!
//! Answers `fetched STATUS` or `fetch error: CODE` for the single fetches. Owns only these
//! attacks; never relays a fetched body.

use std::collections::BTreeMap;

use wsrun_sdk::wasi::clocks::monotonic_clock;
use wsrun_sdk::wasi::http::outgoing_handler::{self, FutureIncomingResponse};
use wsrun_sdk::wasi::http::types::{ErrorCode, Fields, Method, OutgoingRequest, Scheme};
use wsrun_sdk::wasi::io::poll;
use wsrun_sdk::{Request, Response};

use crate::param;

/// How long `sockets` waits for refusals to arrive before it counts (ms).
const SETTLE_MS: u64 = 500;

pub fn run(attack: &str, request: &Request) -> Response {
    let url = request.query_param("url").unwrap_or_default();
    match attack {
        "sockets" => sockets(&url, param(request, "n", 100), param(request, "hold", 0)),
        _ => fetch(&url),
    }
}

/// One `GET url`, waited for.
fn fetch(url: &str) -> Response {
    let pending = match start(url) {
        Ok(pending) => pending,
        Err(text) => return Response::text(400, text),
    };
    let pending = match pending {
        Ok(pending) => pending,
        Err(code) => return Response::text(502, format!("fetch error: {code:?}")),
    };
    pending.subscribe().block();
    match pending.get() {
        Some(Ok(Ok(response))) => Response::text(200, format!("fetched {}", response.status())),
        Some(Ok(Err(code))) => Response::text(502, format!("fetch error: {code:?}")),
        _ => Response::text(502, "fetch error: no response".to_string()),
    }
}

/// `n` requests at once; the counts of how they ended, the rest left pending.
fn sockets(url: &str, n: u64, hold_ms: u64) -> Response {
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut pending = Vec::new();
    for _ in 0..n {
        match start(url) {
            Err(text) => return Response::text(400, text),
            Ok(Ok(future)) => pending.push(future),
            Ok(Err(code)) => {
                *counts
                    .entry(format!("refused {}", name(&code)))
                    .or_default() += 1
            }
        }
    }
    settle(&mut pending, &mut counts, SETTLE_MS);
    let mut text = format!("started {n}\n");
    for (what, count) in &counts {
        text.push_str(&format!("{what} {count}\n"));
    }
    text.push_str(&format!("pending {}\n", pending.len()));
    eprintln!("outbound: {}", text.replace('\n', "; "));
    if hold_ms > 0 {
        monotonic_clock::subscribe_duration(hold_ms * 1_000_000).block();
    }
    Response::text(200, text)
}

/// Waits up to `ms` for requests to end; counts each that did by its outcome.
fn settle(pending: &mut Vec<FutureIncomingResponse>, counts: &mut BTreeMap<String, u64>, ms: u64) {
    let timer = monotonic_clock::subscribe_duration(ms * 1_000_000);
    while !pending.is_empty() {
        let mut done = vec![false; pending.len() + 1];
        {
            // Child pollables are dropped before any finished request is.
            let subscriptions: Vec<_> = pending.iter().map(|p| p.subscribe()).collect();
            let mut list: Vec<&_> = subscriptions.iter().collect();
            list.push(&timer);
            for i in poll::poll(&list) {
                done[i as usize] = true;
            }
        }
        let mut index = 0;
        pending.retain(|future| {
            let finished = done[index];
            index += 1;
            if finished {
                *counts.entry(outcome(future)).or_default() += 1;
            }
            !finished
        });
        if done[done.len() - 1] {
            return;
        }
    }
}

/// `ok 200`, `refused ConnectionLimitReached`, ... for a finished request.
fn outcome(future: &FutureIncomingResponse) -> String {
    match future.get() {
        Some(Ok(Ok(response))) => format!("ok {}", response.status()),
        Some(Ok(Err(code))) => format!("refused {}", name(&code)),
        _ => "refused other".to_string(),
    }
}

/// The variant name of an error code, without its payload.
fn name(code: &ErrorCode) -> String {
    let text = format!("{code:?}");
    text.split(['(', ' ', '{'])
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Starts `GET url`: `Err` for a URL this attack cannot express, else what `handle` said.
fn start(url: &str) -> Result<Result<FutureIncomingResponse, ErrorCode>, String> {
    let (scheme, rest) = if let Some(rest) = url.strip_prefix("http://") {
        (Scheme::Http, rest)
    } else if let Some(rest) = url.strip_prefix("https://") {
        (Scheme::Https, rest)
    } else {
        return Err(format!("bad url {url:?}: want http(s)://authority/path\n"));
    };
    let cut = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(cut);
    let path = if path.is_empty() { "/" } else { path };
    let request = OutgoingRequest::new(Fields::new());
    let set = request.set_method(&Method::Get).is_ok()
        && request.set_scheme(Some(&scheme)).is_ok()
        && request.set_authority(Some(authority)).is_ok()
        && request.set_path_with_query(Some(path)).is_ok();
    if !set {
        return Err(format!("url {url:?} refused by the request's setters\n"));
    }
    Ok(outgoing_handler::handle(request, None))
}

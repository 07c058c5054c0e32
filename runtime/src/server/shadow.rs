//! A mirrored request's other side: the shadow run, compared with the primary, recorded.
//!
//! Owns: `ShadowCopy` (the copy of a request taken before the primary consumes it) and
//! `start`, called once the primary's response head is ready: it tees the primary's body and
//! hands the rest to the worker's shadow thread (`shadow_lane`), so the event loop only copies.
//! On that thread a WASM shadow is instantiated and run, the primary's body awaited, the two
//! compared and the record sent to the store. A Python (or static) shadow is run where the
//! WSGI host runs apps — on the event loop with `--threads 1` (a Python shadow on another
//! thread would take the GIL from the primary's app in the middle of its requests), on the
//! Python threads with `--threads N` — after which its comparison and record go to the shadow
//! thread too. Each shadow runs under its route's timeout; whatever it does, the client's
//! response is the primary's. Must not touch: choosing the side or the canary (`migrating`),
//! the comparison rules or the store's schema (`crate::migrate`).

use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use http::request::Parts;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::BodyExt;

use super::context::WorkerContext;
use super::handler::{Handler, Migrating};
use super::handler_run::{guest_request, run_kind, Site};
use super::peer::Peer;
use crate::body::ResponseBody;
use crate::config::Config;
use crate::migrate::compare::{compare, Captured, Rules};
use crate::migrate::mirror::{Mirror, Permit, SkipReason};
use crate::migrate::store::{Diff, Record, Recorder};
use crate::migrate::tee::{tee, Copy};
use crate::spool::SpooledBody;
use crate::wasm::{WasmHost, WasmRoute};

/// How much of each body a stored difference keeps.
const SAMPLE_BODY: usize = 4096;

/// What the shadow gets: a copy of the request, taken before the primary consumes it.
pub struct ShadowCopy {
    parts: Parts,
    body: SpooledBody,
    body_len: Option<u64>,
    script_name: String,
    path: Vec<u8>,
    path_info_start: usize,
    server_name: String,
    _permit: Permit,
}

impl ShadowCopy {
    pub fn of(
        parts: &Parts,
        body: &SpooledBody,
        site: &Site,
        body_len: Option<u64>,
        permit: Permit,
    ) -> ShadowCopy {
        let (parts, body) = copy_request(parts, body);
        ShadowCopy {
            parts,
            body,
            body_len,
            script_name: site.script_name.to_string(),
            path: site.path.clone(),
            path_info_start: site.path_info_start,
            server_name: site.server_name.clone(),
            _permit: permit,
        }
    }

    /// The request line, headers and (the start of) the body, for a stored difference.
    fn describe(&self) -> String {
        let p = &self.parts;
        let mut text = format!("{} {} {:?}\n", p.method, p.uri, p.version);
        push_headers(&mut text, &p.headers);
        if let SpooledBody::Memory(b) = &self.body {
            text.push('\n');
            text.push_str(&truncated(b));
        }
        text
    }
}

/// A copy of a request's head and (in-memory) body.
fn copy_request(parts: &Parts, body: &SpooledBody) -> (Parts, SpooledBody) {
    let mut copy = Request::new(());
    *copy.method_mut() = parts.method.clone();
    *copy.uri_mut() = parts.uri.clone();
    *copy.version_mut() = parts.version;
    *copy.headers_mut() = parts.headers.clone();
    let body = match body {
        SpooledBody::Memory(b) => SpooledBody::Memory(b.clone()),
        _ => SpooledBody::Empty,
    };
    (copy.into_parts().0, body)
}

/// Starts the shadow of a mirrored request whose primary answered `response`; returns the
/// response for the client (its body teed for the comparison).
pub fn start(
    ctx: &Rc<WorkerContext>,
    peer: Peer,
    m: &Arc<Migrating>,
    route: &str,
    started: Instant,
    copy: ShadowCopy,
    response: Response<ResponseBody>,
) -> Response<ResponseBody> {
    let (head, body) = response.into_parts();
    let Some((handler, mirror)) = &m.shadow else {
        return Response::from_parts(head, body);
    };
    let length = head
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok());
    let is_head = copy.parts.method == http::Method::HEAD;
    let (body, primary_body) = tee(body, mirror.config.max_body, length, is_head);
    let judge = Judge {
        config: ctx.config.clone(),
        m: m.clone(),
        route: route.to_string(),
        started,
        primary: Captured {
            status: head.status,
            headers: head.headers.clone(),
            body: Vec::new(),
        },
        primary_body,
    };
    match (handler, &ctx.wasm) {
        (Handler::Wasm(shadow), Some(host)) => {
            let (host, shadow, m) = (host.clone(), shadow.clone(), m.clone());
            ctx.shadow_lane.spawn(Box::pin(async move {
                let Some((_, mirror)) = &m.shadow else {
                    return;
                };
                let outcome = run_wasm(&host, &shadow, peer, mirror, &copy);
                judge.run(&copy, outcome).await;
            }));
        }
        _ => {
            tokio::task::spawn_local(run_local(ctx.clone(), peer, judge, copy));
        }
    }
    Response::from_parts(head, body)
}

/// A Python or static shadow: run where the WSGI host runs apps, judged on the shadow thread.
async fn run_local(ctx: Rc<WorkerContext>, peer: Peer, judge: Judge, copy: ShadowCopy) {
    let Some((handler, mirror)) = &judge.m.shadow else {
        return;
    };
    let site = Site {
        script_name: &copy.script_name,
        path: copy.path.clone(),
        path_info_start: copy.path_info_start,
        server_name: copy.server_name.clone(),
    };
    let (parts, body) = copy_request(&copy.parts, &copy.body);
    let response = run_kind(&ctx, peer, handler, site, parts, body, copy.body_len);
    let outcome = timed(mirror, response).await;
    ctx.shadow_lane.spawn(Box::pin(async move {
        judge.run(&copy, std::future::ready(outcome)).await;
    }));
}

/// A WASM shadow, on the shadow thread: a fresh instance of its component.
async fn run_wasm(
    host: &WasmHost,
    route: &WasmRoute,
    peer: Peer,
    mirror: &Mirror,
    copy: &ShadowCopy,
) -> Outcome {
    let (parts, body) = copy_request(&copy.parts, &copy.body);
    let request = guest_request(peer, &copy.script_name, &copy.server_name, parts, body);
    timed(mirror, host.handle(route, request)).await
}

/// The shadow's response, whole, within its route's timeout and body limit.
async fn timed(mirror: &Mirror, response: impl Future<Output = Response<ResponseBody>>) -> Outcome {
    let start = Instant::now();
    let limit = mirror.config.max_body;
    let run = async { collect(response.await, limit).await };
    match tokio::time::timeout(mirror.config.timeout, run).await {
        Ok(Some(Some(captured))) => Outcome::Answered(captured, start.elapsed().as_micros() as u64),
        Ok(Some(None)) => Outcome::TooLarge,
        Ok(None) | Err(_) => Outcome::Failed,
    }
}

/// How the shadow ended.
enum Outcome {
    Answered(Captured, u64),
    Failed,
    TooLarge,
}

/// The primary's side of one mirrored request, compared with the shadow's on the shadow
/// thread.
struct Judge {
    config: Arc<Config>,
    m: Arc<Migrating>,
    route: String,
    started: Instant,
    primary: Captured,
    primary_body: Copy,
}

impl Judge {
    /// Waits for the shadow's outcome and the primary's body (the primary's latency ends
    /// when its body was complete, not when this runs), compares, records.
    async fn run(self, copy: &ShadowCopy, shadow: impl Future<Output = Outcome>) {
        let Judge {
            config,
            m,
            route,
            started,
            mut primary,
            primary_body,
        } = self;
        let primary_done = async {
            match primary_body.await {
                Ok(copied) => (
                    Ok(copied.body),
                    copied.done.saturating_duration_since(started),
                ),
                Err(gone) => (Err(gone), started.elapsed()),
            }
        };
        let (outcome, (primary_body, primary_took)) = tokio::join!(shadow, primary_done);
        let primary_us = primary_took.as_micros() as u64;
        let (Some(recorder), Some((_, mirror))) =
            (Recorder::get(&config.server.state_dir), &m.shadow)
        else {
            return;
        };
        let record = match (primary_body, outcome) {
            // The client left early, or the primary's body was too large to compare.
            (Err(_) | Ok(None), _) | (_, Outcome::TooLarge) => Record::Skipped {
                route,
                reason: SkipReason::Uncomparable,
            },
            (_, Outcome::Failed) => Record::ShadowFailed { route, primary_us },
            (Ok(Some(body)), Outcome::Answered(mut shadow, shadow_us)) => {
                primary.body = body;
                if copy.parts.method == http::Method::HEAD {
                    shadow.body.clear(); // a HEAD answer's body is never sent
                }
                compared(mirror, route, copy, &primary, shadow, primary_us, shadow_us)
            }
        };
        recorder.send(record);
    }
}

/// The record of two answers: a shadow's 5xx where the primary had none is a failure.
fn compared(
    mirror: &Mirror,
    route: String,
    copy: &ShadowCopy,
    primary: &Captured,
    shadow: Captured,
    primary_us: u64,
    shadow_us: u64,
) -> Record {
    if shadow.status.is_server_error() && !primary.status.is_server_error() {
        return Record::ShadowFailed { route, primary_us };
    }
    let rules = Rules {
        ignore_paths: &mirror.config.ignore_paths,
        ignore_headers: &mirror.config.ignore_headers,
    };
    let diff = compare(primary, &shadow, &rules).map(|path| {
        Box::new(Diff {
            path,
            request: copy.describe(),
            primary: describe(primary.status, &primary.headers, &primary.body),
            shadow: describe(shadow.status, &shadow.headers, &shadow.body),
        })
    });
    Record::Compared {
        route,
        primary_us,
        shadow_us,
        diff,
    }
}

/// The shadow's whole response: `None` when its body failed, `Some(None)` past `limit`.
async fn collect(response: Response<ResponseBody>, limit: u64) -> Option<Option<Captured>> {
    let (head, mut body) = response.into_parts();
    let mut bytes = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.ok()?.into_data() else {
            continue;
        };
        if (bytes.len() + data.len()) as u64 > limit {
            return Some(None);
        }
        bytes.extend_from_slice(&data);
    }
    Some(Some(Captured {
        status: head.status,
        headers: head.headers,
        body: bytes,
    }))
}

fn truncated(bytes: &[u8]) -> String {
    let cut = &bytes[..bytes.len().min(SAMPLE_BODY)];
    let mut text = String::from_utf8_lossy(cut).into_owned();
    if bytes.len() > SAMPLE_BODY {
        text.push_str(&format!("\n... ({} bytes in all)", bytes.len()));
    }
    text
}

fn push_headers(text: &mut String, headers: &HeaderMap) {
    for (name, value) in headers {
        text.push_str(&format!(
            "{name}: {}\n",
            String::from_utf8_lossy(value.as_bytes())
        ));
    }
}

fn describe(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> String {
    let mut text = format!("{status}\n");
    push_headers(&mut text, headers);
    text.push('\n');
    text.push_str(&truncated(body));
    text
}

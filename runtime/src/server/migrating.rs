//! A route with a shadow or a canary, on the request path.
//!
//! Owns: `run` (for `handler::Migrating`, a route's own handler and its alternatives): the canary split picks the side (a canary's
//! response carries `wsrun-variant: canary`; both sides' statuses feed the shared rollback
//! window; a rollback is logged and stored once); otherwise the primary answers, and when the
//! request is mirrored, the shadow is spawned on its own task only after the primary's
//! response head is ready, with a copy of the request and a tee of the primary's body. The
//! shadow runs under its own timeout and in-flight bound; whatever it does, the client's
//! response is the primary's. Must not touch: the comparison rules, the store's schema or the
//! split's arithmetic (`crate::migrate`).

use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use http::request::Parts;
use http::{HeaderValue, Request, Response};
use http_body_util::BodyExt;

use super::context::WorkerContext;
use super::handler::{Handler, Migrating};
use super::handler_run::{run_kind, Site};
use super::peer::Peer;
use crate::body::ResponseBody;
use crate::migrate::canary::Side;
use crate::migrate::compare::{compare, Captured, Rules};
use crate::migrate::mirror::{Decision, Mirror, Permit};
use crate::migrate::store::{Diff, Record, Recorder};
use crate::migrate::tee::{tee, Copy};
use crate::router::Route;
use crate::spool::SpooledBody;

/// The response header naming the side that served a canary route's request.
pub const VARIANT: &str = "wsrun-variant";
/// How much of each body a stored difference keeps.
const SAMPLE_BODY: usize = 4096;

/// `canary` when the response came from a canary (for the access log).
pub fn variant(response: &Response<ResponseBody>) -> Option<&'static str> {
    response.headers().contains_key(VARIANT).then_some("canary")
}

/// Serves one request of `route`, a migrating route (its prefix names it in the store).
#[allow(clippy::too_many_arguments)]
pub async fn run(
    ctx: &Rc<WorkerContext>,
    peer: Peer,
    m: &Arc<Migrating>,
    route: &Route<Handler>,
    site: Site<'_>,
    parts: Parts,
    spooled: SpooledBody,
    body_len: Option<u64>,
) -> Response<ResponseBody> {
    let label = route.prefix.as_str();
    let recorder = || Recorder::get(&ctx.config.server.state_dir);
    if let Some((canary, split)) = &m.canary {
        if split.choose(&parts.headers) == Side::Canary {
            let mut response = run_kind(ctx, peer, canary, site, parts, spooled, body_len).await;
            let status = response.status().as_u16();
            response
                .headers_mut()
                .insert(VARIANT, HeaderValue::from_static("canary"));
            if let Some(r) = recorder() {
                r.send(Record::Canary {
                    route: label.to_string(),
                });
            }
            if let Some(detail) = split.record(Side::Canary, status) {
                rolled_back(ctx, route, detail);
            }
            return response;
        }
    }
    let copy = match &m.shadow {
        Some((_, mirror)) => match mirror.decide(&parts.method, &spooled) {
            Decision::Pass => None,
            Decision::Skip => {
                if let Some(r) = recorder() {
                    r.send(Record::Skipped {
                        route: label.to_string(),
                    });
                }
                None
            }
            Decision::Mirror(permit) => {
                Some(ShadowCopy::of(&parts, &spooled, &site, body_len, permit))
            }
        },
        None => None,
    };
    let started = Instant::now();
    let response = run_kind(ctx, peer, &m.primary, site, parts, spooled, body_len).await;
    if let Some((_, split)) = &m.canary {
        split.record(Side::Primary, response.status().as_u16());
    }
    let Some(copy) = copy else {
        return response;
    };
    let (head, body) = response.into_parts();
    let Some((_, mirror)) = &m.shadow else {
        return Response::from_parts(head, body);
    };
    let length = head
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok());
    let is_head = copy.parts.method == http::Method::HEAD;
    let (body, primary_body) = tee(body, mirror.config.max_body, length, is_head);
    let primary = Captured {
        status: head.status,
        headers: head.headers.clone(),
        body: Vec::new(),
    };
    let task = ShadowTask {
        ctx: ctx.clone(),
        peer,
        m: m.clone(),
        route: label.to_string(),
        started,
        primary,
        primary_body,
    };
    tokio::task::spawn_local(task.run(copy));
    Response::from_parts(head, body)
}

fn rolled_back(ctx: &WorkerContext, route: &Route<Handler>, detail: String) {
    let label = &route.prefix;
    tracing::warn!(
        "{label}: canary rolled back: {detail}; all traffic goes to the primary until a reload"
    );
    if let Some(m) = ctx.metrics {
        m.canary_rolled_back(route.metrics_slot());
    }
    if let Some(r) = Recorder::get(&ctx.config.server.state_dir) {
        r.send(Record::Rollback {
            route: label.to_string(),
            detail,
        });
    }
}

/// What the shadow gets: a copy of the request, taken before the primary consumes it.
struct ShadowCopy {
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
    fn of(
        parts: &Parts,
        body: &SpooledBody,
        site: &Site,
        body_len: Option<u64>,
        permit: Permit,
    ) -> ShadowCopy {
        let mut copy = Request::new(());
        *copy.method_mut() = parts.method.clone();
        *copy.uri_mut() = parts.uri.clone();
        *copy.version_mut() = parts.version;
        *copy.headers_mut() = parts.headers.clone();
        let body = match body {
            SpooledBody::Memory(b) => SpooledBody::Memory(b.clone()),
            _ => SpooledBody::Empty,
        };
        ShadowCopy {
            parts: copy.into_parts().0,
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
        for (name, value) in &p.headers {
            text.push_str(&format!(
                "{name}: {}\n",
                String::from_utf8_lossy(value.as_bytes())
            ));
        }
        if let SpooledBody::Memory(b) = &self.body {
            text.push('\n');
            text.push_str(&truncated(b));
        }
        text
    }
}

/// The shadow's side of one mirrored request, run on its own task.
struct ShadowTask {
    ctx: Rc<WorkerContext>,
    peer: Peer,
    m: Arc<Migrating>,
    route: String,
    started: Instant,
    primary: Captured,
    primary_body: Copy,
}

/// How the shadow ended.
enum Outcome {
    Answered(Captured, u64),
    Failed,
    TooLarge,
}

impl ShadowTask {
    async fn run(mut self, copy: ShadowCopy) {
        let Some((handler, mirror)) = &self.m.shadow else {
            return;
        };
        let outcome = self.shadow(handler, mirror, &copy).await;
        let primary_body = (&mut self.primary_body).await;
        let primary_us = self.started.elapsed().as_micros() as u64;
        let Some(recorder) = Recorder::get(&self.ctx.config.server.state_dir) else {
            return;
        };
        let route = self.route.clone();
        let record = match (primary_body, outcome) {
            // The client left early, or the primary's body was too large to compare.
            (Err(_) | Ok(None), _) | (_, Outcome::TooLarge) => Record::Skipped { route },
            (_, Outcome::Failed) => Record::ShadowFailed { route, primary_us },
            (Ok(Some(body)), Outcome::Answered(mut shadow, shadow_us)) => {
                self.primary.body = body;
                if copy.parts.method == http::Method::HEAD {
                    shadow.body.clear(); // a HEAD answer's body is never sent
                }
                if shadow.status.is_server_error() && !self.primary.status.is_server_error() {
                    Record::ShadowFailed { route, primary_us }
                } else {
                    let rules = Rules {
                        ignore_paths: &mirror.config.ignore_paths,
                        ignore_headers: &mirror.config.ignore_headers,
                    };
                    let diff = compare(&self.primary, &shadow, &rules).map(|path| {
                        Box::new(Diff {
                            path,
                            request: copy.describe(),
                            primary: describe(&self.primary),
                            shadow: describe(&shadow),
                        })
                    });
                    Record::Compared {
                        route,
                        primary_us,
                        shadow_us,
                        diff,
                    }
                }
            }
        };
        recorder.send(record);
    }

    async fn shadow(&self, handler: &Handler, mirror: &Mirror, copy: &ShadowCopy) -> Outcome {
        let site = Site {
            script_name: &copy.script_name,
            path: copy.path.clone(),
            path_info_start: copy.path_info_start,
            server_name: copy.server_name.clone(),
        };
        let mut parts = Request::new(());
        *parts.method_mut() = copy.parts.method.clone();
        *parts.uri_mut() = copy.parts.uri.clone();
        *parts.version_mut() = copy.parts.version;
        *parts.headers_mut() = copy.parts.headers.clone();
        let parts = parts.into_parts().0;
        let body = match &copy.body {
            SpooledBody::Memory(b) => SpooledBody::Memory(b.clone()),
            _ => SpooledBody::Empty,
        };
        let start = Instant::now();
        let limit = mirror.config.max_body;
        let run = async {
            let response = run_kind(
                &self.ctx,
                self.peer,
                handler,
                site,
                parts,
                body,
                copy.body_len,
            )
            .await;
            collect(response, limit).await
        };
        match tokio::time::timeout(mirror.config.timeout, run).await {
            Ok(Some(Some(captured))) => {
                Outcome::Answered(captured, start.elapsed().as_micros() as u64)
            }
            Ok(Some(None)) => Outcome::TooLarge,
            Ok(None) | Err(_) => Outcome::Failed,
        }
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

fn describe(side: &Captured) -> String {
    let mut text = format!("{}\n", side.status);
    for (name, value) in &side.headers {
        text.push_str(&format!(
            "{name}: {}\n",
            String::from_utf8_lossy(value.as_bytes())
        ));
    }
    text.push('\n');
    text.push_str(&truncated(&side.body));
    text
}

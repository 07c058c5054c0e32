//! A route with a shadow or a canary, on the request path.
//!
//! Owns: `run` (for `handler::Migrating`, a route's own handler and its alternatives): the
//! canary split picks the side (a canary's response carries `wsrun-variant: canary`; both
//! sides' statuses feed the shared rollback window; a rollback is logged and stored once);
//! otherwise the primary answers, and when the request is mirrored (`Mirror::decide`: a
//! permit within the in-flight bound, or skipped and counted), a copy of the request is taken
//! before the primary runs and the shadow is started (`shadow::start`) once the primary's
//! response head is ready. While the worker's event loop is saturated (`loop_pressure`), sampled
//! requests are skipped and counted, not mirrored: under pressure the shadow yields to the
//! clients. Whatever the shadow does, the client's response is the primary's.
//! Also `inline_primary` and `mirror_permit`, which let the inline HTTP/1.1 path serve a plain
//! GET to a Python route with a shadow (no canary) by the same steps (`inline_h1::mirrored`).
//! Must not touch: running or comparing the shadow (`shadow`), the store's schema or the
//! split's arithmetic (`crate::migrate`).

use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use http::request::Parts;
use http::{HeaderValue, Method, Response};

use super::context::WorkerContext;
use super::handler::{Handler, Migrating};
use super::handler_run::{run_kind, Site};
use super::peer::Peer;
use super::shadow::{self, ShadowCopy};
use crate::body::ResponseBody;
use crate::migrate::canary::Side;
use crate::migrate::mirror::{Decision, Permit, SkipReason};
use crate::migrate::store::{Record, Recorder};
use crate::python::WsgiApp;
use crate::router::Route;
use crate::spool::SpooledBody;

/// The response header naming the side that served a canary route's request.
pub const VARIANT: &str = "wsrun-variant";

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
    let copy = mirror_permit(ctx, m, label, &parts.method, &spooled)
        .map(|permit| ShadowCopy::of(&parts, &spooled, &site, body_len, permit));
    let started = Instant::now();
    let response = run_kind(ctx, peer, &m.primary, site, parts, spooled, body_len).await;
    if let Some((_, split)) = &m.canary {
        split.record(Side::Primary, response.status().as_u16());
    }
    match copy {
        Some(copy) => shadow::start(ctx, peer, m, label, started, copy, response),
        None => response,
    }
}

/// Whether this request is mirrored: a permit when it is; a skip (over the in-flight bound, a
/// body that cannot be copied, or an event loop busy nearly all the time) is recorded.
pub fn mirror_permit(
    ctx: &WorkerContext,
    m: &Migrating,
    label: &str,
    method: &Method,
    body: &SpooledBody,
) -> Option<Permit> {
    let (_, mirror) = m.shadow.as_ref()?;
    match mirror.decide(method, body) {
        Decision::Pass => None,
        Decision::Mirror(permit) if !ctx.loop_pressure.pressed() => Some(permit),
        Decision::Mirror(_) => {
            record_skipped(ctx, label, SkipReason::LoopBusy);
            None
        }
        Decision::Skip(reason) => {
            record_skipped(ctx, label, reason);
            None
        }
    }
}

/// Counts a request the route's shadow would have mirrored but did not (see `Decision::Skip`).
pub fn record_skipped(ctx: &WorkerContext, label: &str, reason: SkipReason) {
    if let Some(r) = Recorder::get(&ctx.config.server.state_dir) {
        r.send(Record::Skipped {
            route: label.to_string(),
            reason,
        });
    }
}

/// The Python app the inline path may run for a migrating route: its primary, when that is a
/// Python app and the route has no canary (a canary's split and rollback stay on hyper's path).
pub fn inline_primary(m: &Migrating) -> Option<&Arc<WsgiApp>> {
    match (&m.primary, &m.canary) {
        (Handler::Python(app), None) => Some(app),
        _ => None,
    }
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

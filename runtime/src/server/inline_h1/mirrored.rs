//! A plain GET to a Python route with a shadow (and no canary), answered on the inline path:
//! the same steps `migrating::run` takes on hyper's path — decide whether to mirror, copy the
//! request before the app runs, hand the app's response to `shadow::start` — so mirroring a
//! route does not also move its requests off the inline path (which alone cost more than the
//! shadow: see bench/README.md, "Shadow traffic").
//!
//! Owns: `ShadowPlan` (what the inline path carries across the app's call). Must not touch:
//! running or comparing the shadow (`server::shadow`), the mirror's rules (`crate::migrate`),
//! canary routes (they stay on hyper's path).

use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use http::Method;

use super::head_parts;
use crate::migrate::mirror::SkipReason;
use crate::python::{FieldSpan, Reply};
use crate::server::context::WorkerContext;
use crate::server::handler::Migrating;
use crate::server::handler_run::Site;
use crate::server::migrating::{mirror_permit, record_skipped};
use crate::server::peer::Peer;
use crate::server::shadow::{self, ShadowCopy};
use crate::spool::SpooledBody;

/// A mirrored request between its copy and its primary's response.
pub struct ShadowPlan {
    m: Arc<Migrating>,
    copy: ShadowCopy,
    started: Instant,
}

/// The head as the shadow sees it, for a request the route mirrors.
pub struct Head<'a> {
    pub buf: &'a [u8],
    pub target: &'a str,
    pub fields: &'a [FieldSpan],
}

/// Decides for a GET to a migrating route: `None` when it is not mirrored (or skipped, which
/// is recorded), `Some` with the copy when it is. The mirror decides first, so a request that
/// is not mirrored costs no copy; a head the `http` types refuse (which the inline parser let
/// through) is recorded as skipped and served without its shadow, as any skip is. `site` is
/// only built for a request that is mirrored.
pub fn plan<'s>(
    ctx: &WorkerContext,
    m: &Arc<Migrating>,
    label: &str,
    head: Head<'_>,
    site: impl FnOnce() -> Site<'s>,
) -> Option<ShadowPlan> {
    let permit = mirror_permit(ctx, m, label, &Method::GET, &SpooledBody::Empty)?;
    let Some(parts) = head_parts::parts(head.buf, head.target, head.fields) else {
        record_skipped(ctx, label, SkipReason::Uncopyable);
        return None;
    };
    Some(ShadowPlan {
        m: m.clone(),
        copy: ShadowCopy::of(&parts, &SpooledBody::Empty, &site(), None, permit),
        started: Instant::now(),
    })
}

/// Starts the shadow of a planned request now that its primary answered `reply`; the client
/// gets the primary's reply (its body teed for the comparison).
pub fn start(
    ctx: &Rc<WorkerContext>,
    peer: Peer,
    label: &str,
    plan: ShadowPlan,
    reply: Reply,
) -> Reply {
    let response = reply.into_response();
    Reply::Server(shadow::start(
        ctx,
        peer,
        &plan.m,
        label,
        plan.started,
        plan.copy,
        response,
    ))
}

//! One request through one fresh guest instance (or, for a route with
//! `requests_per_instance` above 1, a warm one of the same version: `warm`).
//!
//! Owns: admission (`max_concurrency` -> 503 with Retry-After), the per-request `Store` (the
//! route's memory limit, an epoch deadline that yields to the event loop every tick, counts
//! the ticks for `lanes` and stops the guest past its `cpu_time`), stopping the instance when
//! the client goes away, the wall-clock `timeout` (504 before the response starts), the CPU
//! budget (500 naming it), a cut stream (no terminator) when the instance ends before
//! finishing a started body, and turning what the guest did into a response: its own response
//! streamed back, or a plain error that names the handler, route and limit but never the
//! guest's internals (those go to the log). Counts instances, traps and limit hits in the
//! worker's metrics when given them. Decides whether a finished instance may serve again
//! (`requests_per_instance`): it returned normally, has requests left, and left nothing of
//! its request undone (`work_in_flight`).
//! Must not touch: compiling or swapping versions, the router, or how bodies are framed.

use std::sync::Arc;
use std::time::Duration;

use http::{header, HeaderValue, Request, Response, StatusCode};
use hyper::body::Body as _;
use tokio::sync::oneshot;
use wasmtime::component::ResourceTableError;
use wasmtime::{Store, UpdateDeadline};
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};
use wasmtime_wasi_http::p2::body::{
    HostFutureTrailers, HostIncomingBody, HostOutgoingBody, HyperOutgoingBody,
};
use wasmtime_wasi_http::p2::types::{
    HostFutureIncomingResponse, HostIncomingResponse, HostOutgoingRequest, HostResponseOutparam,
};
use wasmtime_wasi_http::{FieldMapError, WasiHttpView};

use super::body::{GuestRequestBody, GuestResponseBody};
use super::engine::WasmEngine;
use super::guest_clock::GuestClock;
use super::lanes::{run_in_lanes, LaneShare, SlowLane};
use super::memory_budget::{MemoryAccount, Refusal, FIELD_SIZE_LIMIT};
use super::profile::{Step, StepTimer};
use super::registry::{Admission, HandlerVersion, WasmRoute};
use super::route_info::RouteInfo;
use super::state::GuestState;
use super::warm::{WarmInstance, WarmInstances};
use crate::body::{plain, ResponseBody};
use crate::metrics::{LimitKind, WorkerMetrics};
use crate::services::Services;

type GuestResponse = Result<hyper::Response<HyperOutgoingBody>, ErrorCode>;

/// How an instance's run ended.
enum Outcome {
    /// `handle` returned (the response may or may not have been set).
    Returned,
    /// The guest trapped; `limit` says which limit refused it first, if one did.
    Trapped {
        limit: Option<TrapLimit>,
    },
    TimedOut,
    /// The guest ran past its `cpu_time`.
    CpuBudget,
    /// The client went away first.
    Cancelled,
}

/// What `invoke` needs from the worker's host.
pub struct HostParts<'h> {
    pub engine: &'h WasmEngine,
    pub slow_lane: &'h SlowLane,
    /// The worker's services, for guests that import `wsrun:services`.
    pub services: Option<&'h Services>,
    /// The worker's `wasm_memory` account, charged by every instance.
    pub memory: &'h Arc<MemoryAccount>,
    /// The worker's running-instance slots (`engine::RUNNING_INSTANCES`).
    pub pool: &'h Arc<tokio::sync::Semaphore>,
    /// Where instances, traps and limit hits are counted, when the admin listener is on.
    pub metrics: Option<WorkerMetrics>,
    /// The worker's idle instances of routes with `requests_per_instance` above 1.
    pub warm: &'h Arc<WarmInstances>,
}

/// Runs `request` on an instance of the route's current handler version: a fresh one, or a
/// warm one of that version when the route's `requests_per_instance` is above 1.
pub async fn invoke(
    host: HostParts<'_>,
    route: &WasmRoute,
    request: Request<GuestRequestBody>,
) -> Response<ResponseBody> {
    let info = &route.info;
    let Some(version) = route.current() else {
        let text = format!("Service Unavailable: {} is not loaded\n", info.label());
        return retry_later(plain(StatusCode::SERVICE_UNAVAILABLE, text));
    };
    let admission = match route.admit(host.pool) {
        Ok(admission) => admission,
        Err(busy) => {
            if let Some(m) = host.metrics {
                m.limit_hit(LimitKind::Concurrency);
            }
            tracing::warn!("{}: 503, {busy}", info.label());
            let text = format!("Service Unavailable: {busy}; retry shortly\n");
            return retry_later(plain(StatusCode::SERVICE_UNAVAILABLE, text));
        }
    };
    let (sender, receiver) = oneshot::channel::<GuestResponse>();
    // Held by the response body: when the body (or this future) is dropped — the response
    // abandoned, e.g. the client gone mid-stream — the instance is stopped.
    let (keep_running, cancel) = oneshot::channel::<()>();
    // A guest cannot compute for longer than it runs: a CPU budget as long as the timeout
    // (the default, clamped) would only race it, a spinning guest reaching both at once and
    // getting either answer; the timeout alone stops it then.
    let limits = &info.limits;
    let cpu_budget = if limits.cpu_time < limits.timeout {
        limits.cpu_time
    } else {
        Duration::MAX
    };
    let clock = GuestClock::new(cpu_budget);
    let warm = match limits.requests_per_instance {
        1 => None,
        _ if version.single_use() => None,
        _ => host.warm.take(info, &version),
    };
    let warm_version = warm.as_ref().map(|_| version.clone());
    let run = Run {
        version,
        admission,
        clock: clock.clone(),
        share: route.lane_share.clone(),
        warm,
    };
    let outcome = match start(&host, info, run, request, sender, cancel) {
        Ok(outcome) => outcome,
        Err(err) => {
            tracing::error!("{}: cannot start an instance: {err:#}", info.label());
            return internal_error();
        }
    };
    match receiver.await {
        Ok(Ok(response)) => timed(info, guest_response(response, keep_running, clock)),
        Ok(Err(code)) => {
            tracing::error!("{}: the handler answered with error {code:?}", info.label());
            internal_error()
        }
        // The guest dropped its response-outparam: the outcome says why.
        Err(_) => match outcome.await {
            Ok(outcome) => {
                if let (Some(version), Outcome::Returned) = (warm_version, &outcome) {
                    warm_instance_failed(info, &version);
                }
                failure(info, outcome)
            }
            Err(_) => {
                tracing::error!("{}: the instance vanished", info.label());
                internal_error()
            }
        },
    }
}

/// A warm instance returned without answering: the handler's runtime may not take a second
/// request (jco's StarlingMonkey refuses a second `respondWith`). From now on this version gets a
/// fresh instance per request, as by default; the warning says so once.
fn warm_instance_failed(info: &RouteInfo, version: &HandlerVersion) {
    if version.mark_single_use() {
        tracing::warn!(
            "{}: a warm instance (requests_per_instance = {}) returned without answering; \
             this handler version gets a fresh instance per request from now on",
            info.label(),
            info.limits.requests_per_instance
        );
    }
}

/// What one instance runs with, besides its route.
struct Run {
    version: Arc<HandlerVersion>,
    admission: Admission,
    clock: Arc<GuestClock>,
    /// The route's tenant's turn in the slow lane.
    share: Arc<LaneShare>,
    /// An idle instance of this route and version to run on, instead of a new one.
    warm: Option<WarmInstance>,
}

/// Creates the store and starts the instance's run in the lanes; its outcome arrives on the
/// returned receiver, its response (if it sets one) on `sender`. Dropping `cancel`'s sender
/// stops the instance (the client is gone).
fn start(
    host: &HostParts<'_>,
    info: &Arc<RouteInfo>,
    run: Run,
    request: Request<GuestRequestBody>,
    sender: oneshot::Sender<GuestResponse>,
    cancel: oneshot::Receiver<()>,
) -> wasmtime::Result<oneshot::Receiver<Outcome>> {
    let Run {
        version,
        admission,
        clock,
        share,
        warm,
    } = run;
    let (mut store, warm_proxy, served) = match warm {
        Some(warm) => {
            let WarmInstance {
                mut store,
                proxy,
                served,
                ..
            } = warm;
            store.data_mut().start_request(info);
            (store, Some(proxy), served)
        }
        None => (new_store(host, info), None, 0),
    };
    let ticks = clock.clone();
    store.epoch_deadline_callback(move |_| {
        if !ticks.tick() {
            return Err(wasmtime::Error::msg("the guest ran past its cpu_time"));
        }
        let clock = ticks.clone();
        Ok(UpdateDeadline::YieldCustom(
            1,
            Box::pin(async move {
                tokio::task::yield_now().await;
                clock.resumed();
            }),
        ))
    });
    let mut http = store.data_mut().http();
    let scheme = match request.extensions().get::<super::Tls>() {
        Some(_) => Scheme::Https,
        None => Scheme::Http,
    };
    let incoming = http.new_incoming_request(scheme, request)?;
    let outparam = http.new_response_outparam(sender)?;
    let info = info.clone();
    let started = clock.clone();
    let metrics = host.metrics;
    if let (Some(m), None) = (metrics, &warm_proxy) {
        m.wasm_instance();
    }
    let park = (info.limits.requests_per_instance > served + 1).then(|| host.warm.clone());
    let guest = Box::pin(async move {
        let _admission = admission;
        // The guest's time starts when it first runs, not when its store was made: under load
        // it may wait in the run queue across a tick, and must neither yield at once on its
        // first epoch check (every queued guest did, ~4% req/s) nor count that wait as a slice.
        store.set_epoch_deadline(1);
        started.resumed();
        let run = async {
            let proxy = match warm_proxy {
                Some(proxy) => proxy,
                None => {
                    let _instantiating = StepTimer::start(&info, Step::Instantiate);
                    version.pre.instantiate_async(&mut store).await?
                }
            };
            // Recorded when dropped: also when the run is stopped half-way (timeout, cancel).
            let _running = StepTimer::start(&info, Step::Run);
            proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut store, incoming, outparam)
                .await
                .map(|()| proxy)
        };
        let result = tokio::select! {
            result = tokio::time::timeout(info.limits.timeout, run) => Some(result),
            _ = cancel => None,
        };
        let mut kept = None;
        let outcome = match result {
            None => Outcome::Cancelled,
            Some(Ok(Ok(proxy))) => {
                kept = Some(proxy);
                Outcome::Returned
            }
            Some(Ok(Err(err))) => {
                let refused = store.data().limiter.refused.clone();
                trapped(&info, &err, refused, &started)
            }
            Some(Err(_)) => {
                tracing::error!(
                    "{}: exceeded its timeout of {}; instance stopped",
                    info.label(),
                    seconds(info.limits.timeout)
                );
                Outcome::TimedOut
            }
        };
        if let Some(m) = metrics {
            count_outcome(m, &outcome);
        }
        // Before the store (and an unfinished body's sender with it) is dropped.
        let unfinished = has_unfinished_body(&mut store);
        started.instance_ended(unfinished);
        if let (Some(warm), Some(proxy), false) = (park, kept, unfinished) {
            match work_in_flight(&mut store) {
                None => warm.park(store, proxy, served + 1, version, info),
                Some(held) => {
                    tracing::debug!("{}: instance not kept: it still holds {held}", info.label())
                }
            }
        }
        outcome
    });
    let (done, outcome) = oneshot::channel();
    let lane = host.slow_lane.clone();
    tokio::spawn(run_in_lanes(guest, clock, lane, share, done));
    Ok(outcome)
}

/// A new store for an instance of `info`, charged to the worker's memory account.
fn new_store(host: &HostParts<'_>, info: &Arc<RouteInfo>) -> Store<GuestState> {
    let mut store = Store::new(
        &host.engine.engine,
        GuestState::new(info, host.services.cloned(), host.memory),
    );
    store.limiter(|state| &mut state.limiter);
    store
}

/// What the instance has left undone of the request it just served, named for the log: a
/// response it never set (the response-outparam still holds the channel this request's
/// answer waits on: only dropping the instance ends that wait), an outgoing request in flight
/// (its connection, body and response still to come), or a body it never finished reading
/// (the request's, or an outgoing response's, which holds that connection and its
/// `max_outbound` place). An instance with any is not kept for another request; nor is one
/// with a response body it never finished, which `has_unfinished_body` finds first.
/// (Handles a guest has not dropped yet, such as the request it was given, are its own to
/// drop; each is one entry of its `max_resources`.)
fn work_in_flight(store: &mut Store<GuestState>) -> Option<&'static str> {
    store
        .data_mut()
        .http()
        .table
        .iter_mut()
        .find_map(|entry| match () {
            () if entry.is::<HostResponseOutparam>() => Some("a response-outparam never set"),
            () if entry.is::<HostOutgoingRequest>() => Some("an outgoing-request"),
            () if entry.is::<HostFutureIncomingResponse>() => Some("a future-incoming-response"),
            () if entry.is::<HostIncomingResponse>() => Some("an incoming-response"),
            () if entry.is::<HostIncomingBody>() => Some("an incoming-body not finished"),
            () if entry.is::<HostFutureTrailers>() => Some("a future-trailers"),
            () => None,
        })
}

/// Counts a run's trap or the limit that stopped it.
fn count_outcome(metrics: WorkerMetrics, outcome: &Outcome) {
    match outcome {
        Outcome::Trapped { limit } => {
            metrics.wasm_trap();
            if matches!(limit, Some(TrapLimit::Memory(_))) {
                metrics.limit_hit(LimitKind::Memory);
            }
        }
        Outcome::TimedOut => metrics.limit_hit(LimitKind::Timeout),
        Outcome::CpuBudget => metrics.limit_hit(LimitKind::CpuTime),
        Outcome::Returned | Outcome::Cancelled => {}
    }
}

/// Does the instance still hold an `outgoing-body` it never finished (its response's, once
/// started)? Finishing one takes it out of the table; a guest stopped mid-body leaves it.
fn has_unfinished_body(store: &mut Store<GuestState>) -> bool {
    store
        .data_mut()
        .http()
        .table
        .iter_mut()
        .any(|entry| entry.is::<HostOutgoingBody>())
}

/// The outcome of a run that failed: past its CPU budget, or a trap (`refused`: the memory
/// limit that refused a growth first, if one did).
fn trapped(
    info: &RouteInfo,
    err: &wasmtime::Error,
    refused: Option<Refusal>,
    clock: &GuestClock,
) -> Outcome {
    if clock.over_budget() {
        tracing::error!(
            "{}: exceeded its CPU budget of {} (cpu_time); instance stopped",
            info.label(),
            seconds(info.limits.cpu_time)
        );
        return Outcome::CpuBudget;
    }
    let limit = TrapLimit::of(err, refused);
    log_trap(info, err, limit.as_ref());
    Outcome::Trapped { limit }
}

fn log_trap(info: &RouteInfo, err: &wasmtime::Error, limit: Option<&TrapLimit>) {
    match limit {
        Some(limit) => tracing::error!(
            "{}: exceeded {} and trapped: {err:?}",
            info.label(),
            limit.describe(info)
        ),
        None => tracing::error!("{}: trapped: {err:?}", info.label()),
    }
}

/// A limit whose refusal made the guest trap.
#[derive(Debug, Clone, PartialEq, Eq)]
enum TrapLimit {
    /// The memory limiter refused a growth (linear memory or a table): the instance's own
    /// limit or a shared account.
    Memory(Refusal),
    /// The instance's resource table was full (`max_resources`).
    Resources,
    /// A `Fields` resource would have passed the field-size cap.
    FieldSize,
}

impl TrapLimit {
    fn of(err: &wasmtime::Error, memory_refused: Option<Refusal>) -> Option<TrapLimit> {
        let table_full = err.chain().any(|cause| {
            matches!(
                cause.downcast_ref::<ResourceTableError>(),
                Some(ResourceTableError::Full)
            )
        });
        let fields_too_big = err.chain().any(|cause| {
            cause.downcast_ref::<FieldMapError>() == Some(&FieldMapError::TotalSizeTooBig)
        });
        if let Some(refusal) = memory_refused {
            Some(TrapLimit::Memory(refusal))
        } else if table_full {
            Some(TrapLimit::Resources)
        } else if fields_too_big {
            Some(TrapLimit::FieldSize)
        } else {
            None
        }
    }

    /// `its memory limit of 16 MiB`, `its max_resources of 128`, `tenant `a`'s memory_total
    /// of 2 GiB`.
    fn describe(&self, info: &RouteInfo) -> String {
        match self {
            TrapLimit::Memory(Refusal::Instance) => {
                format!("its memory limit of {}", size(info.limits.memory))
            }
            TrapLimit::Memory(Refusal::Shared(account)) => account.clone(),
            TrapLimit::Resources => {
                format!("its max_resources of {}", info.limits.max_resources)
            }
            TrapLimit::FieldSize => format!(
                "the header fields size limit of {}",
                size(FIELD_SIZE_LIMIT as u64)
            ),
        }
    }
}

/// The error response for a run that ended without setting a response.
fn failure(info: &RouteInfo, outcome: Outcome) -> Response<ResponseBody> {
    let label = info.label();
    match outcome {
        Outcome::TimedOut => plain(
            StatusCode::GATEWAY_TIMEOUT,
            format!(
                "Gateway Timeout: {label} exceeded its timeout of {}\n",
                seconds(info.limits.timeout)
            ),
        ),
        Outcome::Trapped { limit: Some(limit) } => plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "Internal Server Error: {label} exceeded {}\n",
                limit.describe(info)
            ),
        ),
        Outcome::Trapped { limit: None } => internal_error(),
        Outcome::CpuBudget => plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "Internal Server Error: {label} exceeded its CPU budget of {}\n",
                seconds(info.limits.cpu_time)
            ),
        ),
        Outcome::Cancelled => plain(StatusCode::BAD_REQUEST, "Client Closed Request\n"),
        Outcome::Returned => {
            tracing::error!("{label}: returned without setting a response");
            internal_error()
        }
    }
}

/// The guest's response, its body streamed as the guest writes it; the instance keeps
/// running while the body is being sent (`keep_running` lives in the body).
fn guest_response(
    response: hyper::Response<HyperOutgoingBody>,
    keep_running: oneshot::Sender<()>,
    clock: Arc<GuestClock>,
) -> Response<ResponseBody> {
    let (parts, body) = response.into_parts();
    let body = if body.is_end_stream() {
        ResponseBody::Empty
    } else {
        ResponseBody::Stream(Box::new(GuestResponseBody::new(body, keep_running, clock)))
    };
    Response::from_parts(parts, body)
}

/// With `--profile`, the response body records its streaming time when it is done.
fn timed(info: &Arc<RouteInfo>, response: Response<ResponseBody>) -> Response<ResponseBody> {
    let Some(timer) = StepTimer::start(info, Step::Stream) else {
        return response;
    };
    response.map(|body| ResponseBody::Guarded(Box::new(body), Box::new(timer)))
}

/// The 500 a client gets when what went wrong is the guest's business (details are logged).
fn internal_error() -> Response<ResponseBody> {
    plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error\n")
}

fn retry_later(mut response: Response<ResponseBody>) -> Response<ResponseBody> {
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// `2s`, `1.25s`, `250ms` (as a limit is written in the config).
fn seconds(d: Duration) -> String {
    crate::config::format_duration(d)
}

/// `32 MiB`, `2560 KiB`, `100000 bytes`: exact, in the largest unit that divides evenly.
fn size(bytes: u64) -> String {
    match bytes {
        b if b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_stated_exactly() {
        assert_eq!(seconds(Duration::from_secs(2)), "2s");
        assert_eq!(seconds(Duration::from_millis(1250)), "1.25s");
        assert_eq!(seconds(Duration::from_millis(250)), "250ms");
        assert_eq!(size(32 << 20), "32 MiB");
        assert_eq!(size(2560 << 10), "2560 KiB");
        assert_eq!(size(1000), "1000 bytes");
    }
}

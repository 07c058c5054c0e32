//! What one guest instance may see and use: the data of its `Store`.
//!
//! Owns: `GuestState` (WASI context with the route's environment and nothing else: no
//! preopened directories, no sockets, stdout/stderr into the log; the wasi:http context; the
//! resource table, capped at the route's `max_resources`; the per-resource size caps), the
//! memory limiter (`memory_budget`) that enforces the route's `memory`, and the hooks that
//! refuse outgoing requests to origins the route does not allow, and the route and worker
//! services the guest's `wsrun:services` calls act for (`services_host`). Must not touch: the engine,
//! the request/response plumbing (`invoke`) or other instances — each request gets its own.

use std::future::Future;
use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{
    Error as HttpError, RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks,
    WasiHttpView,
};

use super::guest_log::GuestLog;
use super::memory_budget::{MemoryAccount, MemoryLimiter};
use super::route_info::RouteInfo;
use super::services_host::ServicesHost;
use crate::config::{default_port, Origin, RESOURCE_WORST_BYTES};
use crate::services::Services;

/// The in-memory size one `Fields` resource may reach (names, values and the map around them;
/// about half of it on the wire). wasi-http's default is 128 KiB.
pub const FIELD_SIZE_LIMIT: usize = 64 * 1024;
/// The most bytes one write to an outgoing body may carry; wasi-http buffers at most
/// `OUTGOING_BODY_BUFFER_CHUNKS + 1` of them per body until the reader takes them (its default
/// is 1 MiB, which let one unsent body hold 2 MiB of host memory).
const OUTGOING_BODY_CHUNK: usize = 64 * 1024;
const OUTGOING_BODY_BUFFER_CHUNKS: usize = 1;
const _: () = assert!(
    FIELD_SIZE_LIMIT as u64 <= RESOURCE_WORST_BYTES
        && ((OUTGOING_BODY_BUFFER_CHUNKS + 1) * OUTGOING_BODY_CHUNK) as u64 <= RESOURCE_WORST_BYTES
);

/// The data of one instance's `Store`.
pub struct GuestState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    hooks: OutboundPolicy,
    pub limiter: MemoryLimiter,
    /// What the guest's `wsrun:services` imports act for (used only if it imports them).
    pub services: ServicesHost,
}

impl GuestState {
    /// The state of one instance of `route`; its memory is charged to the route's tenant
    /// and to `worker_memory`.
    pub fn new(
        route: &Arc<RouteInfo>,
        services: Option<Services>,
        worker_memory: &Arc<MemoryAccount>,
    ) -> GuestState {
        let mut wasi = WasiCtx::builder();
        let (stdout, stderr) = GuestLog::pair(route);
        wasi.envs(&route.limits.env)
            .stdout(stdout)
            .stderr(stderr)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        let mut http = WasiHttpCtx::new();
        http.set_field_size_limit(FIELD_SIZE_LIMIT);
        let mut table = ResourceTable::new();
        table.set_max_capacity(route.limits.max_resources);
        GuestState {
            wasi: wasi.build(),
            http,
            table,
            hooks: OutboundPolicy {
                route: route.clone(),
            },
            limiter: MemoryLimiter::new(route.limits.memory, memory_accounts(route, worker_memory)),
            services: ServicesHost::new(route.clone(), services),
        }
    }
}

/// The shared accounts an instance of `route` is charged to: its tenant's, then the worker's.
fn memory_accounts(route: &RouteInfo, worker: &Arc<MemoryAccount>) -> Vec<Arc<MemoryAccount>> {
    route
        .tenant_memory
        .iter()
        .cloned()
        .chain(std::iter::once(worker.clone()))
        .collect()
}

impl WasiView for GuestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for GuestState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// wasi:http hooks: outgoing requests only to the route's `allow_outbound` origins.
struct OutboundPolicy {
    route: Arc<RouteInfo>,
}

type SendResult = Result<
    (
        http::Response<WasiBody>,
        Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ),
    HttpError,
>;

impl WasiHttpHooks for OutboundPolicy {
    fn p2_outgoing_body_chunk_size(&mut self) -> usize {
        OUTGOING_BODY_CHUNK
    }

    fn p2_outgoing_body_buffer_chunks(&mut self) -> usize {
        OUTGOING_BODY_BUFFER_CHUNKS
    }

    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        let uri = request.uri();
        let scheme = uri.scheme_str().unwrap_or("https").to_ascii_lowercase();
        let host = uri.host().unwrap_or_default().to_string();
        let port = uri
            .port_u16()
            .or_else(|| default_port(&scheme))
            .unwrap_or(0);
        let allowed = self
            .route
            .limits
            .allow_outbound
            .iter()
            .any(|origin: &Origin| origin.allows(&scheme, &host, port));
        if !allowed {
            tracing::warn!(
                "{}: outgoing request to {scheme}://{host}:{port} refused (not in allow_outbound)",
                self.route.label()
            );
            return Box::new(async { Err(HttpError::HttpRequestDenied) });
        }
        let _ = fut;
        Box::new(async move {
            use http_body_util::BodyExt;
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            let io: Box<dyn Future<Output = Result<(), HttpError>> + Send> = Box::new(io);
            Ok((response.map(BodyExt::boxed_unsync), io))
        })
    }
}

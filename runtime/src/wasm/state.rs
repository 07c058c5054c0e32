//! What one guest instance may see and use: the data of its `Store`.
//!
//! Owns: `GuestState` (WASI context with the route's environment and nothing else: no
//! preopened directories, no sockets, stdout/stderr into the log; the wasi:http context; the
//! resource table), the memory limiter that enforces the route's `memory`, and the hooks that
//! refuse outgoing requests to origins the route does not allow, and the route and worker
//! services the guest's `wsrun:services` calls act for (`services_host`). Must not touch: the engine,
//! the request/response plumbing (`invoke`) or other instances — each request gets its own.

use std::future::Future;
use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime::ResourceLimiter;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{
    Error as HttpError, RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks,
    WasiHttpView,
};

use super::guest_log::GuestLog;
use super::route_info::RouteInfo;
use super::services_host::ServicesHost;
use crate::config::{default_port, Origin};
use crate::services::Services;

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
    pub fn new(route: &Arc<RouteInfo>, services: Option<Services>) -> GuestState {
        let mut wasi = WasiCtx::builder();
        let (stdout, stderr) = GuestLog::pair(route);
        wasi.envs(&route.limits.env)
            .stdout(stdout)
            .stderr(stderr)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        GuestState {
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            hooks: OutboundPolicy {
                route: route.clone(),
            },
            limiter: MemoryLimiter {
                limit: usize::try_from(route.limits.memory).unwrap_or(usize::MAX),
                refused: false,
            },
            services: ServicesHost::new(route.clone(), services),
        }
    }
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

/// Caps linear memory (and tables) at the route's limit; remembers whether it had to refuse.
pub struct MemoryLimiter {
    limit: usize,
    /// Set when a growth was refused: a trap that follows is reported as the memory limit.
    pub refused: bool,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = desired <= self.limit;
        self.refused |= !allowed;
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // A table element is a pointer; the same budget keeps tables from dodging the limit.
        let allowed = desired.saturating_mul(size_of::<usize>()) <= self.limit;
        self.refused |= !allowed;
        Ok(allowed)
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

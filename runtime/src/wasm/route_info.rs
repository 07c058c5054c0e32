//! What a WASM route is, for everything that runs or logs for it.
//!
//! Owns: `RouteInfo` (a route's handler name, prefix, file, tenant, hosts and limits, shared
//! by every instance it runs, with the shared budgets it draws on: the tenant's memory account,
//! the outbound caps, the guest-log rate bucket) and `handler_name`. It sits below `registry`,
//! `state`, `guest_log` and `services_host`, which all read it. Must not touch: versions, permits or instances.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::log_budget::LogRate;
use super::memory_budget::MemoryAccount;
use super::outbound::OutboundShare;
use crate::config::WasmLimits;

/// What a route is, shared with every instance it runs (for limits and log labels).
#[derive(Debug)]
pub struct RouteInfo {
    /// The handler's name: its file name without `.wasm`.
    pub name: String,
    pub prefix: String,
    pub file: PathBuf,
    pub tenant: Option<String>,
    /// The Host names the route answers (a tenant's hosts for a tenant route); empty: any.
    pub hosts: Vec<String>,
    pub limits: WasmLimits,
    /// The tenant's `memory_total` account in this worker, shared by all its routes.
    pub tenant_memory: Option<Arc<MemoryAccount>>,
    /// The route's `log_rate` bucket, shared by its instances (`LogRate::default()`).
    pub log_rate: LogRate,
    /// The caps on outgoing requests in flight (`max_outbound`), the tenant's shared.
    pub outbound: Arc<OutboundShare>,
}

impl RouteInfo {
    /// `handler `hello` on /hello` (with the tenant when there is one), for logs and errors.
    pub fn label(&self) -> String {
        match &self.tenant {
            Some(tenant) => format!(
                "tenant `{tenant}` handler `{}` on {}",
                self.name, self.prefix
            ),
            None => format!("handler `{}` on {}", self.name, self.prefix),
        }
    }
}

/// A route's handler name: the file stem (`handlers/api_v2.wasm` -> `api_v2`).
pub fn handler_name(file: &Path) -> String {
    file.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| file.display().to_string())
}

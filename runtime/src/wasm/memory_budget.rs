//! Shared memory accounts: the linear memory (and tables) every instance of a worker, or of one
//! tenant in a worker, holds at once.
//!
//! Owns: `MemoryAccount` (a budget and what is charged against it, lock-free) and
//! `MemoryLimiter`, the per-instance `ResourceLimiter` that enforces the route's `memory`
//! and charges each growth to the tenant's and the worker's accounts, giving it back when
//! the instance ends. Without the shared accounts a route's defaults allow 100 instances x
//! 128 MiB = 12.5 GiB per worker, and any number of routes or tenants multiply that.
//! Also the fixed per-resource size caps (fields, outgoing-body chunks) that make
//! `max_resources` a bound on host memory. Must not touch: the engine, stores or requests
//! (`state` gives each store a limiter and applies the caps).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use wasmtime::ResourceLimiter;

use crate::config::{format_size, RESOURCE_WORST_BYTES};

/// The in-memory size one `Fields` resource may reach (names, values and the map around them;
/// about half of it on the wire). wasi-http's default is 128 KiB.
pub const FIELD_SIZE_LIMIT: usize = 64 * 1024;
/// The most bytes one write to an outgoing body may carry; wasi-http buffers at most
/// `OUTGOING_BODY_BUFFER_CHUNKS + 1` of them per body until the reader takes them (its default
/// is 1 MiB, which let one unsent body hold 2 MiB of host memory).
pub const OUTGOING_BODY_CHUNK: usize = 64 * 1024;
pub const OUTGOING_BODY_BUFFER_CHUNKS: usize = 1;
const _: () = assert!(
    FIELD_SIZE_LIMIT as u64 <= RESOURCE_WORST_BYTES
        && ((OUTGOING_BODY_BUFFER_CHUNKS + 1) * OUTGOING_BODY_CHUNK) as u64 <= RESOURCE_WORST_BYTES
);

/// A budget of bytes shared by many instances; a charge that would pass it is refused.
#[derive(Debug)]
pub struct MemoryAccount {
    /// How a refusal is named: `tenant `acme`'s memory_total of 2 GiB`.
    pub name: String,
    budget: u64,
    used: AtomicU64,
}

impl MemoryAccount {
    pub fn new(name: String, budget: u64) -> Arc<MemoryAccount> {
        Arc::new(MemoryAccount {
            name,
            budget,
            used: AtomicU64::new(0),
        })
    }

    /// The worker-wide account: `wasm_memory` bytes for all its instances.
    pub fn worker(budget: u64) -> Arc<MemoryAccount> {
        let name = format!("the worker's wasm_memory of {}", format_size(budget));
        MemoryAccount::new(name, budget)
    }

    /// One tenant's account: `memory_total` bytes for all its instances in this worker.
    pub fn tenant(tenant: &str, budget: u64) -> Arc<MemoryAccount> {
        let name = format!(
            "tenant `{tenant}`'s memory_total of {}",
            format_size(budget)
        );
        MemoryAccount::new(name, budget)
    }

    /// Charges `bytes` if they fit; false (and nothing charged) if not.
    fn try_charge(&self, bytes: u64) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes)
                    .filter(|total| *total <= self.budget)
            })
            .is_ok()
    }

    fn release(&self, bytes: u64) {
        self.used.fetch_sub(bytes, Ordering::AcqRel);
    }

    /// Bytes charged now.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Acquire)
    }
}

/// Which limit refused a growth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The route's own `memory` (per instance).
    Instance,
    /// A shared account; its name says which.
    Shared(String),
}

/// Caps one instance's linear memory (and tables) at the route's limit and charges every
/// growth to the shared accounts; remembers the first refusal.
pub struct MemoryLimiter {
    limit: usize,
    accounts: Vec<Arc<MemoryAccount>>,
    /// Bytes this instance has charged to every account.
    held: u64,
    /// Set when a growth was refused: a trap that follows is reported as that limit.
    pub refused: Option<Refusal>,
}

impl MemoryLimiter {
    pub fn new(limit: u64, accounts: Vec<Arc<MemoryAccount>>) -> MemoryLimiter {
        MemoryLimiter {
            limit: usize::try_from(limit).unwrap_or(usize::MAX),
            accounts,
            held: 0,
            refused: None,
        }
    }

    /// Grows this instance's charge by `desired - current` bytes, within every limit.
    fn grow(&mut self, current: usize, desired: usize, instance_ok: bool) -> bool {
        if !instance_ok {
            self.refused.get_or_insert(Refusal::Instance);
            return false;
        }
        let delta = desired.saturating_sub(current) as u64;
        for (i, account) in self.accounts.iter().enumerate() {
            if !account.try_charge(delta) {
                for charged in &self.accounts[..i] {
                    charged.release(delta);
                }
                self.refused
                    .get_or_insert_with(|| Refusal::Shared(account.name.clone()));
                return false;
            }
        }
        self.held += delta;
        true
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(self.grow(current, desired, desired <= self.limit))
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // A table element is a pointer; the same budget keeps tables from dodging the limit.
        let bytes = |elements: usize| elements.saturating_mul(size_of::<usize>());
        let ok = bytes(desired) <= self.limit;
        Ok(self.grow(bytes(current), bytes(desired), ok))
    }
}

impl Drop for MemoryLimiter {
    fn drop(&mut self) {
        for account in &self.accounts {
            account.release(self.held);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_is_charged_to_every_account_and_given_back() {
        let worker = MemoryAccount::worker(10 << 20);
        let tenant = MemoryAccount::tenant("t", 4 << 20);
        let mut a = MemoryLimiter::new(3 << 20, vec![tenant.clone(), worker.clone()]);
        assert!(a.memory_growing(0, 2 << 20, None).unwrap());
        assert!(!a.memory_growing(2 << 20, 4 << 20, None).unwrap());
        assert_eq!(a.refused, Some(Refusal::Instance));
        let mut b = MemoryLimiter::new(3 << 20, vec![tenant.clone(), worker.clone()]);
        assert!(!b.memory_growing(0, 3 << 20, None).unwrap());
        assert_eq!(b.refused, Some(Refusal::Shared(tenant.name.clone())));
        // The refused charge left nothing behind in either account.
        assert_eq!((tenant.used(), worker.used()), (2 << 20, 2 << 20));
        drop(a);
        drop(b);
        assert_eq!((tenant.used(), worker.used()), (0, 0));
    }
}

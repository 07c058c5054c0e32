//! The (route, tenant) label table in the shared segment: which slot of every region counts a
//! route's requests.
//!
//! Owns: claiming a slot for a label pair once, when a route is built (compare-and-swap on an
//! entry's state, so the master and workers, and a `--watch` route added in one worker, agree
//! on indexes without a lock), and reading the names back for rendering. Slot 0 is
//! `(other)` (the table is full, or a route built without a segment), slot 1 `(none)` (no
//! route matched). Two processes claiming the same new pair at once may get two slots; the
//! renderer adds slots with equal names, so that costs a slot, never a count.
//! Must not touch: counters (`counter`) or the mapping (`segment`).

use std::sync::atomic::{AtomicU32, AtomicU8, Ordering};

/// Label slots per segment (each costs ~4 KiB per worker region, touched only when used).
pub const LABELS: usize = 128;
/// The slot of requests no entry could be claimed for.
pub const OTHER: u16 = 0;
/// The slot of requests no route matched.
pub const UNROUTED: u16 = 1;
const ROUTE_MAX: usize = 176;
const TENANT_MAX: usize = 64;

const FREE: u32 = 0;
const CLAIMING: u32 = 1;
const READY: u32 = 2;

/// One label pair.
#[repr(C)]
pub struct LabelEntry {
    state: AtomicU32,
    route_len: AtomicU32,
    tenant_len: AtomicU32,
    _pad: u32,
    route: [AtomicU8; ROUTE_MAX],
    tenant: [AtomicU8; TENANT_MAX],
}

/// The table.
#[repr(C)]
pub struct Labels {
    entries: [LabelEntry; LABELS],
}

impl LabelEntry {
    fn matches(&self, route: &str, tenant: &str) -> bool {
        if self.state.load(Ordering::Acquire) != READY {
            return false;
        }
        let (r, t) = self.names();
        r == route && t == tenant
    }

    fn fill(&self, route: &str, tenant: &str) {
        let route = clip(route, ROUTE_MAX);
        let tenant = clip(tenant, TENANT_MAX);
        for (cell, b) in self.route.iter().zip(route.bytes()) {
            cell.store(b, Ordering::Relaxed);
        }
        for (cell, b) in self.tenant.iter().zip(tenant.bytes()) {
            cell.store(b, Ordering::Relaxed);
        }
        self.route_len.store(route.len() as u32, Ordering::Relaxed);
        self.tenant_len
            .store(tenant.len() as u32, Ordering::Relaxed);
        self.state.store(READY, Ordering::Release);
    }

    /// The names, once the entry is ready.
    fn names(&self) -> (String, String) {
        let read = |cells: &[AtomicU8], len: &AtomicU32| {
            let len = (len.load(Ordering::Relaxed) as usize).min(cells.len());
            let bytes: Vec<u8> = cells[..len]
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .collect();
            String::from_utf8_lossy(&bytes).into_owned()
        };
        (
            read(&self.route, &self.route_len),
            read(&self.tenant, &self.tenant_len),
        )
    }
}

/// The longest prefix of `s` within `max` bytes that ends on a character boundary.
pub(super) fn clip(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

impl Labels {
    /// Writes the two reserved entries (once, by the creator of the segment).
    pub(super) fn init(&self) {
        self.entries[usize::from(OTHER)].fill("(other)", "");
        self.entries[usize::from(UNROUTED)].fill("(none)", "");
    }

    /// The slot of (`route`, `tenant`): an existing entry with these names, else a free one
    /// claimed now, else `OTHER`.
    pub fn claim(&self, route: &str, tenant: &str) -> u16 {
        let (route, tenant) = (clip(route, ROUTE_MAX), clip(tenant, TENANT_MAX));
        for (i, entry) in self.entries.iter().enumerate().skip(2) {
            if entry.matches(route, tenant) {
                return i as u16;
            }
            let claimed = entry
                .state
                .compare_exchange(FREE, CLAIMING, Ordering::AcqRel, Ordering::Acquire)
                .is_ok();
            if claimed {
                entry.fill(route, tenant);
                return i as u16;
            }
        }
        OTHER
    }

    /// Every ready entry: (slot, route, tenant).
    pub fn ready(&self) -> Vec<(usize, String, String)> {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.state.load(Ordering::Acquire) == READY)
            .map(|(i, e)| {
                let (route, tenant) = e.names();
                (i, route, tenant)
            })
            .collect()
    }
}

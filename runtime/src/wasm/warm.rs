//! Warm instances: a finished instance kept for its route's next request, for routes that opt
//! in with `requests_per_instance` above 1.
//!
//! Owns: `WarmInstances`, one worker's idle instances (their store, their bound exports, the
//! version and route they belong to and how many requests each has served), handed out to the
//! next request of the same route *and* the same handler version (a swapped handler or a
//! reloaded route never gets an instance of the one before), at most `engine::WARM_IDLE` at
//! once in a worker (the oldest dropped first: each holds a slot of the instance pool, whose
//! running part `engine::RUNNING_INSTANCES` leaves them room) and none idle for longer than
//! `WARM_FOR`. Must not touch: whether an instance may be kept (`invoke` decides: one that
//! returned after answering, with nothing left in flight and requests left), admission, or
//! running.
//!
//! An idle instance keeps its linear memory and its charge to the route's tenant's and the
//! worker's memory accounts, as a running one does.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wasmtime::Store;
use wasmtime_wasi_http::p2::bindings::Proxy;

use super::engine::WARM_IDLE;
use super::registry::HandlerVersion;
use super::route_info::RouteInfo;
use super::state::GuestState;

/// How long an instance may stay idle before it is dropped.
const WARM_FOR: Duration = Duration::from_secs(30);

/// An instance between two requests of its route.
pub struct WarmInstance {
    pub store: Store<GuestState>,
    pub proxy: Proxy,
    /// Requests it has served.
    pub served: u32,
    version: Arc<HandlerVersion>,
    route: Arc<RouteInfo>,
    idle_since: Instant,
}

/// A worker's idle instances, oldest first.
#[derive(Default)]
pub struct WarmInstances {
    idle: Mutex<Vec<WarmInstance>>,
}

impl WarmInstances {
    /// The most recently parked instance of `route` running `version`, if one is idle.
    pub fn take(
        &self,
        route: &Arc<RouteInfo>,
        version: &Arc<HandlerVersion>,
    ) -> Option<WarmInstance> {
        let (found, expired) = {
            let mut idle = self.lock();
            let expired = expire(&mut idle, |w| w.idle_since, Instant::now(), 0);
            let found = idle
                .iter()
                .rposition(|w| Arc::ptr_eq(&w.route, route) && Arc::ptr_eq(&w.version, version))
                .map(|at| idle.remove(at));
            (found, expired)
        };
        // Outside the lock: dropping a store resets its memory.
        drop(expired);
        found
    }

    /// Keeps `store` (with its bound `proxy`) for the next request of `route` on `version`;
    /// makes room by dropping the oldest idle instance, and drops those idle too long.
    pub fn park(
        &self,
        store: Store<GuestState>,
        proxy: Proxy,
        served: u32,
        version: Arc<HandlerVersion>,
        route: Arc<RouteInfo>,
    ) {
        let now = Instant::now();
        let dropped = {
            let mut idle = self.lock();
            let dropped = expire(&mut idle, |w| w.idle_since, now, 1);
            idle.push(WarmInstance {
                store,
                proxy,
                served,
                version,
                route,
                idle_since: now,
            });
            dropped
        };
        // Outside the lock: dropping a store resets its memory.
        drop(dropped);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<WarmInstance>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Takes out (oldest first) the entries idle longer than `WARM_FOR`, and the oldest others
/// until `room` places are free under `WARM_IDLE`.
fn expire<T>(
    idle: &mut Vec<T>,
    idle_since: impl Fn(&T) -> Instant,
    now: Instant,
    room: usize,
) -> Vec<T> {
    let stale = idle
        .iter()
        .take_while(|w| now.duration_since(idle_since(w)) > WARM_FOR)
        .count();
    let over = (idle.len() - stale + room).saturating_sub(WARM_IDLE);
    idle.drain(..(stale + over).min(idle.len())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Entries parked `ages` milliseconds ago, oldest first (as `park` appends them).
    fn parked(now: Instant, ages: impl Iterator<Item = u64>) -> Vec<Instant> {
        ages.map(|age| now - Duration::from_millis(age)).collect()
    }

    #[test]
    fn instances_idle_too_long_go_first() {
        let now = Instant::now();
        let mut idle = parked(now, [40_000, 30_001, 29_999, 1].into_iter());
        let gone = expire(&mut idle, |t| *t, now, 1);
        assert_eq!(gone, parked(now, [40_000, 30_001].into_iter()));
        assert_eq!(idle, parked(now, [29_999, 1].into_iter()));
    }

    #[test]
    fn a_full_worker_drops_its_oldest_to_make_room() {
        let now = Instant::now();
        let mut idle = parked(now, (0..WARM_IDLE as u64).rev());
        // Parking one more: the oldest goes, so at most WARM_IDLE stay idle.
        let gone = expire(&mut idle, |t| *t, now, 1);
        assert_eq!(gone, parked(now, [WARM_IDLE as u64 - 1].into_iter()));
        assert_eq!(idle.len(), WARM_IDLE - 1);
        // Taking one needs no room: nothing more goes.
        assert!(expire(&mut idle, |t| *t, now, 0).is_empty());
    }
}

//! A worker's open connections: how many, which is oldest, and making room at the cap.
//!
//! Owns: `LiveConnections` (the count draining waits on, and the connections in the order
//! they were accepted) and the eviction rule: at `max_connections`, a new connection takes the
//! place of the oldest one that is serving no request — a head still trickling in (slowloris),
//! nothing sent yet, or idle keep-alive — instead of being refused. Connections busy with a
//! request are never evicted; when every one is busy the new one gets 503. Must not touch:
//! sockets or how a connection closes (the connection loops act on `IdleClock::evicted`).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::{Rc, Weak};

use tokio::sync::Notify;

use super::idle_clock::IdleClock;

/// Busy connections looked at, at most, to find one to evict for one new connection: bounds
/// the cost of an accept when the oldest connections are all serving long requests (busy
/// ones move to the back, so the next search starts elsewhere).
const EVICTION_SCAN: usize = 256;

/// Counts open connections and keeps them oldest first.
#[derive(Default)]
pub struct LiveConnections {
    count: Cell<usize>,
    closed: Notify,
    oldest_first: RefCell<VecDeque<Weak<IdleClock>>>,
}

impl LiveConnections {
    /// Open connections now.
    pub fn count(&self) -> usize {
        self.count.get()
    }

    /// Registers a new connection; it counts until the guard is dropped.
    pub fn open(self: &Rc<Self>, clock: &Rc<IdleClock>) -> LiveGuard {
        self.count.set(self.count.get() + 1);
        self.oldest_first
            .borrow_mut()
            .push_back(Rc::downgrade(clock));
        LiveGuard(self.clone())
    }

    /// Evicts the oldest connection serving no request; `false` if none could be found.
    pub fn evict_oldest_idle(&self) -> bool {
        let mut order = self.oldest_first.borrow_mut();
        let mut busy_seen = 0;
        while busy_seen < EVICTION_SCAN {
            let Some(entry) = order.pop_front() else {
                return false;
            };
            let Some(clock) = entry.upgrade() else {
                continue; // closed already: forget it
            };
            if clock.evict() {
                return true; // it closes on its next turn; forgotten here
            }
            busy_seen += 1;
            order.push_back(entry);
        }
        false
    }

    /// Resolves once every connection has closed.
    pub async fn all_closed(&self) {
        while self.count.get() > 0 {
            self.closed.notified().await;
        }
    }
}

/// One open connection's place in the count.
pub struct LiveGuard(Rc<LiveConnections>);

impl Drop for LiveGuard {
    fn drop(&mut self) {
        let live = &self.0;
        live.count.set(live.count.get().saturating_sub(1));
        live.closed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_idle_connection_is_evicted_and_busy_ones_are_kept() {
        let live = Rc::new(LiveConnections::default());
        let clocks: Vec<Rc<IdleClock>> = (0..3).map(|_| Rc::new(IdleClock::new())).collect();
        let guards: Vec<LiveGuard> = clocks.iter().map(|c| live.open(c)).collect();
        clocks[0].request_started(); // the oldest is busy
        assert!(live.evict_oldest_idle());
        assert!(!clocks[1].evict(), "the second-oldest was evicted already");
        assert!(clocks[2].evict(), "the newest was left alone");
        assert!(!live.evict_oldest_idle(), "only a busy one is left");
        assert_eq!(live.count(), 3);
        drop(guards);
        assert_eq!(live.count(), 0);
    }

    #[test]
    fn closed_connections_are_skipped() {
        let live = Rc::new(LiveConnections::default());
        let gone = Rc::new(IdleClock::new());
        let _gone_guard = live.open(&gone);
        drop(gone);
        let kept = Rc::new(IdleClock::new());
        let _kept_guard = live.open(&kept);
        assert!(live.evict_oldest_idle());
        assert!(
            !kept.evict(),
            "the live one was evicted, the dropped one skipped"
        );
    }
}

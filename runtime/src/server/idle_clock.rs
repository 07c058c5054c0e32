//! The two clocks of a connection between requests: the header-read timeout of a head in
//! progress (started by the `guard`'s `HeadClock`) and the keep-alive idle timeout after the
//! last response.
//!
//! Owns: `IdleClock` (responses in flight, idle since when, evicted or not) and the decision
//! which timer ran out. Must not touch: sockets or what happens when a timer runs out or the
//! connection is evicted (the connection loops, hyper's and the inline one, act on `Expired`
//! and on `evicted`); which connection to evict is the worker's choice.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

use super::guard::HeadClock;

/// When the connection last finished a response, whether one is in flight, and whether the
/// worker evicted the connection to make room for a new one.
#[derive(Default)]
pub struct IdleClock {
    in_flight: Cell<u32>,
    idle_since: Cell<Option<Instant>>,
    evicted: Cell<bool>,
    /// The task waiting in `evicted`. One slot (not a `Notify`): a connection has one task,
    /// and polling `Notify` locks its waiter list on every request.
    evict_waker: Cell<Option<Waker>>,
}

/// The future of `IdleClock::evicted`.
pub struct Evicted<'a> {
    clock: &'a IdleClock,
}

impl Future for Evicted<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let clock = self.clock;
        if clock.evicted.get() {
            return Poll::Ready(());
        }
        let waker = match clock.evict_waker.take() {
            Some(waker) if waker.will_wake(cx.waker()) => waker,
            _ => cx.waker().clone(),
        };
        clock.evict_waker.set(Some(waker));
        Poll::Pending
    }
}

/// Which connection timer ran out.
pub enum Expired {
    Head,
    Idle,
    Neither,
}

impl IdleClock {
    pub fn new() -> IdleClock {
        IdleClock::default()
    }

    /// Asks the connection to close if it is serving no request (a head still arriving, or
    /// idle between requests); `false` if it is busy or already asked.
    pub fn evict(&self) -> bool {
        if self.in_flight.get() > 0 || self.evicted.get() {
            return false;
        }
        self.evicted.set(true);
        if let Some(waker) = self.evict_waker.take() {
            waker.wake();
        }
        true
    }

    /// Resolves once the connection was evicted (at once if it already was). One task waits
    /// at a time: a later wait takes the slot (as `Notify::notify_one` wakes one waiter).
    pub fn evicted(&self) -> Evicted<'_> {
        Evicted { clock: self }
    }

    /// No response is in flight (an evicted connection closes now rather than gracefully).
    pub fn idle(&self) -> bool {
        self.in_flight.get() == 0
    }

    /// No request has started on this connection yet, or the one the inline path handed to
    /// hyper's path has not started there yet (`request_pending`): a drain still answers it
    /// (its client has sent it, or most likely has; closing now would reset it).
    pub fn fresh(&self) -> bool {
        self.in_flight.get() == 0 && self.idle_since.get().is_none()
    }

    pub fn request_started(&self) {
        self.in_flight.set(self.in_flight.get() + 1);
        self.idle_since.set(None);
    }

    /// A whole request head has been read and waits for hyper's path (the inline path hands
    /// the connection over): until hyper starts it the connection is neither idle nor serving,
    /// so it counts as `fresh` again (a drain waits for that request instead of closing a
    /// connection that holds it unread).
    pub fn request_pending(&self) {
        if self.in_flight.get() == 0 {
            self.idle_since.set(None);
        }
    }

    /// A response ended; returns the clock reading it took (when the connection fell idle),
    /// for the metrics to reuse.
    pub fn response_finished(&self) -> Option<std::time::Instant> {
        let left = self.in_flight.get().saturating_sub(1);
        self.in_flight.set(left);
        if left != 0 {
            return None;
        }
        let now = Instant::now();
        self.idle_since.set(Some(now));
        Some(now.into_std())
    }

    /// The next moment a timer may run out: the header-read timeout of a head in progress, or
    /// the keep-alive timeout after the last response. `None` while a request is served.
    pub fn next_deadline(
        &self,
        head: &HeadClock,
        (header, idle): (Duration, Duration),
    ) -> Option<Instant> {
        if self.in_flight.get() > 0 {
            return None;
        }
        let head_deadline = head.head_started().map(|at| Instant::from_std(at) + header);
        let idle_deadline = self.idle_since.get().map(|since| since + idle);
        match (head_deadline, idle_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn expired(&self, head: &HeadClock, (header, idle): (Duration, Duration)) -> Expired {
        if self.in_flight.get() > 0 {
            return Expired::Neither;
        }
        if let Some(started) = head.head_started() {
            return if started.elapsed() >= header {
                Expired::Head
            } else {
                Expired::Neither
            };
        }
        match self.idle_since.get() {
            Some(since) if since.elapsed() >= idle => Expired::Idle,
            _ => Expired::Neither,
        }
    }
}

/// A connection's one timer: the header-read and keep-alive timeouts it enforces. It is re-armed
/// only when it fires: it always fires no later than the true deadline, then either reports
/// what ran out or moves to the new deadline. No per-request cost.
pub struct ConnectionTimer {
    timeouts: (Duration, Duration),
    check_every: Duration,
}

impl ConnectionTimer {
    pub fn new(header_timeout: Duration, keepalive_timeout: Duration) -> ConnectionTimer {
        ConnectionTimer {
            timeouts: (header_timeout, keepalive_timeout),
            check_every: header_timeout.min(keepalive_timeout),
        }
    }

    /// The sleep to select on, first armed for the shorter timeout.
    pub fn sleep(&self) -> Sleep {
        tokio::time::sleep(self.check_every)
    }

    /// Called when `sleep` fired: what ran out, with `sleep` re-armed for the next deadline.
    pub fn fired(&self, clock: &IdleClock, head: &HeadClock, sleep: Pin<&mut Sleep>) -> Expired {
        let expired = clock.expired(head, self.timeouts);
        let next = clock.next_deadline(head, self.timeouts);
        let now = Instant::now();
        sleep.reset(
            next.filter(|at| *at > now)
                .unwrap_or(now + self.check_every),
        );
        expired
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::pin;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};

    use super::IdleClock;

    struct CountingWaker(AtomicUsize);

    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn an_eviction_wakes_the_waiting_task_once_and_a_busy_connection_is_not_evicted() {
        let clock = IdleClock::new();
        let count = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let mut evicted = pin!(clock.evicted());
        assert!(evicted.as_mut().poll(&mut cx).is_pending());
        assert!(
            evicted.as_mut().poll(&mut cx).is_pending(),
            "polled again: still waiting"
        );
        clock.request_started();
        assert!(
            !clock.evict(),
            "a connection serving a request is not evicted"
        );
        assert_eq!(count.0.load(Ordering::SeqCst), 0);
        let _ = clock.response_finished();
        assert!(clock.evict());
        assert!(!clock.evict(), "already asked");
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert_eq!(evicted.as_mut().poll(&mut cx), Poll::Ready(()));
        assert_eq!(
            pin!(clock.evicted()).poll(&mut cx),
            Poll::Ready(()),
            "at once when it was"
        );
    }

    #[test]
    fn a_request_handed_over_after_a_response_makes_the_connection_fresh_again() {
        let clock = IdleClock::new();
        assert!(clock.fresh());
        clock.request_started();
        let _ = clock.response_finished();
        assert!(
            !clock.fresh(),
            "idle after a response: a drain may close it"
        );
        clock.request_pending();
        assert!(
            clock.fresh(),
            "a request waits for hyper: a drain must answer it"
        );
        clock.request_started();
        assert!(!clock.fresh());
    }

    #[test]
    fn a_pending_request_does_not_hide_one_in_flight() {
        let clock = IdleClock::new();
        clock.request_started();
        clock.request_pending();
        assert!(!clock.fresh() && !clock.idle());
    }
}

//! Where guest code runs: on the worker's event loop first, on a low-priority thread later.
//!
//! Owns: `SlowLane`, one background thread per worker (its own event loop, nice 5) that
//! takes over guests which keep computing; `LaneShare`, a tenant's (or an untenanted route's)
//! turn on that thread; and `run_in_lanes`, which polls a guest on the event loop until it has
//! used `FAST_SLICES` epoch ticks and then hands the still-running future to its share of the
//! slow lane. A well-behaved handler finishes in the fast lane with no thread hop and no lock;
//! a spinning or memory-hungry one stops competing with everyone else's requests for the
//! worker's thread, and the kernel gives its thread a smaller share than the worker's. On the
//! loop, a tenant whose long polls took more than its fair part lately is paced (`loop_share`
//! decides, `run_in_lanes` waits), so its requests cannot queue back to back ahead of another
//! tenant's. Must not touch: what a guest does, its limits or its response.
//!
//! Fairness: the slow lane runs one task per share with guests in it, not one per guest, and
//! a share's task polls one of its guests per turn (round robin among them) then goes to the
//! back of the thread's run queue. A guest yields at every epoch tick, so each tenant gets one
//! tick's worth of the thread per round, however many guests it has there: four spinners of
//! one tenant no longer get four times the thread another tenant's one request gets.
//!
//! Moving is safe because a wasmtime async call is a `Send` future that may be polled from
//! any thread; timers and channels it waits on stay with the loop that created them.

use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Instant;

use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};
use tokio::time::sleep_until;

use super::guest_clock::GuestClock;
use super::loop_share::LoopUse;

/// Epoch ticks a guest may use on the event loop before it moves to the slow lane.
pub const FAST_SLICES: u32 = 2;

/// The slow lane's nice value (weight 335 against the worker's 1024), chosen by measurement
/// (`bench/wasm.sh noisy`, good tenant's p99 noisy / req/s): 19 let a starved slow thread that
/// held a lock the worker needed (instance pool, mmap lock) stall it for 100s of ms; 10 gave
/// 7.4 ms / 16.9k but a 1 GiB upload-digest timed out when other processes loaded the machine;
/// 0 gave 10.7 ms / 9.9k (just inside the 11.7 ms target); 5 gives 8.3 ms / 15.2k and finishes
/// that upload with two CPU hogs running.
const SLOW_LANE_NICE: libc::c_int = 5;

type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The background thread that finishes long-running guests.
#[derive(Clone)]
pub struct SlowLane {
    jobs: UnboundedSender<Job>,
}

impl SlowLane {
    pub fn start() -> Result<SlowLane, String> {
        let (jobs, mut queue) = unbounded_channel::<Job>();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the slow lane: {e}"))?;
        std::thread::Builder::new()
            .name("wsrun-slow-lane".to_string())
            .spawn(move || {
                crate::thread_nice::lower_this_thread(SLOW_LANE_NICE);
                runtime.block_on(async move {
                    while let Some(job) = queue.recv().await {
                        tokio::spawn(job);
                    }
                });
            })
            .map_err(|e| format!("cannot start the slow lane: {e}"))?;
        Ok(SlowLane { jobs })
    }

    /// Gives `guest` to `share`; starts the share's turns on the slow lane if it had none.
    async fn take(&self, share: &Arc<LaneShare>, guest: Job) {
        if !share.add(guest) {
            return;
        }
        let turns: Job = Box::pin(Turns::new(share.clone()));
        if let Err(turns) = self.jobs.send(turns) {
            // The slow lane is gone (shutting down): finish here.
            turns.0.await;
        }
    }
}

/// One tenant's (or one untenanted route's) turn in the slow lane: its guests there, polled
/// one per turn. Made once per tenant or route by the registry; holds no guest while none of
/// them is in the slow lane.
#[derive(Default)]
pub struct LaneShare {
    state: Mutex<ShareState>,
    /// Its guests' recent use of the event loop (`loop_share`).
    loop_use: LoopUse,
}

#[derive(Default)]
struct ShareState {
    /// Guest slots; a slot's guest is `None` while it is polled or after it finished.
    slots: Vec<Slot>,
    free: Vec<usize>,
    /// Slots whose guest was woken, in wake order.
    ready: VecDeque<usize>,
    /// Guests in the share (not yet finished).
    live: usize,
    /// A `Turns` task exists for this share.
    running: bool,
    /// The `Turns` task's waker while it waits for a guest to wake.
    idle: Option<Waker>,
}

struct Slot {
    guest: Option<Job>,
    waker: Waker,
    queued: bool,
}

impl LaneShare {
    pub fn new() -> Arc<LaneShare> {
        Arc::new(LaneShare::default())
    }

    fn lock(&self) -> MutexGuard<'_, ShareState> {
        // Guests are polled outside the lock, so it is never poisoned by a guest.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a guest, ready to run; true when the share has no `Turns` task yet (the caller
    /// must start one).
    fn add(self: &Arc<Self>, guest: Job) -> bool {
        let mut state = self.lock();
        let index = match state.free.pop() {
            Some(index) => index,
            None => {
                let index = state.slots.len();
                let waker = Waker::from(Arc::new(GuestWaker {
                    share: Arc::downgrade(self),
                    index,
                }));
                state.slots.push(Slot {
                    guest: None,
                    waker,
                    queued: false,
                });
                index
            }
        };
        let slot = &mut state.slots[index];
        slot.guest = Some(guest);
        slot.queued = true;
        state.ready.push_back(index);
        state.live += 1;
        if state.running {
            let idle = state.idle.take();
            drop(state);
            if let Some(idle) = idle {
                idle.wake();
            }
            false
        } else {
            state.running = true;
            true
        }
    }

    /// Marks slot `index` ready (its guest was woken) and wakes the share's task.
    fn wake(&self, index: usize) {
        let mut state = self.lock();
        let Some(slot) = state.slots.get_mut(index) else {
            return;
        };
        if slot.queued {
            return;
        }
        slot.queued = true;
        state.ready.push_back(index);
        let idle = state.idle.take();
        drop(state);
        if let Some(idle) = idle {
            idle.wake();
        }
    }

    /// Takes the next ready guest out of its slot (with the waker to poll it with).
    fn next(&self, cx: &Context<'_>) -> Next {
        let mut state = self.lock();
        while let Some(index) = state.ready.pop_front() {
            let slot = &mut state.slots[index];
            slot.queued = false;
            if let Some(guest) = slot.guest.take() {
                return Next::Guest(index, guest, slot.waker.clone());
            }
            // Its guest finished after the wake-up, or is the one being polled.
        }
        if state.live == 0 {
            state.running = false;
            return Next::Done;
        }
        state.idle = Some(cx.waker().clone());
        Next::Wait
    }

    /// Puts a polled guest back, or frees its slot when it finished.
    fn put_back(&self, index: usize, guest: Option<Job>) {
        let mut state = self.lock();
        match guest {
            Some(guest) => state.slots[index].guest = Some(guest),
            None => {
                state.live -= 1;
                state.free.push(index);
            }
        }
    }
}

enum Next {
    Guest(usize, Job, Waker),
    Wait,
    Done,
}

/// Wakes one guest slot of a share (weak, so a share's slots do not keep it alive).
struct GuestWaker {
    share: Weak<LaneShare>,
    index: usize,
}

impl Wake for GuestWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if let Some(share) = self.share.upgrade() {
            share.wake(self.index);
        }
    }
}

/// A share's task on the slow lane: one guest per poll, then the back of the run queue.
struct Turns {
    share: Arc<LaneShare>,
    /// The pause after a turn. It is tokio's `yield_now`, whose wake-up the runtime defers
    /// like the guests' own epoch yields: a share whose guest just yielded comes back in the
    /// same round as that guest, so it cannot take a second turn (with another of its guests)
    /// while the other shares' guests still wait for their deferred wake-ups.
    pause: Option<Job>,
}

impl Turns {
    fn new(share: Arc<LaneShare>) -> Turns {
        Turns { share, pause: None }
    }
}

impl Future for Turns {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if let Some(pause) = self.pause.as_mut() {
            if pause.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.pause = None;
        }
        let (index, mut guest, waker) = match self.share.next(cx) {
            Next::Guest(index, guest, waker) => (index, guest, waker),
            Next::Wait => return Poll::Pending,
            Next::Done => return Poll::Ready(()),
        };
        let finished = guest
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_ready();
        self.share.put_back(index, (!finished).then_some(guest));
        // Yield the thread to the other shares' tasks, then come back for the next guest (or
        // to wait for one, or to end when none is left).
        let mut pause: Job = Box::pin(tokio::task::yield_now());
        if pause.as_mut().poll(cx).is_pending() {
            self.pause = Some(pause);
        } else {
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }
}

/// Runs `guest` on the current event loop until it finishes or has seen `FAST_SLICES` ticks
/// (counted in `clock` by the store's epoch callback), then finishes it in `share`'s turns on
/// the slow lane. `done` receives the output either way. Every instance starts on the event
/// loop: starting known-slow routes directly on the slow lane was tried and made things worse,
/// because the low-priority thread then did the instance set-up and tear-down, which take locks
/// (the instance pool's, the kernel's mmap lock) the event loop also needs.
///
/// Each poll on the loop is timed for `share`'s `LoopUse`. While the share is over its fair
/// part of the loop (`loop_share`: other shares compete, its polls are long and it took more
/// than 1/n of their time lately), its guests give way: a poll waits (a timer, the guest not
/// polled) until the share's last poll there is twice as long ago as it took (`GIVE_WAY`), so
/// at most one of its polls runs between two turns of the others. Several short requests of
/// one tenant, each finishing within `FAST_SLICES`, used to run back to back ahead of another
/// tenant's request (issue 11). Its running guests still move after `FAST_SLICES` only.
pub async fn run_in_lanes<T: Send + 'static>(
    mut guest: Pin<Box<dyn Future<Output = T> + Send>>,
    clock: Arc<GuestClock>,
    lane: SlowLane,
    share: Arc<LaneShare>,
    done: tokio::sync::oneshot::Sender<T>,
) {
    let mut pause: Option<Pin<Box<tokio::time::Sleep>>> = None;
    let finished = poll_fn(|cx| {
        loop {
            if let Some(sleep) = pause.as_mut() {
                if sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                pause = None;
            }
            match share.loop_use.wait_until(Instant::now()) {
                Some(until) => pause = Some(Box::pin(sleep_until(until.into()))),
                None => break,
            }
        }
        let start = Instant::now();
        clock.polled();
        let polled = guest.as_mut().poll(cx);
        share.loop_use.record(start, Instant::now());
        match polled {
            Poll::Ready(output) => Poll::Ready(Some(output)),
            Poll::Pending if clock.slices() >= FAST_SLICES => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    })
    .await;
    if let Some(output) = finished {
        let _ = done.send(output);
        return;
    }
    let job: Job = Box::pin(async move {
        let output = poll_fn(|cx| {
            clock.polled();
            guest.as_mut().poll(cx)
        })
        .await;
        let _ = done.send(output);
    });
    lane.take(&share, job).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A guest that yields `turns` times, then records its name in `order`.
    fn guest(name: &'static str, turns: usize, order: Arc<Mutex<Vec<&'static str>>>) -> Job {
        Box::pin(async move {
            for _ in 0..turns {
                tokio::task::yield_now().await;
            }
            order.lock().unwrap().push(name);
        })
    }

    #[test]
    fn shares_take_turns_whatever_their_guest_count() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let (a, b) = (LaneShare::new(), LaneShare::new());
        runtime.block_on(async {
            let mut tasks = Vec::new();
            for name in ["a1", "a2", "a3", "a4"] {
                if a.add(guest(name, 100, order.clone())) {
                    tasks.push(tokio::spawn(Turns::new(a.clone())));
                }
            }
            if b.add(guest("b", 100, order.clone())) {
                tasks.push(tokio::spawn(Turns::new(b.clone())));
            }
            assert_eq!(tasks.len(), 2, "one task per share");
            for task in tasks {
                task.await.unwrap();
            }
        });
        let order = order.lock().unwrap();
        assert_eq!(order[0], "b", "{order:?}");
        assert_eq!(order.len(), 5);
        assert!(!a.lock().running && a.lock().live == 0);
    }

    #[test]
    fn a_share_waits_for_a_sleeping_guest_and_ends_when_empty() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let share = LaneShare::new();
        let polls = Arc::new(AtomicUsize::new(0));
        let counted = polls.clone();
        runtime.block_on(async {
            let sleeper: Job = Box::pin(async move {
                counted.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                counted.fetch_add(1, Ordering::Relaxed);
            });
            assert!(share.add(sleeper));
            Turns::new(share.clone()).await;
        });
        assert_eq!(polls.load(Ordering::Relaxed), 2);
        assert!(!share.lock().running);
        // A new guest after the end needs a new task.
        assert!(share.add(Box::pin(async {})));
    }
}

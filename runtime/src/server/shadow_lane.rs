//! The worker's shadow thread: where mirrored requests are run, compared and recorded, off the
//! event loop that serves the clients.
//!
//! Owns: `ShadowLane`, one OS thread per worker with a one-thread tokio runtime at a lower
//! priority (`SHADOW_NICE`), started on the first mirrored request (a worker without a shadow
//! route never starts it), and `spawn`, which hands it a `Send` future without waiting. The
//! queue is not bounded here: every job holds its route's in-flight `Permit`
//! (`migrate::mirror`), taken before it is queued, so at most `max_in_flight` jobs per route
//! wait or run; beyond that the request is skipped and counted, never queued. When the thread
//! cannot be started the jobs run on the event loop as before (logged once). Must not touch:
//! what a shadow does, how it is compared or stored (`migrating`, `crate::migrate`).
//!
//! The event loop does not wake the thread for every job: waking a thread parked on another
//! core costs the waker a system call and an inter-processor interrupt, a quarter of what
//! mirroring added to the event loop's CPU when it did (bench/README.md, "Shadow traffic").
//! While jobs keep coming the thread takes them every `GATHER` on its own timer; only the
//! first job after it went idle wakes it.

use std::cell::OnceCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

/// The shadow thread's nice value: under saturation the kernel gives the event loop (nice 0,
/// weight 1024) about ten times the CPU of the shadows (nice 10, weight 110), so mirrored
/// work yields to the clients' requests instead of sharing the core with them. Measured with
/// `bench/shadow.sh` (see bench/README.md, "Shadow traffic").
const SHADOW_NICE: libc::c_int = 10;

/// How long the thread lets jobs gather between two takes while they keep coming. A job
/// waits at most this long before it starts; its shadow's latency is measured from its start
/// and the primary's from the primary's own end, so neither includes the wait.
const GATHER: Duration = Duration::from_millis(2);

/// A shadow's whole life on the thread: run, wait for the primary's body, compare, record.
pub type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The worker's shadow thread, started on first use.
#[derive(Default)]
pub struct ShadowLane {
    queue: OnceCell<Option<Arc<Queue>>>,
}

/// Jobs handed over and not yet taken, and whether the thread sleeps until the next one.
#[derive(Default)]
struct Queue {
    jobs: Mutex<Vec<Job>>,
    idle: AtomicBool,
    wake: Notify,
}

impl ShadowLane {
    /// Runs `job` on the shadow thread (on this event loop if the thread could not start).
    pub fn spawn(&self, job: Job) {
        let Some(queue) = self.queue.get_or_init(start) else {
            tokio::task::spawn_local(job);
            return;
        };
        match queue.jobs.lock() {
            Ok(mut jobs) => jobs.push(job),
            Err(_) => {
                tokio::task::spawn_local(job);
                return;
            }
        }
        if queue.idle.swap(false, Ordering::AcqRel) {
            queue.wake.notify_one();
        }
    }
}

impl Queue {
    fn take(&self) -> Vec<Job> {
        self.jobs
            .lock()
            .map(|mut jobs| std::mem::take(&mut *jobs))
            .unwrap_or_default()
    }

    fn is_empty(&self) -> bool {
        self.jobs.lock().map_or(true, |jobs| jobs.is_empty())
    }

    /// The thread's loop: take what has gathered, start it, wait `GATHER`; with nothing
    /// taken, sleep until `spawn` wakes it.
    async fn serve(&self) {
        loop {
            let jobs = self.take();
            if jobs.is_empty() {
                self.idle.store(true, Ordering::Release);
                // A job queued between the take and the flag found it unset and woke no one.
                if self.is_empty() {
                    self.wake.notified().await;
                }
                self.idle.store(false, Ordering::Release);
                continue;
            }
            for job in jobs {
                tokio::spawn(job);
            }
            tokio::time::sleep(GATHER).await;
        }
    }
}

fn start() -> Option<Arc<Queue>> {
    let queue = Arc::new(Queue::default());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let served = queue.clone();
    let started = runtime.map_err(|e| e.to_string()).and_then(|runtime| {
        std::thread::Builder::new()
            .name("wsrun-shadow".to_string())
            .spawn(move || {
                crate::thread_nice::lower_this_thread(SHADOW_NICE);
                runtime.block_on(served.serve());
            })
            .map_err(|e| e.to_string())
    });
    match started {
        Ok(_) => Some(queue),
        Err(e) => {
            tracing::error!("cannot start the shadow thread ({e}); shadows run on the event loop");
            None
        }
    }
}

//! The worker's shadow thread: where mirrored requests are run, compared and recorded, off the
//! event loop that serves the clients.
//!
//! Owns: `ShadowLane`, one OS thread per worker with a one-thread tokio runtime at a lower
//! priority (`SHADOW_NICE`), started on the first mirrored request (a worker without a shadow
//! route never starts it), and `spawn`, which hands it a `Send` future without waiting. The
//! channel is not bounded here: every job holds its route's in-flight `Permit`
//! (`migrate::mirror`), taken before it is sent, so at most `max_in_flight` jobs per route
//! wait or run; beyond that the request is skipped and counted, never queued. When the thread
//! cannot be started the jobs run on the event loop as before (logged once). Must not touch:
//! what a shadow does, how it is compared or stored (`migrating`, `crate::migrate`).

use std::cell::OnceCell;
use std::future::Future;
use std::pin::Pin;

use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};

/// The shadow thread's nice value: under saturation the kernel gives the event loop (nice 0,
/// weight 1024) about ten times the CPU of the shadows (nice 10, weight 110), so mirrored
/// work yields to the clients' requests instead of sharing the core with them. Measured with
/// `bench/shadow.sh` (see bench/README.md, "Shadow traffic").
const SHADOW_NICE: libc::c_int = 10;

/// A shadow's whole life on the thread: run, wait for the primary's body, compare, record.
pub type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The worker's shadow thread, started on first use.
#[derive(Default)]
pub struct ShadowLane {
    jobs: OnceCell<Option<UnboundedSender<Job>>>,
}

impl ShadowLane {
    /// Runs `job` on the shadow thread (on this event loop if the thread could not start).
    pub fn spawn(&self, job: Job) {
        let sent = match self.jobs.get_or_init(start) {
            Some(jobs) => jobs.send(job).map_err(|e| e.0),
            None => Err(job),
        };
        if let Err(job) = sent {
            tokio::task::spawn_local(job);
        }
    }
}

fn start() -> Option<UnboundedSender<Job>> {
    let (jobs, mut queue) = unbounded_channel::<Job>();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let started = runtime.map_err(|e| e.to_string()).and_then(|runtime| {
        std::thread::Builder::new()
            .name("wsrun-shadow".to_string())
            .spawn(move || {
                // SAFETY: setpriority on this thread's own id only changes its nice value.
                unsafe {
                    let tid = libc::gettid() as libc::id_t;
                    libc::setpriority(libc::PRIO_PROCESS, tid, SHADOW_NICE);
                }
                runtime.block_on(async move {
                    while let Some(job) = queue.recv().await {
                        tokio::spawn(job);
                    }
                });
            })
            .map_err(|e| e.to_string())
    });
    match started {
        Ok(_) => Some(jobs),
        Err(e) => {
            tracing::error!("cannot start the shadow thread ({e}); shadows run on the event loop");
            None
        }
    }
}

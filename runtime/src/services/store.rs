//! The SQLite job store: the journal thread (one per process, group commit) plus a direct
//! connection for callers' own threads and for `wsrun jobs`.
//!
//! Owns: `SqliteStore` (the `JobStore` over `journal`), the thread, its command channel and
//! group commit — every command waiting when the thread wakes runs in one transaction, and
//! each caller is answered only after that commit, so "queued" always means "on disk" while a
//! burst of enqueues costs one commit. Also the sweep that frees leases of worker processes
//! that died. Must not touch: SQL details (`journal`) or what happens to a claimed job
//! (`dispatch`).

use std::path::Path;
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};

use tokio::sync::{oneshot, Notify};

use super::error::{StoreError, StoreResult};
use super::job::{JobRecord, JobState, NewJob, TimerRecord};
use super::job_store::{Claim, JobStore, Listing, Outcome, Polled, StoreFuture};
use super::journal::{now_ms, Journal, JournalResult, JOURNAL_FILE};
use super::journal_thread::{self, Command, LazyJournal, Reply};

/// A handle on the SQLite store of one state directory; cheap to clone, usable from any thread.
#[derive(Clone)]
pub struct SqliteStore {
    commands: std_mpsc::Sender<Command>,
    /// A second connection: enqueues made on a caller's own thread (see `enqueue_blocking`),
    /// `wsrun jobs`, and the start-up sync of `[[timer]]` tables.
    direct: Arc<Mutex<LazyJournal>>,
    thread: Arc<Mutex<Option<std::thread::JoinHandle<()>>>>,
    wake: Arc<Notify>,
}

impl SqliteStore {
    /// Starts the journal thread for `state_dir`. The journal file is created by the first
    /// command that writes; until it exists, polls find nothing (a server that never queues
    /// a job leaves no file behind).
    pub fn start(state_dir: &Path) -> StoreResult<SqliteStore> {
        let (commands, receiver) = std_mpsc::channel();
        let wake = Arc::new(Notify::new());
        let thread_wake = wake.clone();
        let lazy = LazyJournal::new(state_dir, true);
        let direct = Arc::new(Mutex::new(LazyJournal::new(state_dir, false)));
        let thread = std::thread::Builder::new()
            .name("wsrun-journal".to_string())
            .spawn(move || journal_thread::run(lazy, receiver, thread_wake))
            .map_err(|e| StoreError::other("cannot start the journal thread", e))?;
        Ok(SqliteStore {
            commands,
            direct,
            thread: Arc::new(Mutex::new(Some(thread))),
            wake,
        })
    }

    /// The store of a journal that must exist already (`wsrun jobs`).
    pub fn open_existing(state_dir: &Path) -> StoreResult<SqliteStore> {
        let path = state_dir.join(JOURNAL_FILE);
        if !path.exists() {
            return Err(StoreError::Missing {
                store: path.display().to_string(),
            });
        }
        SqliteStore::start(state_dir)
    }

    /// Runs `work` on the direct connection in one transaction of its own.
    fn on_direct<T>(&self, work: impl FnOnce(&mut Journal) -> JournalResult<T>) -> StoreResult<T> {
        let mut direct = self.direct.lock().map_err(|_| StoreError::Closed)?;
        match direct.get(true)? {
            Some(journal) => work(journal),
            None => Err(StoreError::Closed),
        }
    }

    fn call_blocking<T: Send + 'static>(
        &self,
        command: impl FnOnce(Reply<T>) -> Command,
    ) -> StoreResult<T> {
        let (sender, receiver) = std_mpsc::sync_channel(1);
        let reply: Reply<T> = Box::new(move |result| {
            let _ = sender.send(result);
        });
        self.commands
            .send(command(reply))
            .map_err(|_| StoreError::Closed)?;
        receiver.recv().map_err(|_| StoreError::Closed)?
    }

    fn call<T: Send + 'static>(
        &self,
        command: impl FnOnce(Reply<T>) -> Command,
    ) -> StoreFuture<'_, T> {
        let (sender, receiver) = oneshot::channel();
        let reply: Reply<T> = Box::new(move |result| {
            let _ = sender.send(result);
        });
        let sent = self.commands.send(command(reply)).is_ok();
        Box::pin(async move {
            if !sent {
                return Err(StoreError::Closed);
            }
            receiver.await.map_err(|_| StoreError::Closed)?
        })
    }
}

impl JobStore for SqliteStore {
    /// A Python app calls this on the worker's event-loop thread, so a hop to the journal
    /// thread and back would cost two context switches per job. When no other thread is
    /// enqueueing, the caller commits the job itself on the `direct` connection; when one is,
    /// the job goes to the journal thread and shares that batch's commit.
    fn enqueue_blocking(&self, job: NewJob) -> StoreResult<i64> {
        let Ok(mut direct) = self.direct.try_lock() else {
            return self.call_blocking(|reply| Command::Enqueue(job, reply));
        };
        let due_now = job.delay.is_zero();
        let id = match direct.get(true)? {
            Some(journal) => journal.transaction(|tx| tx.enqueue(&job, now_ms()))?,
            None => return Err(StoreError::Closed),
        };
        drop(direct);
        if due_now {
            self.wake.notify_one();
        }
        Ok(id)
    }

    fn enqueue(&self, job: NewJob) -> StoreFuture<'_, i64> {
        self.call(|reply| Command::Enqueue(job, reply))
    }

    fn set_timer_blocking(&self, timer: TimerRecord) -> StoreResult<()> {
        self.call_blocking(|reply| Command::SetTimer(timer, reply))
    }

    fn set_timer(&self, timer: TimerRecord) -> StoreFuture<'_, ()> {
        self.call(|reply| Command::SetTimer(timer, reply))
    }

    fn cancel_timer_blocking(&self, owner: String, name: String) -> StoreResult<bool> {
        self.call_blocking(|reply| Command::CancelTimer(owner, name, reply))
    }

    fn cancel_timer(&self, owner: String, name: String) -> StoreFuture<'_, bool> {
        self.call(|reply| Command::CancelTimer(owner, name, reply))
    }

    fn poll(&self, claim: Claim) -> StoreFuture<'_, Polled> {
        self.call(|reply| Command::Poll(claim, reply))
    }

    fn record(&self, id: i64, outcome: Outcome) -> StoreFuture<'_, ()> {
        self.call(|reply| Command::Record(id, outcome, reply))
    }

    fn sweep_leases(&self) -> StoreResult<usize> {
        self.on_direct(|journal| journal.transaction(journal_thread::release_dead_owners))
    }

    fn wake(&self) -> &Notify {
        &self.wake
    }

    fn sync_timers(&self, source: &str, wanted: Vec<TimerRecord>) -> StoreResult<()> {
        let exists = match self.direct.lock() {
            Ok(direct) => direct.exists(),
            Err(_) => return Err(StoreError::Closed),
        };
        if wanted.is_empty() && !exists {
            return Ok(()); // nothing to add, nothing to remove: no journal file is created
        }
        self.on_direct(|journal| journal.transaction(|tx| tx.sync_timers(source, &wanted)))
    }

    fn list(&self, limit: usize) -> StoreResult<Listing> {
        self.on_direct(|journal| {
            let (pending, dead) = journal.counts()?;
            Ok(Listing {
                jobs: journal.list(limit)?,
                pending,
                dead,
                timers: journal.timers()?,
                unserved: Vec::new(),
            })
        })
    }

    fn show(&self, id: i64) -> StoreResult<Option<(JobState, JobRecord)>> {
        self.on_direct(|journal| journal.show(id))
    }

    fn retry(&self, id: i64) -> StoreResult<bool> {
        self.on_direct(|journal| journal.transaction(|tx| tx.retry(id, now_ms())))
    }

    fn purge(&self, pending: bool) -> StoreResult<usize> {
        self.on_direct(|journal| {
            let gone = journal.transaction(|tx| tx.purge(pending))?;
            journal.reclaim()?;
            Ok(gone)
        })
    }

    /// Stops the thread and waits for it: its connection is closed when this returns (a
    /// process about to fork must not hold SQLite state in another thread).
    fn shutdown(&self) {
        let _ = self.commands.send(Command::Stop);
        if let Ok(mut direct) = self.direct.lock() {
            direct.close();
        }
        let handle = self.thread.lock().ok().and_then(|mut slot| slot.take());
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }
}

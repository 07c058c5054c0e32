//! The journal thread: one per process, the only user of that process's SQLite connection.
//!
//! Owns: the thread, its command channel and group commit — every command waiting when the
//! thread wakes runs in one transaction, and each caller is answered only after that commit,
//! so "queued" always means "on disk" while a burst of enqueues costs one commit. Also the
//! sweep that frees leases of worker processes that died. Must not touch: SQL details
//! (`journal`) or what happens to a claimed job (`dispatch`).

use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{oneshot, Notify};

use super::job::{JobRecord, NewJob, ServiceError, TimerRecord};
use super::journal::{now_ms, Journal, JournalResult, Tx, JOURNAL_FILE};

/// At most this many commands share one transaction.
const MAX_BATCH: usize = 512;
/// How often leases of dead workers are looked for.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// How a claimed job's delivery ended, as the journal records it.
#[derive(Debug, Clone)]
pub enum Outcome {
    Done,
    /// Try again at this time (Unix ms); the reason is kept for `wsrun jobs show`.
    Retry {
        at: i64,
        error: String,
    },
    /// No more attempts: to the dead-letter table.
    Dead {
        error: String,
    },
}

/// What a dispatcher round gets back.
#[derive(Debug, Default)]
pub struct Polled {
    pub jobs: Vec<JobRecord>,
    /// When the next job or timer is due (Unix ms), if any.
    pub next_due: Option<i64>,
}

type Reply<T> = Box<dyn FnOnce(Result<T, ServiceError>) + Send>;

enum Command {
    Enqueue(NewJob, Reply<i64>),
    SetTimer(TimerRecord, Reply<()>),
    CancelTimer(String, Reply<bool>),
    Poll {
        owner: i64,
        limit: usize,
        lease: Duration,
        timer_attempts: u32,
        reply: Reply<Polled>,
    },
    Record(i64, Outcome),
    /// Ends the thread (after answering what came before).
    Stop,
}

/// A handle on the journal thread; cheap to clone, usable from any thread.
#[derive(Clone)]
pub struct Store {
    commands: std_mpsc::Sender<Command>,
    thread: Arc<std::sync::Mutex<Option<std::thread::JoinHandle<()>>>>,
    /// Woken when a job becomes due at once, so this worker's dispatcher need not poll.
    pub wake: Arc<Notify>,
}

impl Store {
    /// Starts the journal thread for `state_dir`. The journal file is created by the first
    /// command that writes; until it exists, polls find nothing (a server that never queues
    /// a job leaves no file behind).
    pub fn start(state_dir: &Path) -> Result<Store, String> {
        let (commands, receiver) = std_mpsc::channel();
        let wake = Arc::new(Notify::new());
        let thread_wake = wake.clone();
        let lazy = LazyJournal {
            state_dir: state_dir.to_path_buf(),
            journal: None,
        };
        let thread = std::thread::Builder::new()
            .name("wsrun-journal".to_string())
            .spawn(move || run(lazy, receiver, thread_wake))
            .map_err(|e| format!("cannot start the journal thread: {e}"))?;
        Ok(Store {
            commands,
            thread: Arc::new(std::sync::Mutex::new(Some(thread))),
            wake,
        })
    }

    /// Stops the thread and waits for it: its connection is closed when this returns (a
    /// process about to fork must not hold SQLite state in another thread).
    pub fn shutdown(&self) {
        let _ = self.commands.send(Command::Stop);
        let handle = self.thread.lock().ok().and_then(|mut slot| slot.take());
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }

    /// Queues `job`; returns its id once it is committed. Blocks the calling thread.
    pub fn enqueue_blocking(&self, job: NewJob) -> Result<i64, ServiceError> {
        self.call_blocking(|reply| Command::Enqueue(job, reply))
    }

    /// Queues `job`; resolves to its id once it is committed.
    pub async fn enqueue(&self, job: NewJob) -> Result<i64, ServiceError> {
        self.call(|reply| Command::Enqueue(job, reply)).await
    }

    pub fn set_timer_blocking(&self, timer: TimerRecord) -> Result<(), ServiceError> {
        self.call_blocking(|reply| Command::SetTimer(timer, reply))
    }

    pub async fn set_timer(&self, timer: TimerRecord) -> Result<(), ServiceError> {
        self.call(|reply| Command::SetTimer(timer, reply)).await
    }

    pub fn cancel_timer_blocking(&self, name: String) -> Result<bool, ServiceError> {
        self.call_blocking(|reply| Command::CancelTimer(name, reply))
    }

    pub async fn cancel_timer(&self, name: String) -> Result<bool, ServiceError> {
        self.call(|reply| Command::CancelTimer(name, reply)).await
    }

    /// Fires due timers and claims up to `limit` due jobs for `owner`.
    pub async fn poll(
        &self,
        owner: i64,
        limit: usize,
        lease: Duration,
        timer_attempts: u32,
    ) -> Result<Polled, ServiceError> {
        self.call(|reply| Command::Poll {
            owner,
            limit,
            lease,
            timer_attempts,
            reply,
        })
        .await
    }

    /// Records how a delivery ended (no answer awaited: the lease covers a lost record).
    pub fn record(&self, id: i64, outcome: Outcome) {
        let _ = self.commands.send(Command::Record(id, outcome));
    }

    fn call_blocking<T: Send + 'static>(
        &self,
        command: impl FnOnce(Reply<T>) -> Command,
    ) -> Result<T, ServiceError> {
        let (sender, receiver) = std_mpsc::sync_channel(1);
        let reply: Reply<T> = Box::new(move |result| {
            let _ = sender.send(result);
        });
        self.commands.send(command(reply)).map_err(|_| gone())?;
        receiver.recv().map_err(|_| gone())?
    }

    async fn call<T: Send + 'static>(
        &self,
        command: impl FnOnce(Reply<T>) -> Command,
    ) -> Result<T, ServiceError> {
        let (sender, receiver) = oneshot::channel();
        let reply: Reply<T> = Box::new(move |result| {
            let _ = sender.send(result);
        });
        self.commands.send(command(reply)).map_err(|_| gone())?;
        receiver.await.map_err(|_| gone())?
    }
}

fn gone() -> ServiceError {
    ServiceError::Unavailable("the job journal thread has stopped".to_string())
}

/// The journal, opened when first needed.
struct LazyJournal {
    state_dir: PathBuf,
    journal: Option<Journal>,
}

impl LazyJournal {
    /// The open journal; `None` when it does not exist and `create` is false.
    fn get(&mut self, create: bool) -> JournalResult<Option<&mut Journal>> {
        if self.journal.is_none() {
            if !create && !self.state_dir.join(JOURNAL_FILE).exists() {
                return Ok(None);
            }
            self.journal = Some(Journal::open(&self.state_dir)?);
        }
        Ok(self.journal.as_mut())
    }
}

/// The thread's body: wait for a command, take every other one waiting, run them all in one
/// transaction, answer after the commit.
fn run(mut lazy: LazyJournal, commands: std_mpsc::Receiver<Command>, wake: Arc<Notify>) {
    let mut last_sweep = Instant::now()
        .checked_sub(SWEEP_EVERY)
        .unwrap_or_else(Instant::now);
    let mut stopping = false;
    while !stopping {
        let Ok(first) = commands.recv() else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match commands.try_recv() {
                Ok(command) => batch.push(command),
                Err(_) => break,
            }
        }
        stopping = batch.iter().any(|c| matches!(c, Command::Stop));
        let sweep = last_sweep.elapsed() >= SWEEP_EVERY;
        if sweep {
            last_sweep = Instant::now();
        }
        let writes = batch.iter().any(|c| !matches!(c, Command::Poll { .. }));
        let journal = match lazy.get(writes) {
            Ok(Some(journal)) => journal,
            Ok(None) => {
                batch.into_iter().for_each(answer_empty);
                continue;
            }
            Err(message) => {
                tracing::error!("{message}");
                for command in batch {
                    execute_failed(command, &message);
                }
                continue;
            }
        };
        let mut replies: Vec<Box<dyn FnOnce(Option<&str>)>> = Vec::with_capacity(batch.len());
        let mut due_now = false;
        let committed = journal.transaction(|tx| {
            if sweep {
                release_dead_owners(tx)?;
            }
            let now = now_ms();
            for command in batch {
                replies.push(execute(tx, command, now, &mut due_now));
            }
            Ok(())
        });
        let failure = committed.err();
        if let Some(message) = &failure {
            tracing::error!("{message}");
        }
        for reply in replies {
            reply(failure.as_deref());
        }
        if due_now && failure.is_none() {
            wake.notify_one();
        }
    }
}

/// Answers a command when there is no journal yet (only polls get here).
fn answer_empty(command: Command) {
    if let Command::Poll { reply, .. } = command {
        reply(Ok(Polled::default()));
    }
}

/// Answers a command with the error that kept the journal from opening.
fn execute_failed(command: Command, message: &str) {
    let error = || ServiceError::Journal(message.to_string());
    match command {
        Command::Enqueue(_, reply) => reply(Err(error())),
        Command::SetTimer(_, reply) => reply(Err(error())),
        Command::CancelTimer(_, reply) => reply(Err(error())),
        Command::Poll { reply, .. } => reply(Err(error())),
        Command::Record(id, _) => tracing::error!("job {id}: {message}"),
        Command::Stop => {}
    }
}

/// Runs one command inside the batch's transaction; returns what to answer after the commit
/// (given the commit's error, if it failed).
fn execute(
    tx: &Tx<'_>,
    command: Command,
    now: i64,
    due_now: &mut bool,
) -> Box<dyn FnOnce(Option<&str>)> {
    match command {
        Command::Enqueue(job, reply) => {
            *due_now |= job.delay.is_zero();
            answer(tx.insert(&job, now), reply)
        }
        Command::SetTimer(timer, reply) => {
            *due_now |= timer.next_due <= now;
            answer(tx.set_timer(&timer), reply)
        }
        Command::CancelTimer(name, reply) => answer(tx.cancel_timer(&name), reply),
        Command::Poll {
            owner,
            limit,
            lease,
            timer_attempts,
            reply,
        } => {
            let polled = tx
                .fire_due_timers(now, timer_attempts)
                .and_then(|_| tx.claim(owner, now, limit, lease))
                .and_then(|jobs| {
                    let next_due = tx.next_due()?;
                    Ok(Polled { jobs, next_due })
                });
            answer(polled, reply)
        }
        Command::Record(id, outcome) => {
            let recorded = match &outcome {
                Outcome::Done => tx.complete(id),
                Outcome::Retry { at, error } => tx.reschedule(id, *at, error),
                Outcome::Dead { error } => tx.bury(id, error, now),
            };
            if let Err(message) = recorded {
                tracing::error!("job {id}: {message}");
            }
            Box::new(|_| {})
        }
        Command::Stop => Box::new(|_| {}),
    }
}

fn answer<T: Send + 'static>(
    result: JournalResult<T>,
    reply: Reply<T>,
) -> Box<dyn FnOnce(Option<&str>)> {
    Box::new(move |commit_error| {
        let result = match (result, commit_error) {
            (Ok(value), None) => Ok(value),
            (Err(message), _) => Err(ServiceError::Journal(message)),
            (Ok(_), Some(message)) => Err(ServiceError::Journal(message.to_string())),
        };
        reply(result);
    })
}

/// Frees the leases of worker processes that no longer exist, so their jobs are delivered
/// by someone else at once instead of when the lease runs out.
fn release_dead_owners(tx: &Tx<'_>) -> JournalResult<()> {
    for owner in tx.lease_owners()? {
        if !process_alive(owner) {
            let freed = tx.release_owner(owner)?;
            if freed > 0 {
                tracing::info!("taking over {freed} job(s) leased by pid {owner}, which is gone");
            }
        }
    }
    Ok(())
}

fn process_alive(pid: i64) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks that the process exists; nothing is delivered.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

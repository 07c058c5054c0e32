//! The body of the SQLite store's journal thread: group commit, the lease sweep, and the
//! WAL checkpointer.
//!
//! Owns: the command set the thread understands, running a batch of them in one transaction
//! and answering each caller after the commit, opening the journal lazily (a server that never
//! queues a job leaves no file behind), and the checkpointer thread. Must not touch: SQL
//! details (`journal`), the handle callers hold (`store`), or delivery (`dispatch`).

use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::error::{StoreError, StoreResult};
use super::job::{NewJob, TimerRecord};
use super::job_store::{Claim, Outcome, Polled};
use super::journal::{now_ms, Journal, JournalResult, Tx, JOURNAL_FILE};

/// At most this many commands share one transaction.
const MAX_BATCH: usize = 512;
/// How often leases of dead workers are looked for.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// How the thread answers a caller.
pub type Reply<T> = Box<dyn FnOnce(StoreResult<T>) + Send>;

/// What to tell a caller once the batch's commit has (or has not, with its error) happened.
type AfterCommit = Box<dyn FnOnce(Option<&StoreError>)>;

pub enum Command {
    Enqueue(NewJob, Reply<i64>),
    SetTimer(TimerRecord, Reply<()>),
    /// Owner and name.
    CancelTimer(String, String, Reply<bool>),
    Poll(Claim, Reply<Polled>),
    Record(i64, Outcome, Reply<()>),
    /// Ends the thread (after answering what came before).
    Stop,
}

/// The journal, opened when first needed, with its checkpointer thread.
pub struct LazyJournal {
    state_dir: PathBuf,
    journal: Option<Journal>,
    checkpoints: bool,
    checkpointer: Option<Checkpointer>,
    /// Set by `close`: the journal is not opened again.
    closed: bool,
}

impl LazyJournal {
    /// `checkpoints`: whether this connection's opening starts the process's checkpointer.
    pub fn new(state_dir: &Path, checkpoints: bool) -> LazyJournal {
        LazyJournal {
            state_dir: state_dir.to_path_buf(),
            journal: None,
            checkpoints,
            checkpointer: None,
            closed: false,
        }
    }

    /// Whether the journal file exists (or is open).
    pub fn exists(&self) -> bool {
        self.journal.is_some() || self.state_dir.join(JOURNAL_FILE).exists()
    }

    /// Closes the connection (and stops its checkpointer) for good.
    pub fn close(&mut self) {
        self.closed = true;
        self.journal = None;
        if let Some(checkpointer) = self.checkpointer.take() {
            checkpointer.stop();
        }
    }

    /// The open journal; `None` when it does not exist and `create` is false.
    pub fn get(&mut self, create: bool) -> JournalResult<Option<&mut Journal>> {
        if self.closed {
            return Err(StoreError::Closed);
        }
        if self.journal.is_none() {
            if !create && !self.state_dir.join(JOURNAL_FILE).exists() {
                return Ok(None);
            }
            let journal = Journal::open(&self.state_dir)?.without_auto_checkpoints()?;
            if self.checkpoints {
                self.checkpointer = Some(Checkpointer::start(Journal::open(&self.state_dir)?)?);
            }
            self.journal = Some(journal);
        }
        Ok(self.journal.as_mut())
    }
}

impl Drop for LazyJournal {
    fn drop(&mut self) {
        self.close();
    }
}

/// How often the WAL is copied back into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);
/// Free pages (4 KiB each) in the file past which the checkpointer gives them back to the
/// file system: a backlog that was delivered or purged does not keep its disk space.
const RECLAIM_FREE_PAGES: i64 = 1024;

/// A thread with its own connection that checkpoints the WAL, so the fsync a checkpoint
/// needs never sits inside a commit that a caller is waiting for.
struct Checkpointer {
    stop: std_mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Checkpointer {
    fn start(journal: Journal) -> JournalResult<Checkpointer> {
        let (stop, stopped) = std_mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("wsrun-checkpoint".to_string())
            .spawn(move || {
                while let Err(std_mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(CHECKPOINT_EVERY)
                {
                    if let Err(err) = checkpoint(&journal) {
                        tracing::warn!("{err}");
                    }
                }
            })
            .map_err(|e| StoreError::other("cannot start the journal checkpointer", e))?;
        Ok(Checkpointer { stop, thread })
    }

    fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.thread.join();
    }
}

/// One checkpointer round: the WAL into the database, then free pages back to the file
/// system when there are many, and a WAL that grew large truncated.
fn checkpoint(journal: &Journal) -> JournalResult<()> {
    let all_copied = journal.checkpoint()?;
    if journal.free_pages()? > RECLAIM_FREE_PAGES {
        journal.reclaim()?;
    } else if all_copied {
        journal.trim_wal()?;
    }
    Ok(())
}

/// The thread's body: wait for a command, take every other one waiting, run them all in one
/// transaction, answer after the commit.
pub fn run(mut lazy: LazyJournal, commands: std_mpsc::Receiver<Command>, wake: Arc<Notify>) {
    let mut last_sweep = Instant::now()
        .checked_sub(SWEEP_EVERY)
        .unwrap_or_else(Instant::now);
    let mut stopping = false;
    // The last failure logged: a journal that keeps failing (a full disk) is logged once
    // per kind of failure, not once per batch; its callers get every error.
    let mut failing: Option<String> = None;
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
        // Polls and a stop need no journal: only a write creates the file.
        let writes = batch
            .iter()
            .any(|c| !matches!(c, Command::Poll(..) | Command::Stop));
        let journal = match lazy.get(writes) {
            Ok(Some(journal)) => journal,
            Ok(None) => {
                batch.into_iter().for_each(answer_empty);
                continue;
            }
            Err(err) => {
                tracing::error!("{err}");
                for command in batch {
                    execute_failed(command, &err);
                }
                continue;
            }
        };
        let mut replies: Vec<AfterCommit> = Vec::with_capacity(batch.len());
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
        log_failure(&mut failing, failure.as_ref());
        for reply in replies {
            reply(failure.as_ref());
        }
        if due_now && failure.is_none() {
            wake.notify_one();
        }
    }
}

/// Logs a batch's failure when it differs from the last one logged, and the end of failing.
fn log_failure(failing: &mut Option<String>, failure: Option<&StoreError>) {
    match failure {
        Some(err) => {
            let message = err.to_string();
            if failing.as_deref() != Some(message.as_str()) {
                tracing::error!("{message}");
                *failing = Some(message);
            }
        }
        None => {
            if failing.take().is_some() {
                tracing::info!("the job journal commits again");
            }
        }
    }
}

/// Answers a command when there is no journal yet (only polls get here).
fn answer_empty(command: Command) {
    if let Command::Poll(_, reply) = command {
        reply(Ok(Polled::default()));
    }
}

/// Answers a command with the error that kept the journal from opening.
fn execute_failed(command: Command, err: &StoreError) {
    match command {
        Command::Enqueue(_, reply) => reply(Err(err.clone())),
        Command::SetTimer(_, reply) => reply(Err(err.clone())),
        Command::CancelTimer(_, _, reply) => reply(Err(err.clone())),
        Command::Poll(_, reply) => reply(Err(err.clone())),
        Command::Record(id, _, reply) => {
            tracing::error!("job {id}: {err}");
            reply(Err(err.clone()))
        }
        Command::Stop => {}
    }
}

/// Runs one command inside the batch's transaction; returns what to answer after the commit
/// (given the commit's error, if it failed).
fn execute(tx: &Tx<'_>, command: Command, now: i64, due_now: &mut bool) -> AfterCommit {
    match command {
        Command::Enqueue(job, reply) => {
            *due_now |= job.delay.is_zero();
            answer(tx.enqueue(&job, now), reply)
        }
        Command::SetTimer(timer, reply) => {
            *due_now |= timer.next_due <= now;
            answer(tx.set_timer(&timer), reply)
        }
        Command::CancelTimer(owner, name, reply) => answer(tx.cancel_timer(&owner, &name), reply),
        Command::Poll(claim, reply) => {
            let polled = tx
                .fire_due_timers(now, claim.timer_attempts)
                .and_then(|_| tx.claim(&claim, now))
                .and_then(|jobs| {
                    let next_due = tx.next_due()?;
                    Ok(Polled { jobs, next_due })
                });
            answer(polled, reply)
        }
        Command::Record(id, outcome, reply) => {
            let recorded = match &outcome {
                Outcome::Done => tx.complete(id),
                Outcome::Retry { at, error } => tx.reschedule(id, *at, error),
                Outcome::Dead { error } => tx.bury(id, error, now),
            };
            if let Err(err) = &recorded {
                tracing::error!("job {id}: {err}");
            }
            answer(recorded, reply)
        }
        Command::Stop => Box::new(|_| {}),
    }
}

fn answer<T: Send + 'static>(result: JournalResult<T>, reply: Reply<T>) -> AfterCommit {
    Box::new(move |commit_error| {
        let result = match (result, commit_error) {
            (Ok(value), None) => Ok(value),
            (Err(err), _) => Err(err),
            (Ok(_), Some(err)) => Err(err.clone()),
        };
        reply(result);
    })
}

/// Frees the leases of worker processes that no longer exist, so their jobs are delivered
/// by someone else at once instead of when the lease runs out.
pub fn release_dead_owners(tx: &Tx<'_>) -> JournalResult<usize> {
    let mut total = 0;
    for owner in tx.lease_owners()? {
        if !process_alive(owner) {
            let freed = tx.release_owner(owner)?;
            if freed > 0 {
                tracing::info!("taking over {freed} job(s) leased by pid {owner}, which is gone");
            }
            total += freed;
        }
    }
    Ok(total)
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

#[cfg(test)]
mod tests {
    use super::LazyJournal;

    /// A new journal opened by several processes' journal threads at the same moment, each
    /// with its checkpointer (two connections each): every one opens. Before
    /// `journal_schema::switch_to_wal` retried, a connection that lost the race to switch the
    /// new file into WAL mode failed with "database is locked" (3 openers without the retry:
    /// at round 52).
    #[test]
    fn journals_opening_a_new_file_together_all_succeed() {
        const ROUNDS: usize = 300;
        const OPENERS: usize = 4;
        let root = tempfile::tempdir().expect("temporary directory");
        for round in 0..ROUNDS {
            let dir = root.path().join(format!("round-{round}"));
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(OPENERS));
            let openers: Vec<_> = (0..OPENERS)
                .map(|_| {
                    let (dir, barrier) = (dir.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        let mut lazy = LazyJournal::new(&dir, true);
                        barrier.wait();
                        let opened = lazy.get(true).map(|journal| journal.is_some());
                        lazy.close();
                        opened
                    })
                })
                .collect();
            for opener in openers {
                let opened = opener.join().expect("opener thread");
                assert!(matches!(opened, Ok(true)), "round {round}: {opened:?}");
            }
        }
    }
}

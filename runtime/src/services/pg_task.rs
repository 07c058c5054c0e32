//! The commands the PostgreSQL store's thread runs: a `Task` does its work inside a burst's
//! transaction and answers its caller once the burst is over.
//!
//! Owns: the `Task` trait, `task` (any work as a closure), and the two tasks a burst can
//! group with others of their kind (`enqueue_task`, `complete_task`: see `pg_batch`). Must
//! not touch: transactions, batching and threads (`pg_thread`), SQL (`pg_sql`, `pg_batch`).

use super::error::{StoreError, StoreResult};
use super::job::NewJob;
use super::pg_batch::Grouped;
use super::pg_sql::PgTx;

/// How the thread answers a caller.
pub type Reply<T> = Box<dyn FnOnce(StoreResult<T>) + Send>;

/// A command for the thread.
pub trait Task: Send {
    /// Runs inside the batch's transaction and keeps its result; whether it succeeded. It
    /// may run twice: alone in a savepoint after another task of its batch failed.
    fn run(&mut self, tx: &mut PgTx<'_, '_>, now: i64) -> bool;
    /// Answers the caller once the batch is over: its result, or the error that ended the
    /// batch (`failure`: the commit, or the connection, failed).
    fn answer(self: Box<Self>, failure: Option<&StoreError>);
    /// Whether a commit of it makes a job due at once (this process's dispatcher is woken).
    fn wakes(&self) -> bool;
    /// What it can share with the other tasks of its burst (one statement for all).
    fn grouped(&mut self) -> Grouped<'_> {
        Grouped::No
    }
    /// Whether it has a result already (a grouped statement gave it one).
    fn settled(&self) -> bool;
}

/// A caller's answer: the task's own error first, then the batch's, then its value.
fn settle<T>(result: Option<StoreResult<T>>, failure: Option<&StoreError>) -> StoreResult<T> {
    match (result, failure) {
        (Some(Err(err)), _) => Err(err),
        (_, Some(err)) => Err(err.clone()),
        (Some(Ok(value)), None) => Ok(value),
        (None, None) => Err(StoreError::Closed),
    }
}

struct TaskOf<T, F> {
    work: F,
    reply: Reply<T>,
    wakes: bool,
    result: Option<StoreResult<T>>,
}

/// A task that runs `work` and answers `reply` after the commit.
pub fn task<T, F>(work: F, reply: Reply<T>, wakes: bool) -> Box<dyn Task>
where
    T: Send + 'static,
    F: FnMut(&mut PgTx<'_, '_>, i64) -> StoreResult<T> + Send + 'static,
{
    Box::new(TaskOf {
        work,
        reply,
        wakes,
        result: None,
    })
}

impl<T, F> Task for TaskOf<T, F>
where
    T: Send + 'static,
    F: FnMut(&mut PgTx<'_, '_>, i64) -> StoreResult<T> + Send + 'static,
{
    fn run(&mut self, tx: &mut PgTx<'_, '_>, now: i64) -> bool {
        let result = (self.work)(tx, now);
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn answer(self: Box<Self>, failure: Option<&StoreError>) {
        (self.reply)(settle(self.result, failure))
    }

    fn wakes(&self) -> bool {
        self.wakes
    }

    fn settled(&self) -> bool {
        self.result.is_some()
    }
}

struct EnqueueTask {
    job: NewJob,
    reply: Reply<i64>,
    result: Option<StoreResult<i64>>,
}

/// Queues `job`; grouped with the burst's other jobs unless its quota must be counted.
pub fn enqueue_task(job: NewJob, reply: Reply<i64>) -> Box<dyn Task> {
    Box::new(EnqueueTask {
        job,
        reply,
        result: None,
    })
}

impl Task for EnqueueTask {
    fn run(&mut self, tx: &mut PgTx<'_, '_>, now: i64) -> bool {
        let result = tx.enqueue(&self.job, now);
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn answer(self: Box<Self>, failure: Option<&StoreError>) {
        (self.reply)(settle(self.result, failure))
    }

    fn wakes(&self) -> bool {
        self.job.delay.is_zero()
    }

    fn grouped(&mut self) -> Grouped<'_> {
        match self.job.quota.limits {
            None => Grouped::Enqueue(&self.job, &mut self.result),
            Some(_) => Grouped::No,
        }
    }

    fn settled(&self) -> bool {
        self.result.is_some()
    }
}

struct CompleteTask {
    id: i64,
    reply: Reply<()>,
    result: Option<StoreResult<()>>,
}

/// Job `id` was delivered: it leaves the store, with the burst's other delivered jobs.
pub fn complete_task(id: i64, reply: Reply<()>) -> Box<dyn Task> {
    Box::new(CompleteTask {
        id,
        reply,
        result: None,
    })
}

impl Task for CompleteTask {
    fn run(&mut self, tx: &mut PgTx<'_, '_>, _now: i64) -> bool {
        let result = tx.complete(self.id);
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn answer(self: Box<Self>, failure: Option<&StoreError>) {
        (self.reply)(settle(self.result, failure))
    }

    fn wakes(&self) -> bool {
        false
    }

    fn grouped(&mut self) -> Grouped<'_> {
        Grouped::Complete(self.id, &mut self.result)
    }

    fn settled(&self) -> bool {
        self.result.is_some()
    }
}

//! Group commit's shared statements in the PostgreSQL store: the enqueues of one burst as one
//! multi-row `INSERT`, its completions as one `DELETE ... WHERE id = ANY($1)`.
//!
//! Owns: `Grouped` (what a task offers to share: a job to insert, or an id to delete, and
//! where its result goes), `run_grouped`, which runs all of a burst's offers in one
//! statement per kind and hands each task its own result (the id of its job), and
//! `enqueue_alone`, which runs a burst of enqueues only as that one statement with no
//! transaction around it. Must not touch: the transaction, the fallback when a statement
//! fails, answering callers (`pg_thread`), the single-row statements (`pg_sql`), claims and
//! quotas (`pg_claim`).
//!
//! Ids: the insert takes each row's id from the table's sequence next to its position in the
//! burst (`WITH ORDINALITY`), so every caller learns the id of its own job whatever order the
//! rows are written in. A job due at once wakes every node with one `pg_notify` per burst.
//! Only jobs without a quota are grouped: a quota is counted row by row under its account's
//! lock (`pg_claim`), so those jobs keep the single-row path.

use postgres::{Client, GenericClient};

use super::error::{StoreError, StoreResult};
use super::job::{encode_headers, stored_size, NewJob};
use super::journal::ms;
use super::pg_sql::{PgCtx, PgTx, Session};

/// The rows of a burst, their ids from the sequence, and the insert; `$11` is `now`. A macro
/// (not a const) so that `concat!` can build both statements below at compile time.
macro_rules! rows_cte {
    () => {
        "WITH rows AS MATERIALIZED (
         SELECT nextval('wsrun_jobs_id_seq'::regclass) AS id, u.*
         FROM unnest($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::BYTEA[], $5::BYTEA[], $6::TEXT[],
                     $7::INT4[], $8::INT8[], $9::TEXT[], $10::INT8[])
             WITH ORDINALITY AS u(method, host, path, headers, body, origin, max_attempts,
                                  run_at, account, size, ord)),
     ins AS (INSERT INTO wsrun_jobs (id, method, host, path, headers, body, origin,
                 max_attempts, created_at, run_at, account, size)
             SELECT id, method, host, path, headers, body, origin, max_attempts, $11, run_at,
                 account, size FROM rows)"
    };
}

/// A burst's insert that wakes every node (a job of it is due at once); each row's position
/// in the burst and its id.
const INSERT_AND_NOTIFY: &str = concat!(
    rows_cte!(),
    " SELECT ord, id FROM rows, pg_notify('wsrun_jobs', '') AS n ORDER BY ord"
);
/// A burst's insert of jobs all due later (no node need wake now).
const INSERT_QUIETLY: &str = concat!(rows_cte!(), " SELECT ord, id FROM rows ORDER BY ord");

/// What a task of a burst offers to share with the others of its kind.
pub enum Grouped<'a> {
    /// Nothing: the task runs its own statements.
    No,
    /// A job to insert (no quota) and where its id goes.
    Enqueue(&'a NewJob, &'a mut Option<StoreResult<i64>>),
    /// A delivered job to delete and where its result goes.
    Complete(i64, &'a mut Option<StoreResult<()>>),
}

/// Runs a burst's offers: one insert for all jobs, one delete for all completions (a kind
/// with a single offer is left to its task, whose own statement is as cheap). On error
/// nothing is handed out and the error is returned: the caller rolls back and runs every
/// task on its own, so one bad row cannot fail the others.
pub fn run_grouped(tx: &mut PgTx<'_, '_>, offers: Vec<Grouped<'_>>, now: i64) -> StoreResult<()> {
    let mut jobs = Vec::new();
    let mut done = Vec::new();
    for offer in offers {
        match offer {
            Grouped::No => {}
            Grouped::Enqueue(job, slot) => jobs.push((job, slot)),
            Grouped::Complete(id, slot) => done.push((id, slot)),
        }
    }
    if jobs.len() > 1 {
        let ids = tx.insert_many(jobs.iter().map(|(job, _)| *job), now)?;
        for ((_, slot), id) in jobs.into_iter().zip(ids) {
            *slot = Some(Ok(id));
        }
    }
    if done.len() > 1 {
        let ids: Vec<i64> = done.iter().map(|(id, _)| *id).collect();
        tx.complete_many(&ids)?;
        for (_, slot) in done {
            *slot = Some(Ok(()));
        }
    }
    Ok(())
}

/// Runs a burst that holds nothing but enqueues without a quota (what a node's clients send)
/// with no transaction around it: its one `INSERT` is atomic by itself, so it commits alone,
/// in one round trip to the database instead of three (`BEGIN`, the insert, `COMMIT`), each
/// of which waits for the database's process to be scheduled when the cores are busy.
/// `None`: the burst holds other tasks (the caller runs it in a transaction). On an error
/// nothing was written and nothing handed out.
pub fn enqueue_alone(
    client: &mut Client,
    session: &mut Session,
    ctx: &PgCtx,
    offers: Vec<Grouped<'_>>,
    now: i64,
) -> Option<StoreResult<()>> {
    let mut jobs = Vec::with_capacity(offers.len());
    for offer in offers {
        match offer {
            Grouped::Enqueue(job, slot) => jobs.push((job, slot)),
            Grouped::No | Grouped::Complete(..) => return None,
        }
    }
    if jobs.is_empty() {
        return None;
    }
    let inserted = insert_rows(client, session, ctx, jobs.iter().map(|(job, _)| *job), now);
    Some(inserted.map(|ids| {
        for ((_, slot), id) in jobs.into_iter().zip(ids) {
            *slot = Some(Ok(id));
        }
    }))
}

/// The columns of a burst's jobs, one array each, in `ROWS`' parameter order.
#[derive(Default)]
struct Columns {
    method: Vec<String>,
    host: Vec<String>,
    path: Vec<String>,
    headers: Vec<Vec<u8>>,
    body: Vec<Vec<u8>>,
    origin: Vec<String>,
    max_attempts: Vec<i32>,
    run_at: Vec<i64>,
    account: Vec<String>,
    size: Vec<i64>,
}

impl Columns {
    fn push(&mut self, job: &NewJob, now: i64) {
        let r = &job.request;
        self.method.push(r.method.clone());
        self.host.push(r.host.clone());
        self.path.push(r.path.clone());
        self.headers.push(encode_headers(&r.headers));
        self.body.push(r.body.clone());
        self.origin.push(job.origin.clone());
        self.max_attempts
            .push(i32::try_from(job.max_attempts).unwrap_or(i32::MAX));
        self.run_at.push(now.saturating_add(ms(job.delay)));
        self.account.push(job.quota.account.clone());
        self.size
            .push(i64::try_from(stored_size(r)).unwrap_or(i64::MAX));
    }
}

/// Inserts `jobs` in one statement on `conn` (notifying once if one is due at once); their
/// ids, in the order given.
fn insert_rows<'j>(
    conn: &mut impl GenericClient,
    session: &mut Session,
    ctx: &PgCtx,
    jobs: impl Iterator<Item = &'j NewJob>,
    now: i64,
) -> StoreResult<Vec<i64>> {
    let mut c = Columns::default();
    for job in jobs {
        c.push(job, now);
    }
    let due_now = c.run_at.iter().any(|at| *at <= now);
    let sql = match due_now {
        true => INSERT_AND_NOTIFY,
        false => INSERT_QUIETLY,
    };
    let statement = session.prepared(conn, ctx, sql)?;
    let rows = conn
        .query(
            &statement,
            &[
                &c.method,
                &c.host,
                &c.path,
                &c.headers,
                &c.body,
                &c.origin,
                &c.max_attempts,
                &c.run_at,
                &c.account,
                &c.size,
                &now,
            ],
        )
        .map_err(|e| ctx.fail(e))?;
    if rows.len() != c.method.len() {
        return Err(StoreError::other(
            format!("job store {}", ctx.store),
            format!("{} rows inserted for {} jobs", rows.len(), c.method.len()),
        ));
    }
    let mut ids = vec![0; c.method.len()];
    for row in &rows {
        let ord: i64 = row.try_get(0).map_err(|e| ctx.fail(e))?;
        let id: i64 = row.try_get(1).map_err(|e| ctx.fail(e))?;
        let slot = usize::try_from(ord - 1).ok().and_then(|i| ids.get_mut(i));
        if let Some(slot) = slot {
            *slot = id;
        }
    }
    Ok(ids)
}

impl PgTx<'_, '_> {
    /// Inserts `jobs` in one statement of this transaction; their ids, in the order given.
    fn insert_many<'j>(
        &mut self,
        jobs: impl Iterator<Item = &'j NewJob>,
        now: i64,
    ) -> StoreResult<Vec<i64>> {
        insert_rows(&mut *self.tx, self.session, self.ctx, jobs, now)
    }

    /// Delivered jobs leave the store, all in one statement.
    fn complete_many(&mut self, ids: &[i64]) -> StoreResult<()> {
        let statement = self.prepared("DELETE FROM wsrun_jobs WHERE id = ANY($1)")?;
        self.tx
            .execute(&statement, &[&ids])
            .map(drop)
            .map_err(|e| self.fail(e))
    }
}

#[cfg(test)]
#[path = "pg_batch_tests.rs"]
mod tests;

//! Shared services: durable jobs and durable timers, one model for Python and WASM.
//!
//! A job is a request (method, host, path, headers, body) to a route of this server, written
//! to an SQLite journal before the caller hears "queued", then delivered in-process through
//! the router at least once, retried with backoff on a 5xx, and moved to a dead-letter table
//! after its last attempt. A durable timer turns into one such job per period, fired by
//! exactly one worker.
//!
//! Owns: `Services` (the value the Python and WASM hosts call: built by start-up code and
//! handed down, one per process, never a global), the choice of store (`open_store`), and the
//! `[[timer]]` tables as stored timers. Must not touch: the router or handlers (delivery goes
//! through the narrow `Deliver` trait in `dispatch`), Python or wasmtime types — those hosts
//! adapt their callers to this API — or any storage detail (behind `JobStore`).
//!
//! Layout: `job` (what a job is, its rules), `error` (store errors by kind), `job_store` (the
//! `JobStore` trait), `store` + `journal_thread` + `journal` (the SQLite store: handle, group
//! commit thread, SQL; `journal_schema`: tables, upgrades, space; `journal_quota`: quotas and
//! fair claims), `pg_store` + `pg_thread` + `pg_sql` (the PostgreSQL store, shared by several
//! nodes: handle, connection thread and listener, SQL; `pg_claim`: `SKIP LOCKED` claims and
//! quotas; `pg_task`: the thread's commands; `pg_batch`: a burst's enqueues and
//! completions in one statement each; `pg_routes`: only jobs of routes this process serves; `pg_schema`: versioned migrations under an advisory lock; `pg_test_server`: a
//! throw-away server for tests), `facade` (the `Services` value and its checks), `startup` (the master's services before
//! the fork), `dispatch`
//! (claiming due jobs and delivering them; `down_log`: its rate-limited log of a store that is down), `admin` (`wsrun jobs`), `job_figures` (the
//! admin listener's read-only look at the journal), `store_suite` (the
//! behaviour tests every store runs).

pub mod admin;
pub mod dispatch;
mod dispatch_faults;
mod down_log;
pub mod error;
mod facade;
pub mod job;
pub mod job_figures;
pub mod job_store;
pub mod journal;
mod journal_quota;
mod journal_schema;
mod journal_thread;
mod pg_batch;
mod pg_claim;
mod pg_routes;
mod pg_schema;
mod pg_sql;
pub mod pg_store;
mod pg_task;
#[cfg(test)]
mod pg_test_server;
mod pg_thread;
mod pg_timers;
mod startup;
pub mod store;
#[cfg(test)]
mod store_suite;
mod timer_sync;

pub use error::{StoreError, StoreResult};
pub use facade::{
    config_timers, open_store, Caller, RouteCheck, Services, TimerRequest, CONFIG_SOURCE,
};
pub use job::{JobRecord, JobRequest, NewJob, Quota, ServiceError, TimerRecord};
pub use job_store::JobStore;
pub use pg_store::PgStore;
pub use startup::{StartupCalls, StartupServices};
pub use store::SqliteStore;

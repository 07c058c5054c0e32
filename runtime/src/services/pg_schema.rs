//! The PostgreSQL store's schema and its versioned migrations.
//!
//! Owns: the `wsrun_*` tables and indexes (one row per job, dead job, timer and live
//! process), the list of migrations (each applied once, in order, recorded in
//! `wsrun_schema_migrations`), and running them under a session `pg_advisory_lock`, so any
//! number of nodes starting together migrate the database exactly once. Must not touch: the
//! statements jobs and timers go through (`pg_sql`, `pg_claim`), connections or threads
//! (`pg_thread`).
//!
//! Times are Unix milliseconds (`BIGINT`), as the SQLite journal keeps them: every node's
//! clock must be kept in step (NTP), as leases and timers compare them across nodes.

use postgres::Client;

/// The key of the advisory lock the migrations run under (any constant: "wsrun" in ASCII).
const MIGRATION_LOCK: i64 = 0x0077_7372_756e;

/// The migrations, in order: version `i + 1` is `MIGRATIONS[i]`. Append only; never change
/// one that has shipped.
const MIGRATIONS: &[&str] = &[
    // 1: jobs, dead jobs, timers, and the processes that hold leases.
    "
CREATE TABLE wsrun_jobs (
    id           BIGSERIAL PRIMARY KEY,
    method       TEXT    NOT NULL,
    host         TEXT    NOT NULL,
    path         TEXT    NOT NULL,
    headers      BYTEA   NOT NULL,
    body         BYTEA   NOT NULL,
    origin       TEXT    NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    created_at   BIGINT  NOT NULL,
    run_at       BIGINT  NOT NULL,
    lease_node   TEXT,
    lease_pid    BIGINT,
    lease_until  BIGINT,
    last_error   TEXT,
    account      TEXT    NOT NULL DEFAULT '',
    size         BIGINT  NOT NULL DEFAULT 0,
    timer        TEXT
);
CREATE INDEX wsrun_jobs_due ON wsrun_jobs (account, run_at, id);
CREATE INDEX wsrun_jobs_free ON wsrun_jobs (run_at) WHERE lease_until IS NULL;
CREATE INDEX wsrun_jobs_lease ON wsrun_jobs (lease_until) WHERE lease_until IS NOT NULL;
CREATE INDEX wsrun_jobs_timer ON wsrun_jobs (timer) WHERE timer IS NOT NULL;
CREATE TABLE wsrun_dead_jobs (
    id           BIGINT  PRIMARY KEY,
    method       TEXT    NOT NULL,
    host         TEXT    NOT NULL,
    path         TEXT    NOT NULL,
    headers      BYTEA   NOT NULL,
    body         BYTEA   NOT NULL,
    origin       TEXT    NOT NULL,
    attempts     INTEGER NOT NULL,
    max_attempts INTEGER NOT NULL,
    created_at   BIGINT  NOT NULL,
    failed_at    BIGINT  NOT NULL,
    last_error   TEXT,
    account      TEXT    NOT NULL DEFAULT '',
    size         BIGINT  NOT NULL DEFAULT 0
);
CREATE INDEX wsrun_dead_jobs_account ON wsrun_dead_jobs (account);
CREATE TABLE wsrun_timers (
    owner    TEXT   NOT NULL DEFAULT '',
    name     TEXT   NOT NULL,
    schedule TEXT   NOT NULL,
    method   TEXT   NOT NULL,
    host     TEXT   NOT NULL,
    path     TEXT   NOT NULL,
    headers  BYTEA  NOT NULL,
    body     BYTEA  NOT NULL,
    source   TEXT   NOT NULL,
    next_due BIGINT NOT NULL,
    account  TEXT   NOT NULL DEFAULT '',
    PRIMARY KEY (owner, name)
);
CREATE INDEX wsrun_timers_due ON wsrun_timers (next_due);
CREATE INDEX wsrun_timers_account ON wsrun_timers (account);
CREATE TABLE wsrun_processes (
    node    TEXT   NOT NULL,
    pid     BIGINT NOT NULL,
    seen_at BIGINT NOT NULL,
    PRIMARY KEY (node, pid)
);
",
    // 2: the route prefixes each process serves (NULL: not known yet, taken as all).
    "ALTER TABLE wsrun_processes ADD COLUMN routes TEXT[];",
];

/// The schema version this wsrun writes.
pub fn current_version() -> i32 {
    i32::try_from(MIGRATIONS.len()).unwrap_or(i32::MAX)
}

/// Brings the database up to `current_version`, under the advisory lock (a node that waits
/// finds the work done). Returns the versions this call applied.
pub fn migrate(client: &mut Client) -> Result<Vec<i32>, postgres::Error> {
    client.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])?;
    let applied = apply_missing(client);
    // Unlocked whatever happened; a broken connection drops the lock by itself.
    let unlocked = client.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK]);
    let applied = applied?;
    unlocked?;
    Ok(applied)
}

fn apply_missing(client: &mut Client) -> Result<Vec<i32>, postgres::Error> {
    // No "already exists, skipping" notice in the log of every connection.
    client.batch_execute("SET client_min_messages TO warning")?;
    client.batch_execute(
        "CREATE TABLE IF NOT EXISTS wsrun_schema_migrations (
             version    INTEGER PRIMARY KEY,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    )?;
    let row = client.query_one(
        "SELECT COALESCE(MAX(version), 0) FROM wsrun_schema_migrations",
        &[],
    )?;
    let have: i32 = row.try_get(0)?;
    let mut applied = Vec::new();
    for (index, sql) in MIGRATIONS.iter().enumerate() {
        let version = i32::try_from(index + 1).unwrap_or(i32::MAX);
        if version <= have {
            continue;
        }
        let mut tx = client.transaction()?;
        tx.batch_execute(sql)?;
        tx.execute(
            "INSERT INTO wsrun_schema_migrations (version) VALUES ($1)",
            &[&version],
        )?;
        tx.commit()?;
        applied.push(version);
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Barrier};

    use postgres::{Client, NoTls};

    use super::{current_version, migrate};
    use crate::services::pg_test_server::TestServer;

    /// Nodes that start together: each connects, waits for the others, then migrates.
    const NODES: usize = 8;

    #[test]
    fn nodes_starting_together_migrate_the_database_exactly_once() {
        let Some(server) = TestServer::start() else {
            return;
        };
        server.create_db("together");
        let url = server.url("together");
        let start = Arc::new(Barrier::new(NODES));
        let nodes: Vec<_> = (0..NODES)
            .map(|_| {
                let (url, start) = (url.clone(), Arc::clone(&start));
                std::thread::spawn(move || {
                    let mut client = Client::connect(&url, NoTls).expect("connect");
                    start.wait();
                    migrate(&mut client).expect("migrate")
                })
            })
            .collect();
        let mut applied: Vec<Vec<i32>> = nodes
            .into_iter()
            .map(|node| node.join().expect("a node's thread"))
            .collect();
        applied.sort();
        let every_version: Vec<i32> = (1..=current_version()).collect();
        let mut expected = vec![Vec::new(); NODES - 1];
        expected.push(every_version.clone());
        assert_eq!(
            applied, expected,
            "one node applies every version, the rest none"
        );

        let mut admin = Client::connect(&url, NoTls).expect("connect");
        let recorded: Vec<i32> = admin
            .query(
                "SELECT version FROM wsrun_schema_migrations ORDER BY version",
                &[],
            )
            .expect("the record of migrations")
            .iter()
            .map(|row| row.get(0))
            .collect();
        assert_eq!(recorded, every_version, "each version recorded once");
        assert!(migrate(&mut admin).expect("migrate again").is_empty());
    }
}

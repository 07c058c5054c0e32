//! The claim's statements against a real PostgreSQL (`pg_test_server`): with a backlog of
//! 20,000 due jobs and no column statistics yet (a new table, before autovacuum's first
//! ANALYZE), each is planned as an index walk on the deliveries connection, never as a scan
//! or a sort of the whole backlog (which made every claim O(backlog): bench/README.md).

use std::time::Duration;

use postgres::{Client, GenericClient, NoTls};

use super::super::job_store::JobStore;
use super::super::pg_sql::{
    FREE_LEASES_OF_PID, FREE_LEASES_OF_STALE_NODES, LEASE_PIDS_OF_NODE, SWEEP_PLANNER,
};
use super::super::pg_test_server::TestServer;
use super::super::pg_thread::DELIVERIES_SESSION;
use super::super::store_suite::job;
use super::super::PgStore;
use super::{due_of_sql, DUE_ACCOUNTS};
use crate::config::PostgresBackend;

const BACKLOG: i64 = 20_000;
/// Jobs in delivery (leased): the oldest, as they are when nodes work through a backlog.
const LEASED: i64 = 96;
const NOW: i64 = 1_800_000_000_000;

/// A migrated database whose job table is empty and never analyzed.
fn migrated_database(server: &TestServer) -> Client {
    server.create_db("claim");
    let backend = PostgresBackend {
        url: server.url("claim"),
        password_file: None,
    };
    let store = PgStore::start(&backend, "claim").expect("open the store");
    store
        .enqueue_blocking(job("/warm", Duration::ZERO, 3))
        .expect("the first call migrates");
    store.shutdown();
    let mut admin = Client::connect(&server.url("claim"), NoTls).expect("connect");
    admin
        .batch_execute(
            "ALTER TABLE wsrun_jobs SET (autovacuum_enabled = off); DELETE FROM wsrun_jobs",
        )
        .expect("empty the table");
    admin
}

/// `LEASED` leased jobs and `BACKLOG` free due ones.
fn fill_backlog(admin: &mut Client) {
    admin
        .batch_execute(&format!(
            "INSERT INTO wsrun_jobs (method, host, path, headers, body, origin, max_attempts,
                                     created_at, run_at, account, lease_node, lease_pid, lease_until)
                 SELECT 'GET', 'h', '/job', '', '', 'o', 3, {NOW}, {NOW} - 100000 + g, '',
                        'n', 1, {NOW} + 60000
                 FROM generate_series(1, {LEASED}) g;
             INSERT INTO wsrun_jobs (method, host, path, headers, body, origin, max_attempts,
                                     created_at, run_at, account)
                 SELECT 'GET', 'h', '/job', '', '', 'o', 3, {NOW}, {NOW} - 50000 + g, ''
                 FROM generate_series(1, {BACKLOG}) g;"
        ))
        .expect("fill the backlog");
}

/// The plan of `sql` as the store runs it: prepared, then executed with `args`, under
/// `plan_cache_mode = mode` (a generic plan or one made for these values).
fn plan(admin: &mut Client, sql: &str, types: &str, args: &str, mode: &str) -> String {
    admin
        .batch_execute(&format!(
            "SET plan_cache_mode = {mode}; DEALLOCATE ALL; PREPARE q({types}) AS {sql}"
        ))
        .expect("prepare");
    explain(admin, "q", args)
}

/// The plan PostgreSQL runs prepared statement `name` with, given `args`.
fn explain(conn: &mut impl GenericClient, name: &str, args: &str) -> String {
    let rows = conn
        .query(&format!("EXPLAIN EXECUTE {name}({args})"), &[])
        .expect("explain");
    let lines: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    lines.join("\n")
}

fn due_of_plan(admin: &mut Client, mode: &str) -> String {
    let args = format!("ARRAY['/'], '', {NOW}, 32");
    plan(
        admin,
        &due_of_sql(),
        "TEXT[], TEXT, BIGINT, BIGINT",
        &args,
        mode,
    )
}

#[test]
fn claims_walk_the_index_without_statistics_instead_of_scanning_the_backlog() {
    let Some(server) = TestServer::start() else {
        return;
    };
    let mut admin = migrated_database(&server);
    fill_backlog(&mut admin);
    let analyzed: Option<i64> = admin
        .query_one(
            "SELECT EXTRACT(EPOCH FROM COALESCE(last_analyze, last_autoanalyze))::BIGINT
             FROM pg_stat_user_tables WHERE relname = 'wsrun_jobs'",
            &[],
        )
        .and_then(|r| r.try_get(0))
        .expect("read the table's statistics state");
    assert_eq!(analyzed, None, "the premise: the table was never analyzed");

    assert_accounts_probe_the_index(&mut admin);

    // Why the deliveries connection changes the planner's settings: without them the
    // planner, expecting a handful of rows, sorts every due job to find the oldest 32.
    let default = due_of_plan(&mut admin, "force_generic_plan");
    assert!(default.contains("Sort"), "{default}");

    admin
        .batch_execute(DELIVERIES_SESSION)
        .expect("the deliveries connection's settings");
    assert_accounts_probe_the_index(&mut admin);
    for mode in ["force_generic_plan", "force_custom_plan"] {
        let due_of = due_of_plan(&mut admin, mode);
        assert!(
            due_of.contains("Index Scan using wsrun_jobs_due"),
            "{mode}:\n{due_of}"
        );
        assert!(!due_of.contains("Sort"), "{mode}:\n{due_of}");
        assert!(!due_of.contains("Bitmap"), "{mode}:\n{due_of}");
    }
}

/// The accounts with due jobs are found by one index probe per account, by the statement's
/// own shape (also on a connection with the default settings).
fn assert_accounts_probe_the_index(admin: &mut Client) {
    for mode in ["force_generic_plan", "force_custom_plan"] {
        let accounts = plan(admin, DUE_ACCOUNTS, "BIGINT", &NOW.to_string(), mode);
        assert!(!accounts.contains("Hash"), "{mode}:\n{accounts}");
        assert!(!accounts.contains("Seq Scan"), "{mode}:\n{accounts}");
        assert!(!accounts.contains("Bitmap"), "{mode}:\n{accounts}");
        assert!(accounts.contains("Limit"), "{mode}:\n{accounts}");
    }
}

/// A completion prepared while the table was nearly empty (its generic plan cached then)
/// and run against a backlog: a sequential scan of every pending job with the default
/// settings, a look-up of the primary key on the deliveries connection.
#[test]
fn completions_planned_on_an_empty_table_look_up_the_key_once_it_fills() {
    let Some(server) = TestServer::start() else {
        return;
    };
    let mut admin = migrated_database(&server);
    let url = server.url("claim");
    let mut default = Client::connect(&url, NoTls).expect("connect");
    let mut deliveries = Client::connect(&url, NoTls).expect("connect");
    deliveries
        .batch_execute(DELIVERIES_SESSION)
        .expect("the deliveries connection's settings");
    for conn in [&mut default, &mut deliveries] {
        conn.batch_execute(
            "SET plan_cache_mode = force_generic_plan;
             PREPARE done(BIGINT[]) AS DELETE FROM wsrun_jobs WHERE id = ANY($1);
             EXECUTE done('{}')",
        )
        .expect("plan the completion on the empty table");
    }
    fill_backlog(&mut admin);
    let ids = "ARRAY[1, 2, 3]::BIGINT[]";
    let before = explain(&mut default, "done", ids);
    assert!(before.contains("Seq Scan"), "{before}");
    let after = explain(&mut deliveries, "done", ids);
    assert!(
        after.contains("Index Scan using wsrun_jobs_pkey"),
        "{after}"
    );
    assert!(!after.contains("Seq Scan"), "{after}");
}

/// The lease sweep every node runs each second reads only the jobs in delivery (the partial
/// index `wsrun_jobs_lease`), not the backlog.
#[test]
fn the_lease_sweep_reads_the_jobs_in_delivery_not_the_backlog() {
    let Some(server) = TestServer::start() else {
        return;
    };
    let mut admin = migrated_database(&server);
    fill_backlog(&mut admin);
    let mut tx = admin.transaction().expect("begin");
    tx.batch_execute(SWEEP_PLANNER)
        .expect("the sweep's settings");
    for (sql, types, args) in [
        (
            FREE_LEASES_OF_STALE_NODES,
            "TEXT, BIGINT",
            format!("'n', {NOW}"),
        ),
        (LEASE_PIDS_OF_NODE, "TEXT", "'n'".to_string()),
        (FREE_LEASES_OF_PID, "TEXT, BIGINT", "'n', 1".to_string()),
    ] {
        tx.batch_execute(&format!("DEALLOCATE ALL; PREPARE q({types}) AS {sql}"))
            .expect("prepare");
        let plan = explain(&mut tx, "q", &args);
        assert!(plan.contains("wsrun_jobs_lease"), "{sql}:\n{plan}");
        assert!(!plan.contains("Seq Scan on wsrun_jobs "), "{sql}:\n{plan}");
    }
}

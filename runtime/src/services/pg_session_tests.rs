//! The settings every connection of the PostgreSQL store runs with (`connection_config`),
//! against a real PostgreSQL (`pg_test_server`): a statement timeout, no JIT compilation,
//! and the URL's own `options` after those (so they win).

use std::time::Duration;

use postgres::{Client, NoTls};

use super::super::job_store::JobStore;
use super::super::pg_sql::{FORGET_PROCESSES, SWEEP_PLANNER};
use super::super::pg_test_server::TestServer;
use super::super::store_suite::job;
use super::{connection_config, PgStore};
use crate::config::PostgresBackend;

fn backend(url: String) -> PostgresBackend {
    PostgresBackend {
        url,
        password_file: None,
    }
}

/// A connection made as the store makes its own.
fn store_connection(url: &str) -> Client {
    let (config, _shown) = connection_config(&backend(url.to_string())).expect("the config");
    config.connect(NoTls).expect("connect")
}

fn show(conn: &mut Client, setting: &str) -> String {
    conn.query_one(&format!("SHOW {setting}"), &[])
        .and_then(|row| row.try_get(0))
        .expect("show")
}

#[test]
fn every_connection_has_a_statement_timeout_and_no_jit() {
    let Some(server) = TestServer::start() else {
        return;
    };
    server.create_db("session");
    let mut conn = store_connection(&server.url("session"));
    assert_eq!(show(&mut conn, "statement_timeout"), "5s");
    assert_eq!(show(&mut conn, "jit"), "off");
    assert_eq!(show(&mut conn, "application_name"), "wsrun");
}

#[test]
fn the_urls_own_options_come_after_the_defaults_and_win() {
    let Some(server) = TestServer::start() else {
        return;
    };
    server.create_db("session");
    let own = "options=-c%20statement_timeout%3D1500%20-c%20work_mem%3D8MB";
    let mut conn = store_connection(&format!("{}?{own}", server.url("session")));
    assert_eq!(show(&mut conn, "statement_timeout"), "1500ms");
    assert_eq!(show(&mut conn, "work_mem"), "8MB");
    assert_eq!(
        show(&mut conn, "jit"),
        "off",
        "the defaults the URL leaves alone stay"
    );
    let mut conn = store_connection(&format!("{}?options=-c%20jit%3Don", server.url("session")));
    assert_eq!(
        show(&mut conn, "jit"),
        "on",
        "an operator may turn it back on"
    );
}

/// The housekeeping's statement that took 22-120 ms a second (bench/README.md): under the
/// sweep's planner settings its plan cost passes `jit_above_cost`, and with JIT on, LLVM
/// compiled it on every run. Here the threshold is 0 on both connections so that the plain
/// one (the control) compiles wherever this PostgreSQL has JIT at all, and the store's
/// never does, whatever a plan costs.
#[test]
fn the_housekeeping_is_never_jit_compiled() {
    let Some(server) = TestServer::start() else {
        return;
    };
    server.create_db("session");
    let url = server.url("session");
    let store = PgStore::start(&backend(url.clone()), "jit").expect("open the store");
    store
        .enqueue_blocking(job("/warm", Duration::ZERO, 3))
        .expect("the first call migrates");
    store.shutdown();

    let mut plain = Client::connect(&url, NoTls).expect("connect");
    let available: bool = plain
        .query_one("SELECT pg_jit_available()", &[])
        .and_then(|row| row.try_get(0))
        .expect("ask whether JIT is available");
    let control = forget_plan(&mut plain);
    assert_eq!(control.contains("JIT:"), available, "{control}");

    let mut conn = store_connection(&url);
    let plan = forget_plan(&mut conn);
    assert!(!plan.contains("JIT:"), "{plan}");
}

/// `FORGET_PROCESSES` as the housekeeping runs it, executed (in a transaction rolled back),
/// with every JIT threshold at 0.
fn forget_plan(conn: &mut Client) -> String {
    let mut tx = conn.transaction().expect("begin");
    tx.batch_execute(SWEEP_PLANNER)
        .expect("the sweep's settings");
    tx.batch_execute(&format!(
        "SET LOCAL jit_above_cost = 0; SET LOCAL jit_inline_above_cost = 0;
         SET LOCAL jit_optimize_above_cost = 0; PREPARE forget(BIGINT) AS {FORGET_PROCESSES}"
    ))
    .expect("prepare");
    let rows = tx
        .query("EXPLAIN (ANALYZE) EXECUTE forget(0)", &[])
        .expect("explain");
    let lines: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    lines.join("\n")
}

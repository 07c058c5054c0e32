//! Group commit against a real PostgreSQL (`pg_test_server`): calls sent together share
//! commits, and a row the database refuses fails alone.

use std::time::Duration;

use postgres::{Client, NoTls};

use super::super::error::StoreResult;
use super::super::job_store::JobStore;
use super::super::pg_test_server::TestServer;
use super::super::store_suite::{block_on, job};
use super::super::PgStore;
use crate::config::PostgresBackend;

fn open(server: &TestServer, db: &str) -> PgStore {
    server.create_db(db);
    let backend = PostgresBackend {
        url: server.url(db),
        password_file: None,
    };
    PgStore::start(&backend, "batch").expect("open the store")
}

/// Enqueues a job to each path, all calls sent before any is awaited.
fn enqueue_together(store: &PgStore, paths: &[String]) -> Vec<StoreResult<i64>> {
    let sent: Vec<_> = paths
        .iter()
        .map(|p| store.enqueue(job(p, Duration::ZERO, 3)))
        .collect();
    block_on(async {
        let mut out = Vec::new();
        for call in sent {
            out.push(call.await);
        }
        out
    })
}

/// The transactions that wrote the jobs whose path starts with `prefix`.
fn writers(admin: &mut Client, prefix: &str) -> i64 {
    admin
        .query_one(
            "SELECT COUNT(DISTINCT xmin::TEXT) FROM wsrun_jobs WHERE path LIKE $1 || '%'",
            &[&prefix],
        )
        .and_then(|row| row.try_get(0))
        .expect("count the writing transactions")
}

#[test]
fn a_burst_shares_commits_and_a_refused_row_fails_alone() {
    let Some(server) = TestServer::start() else {
        return;
    };
    let store = open(&server, "batch");
    store
        .enqueue_blocking(job("/warm", Duration::ZERO, 3))
        .expect("the first call migrates");
    let mut admin = Client::connect(&server.url("batch"), NoTls).expect("connect");
    admin
        .batch_execute("ALTER TABLE wsrun_jobs ADD CONSTRAINT no_poison CHECK (path <> '/poison')")
        .expect("add a constraint the database enforces");

    let clean: Vec<String> = (0..200).map(|i| format!("/g/{i}")).collect();
    let results = enqueue_together(&store, &clean);
    for (path, result) in clean.iter().zip(&results) {
        let id = *result.as_ref().expect("a clean job is queued");
        let (_, record) = store.show(id).expect("show").expect("the job exists");
        assert_eq!(&record.request.path, path, "job {id} is its caller's own");
    }
    let commits = writers(&mut admin, "/g/");
    assert!(
        commits < 50,
        "200 calls sent together took {commits} commits"
    );

    let mixed: Vec<String> = (0..50)
        .map(|i| match i {
            17 => "/poison".to_string(),
            _ => format!("/m/{i}"),
        })
        .collect();
    let results = enqueue_together(&store, &mixed);
    for (path, result) in mixed.iter().zip(&results) {
        match path.as_str() {
            "/poison" => {
                let err = result.as_ref().expect_err("the refused row fails");
                assert!(err.to_string().contains("no_poison"), "{err}");
            }
            _ => {
                let id = *result.as_ref().expect("the others are queued");
                let (_, record) = store.show(id).expect("show").expect("the job exists");
                assert_eq!(&record.request.path, path, "job {id} is its caller's own");
            }
        }
    }
    store.shutdown();
}

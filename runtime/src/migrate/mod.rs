//! Safe migration: shadow traffic (a second handler sees a copy of the requests and its
//! answers are compared with the primary's) and canaries (a second handler serves a share of
//! the requests and is rolled back by itself when it fails more).
//!
//! Owns, one concept per file: `mirror` (whether a request is mirrored, the in-flight
//! bound), `tee` (the copy of the primary's body), `compare` (the comparison rules),
//! `latency` (the log-bucket histogram), `store` (the SQLite file and its writer thread),
//! `report` (`wsrun migrate report|show`), `canary` (the split and the shared rollback
//! window). Must not touch: routing or running handlers (`server::migrating` and
//! `server::shadow` drive these pieces, on the request path and the worker's shadow thread) or
//! reading configuration (`config::toml_migrate`).

pub mod canary;
pub mod compare;
pub mod latency;
pub mod mirror;
pub mod report;
pub mod store;
pub mod tee;

pub use report::main;

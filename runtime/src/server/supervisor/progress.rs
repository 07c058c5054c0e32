//! Where a reload's rolling restart stands, as a value.
//!
//! Owns: [`Rolling`] (the next index, the new worker being waited for, the fork back-off),
//! [`Progress`] (what a step came to) and [`READY_TIMEOUT`]. Must not touch: the steps
//! themselves (`rolling`) or processes.

use std::time::{Duration, Instant};

use libc::pid_t;

/// How long a new worker may take to be ready (its apps imported, WASM compiled or loaded
/// from the cache) before the reload is abandoned.
pub(super) const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Progress of a rolling restart.
#[derive(Debug)]
pub(super) struct Rolling {
    /// Next index to replace.
    pub(super) next: usize,
    /// The new worker of the current index, until it is ready.
    pub(super) waiting: Option<Waiting>,
    /// Do not fork before this (back-off after a fork failure).
    pub(super) not_before: Instant,
    pub(super) fork_failures: u32,
}

#[derive(Debug)]
pub(super) struct Waiting {
    pub(super) new: pid_t,
    pub(super) index: usize,
    pub(super) deadline: Instant,
}

/// What a step of the rolling restart came to.
pub(super) enum Progress {
    Going,
    Done,
    Failed(String),
}

impl Rolling {
    pub(super) fn new() -> Rolling {
        Rolling {
            next: 0,
            waiting: None,
            not_before: Instant::now(),
            fork_failures: 0,
        }
    }
}

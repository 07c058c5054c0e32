//! What a connection's two loops (`inline_h1`'s and hyper's in `connection`) share.
//!
//! Owns: `ConnectionState`: who the client is, the worker's context, the drain signal and the
//! connection's clocks and timer, handed from one loop to the other with the connection. Must
//! not touch: sockets, requests or what either loop does with these.

use std::rc::Rc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::context::WorkerContext;
use super::guard::HeadClock;
use super::idle_clock::{ConnectionTimer, IdleClock};
use super::peer::Peer;

/// What both connection loops share: who the client is, the worker, the drain signal and the
/// connection's clocks.
pub struct ConnectionState {
    pub peer: Peer,
    pub ctx: Rc<WorkerContext>,
    pub draining: watch::Receiver<bool>,
    pub head_clock: HeadClock,
    pub clock: Rc<IdleClock>,
    pub timer: ConnectionTimer,
}

impl ConnectionState {
    /// How long the request whose head completed last took, until `end` (`None`: now): the
    /// metrics' latency, from the guard's head clock, so no clock is read for the start.
    pub fn elapsed(&self, end: Option<Instant>) -> Duration {
        request_time(&self.head_clock, end)
    }
}

/// See `ConnectionState::elapsed`.
pub fn request_time(head_clock: &HeadClock, end: Option<Instant>) -> Duration {
    match head_clock.last_head_started() {
        Some(start) => end
            .unwrap_or_else(Instant::now)
            .saturating_duration_since(start),
        None => Duration::ZERO,
    }
}

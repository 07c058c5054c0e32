//! What a connection's two loops (`inline_h1`'s and hyper's in `connection`) share.
//!
//! Owns: `ConnectionState`: who the client is, the worker's context, the drain signal and the
//! connection's clocks and timer, handed from one loop to the other with the connection. Must
//! not touch: sockets, requests or what either loop does with these.

use std::rc::Rc;

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

//! The master's listeners: one set per worker index, inherited across a reload where they can
//! be.
//!
//! Owns: deciding, per worker index and configured address, whether the listener is the one
//! the previous master image handed over (same index, same address: the very socket, so its
//! accept queue and the workers still accepting from it carry on) or a new one (`bind`), and
//! registering each for the next handover. Inherited listeners of an address or index the new
//! configuration no longer has are closed when the `Inherited` set is dropped (the old workers
//! keep their own copies until they exit). Must not touch: how a socket is made (`listener`)
//! or the handover's format (`crate::handover`).

use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd;

use super::listener;
use crate::handover::{listener_name, Inherited, Outgoing};

/// One index's listeners with their actual addresses.
pub type IndexListeners = Vec<(TcpListener, SocketAddr)>;

/// Whether `addr` was handed over (by index 0's listener): a bind check would fail on it.
pub fn inherited(inherited: &Inherited, addr: &SocketAddr) -> bool {
    inherited.has(&listener_name(0, addr))
}

/// The listeners of `workers` indexes on `addrs`, each taken from `inherited` or bound, and
/// registered in `outgoing` for the next reload. The error names the address.
pub fn take_or_bind(
    workers: usize,
    addrs: &[SocketAddr],
    inherited: &mut Inherited,
    outgoing: &mut Outgoing,
) -> Result<Vec<Option<IndexListeners>>, String> {
    let mut per_index = Vec::with_capacity(workers);
    for index in 0..workers {
        let mut mine = Vec::with_capacity(addrs.len());
        for addr in addrs {
            let name = listener_name(index, addr);
            let socket = match inherited.take(&name) {
                Some(fd) => TcpListener::from(fd),
                None => listener::bind_reuseport(*addr, listener::LISTEN_BACKLOG)
                    .map_err(|e| format!("cannot listen on {addr}: {e}"))?,
            };
            let local = socket.local_addr().unwrap_or(*addr);
            outgoing.register(name, socket.as_raw_fd());
            mine.push((socket, local));
        }
        per_index.push(Some(mine));
    }
    Ok(per_index)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handover::Handover;

    #[test]
    fn same_address_is_inherited_new_is_bound_removed_is_closed() {
        let any: SocketAddr = "127.0.0.1:0".parse().expect("addr");
        let mut first_out = Outgoing::default();
        let first =
            take_or_bind(2, &[any], &mut Inherited::default(), &mut first_out).expect("bind");
        let kept = first[0].as_ref().expect("index 0")[0].1;
        // Hand over duplicates of the listeners, as an exec would keep them.
        let mut handover = Handover::default();
        for (name, fd) in first_out.fds() {
            // SAFETY: dup of a descriptor this test owns (`first` keeps it open).
            handover.fds.insert(name.clone(), unsafe { libc::dup(*fd) });
        }
        // SAFETY: every number was just dup'ed and is owned by nothing else.
        let mut inherited = unsafe { Inherited::adopt(&handover) };
        let mut out = Outgoing::default();
        let second = take_or_bind(1, &[any], &mut inherited, &mut out).expect("take");
        let socket = &second[0].as_ref().expect("index 0")[0];
        assert_eq!(socket.1, kept, "index 0's socket is the inherited one");
        assert!(
            inherited.has(&listener_name(1, &any)),
            "index 1 is left over"
        );
        assert_eq!(out.fds().len(), 1);
    }
}

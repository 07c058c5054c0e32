//! The master's listeners: one set per worker index, inherited across a reload where they can
//! be, and never closed while their address is configured.
//!
//! Owns: deciding, per worker index and configured address, whether the listener is the one
//! the previous master image handed over (same index, same address: the very socket, so its
//! accept queue and the workers still accepting from it carry on) or a new one (`bind`), and
//! registering each for the next handover. A listener whose index a reload removed (fewer
//! workers) is *retired*, not closed: closing it would reset every connection waiting in its
//! accept queue. It is steered out of the address's group (`reuseport_steer`), lent to worker
//! `index % workers` to empty its queue, handed over again, and is index `index`'s listener
//! once more if the workers grow back. Inherited listeners of an address the new
//! configuration no longer has are closed when the `Inherited` set is dropped (the old workers
//! keep their own copies until they exit). Must not touch: how a socket is made (`listener`),
//! the steering program (`reuseport_steer`) or the handover's format (`crate::handover`).

use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd;

use super::{listener, reuseport_steer};
use crate::handover::{listener_name, Inherited, Outgoing};

/// One listener a worker accepts from.
pub struct IndexListener {
    pub socket: TcpListener,
    /// The actual address (port 0 resolved).
    pub addr: SocketAddr,
    /// `Some(index)` for a retired index's listener lent to this worker: it gets no new
    /// connections, only those that were already waiting when the workers shrank.
    pub retired: Option<usize>,
}

/// One index's listeners.
pub type IndexListeners = Vec<IndexListener>;

/// Whether `addr` was handed over (by index 0's listener): a bind check would fail on it.
pub fn inherited(inherited: &Inherited, addr: &SocketAddr) -> bool {
    inherited.has(&listener_name(0, addr))
}

/// The listeners of `workers` indexes on `addrs`, each taken from `inherited` or bound, with
/// the retired ones lent out, all registered in `outgoing` for the next reload, and each
/// address's group steered to its first `workers` listeners. The error names the address.
pub fn take_or_bind(
    workers: usize,
    addrs: &[SocketAddr],
    inherited: &mut Inherited,
    outgoing: &mut Outgoing,
) -> Result<Vec<Option<IndexListeners>>, String> {
    let workers = workers.max(1);
    let mut per_index: Vec<IndexListeners> = (0..workers).map(|_| Vec::new()).collect();
    for addr in addrs {
        for (index, mine) in per_index.iter_mut().enumerate() {
            let name = listener_name(index, addr);
            let socket = match inherited.take(&name) {
                Some(fd) => TcpListener::from(fd),
                None => listener::bind_reuseport(*addr, listener::LISTEN_BACKLOG)
                    .map_err(|e| format!("cannot listen on {addr}: {e}"))?,
            };
            outgoing.register(name, socket.as_raw_fd());
            let local = socket.local_addr().unwrap_or(*addr);
            mine.push(IndexListener {
                socket,
                addr: local,
                retired: None,
            });
        }
        lend_retired(addr, inherited, outgoing, &mut per_index);
        let first = per_index[0].last().map(|l| &l.socket);
        if let Some(Err(err)) = first.map(|s| reuseport_steer::steer_to_first(s, *addr, workers)) {
            tracing::warn!(
                "{addr}: cannot steer new connections away from retired listeners ({err}); \
                 they stay served, but the workers lent them get more connections"
            );
        }
    }
    Ok(per_index.into_iter().map(Some).collect())
}

/// Takes the inherited listeners of `addr` past the last index (left by a reload to fewer
/// workers) and lends each to worker `index % workers`.
fn lend_retired(
    addr: &SocketAddr,
    inherited: &mut Inherited,
    outgoing: &mut Outgoing,
    per_index: &mut [IndexListeners],
) {
    let workers = per_index.len();
    for index in workers.. {
        let name = listener_name(index, addr);
        let Some(fd) = inherited.take(&name) else {
            return;
        };
        let socket = TcpListener::from(fd);
        outgoing.register(name, socket.as_raw_fd());
        let local = socket.local_addr().unwrap_or(*addr);
        per_index[index % workers].push(IndexListener {
            socket,
            addr: local,
            retired: Some(index),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handover::Handover;

    /// What an exec'd image would inherit: duplicates of every registered listener.
    fn handed_over(out: &Outgoing) -> Inherited {
        let mut handover = Handover::default();
        for (name, fd) in out.fds() {
            // SAFETY: dup of a descriptor the test owns (the caller keeps it open).
            handover.fds.insert(name.clone(), unsafe { libc::dup(*fd) });
        }
        // SAFETY: every number was just dup'ed and is owned by nothing else.
        unsafe { Inherited::adopt(&handover) }
    }

    fn shape(per_index: &[Option<IndexListeners>]) -> Vec<Vec<Option<usize>>> {
        per_index
            .iter()
            .map(|l| l.iter().flatten().map(|l| l.retired).collect())
            .collect()
    }

    #[test]
    fn same_address_is_inherited_new_is_bound_removed_is_closed() {
        let any: SocketAddr = "127.0.0.1:0".parse().expect("addr");
        let mut first_out = Outgoing::default();
        let first =
            take_or_bind(2, &[any], &mut Inherited::default(), &mut first_out).expect("bind");
        let kept = first[0].as_ref().expect("index 0")[0].addr;
        let mut inherited = handed_over(&first_out);
        let other: SocketAddr = "127.0.0.2:0".parse().expect("addr");
        let mut out = Outgoing::default();
        let second = take_or_bind(2, &[other], &mut inherited, &mut out).expect("bind new");
        assert_ne!(second[0].as_ref().expect("index 0")[0].addr, kept);
        assert!(
            inherited.has(&listener_name(0, &any)),
            "the old address is left over"
        );
        assert_eq!(out.fds().len(), 2);
        let mut inherited = handed_over(&first_out);
        let third = take_or_bind(2, &[any], &mut inherited, &mut out).expect("take");
        assert_eq!(
            third[0].as_ref().expect("index 0")[0].addr,
            kept,
            "the inherited one"
        );
    }

    #[test]
    fn fewer_workers_retire_listeners_and_more_take_them_back() {
        // A fixed port: steering applies to a shared group only.
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("probe");
        let addr = probe.local_addr().expect("port");
        drop(probe);
        let mut out3 = Outgoing::default();
        let three = take_or_bind(3, &[addr], &mut Inherited::default(), &mut out3).expect("bind");
        assert_eq!(shape(&three), vec![vec![None], vec![None], vec![None]]);
        let mut out1 = Outgoing::default();
        let one = take_or_bind(1, &[addr], &mut handed_over(&out3), &mut out1).expect("shrink");
        assert_eq!(shape(&one), vec![vec![None, Some(1), Some(2)]]);
        assert_eq!(out1.fds().len(), 3, "retired listeners are handed on");
        // New connections reach index 0's own listener only, never a retired one.
        let mine = one[0].as_ref().expect("index 0");
        let clients: Vec<_> = (0..20)
            .map(|_| std::net::TcpStream::connect(addr).expect("connect"))
            .collect();
        let mut counts = vec![0; mine.len()];
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while counts.iter().sum::<usize>() < 20 && std::time::Instant::now() < deadline {
            for (count, l) in counts.iter_mut().zip(mine) {
                *count += std::iter::from_fn(|| l.socket.accept().ok()).count();
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        assert_eq!(counts, vec![20, 0, 0]);
        drop(clients);
        let mut out2 = Outgoing::default();
        let two = take_or_bind(2, &[addr], &mut handed_over(&out1), &mut out2).expect("grow");
        assert_eq!(shape(&two), vec![vec![None, Some(2)], vec![None]]);
        // Keep every image's copies open, as the master and old workers would.
        drop((three, one, two));
    }
}

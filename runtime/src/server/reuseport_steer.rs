//! Steering of one address's `SO_REUSEPORT` group: new connections go only to the listeners
//! of the current worker indexes, never to a retired one.
//!
//! The kernel keeps the listeners of one address in a group, in the order they started
//! listening, and picks one per new connection. The master binds index 0, 1, 2, ... in that
//! order and never closes a listener while the address is configured (a listener whose
//! index a reload removed stays open as a *retired* listener, see `listener_set`), so the
//! group's first `count` places are always the listeners of indexes `0..count`. A classic
//! BPF program attached with `SO_ATTACH_REUSEPORT_CBPF` returns the place to use: a hash of
//! the client's address and port, modulo `count`. A retired listener thus receives nothing
//! new; what was already in its accept queue is accepted by the worker it is lent to.
//!
//! Without this a listener closed on a shrinking reload resets every connection waiting in
//! its queue (Linux's `tcp_migrate_req` would move them, but it is off by default and a
//! host-wide setting).
//!
//! Owns: the program and its attachment. Must not touch: how sockets are made
//! (`listener`) or which listeners exist (`listener_set`).

use std::io;
use std::net::{SocketAddr, TcpListener};

/// `SO_ATTACH_REUSEPORT_CBPF` (asm-generic/socket.h; not exported by `libc` for Linux).
#[cfg(target_os = "linux")]
const SO_ATTACH_REUSEPORT_CBPF: libc::c_int = 51;

/// Offsets at or above this (as a signed number) are relative to the network header.
const NET: u32 = libc::SKF_NET_OFF as u32;
/// Fibonacci hashing's multiplier: spreads neighbouring ports over the high bits.
const GOLDEN: u32 = 0x9E37_79B1;

/// Directs new connections of the group `listener` belongs to among its first `count`
/// listeners. A no-op for a port-0 address (each index has its own port, a group of one).
///
/// # Errors
///
/// The `setsockopt` failure (an old kernel, another OS); the group then keeps the kernel's
/// own choice among all its listeners, and retired ones keep receiving their share.
pub fn steer_to_first(listener: &TcpListener, addr: SocketAddr, count: usize) -> io::Result<()> {
    if addr.port() == 0 || count == 0 {
        return Ok(());
    }
    let count = u32::try_from(count).map_err(|_| io::Error::other("too many workers"))?;
    attach(listener, &program(addr.is_ipv4(), count))
}

/// The program: `hash(source address, source port) % count`, read from the SYN's headers.
/// The same client address and port always get the same listener (as the kernel's own
/// hash), so a retransmitted SYN or a SYN-cookie ACK reaches the listener of its SYN.
fn program(ipv4: bool, count: u32) -> Vec<libc::sock_filter> {
    use libc::{
        BPF_A, BPF_ABS, BPF_ALU, BPF_B, BPF_H, BPF_IND, BPF_K, BPF_LD, BPF_LDX, BPF_MISC, BPF_MOD,
        BPF_MSH, BPF_MUL, BPF_RET, BPF_RSH, BPF_TAX, BPF_W, BPF_X, BPF_XOR,
    };
    let mut code = Vec::with_capacity(9);
    if ipv4 {
        // X = IPv4 header length (4 * IHL); A = the TCP source port right after it.
        code.push(op(BPF_LDX | BPF_B | BPF_MSH, NET));
        code.push(op(BPF_LD | BPF_H | BPF_IND, NET));
    } else {
        // The TCP header right after the fixed 40-byte IPv6 header.
        code.push(op(BPF_LD | BPF_H | BPF_ABS, NET.wrapping_add(40)));
    }
    code.push(op(BPF_MISC | BPF_TAX, 0));
    // The source address's last 32 bits (IPv4: at 12; IPv6: bytes 20..24 of the header).
    let source = if ipv4 { 12 } else { 20 };
    code.push(op(BPF_LD | BPF_W | BPF_ABS, NET.wrapping_add(source)));
    code.push(op(BPF_ALU | BPF_XOR | BPF_X, 0));
    code.push(op(BPF_ALU | BPF_MUL | BPF_K, GOLDEN));
    code.push(op(BPF_ALU | BPF_RSH | BPF_K, 16));
    code.push(op(BPF_ALU | BPF_MOD | BPF_K, count));
    code.push(op(BPF_RET | BPF_A, 0));
    code
}

fn op(code: u32, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        // Every opcode above fits in 16 bits (BPF's instruction format).
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    }
}

#[cfg(target_os = "linux")]
fn attach(listener: &TcpListener, code: &[libc::sock_filter]) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let len = u16::try_from(code.len()).map_err(|_| io::Error::other("program too long"))?;
    let prog = libc::sock_fprog {
        len,
        filter: code.as_ptr().cast_mut(),
    };
    // SAFETY: `prog` points at `code`, alive for the call; the kernel copies the program.
    let rc = unsafe {
        libc::setsockopt(
            listener.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_ATTACH_REUSEPORT_CBPF,
            std::ptr::from_ref(&prog).cast(),
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn attach(_listener: &TcpListener, _code: &[libc::sock_filter]) -> io::Result<()> {
    Err(io::Error::other("SO_ATTACH_REUSEPORT_CBPF is Linux-only"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::listener::bind_reuseport;
    use std::net::TcpStream;
    use std::time::{Duration, Instant};

    /// `n` listeners of one group on a free port of `ip`, bound in index order.
    fn group(ip: &str, n: usize) -> (Vec<TcpListener>, SocketAddr) {
        let first = bind_reuseport(format!("{ip}:0").parse().expect("addr"), 64).expect("bind");
        let addr = first.local_addr().expect("local");
        let mut all = vec![first];
        for _ in 1..n {
            all.push(bind_reuseport(addr, 64).expect("bind same port"));
        }
        (all, addr)
    }

    /// Opens `n` connections to `addr` and returns how many each listener received.
    fn spread(listeners: &[TcpListener], addr: SocketAddr, n: usize) -> Vec<usize> {
        let clients: Vec<TcpStream> = (0..n)
            .map(|_| TcpStream::connect(addr).expect("connect"))
            .collect();
        let mut counts = vec![0; listeners.len()];
        let deadline = Instant::now() + Duration::from_secs(5);
        while counts.iter().sum::<usize>() < n && Instant::now() < deadline {
            for (i, listener) in listeners.iter().enumerate() {
                while listener.accept().is_ok() {
                    counts[i] += 1;
                }
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        drop(clients);
        counts
    }

    fn check(ip: &str) {
        let (listeners, addr) = group(ip, 3);
        steer_to_first(&listeners[0], addr, 1).expect("attach");
        assert_eq!(spread(&listeners, addr, 30), vec![30, 0, 0], "count 1");
        // Re-attaching replaces the group's program (a reload with more workers).
        steer_to_first(&listeners[2], addr, 2).expect("attach again");
        let counts = spread(&listeners, addr, 60);
        assert_eq!(counts.iter().sum::<usize>(), 60, "{counts:?}");
        assert_eq!(
            counts[2], 0,
            "the retired listener got new connections: {counts:?}"
        );
        assert!(counts[0] >= 10 && counts[1] >= 10, "uneven: {counts:?}");
    }

    #[test]
    fn ipv4_connections_reach_only_the_first_listeners() {
        check("127.0.0.1");
    }

    #[test]
    fn ipv6_connections_reach_only_the_first_listeners() {
        check("[::1]");
    }
}

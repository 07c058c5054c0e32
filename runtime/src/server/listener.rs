//! Listening sockets for worker processes.
//!
//! Every worker process binds its *own* listener on the same address with `SO_REUSEPORT`, so
//! the kernel spreads incoming connections across workers without a shared accept queue.
//! Because `SO_REUSEPORT` lets any process of the same user share the port, the supervisor
//! calls [`check_bindable`] once, before forking, to report a port that some other program
//! already holds (or that we may not bind) as a clear start-up error instead of a silent
//! split of traffic.
//!
//! The master binds one set of listeners per worker index (`bind_all`) and keeps them for its
//! whole life; each worker generation of that index accepts from them (see `server::run`).
//!
//! This module only creates sockets; `TCP_NODELAY` and what else the accepted connections
//! share are the worker's (`listener_traits`).

use std::io;
use std::net::{SocketAddr, TcpListener};

/// Accept queue length of every listener.
pub const LISTEN_BACKLOG: i32 = 1024;

/// One listener per address (see [`bind_reuseport`]), each with its actual address (port 0
/// resolved); the error names the address.
pub fn bind_all(addrs: &[SocketAddr]) -> Result<Vec<(TcpListener, SocketAddr)>, String> {
    addrs
        .iter()
        .map(|addr| {
            let listener = bind_reuseport(*addr, LISTEN_BACKLOG)
                .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
            let local = listener.local_addr().unwrap_or(*addr);
            Ok((listener, local))
        })
        .collect()
}

use socket2::{Domain, Protocol, Socket, Type};

/// Creates a nonblocking TCP listener on `addr` that other workers can bind too.
///
/// The socket has `SO_REUSEADDR` and `SO_REUSEPORT` set, `IPV6_V6ONLY` for IPv6 addresses
/// (so `[::]` and `0.0.0.0` are independent listeners), is close-on-exec, nonblocking (ready
/// for `tokio::net::TcpListener::from_std`), and is listening with the given `backlog`.
///
/// # Errors
///
/// Any failing socket call. The error keeps the OS error kind (for example
/// [`io::ErrorKind::AddrInUse`]) and its message names the address.
pub fn bind_reuseport(addr: SocketAddr, backlog: i32) -> io::Result<TcpListener> {
    let socket = new_socket(addr)?;
    socket
        .set_reuse_port(true)
        .map_err(|e| context(e, "set SO_REUSEPORT for", addr))?;
    socket
        .set_nonblocking(true)
        .map_err(|e| context(e, "set nonblocking mode for", addr))?;
    socket
        .bind(&addr.into())
        .map_err(|e| context(e, "bind", addr))?;
    socket
        .listen(backlog)
        .map_err(|e| context(e, "listen on", addr))?;
    Ok(socket.into())
}

/// Checks, before any worker starts, that `addr` can be bound by this process.
///
/// Binds a throw-away socket *without* `SO_REUSEPORT` (but with `SO_REUSEADDR`, so sockets
/// in `TIME_WAIT` from a previous run do not count) and without listening, then closes it.
/// A port held by another program, even one using `SO_REUSEPORT` itself, therefore fails
/// here with [`io::ErrorKind::AddrInUse`], and a privileged port fails with
/// [`io::ErrorKind::PermissionDenied`].
///
/// Call it before the workers bind: once our own `SO_REUSEPORT` listeners exist this check
/// fails on them too. With port 0 it always succeeds (each worker would get its own port).
///
/// # Errors
///
/// The failing socket call, with the OS error kind kept and a message naming the address.
pub fn check_bindable(addr: SocketAddr) -> io::Result<()> {
    let socket = new_socket(addr)?;
    socket
        .bind(&addr.into())
        .map_err(|e| context(e, "bind", addr))?;
    drop(socket);
    Ok(())
}

/// A TCP socket for `addr`'s family with `SO_REUSEADDR` and, for IPv6, `IPV6_V6ONLY`.
fn new_socket(addr: SocketAddr) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
        .map_err(|e| context(e, "create a socket for", addr))?;
    socket
        .set_reuse_address(true)
        .map_err(|e| context(e, "set SO_REUSEADDR for", addr))?;
    if addr.is_ipv6() {
        socket
            .set_only_v6(true)
            .map_err(|e| context(e, "set IPV6_V6ONLY for", addr))?;
    }
    Ok(socket)
}

/// Wraps `err` with what we were doing, keeping its kind so callers can match on it.
fn context(err: io::Error, action: &str, addr: SocketAddr) -> io::Error {
    let hint = match err.kind() {
        io::ErrorKind::AddrInUse => " (is another program listening there?)",
        io::ErrorKind::PermissionDenied => " (ports below 1024 need privileges)",
        _ => "",
    };
    io::Error::new(err.kind(), format!("cannot {action} {addr}: {err}{hint}"))
}

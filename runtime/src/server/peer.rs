//! Where a request comes from and arrives: the two socket addresses a handler may read.
//!
//! Owns: `Peer` (the two addresses, and whether the connection is TLS) and finding the local
//! IP of a connection accepted behind a wildcard bind when a request needs it (`local_ip`).
//! Must not touch: anything else — it sits below every server file that needs it.

use std::net::{IpAddr, SocketAddr};
use std::os::fd::RawFd;

/// Where a connection comes from and arrives.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    pub remote: SocketAddr,
    /// The local address; behind a wildcard bind (`0.0.0.0`, `[::]`) its IP is the
    /// unspecified one until asked for (`local_ip`). The port is always the connection's.
    pub local: SocketAddr,
    /// The connection's socket, when its local IP is still to be asked of the kernel.
    pub socket: Option<RawFd>,
    /// The connection is TLS (`wsgi.url_scheme` is `https`).
    pub tls: bool,
}

impl Peer {
    /// The IP the client connected to. Behind a wildcard bind only a request without a Host
    /// needs it (`SERVER_NAME`), so `getsockname` runs then instead of for every connection.
    /// The socket is the connection's while its request is served; should it have closed
    /// (and its number gone to another connection), the peer's address tells, and the
    /// listener's unspecified IP is the answer.
    pub fn local_ip(&self) -> IpAddr {
        let Some(socket) = self.socket else {
            return self.local.ip();
        };
        match (local_addr(socket), peer_addr(socket)) {
            (Some(local), Some(remote)) if remote == self.remote => local.ip(),
            _ => self.local.ip(),
        }
    }
}

/// `getsockname` of `socket`.
fn local_addr(socket: RawFd) -> Option<SocketAddr> {
    socket_name(socket, libc::getsockname)
}

/// `getpeername` of `socket`.
fn peer_addr(socket: RawFd) -> Option<SocketAddr> {
    socket_name(socket, libc::getpeername)
}

/// The address `call` (`getsockname` or `getpeername`) gives for `socket`.
fn socket_name(
    socket: RawFd,
    call: unsafe extern "C" fn(RawFd, *mut libc::sockaddr, *mut libc::socklen_t) -> i32,
) -> Option<SocketAddr> {
    // SAFETY: both calls write at most `len` bytes into the storage, which is that long; on
    // a closed or non-socket descriptor they fail with EBADF or ENOTSOCK.
    let (_, addr) = unsafe {
        socket2::SockAddr::try_init(|storage, len| {
            if call(socket, storage.cast(), len) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        })
    }
    .ok()?;
    addr.as_socket()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, TcpListener, TcpStream};
    use std::os::fd::AsRawFd;

    #[test]
    fn the_local_ip_is_asked_of_the_socket_while_it_is_the_peers() {
        let listener = TcpListener::bind("0.0.0.0:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let _client = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        let (stream, remote) = listener.accept().expect("accept");
        let wildcard = SocketAddr::from((Ipv4Addr::UNSPECIFIED, port));
        let peer = Peer {
            remote,
            local: wildcard,
            socket: Some(stream.as_raw_fd()),
            tls: false,
        };
        assert_eq!(peer.local_ip(), IpAddr::from(Ipv4Addr::LOCALHOST));

        // Another connection's socket (as when the number was reused): not this peer's.
        let stranger = SocketAddr::from((Ipv4Addr::LOCALHOST, remote.port().wrapping_add(1)));
        let mistaken = Peer {
            remote: stranger,
            ..peer
        };
        assert_eq!(mistaken.local_ip(), wildcard.ip());

        drop(stream);
        let no_socket = Peer {
            socket: Some(-1),
            ..peer
        };
        assert_eq!(no_socket.local_ip(), wildcard.ip());
        let known = Peer {
            socket: None,
            local: SocketAddr::from((Ipv4Addr::new(10, 1, 2, 3), port)),
            ..peer
        };
        assert_eq!(known.local_ip(), IpAddr::from(Ipv4Addr::new(10, 1, 2, 3)));
    }
}

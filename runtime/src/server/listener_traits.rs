//! What the connections accepted from one listener have in common, found once per listener
//! instead of by a system call per connection.
//!
//! Owns: each accepted socket's `TCP_NODELAY` (inherited from the listener on Linux, set per
//! connection elsewhere) and its local address (the listener's own; behind a wildcard bind
//! its IP is left for `Peer::local_ip` to ask, only when a request needs it). Must not touch:
//! accepting, the connection's protocol, or how listeners are bound (`listener`).

use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};

use tokio::net::{TcpListener, TcpStream};

/// What every connection accepted from one listener shares.
#[derive(Clone, Copy)]
pub struct ListenerTraits {
    /// The listener's address: every accepted connection's local address when it is bound to
    /// one address; behind a wildcard bind (`0.0.0.0`, `[::]`), the port only.
    addr: SocketAddr,
    /// Accepted sockets start with `TCP_NODELAY` already set (Linux copies it from the
    /// listener); elsewhere each connection sets it.
    nodelay_inherited: bool,
}

impl ListenerTraits {
    /// Sets `TCP_NODELAY` on `listener` (harmless on a listening socket; the workers of an
    /// index share it) so that accepted sockets inherit it.
    pub fn of(listener: &TcpListener, addr: SocketAddr) -> Self {
        let nodelay_set = socket2::SockRef::from(listener)
            .set_tcp_nodelay(true)
            .is_ok();
        ListenerTraits {
            addr,
            nodelay_inherited: nodelay_set && cfg!(target_os = "linux"),
        }
    }

    /// `TCP_NODELAY` set on `stream` if it did not inherit it; then the connection's local
    /// address, and its socket when the IP of that address is still to be asked for (a
    /// wildcard bind: see `Peer::local_ip`).
    pub fn prepare(self, stream: &TcpStream) -> (SocketAddr, Option<RawFd>) {
        if !self.nodelay_inherited {
            let _ = stream.set_nodelay(true);
        }
        let ask = self.addr.ip().is_unspecified();
        (self.addr, ask.then(|| stream.as_raw_fd()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::peer::Peer;

    async fn accept_one(bind: &str) -> (SocketAddr, Peer, TcpStream) {
        let listener = TcpListener::bind(bind).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let traits = ListenerTraits::of(&listener, addr);
        let client = TcpStream::connect(("127.0.0.1", addr.port()))
            .await
            .expect("connect");
        let (stream, remote) = listener.accept().await.expect("accept");
        assert_eq!(remote, client.local_addr().expect("client addr"));
        let (local, socket) = traits.prepare(&stream);
        let peer = Peer {
            remote,
            local,
            socket,
            tls: false,
        };
        assert!(
            stream.nodelay().expect("nodelay"),
            "accepted without TCP_NODELAY"
        );
        (addr, peer, stream)
    }

    #[tokio::test]
    async fn a_bound_address_is_every_connections_local_address() {
        let (addr, peer, stream) = accept_one("127.0.0.1:0").await;
        assert_eq!(peer.local, addr);
        assert_eq!(peer.local, stream.local_addr().expect("getsockname"));
        assert_eq!(peer.socket, None, "nothing left to ask the kernel");
    }

    #[tokio::test]
    async fn behind_a_wildcard_bind_the_ip_is_asked_for_when_needed() {
        let (addr, peer, stream) = accept_one("0.0.0.0:0").await;
        assert!(addr.ip().is_unspecified());
        assert_eq!(peer.local, addr, "the port is known, the IP is not yet");
        assert_eq!(peer.socket, Some(stream.as_raw_fd()));
        let asked = stream.local_addr().expect("getsockname");
        assert_eq!(peer.local_ip(), asked.ip());
        assert_eq!(asked.ip().to_string(), "127.0.0.1");
    }
}

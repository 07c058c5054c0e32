//! What the connections accepted from one listener have in common, found once per listener
//! instead of by a system call per connection.
//!
//! Owns: each accepted socket's `TCP_NODELAY` (inherited from the listener on Linux, set per
//! connection elsewhere) and its local address (the listener's own when it is bound to one
//! address; `getsockname` only behind a wildcard bind). Must not touch: accepting, the
//! connection's protocol, or how listeners are bound (`listener`).

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};

/// What every connection accepted from one listener shares, found once instead of by a
/// system call a connection.
#[derive(Clone, Copy)]
pub struct ListenerTraits {
    /// Every accepted connection's local address when the listener is bound to one address;
    /// `None` for a wildcard bind (`0.0.0.0`, `[::]`), where `getsockname` tells which.
    local: Option<SocketAddr>,
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
            local: (!addr.ip().is_unspecified()).then_some(addr),
            nodelay_inherited: nodelay_set && cfg!(target_os = "linux"),
        }
    }

    /// The connection's local address, and `TCP_NODELAY` set on it if it did not inherit it.
    pub fn prepare(self, stream: &TcpStream, remote: SocketAddr) -> SocketAddr {
        if !self.nodelay_inherited {
            let _ = stream.set_nodelay(true);
        }
        match self.local {
            Some(local) => local,
            None => stream.local_addr().unwrap_or(remote),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn accept_one(bind: &str) -> (ListenerTraits, SocketAddr, SocketAddr, TcpStream) {
        let listener = TcpListener::bind(bind).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let traits = ListenerTraits::of(&listener, addr);
        let port = addr.port();
        let client = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        let (stream, remote) = listener.accept().await.expect("accept");
        assert_eq!(remote, client.local_addr().expect("client addr"));
        let local = traits.prepare(&stream, remote);
        (traits, addr, local, stream)
    }

    #[tokio::test]
    async fn a_bound_address_is_every_connections_local_address() {
        let (traits, addr, local, stream) = accept_one("127.0.0.1:0").await;
        assert_eq!(traits.local, Some(addr));
        assert_eq!(local, stream.local_addr().expect("getsockname"));
        assert!(
            stream.nodelay().expect("nodelay"),
            "accepted without TCP_NODELAY"
        );
    }

    #[tokio::test]
    async fn a_wildcard_bind_asks_each_connection() {
        let (traits, addr, local, stream) = accept_one("0.0.0.0:0").await;
        assert_eq!(traits.local, None);
        assert!(addr.ip().is_unspecified());
        assert_eq!(local, stream.local_addr().expect("getsockname"));
        assert_eq!(local.ip().to_string(), "127.0.0.1");
        assert!(
            stream.nodelay().expect("nodelay"),
            "accepted without TCP_NODELAY"
        );
    }
}

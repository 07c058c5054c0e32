//! Where a request comes from and arrives: the two socket addresses a handler may read.
//!
//! Owns: `Peer` (the two addresses, and whether the connection is TLS). Must not touch: anything else — it sits below every server file that needs it.

use std::net::SocketAddr;

/// Where a connection comes from and arrives.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    pub remote: SocketAddr,
    pub local: SocketAddr,
    /// The connection is TLS (`wsgi.url_scheme` is `https`).
    pub tls: bool,
}

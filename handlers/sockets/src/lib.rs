//! `sockets`: tries what a guest must not be able to do on wsrun, through Rust's `std::net`
//! (which `wasm32-wasip2` maps onto `wasi:sockets`), and answers one line per attempt:
//!
//! - `?tcp=HOST:PORT`: `tcp connected` or `tcp error: <reason>`;
//! - `?udp=HOST:PORT`: binds an ephemeral UDP socket and sends one datagram:
//!   `udp sent` or `udp error: <reason>`;
//! - `?lookup=NAME`: `lookup <n> address(es)` or `lookup error: <reason>`.
//!
//! Exists for the README's promise that guests have no sockets (TCP, UDP and name lookup
//! are off); the tests check the answers and that nothing reached their listeners.

use std::net::{TcpStream, ToSocketAddrs, UdpSocket};

use wsrun_sdk::{Error, Handler, Request, Response};

struct Sockets;

impl Handler for Sockets {
    fn handle(request: Request) -> Result<Response, Error> {
        let mut lines = String::new();
        for (name, value) in request.query_pairs() {
            let line = match name.as_str() {
                "tcp" => tcp(&value),
                "udp" => udp(&value),
                "lookup" => lookup(&value),
                _ => continue,
            };
            lines.push_str(&line);
            lines.push('\n');
        }
        Ok(Response::text(200, lines))
    }
}

fn tcp(addr: &str) -> String {
    match TcpStream::connect(addr) {
        Ok(_) => "tcp connected".to_string(),
        Err(err) => format!("tcp error: {err}"),
    }
}

fn udp(addr: &str) -> String {
    let sent = UdpSocket::bind("0.0.0.0:0").and_then(|socket| socket.send_to(b"guest", addr));
    match sent {
        Ok(_) => "udp sent".to_string(),
        Err(err) => format!("udp error: {err}"),
    }
}

fn lookup(name: &str) -> String {
    match (name, 80).to_socket_addrs() {
        Ok(found) => format!("lookup {} address(es)", found.count()),
        Err(err) => format!("lookup error: {err}"),
    }
}

wsrun_sdk::export!(Sockets);

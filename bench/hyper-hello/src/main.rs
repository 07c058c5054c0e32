//! `hyper-hello`: the raw-hyper ceiling for `bench/core.sh`.
//!
//! One single-threaded (`current_thread`) tokio runtime, one accept loop, and hyper's HTTP/1
//! `serve_connection` with keep-alive on every connection. `GET` (any path) answers
//! `Hello, world!` as `text/plain`; `POST` echoes the request body back. Nothing else — no
//! Python, no routing, no logging — so the gap between this and `wsrun` is the cost of
//! everything wsrun adds on top of hyper.
//!
//! Usage: `hyper-hello --bind 127.0.0.1:PORT` (default `127.0.0.1:8080`).

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

const HELLO: &[u8] = b"Hello, world!";

async fn handle(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, body) = match *req.method() {
        Method::GET | Method::HEAD => (StatusCode::OK, Bytes::from_static(HELLO)),
        Method::POST => match req.into_body().collect().await {
            Ok(collected) => (StatusCode::OK, collected.to_bytes()),
            Err(_) => (StatusCode::BAD_REQUEST, Bytes::from_static(b"bad body")),
        },
        _ => (StatusCode::METHOD_NOT_ALLOWED, Bytes::new()),
    };
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    Ok(resp)
}

fn parse_bind() -> Result<SocketAddr, String> {
    let mut args = std::env::args().skip(1);
    let mut bind = String::from("127.0.0.1:8080");
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--bind" => bind = args.next().ok_or("--bind needs ADDR:PORT")?,
            s if s.starts_with("--bind=") => bind = s["--bind=".len()..].to_string(),
            "-h" | "--help" => {
                println!("usage: hyper-hello [--bind 127.0.0.1:PORT]");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument: {other}")),
        }
    }
    bind.parse().map_err(|e| format!("bad --bind {bind}: {e}"))
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let addr = match parse_bind() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("hyper-hello: {e}");
            std::process::exit(2);
        }
    };
    let listener = match TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("hyper-hello: cannot bind {addr}: {e}");
            std::process::exit(1);
        }
    };
    eprintln!("hyper-hello listening on http://{addr}");
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // EMFILE and friends: keep serving the connections we have.
                eprintln!("hyper-hello: accept: {e}");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let conn = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service_fn(handle));
            let _ = conn.await;
        });
    }
}

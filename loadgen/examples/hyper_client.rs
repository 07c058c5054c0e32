//! `hyper_client URL CONNECTIONS SECONDS`: the same saturate loop as `wsrun bench` (one
//! current-thread runtime, one task per keep-alive connection, GET as fast as it goes) built on
//! hyper's `client::conn::http1` instead of the hand-written `http1` module. `bench/loadgen.sh`
//! runs it beside `wrk -t1` and `wsrun bench` to show which client keeps up; prints
//! `requests N req/s R`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1;
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, connections, seconds] = args.as_slice() else {
        return Err("usage: hyper_client http://HOST:PORT/PATH CONNECTIONS SECONDS".into());
    };
    let rest = url.strip_prefix("http://").ok_or("only http:// URLs")?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path }.to_string();
    let authority = authority.to_string();
    let connections: usize = connections.parse().map_err(|_| "bad CONNECTIONS")?;
    let duration = Duration::from_secs_f64(seconds.parse().map_err(|_| "bad SECONDS")?);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    runtime.block_on(async {
        let end = start + duration;
        let tasks: Vec<_> = (0..connections)
            .map(|_| {
                let (authority, path, done) = (authority.clone(), path.clone(), Arc::clone(&done));
                tokio::spawn(async move { connection(&authority, &path, end, &done).await })
            })
            .collect();
        for task in tasks {
            let _ = task.await;
        }
    });
    let n = done.load(Ordering::Relaxed);
    let secs = start.elapsed().as_secs_f64().min(duration.as_secs_f64());
    println!("requests {n} req/s {:.1}", n as f64 / secs);
    Ok(())
}

async fn connection(authority: &str, path: &str, end: Instant, done: &AtomicU64) -> Option<()> {
    let stream = TcpStream::connect(authority).await.ok()?;
    stream.set_nodelay(true).ok()?;
    let (mut sender, conn) = http1::handshake(TokioIo::new(stream)).await.ok()?;
    tokio::spawn(conn);
    while Instant::now() < end {
        let request = Request::get(path)
            .header("host", authority)
            .body(Empty::<Bytes>::new())
            .ok()?;
        let response = sender.send_request(request).await.ok()?;
        response.into_body().collect().await.ok()?;
        done.fetch_add(1, Ordering::Relaxed);
    }
    Some(())
}

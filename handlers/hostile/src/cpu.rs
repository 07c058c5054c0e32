//! Compute attacks (see lib.rs).
//!
//! - `spin&ms=N`: a busy loop for N ms (default: forever), then 200 `spun N ms`; or
//!   `spin&work=N`: N million rounds of the loop (a fixed amount of compute, whatever share of
//!   the CPU the guest gets), then 200 `worked N`. It writes `hostile: spinning` to stderr
//!   first, so a test can wait until it runs.
//! - `stream-then-spin&bytes=N`: starts a streamed (chunked) 200, writes N bytes (default
//!   1000) of `x`, flushes, writes `hostile: streamed N bytes, spinning` to stderr, then spins
//!   forever without finishing the body; with `&length=L` the response announces
//!   `content-length: L` instead of being chunked.
//!
//! The clock is `wasi:clocks/monotonic-clock` (through `std::time::Instant`); a guest that is
//! paused by the host does not stop it, so `ms` is wall time while running.

use std::hint::black_box;
use std::io::Write;
use std::time::{Duration, Instant};

use wsrun_sdk::{Error, Headers, Request, Responder, Response};

use crate::param;

pub fn run(attack: &str, request: &Request, responder: Responder) -> Result<(), Error> {
    match attack {
        "spin" if request.query_param("work").is_some() => {
            let rounds = param(request, "work", 0);
            eprintln!("hostile: spinning");
            work(rounds);
            responder.send(Response::text(200, format!("worked {rounds}\n")))
        }
        "spin" => {
            let ms = param(request, "ms", u64::MAX);
            eprintln!("hostile: spinning");
            spin(ms);
            responder.send(Response::text(200, format!("spun {ms} ms\n")))
        }
        _ => stream_then_spin(request, responder),
    }
}

fn stream_then_spin(request: &Request, responder: Responder) -> Result<(), Error> {
    let bytes = param(request, "bytes", 1000);
    let mut headers = Headers::new().with("content-type", "text/plain");
    if let Some(length) = request.query_param("length") {
        headers.insert("content-length", length);
    }
    let mut out = responder.start(200, headers)?;
    let chunk = vec![b'x'; 1024];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        out.write_all(&chunk[..n])?;
        left -= n as u64;
    }
    out.flush()?;
    eprintln!("hostile: streamed {bytes} bytes, spinning");
    spin(u64::MAX);
    out.finish()
}

/// Computes for `ms` milliseconds (checking the clock every million rounds).
fn spin(ms: u64) {
    let end = Instant::now().checked_add(Duration::from_millis(ms));
    let mut counter: u64 = 0;
    loop {
        for _ in 0..1_000_000 {
            counter = black_box(counter.wrapping_add(1));
        }
        if end.is_some_and(|end| Instant::now() >= end) {
            return;
        }
    }
}

/// Computes `millions` million rounds of the loop.
fn work(millions: u64) {
    let mut counter: u64 = 0;
    for _ in 0..millions {
        for _ in 0..1_000_000 {
            counter = black_box(counter.wrapping_add(1));
        }
    }
}

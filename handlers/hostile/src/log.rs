//! The guest-log attack (see lib.rs): `log&bytes=N&lines=L&width=W`.
//!
//! Writes `bytes` bytes (default 1 MiB) of newlines to stdout and as many to stderr, then
//! `lines` lines (default 0) of `width` bytes (default 10,000) of `y` to each. Answers how
//! much it wrote; every write succeeds whatever the host keeps (the host drops the excess).

use std::io::Write;

use wsrun_sdk::{Request, Response};

use crate::param;

pub fn run(request: &Request) -> Response {
    let bytes = param(request, "bytes", 1 << 20) as usize;
    let lines = param(request, "lines", 0);
    let width = param(request, "width", 10_000) as usize;
    let newlines = vec![b'\n'; 64 * 1024];
    let mut long = vec![b'y'; width];
    long.push(b'\n');
    let mut written = 0u64;
    let mut failed = None;
    for out in [
        &mut std::io::stdout() as &mut dyn Write,
        &mut std::io::stderr(),
    ] {
        let result = newline_flood(out, &newlines, bytes)
            .and_then(|()| (0..lines).try_for_each(|_| out.write_all(&long)))
            .and_then(|()| out.flush());
        match result {
            Ok(()) => written += bytes as u64 + lines * long.len() as u64,
            Err(err) => failed = Some(err.to_string()),
        }
    }
    match failed {
        None => Response::text(200, format!("wrote {written} bytes\n")),
        Some(err) => Response::text(
            200,
            format!("wrote {written} bytes; a write failed: {err}\n"),
        ),
    }
}

fn newline_flood(out: &mut dyn Write, newlines: &[u8], bytes: usize) -> std::io::Result<()> {
    let mut left = bytes;
    while left > 0 {
        let n = left.min(newlines.len());
        out.write_all(&newlines[..n])?;
        left -= n;
    }
    Ok(())
}

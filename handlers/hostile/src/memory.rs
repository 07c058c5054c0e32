//! Attacks on host memory outside linear memory: resources the host allocates for the guest.
//!
//! - `fields&n=N&size=S`: N `wasi:http` `Fields` resources, each holding one value of S bytes
//!   (the host keeps them: each costs S plus its map, outside the guest's `memory` limit);
//! - `resources&n=N`: N empty `Fields` (fills the instance's resource table);
//! - `outgoing-bodies&n=N&size=S`: N outgoing responses whose bodies are written S bytes each
//!   and never sent (the host buffers what was written);
//! - `stack&depth=N`: recursion N frames deep (a guest stack overflow must trap only itself);
//! - `grow&mib=N&hold_ms=M`: N MiB of linear memory, touched, held for M ms (shared budgets).
//!
//! Each answers how many it made and, when the host refused one, which call failed and why.
//! Owns nothing else; everything is dropped when the instance ends.

use wsrun_sdk::wasi::http::types::{Fields, OutgoingResponse};
use wsrun_sdk::{Request, Response};

use crate::param;

pub fn run(attack: &str, request: &Request) -> Response {
    let n = param(request, "n", 1000);
    let size = param(request, "size", 120 * 1024) as usize;
    let outcome = match attack {
        "fields" => fields(n, size),
        "resources" => fields(n, 0),
        "grow" => grow(param(request, "mib", 8), param(request, "hold_ms", 0)),
        "stack" => format!("depth {}\n", recurse(param(request, "depth", 1 << 20))),
        _ => outgoing_bodies(n, size),
    };
    Response::text(200, outcome)
}

/// Makes up to `n` fields of one `size`-byte value each, keeping them all alive.
fn fields(n: u64, size: usize) -> String {
    let value = vec![b'a'; size];
    let mut kept = Vec::new();
    for i in 0..n {
        let entries = if size == 0 {
            Vec::new()
        } else {
            vec![("x-fill".to_string(), value.clone())]
        };
        match Fields::from_list(&entries) {
            Ok(fields) => kept.push(fields),
            Err(err) => return format!("made {i} fields; refused: {err:?}\n"),
        }
    }
    format!("made {} fields\n", kept.len())
}

/// Makes up to `n` outgoing responses and writes `size` bytes into each body, never sending them.
fn outgoing_bodies(n: u64, size: usize) -> String {
    let chunk = vec![b'b'; 64 * 1024];
    let mut kept = Vec::new();
    for i in 0..n {
        let response = OutgoingResponse::new(Fields::new());
        let Ok(body) = response.body() else {
            return format!("made {i} bodies; refused: body taken\n");
        };
        let Ok(stream) = body.write() else {
            return format!("made {i} bodies; refused: stream taken\n");
        };
        let mut written = 0;
        while written < size {
            match stream.check_write() {
                Ok(0) => break,
                Ok(room) => {
                    let len = (room as usize).min(chunk.len()).min(size - written);
                    if let Err(err) = stream.write(&chunk[..len]) {
                        return format!("made {i} bodies; write refused: {err:?}\n");
                    }
                    written += len;
                }
                Err(err) => return format!("made {i} bodies; check_write refused: {err:?}\n"),
            }
        }
        // Children before parents: the stream, then the body, then the response.
        kept.push((stream, body, response));
    }
    format!("made {} bodies\n", kept.len())
}

/// Recurses `depth` frames, each with a buffer the optimiser cannot remove.
fn recurse(depth: u64) -> u64 {
    let frame = std::hint::black_box([depth; 32]);
    if depth == 0 {
        return frame[0];
    }
    recurse(depth - 1).wrapping_add(std::hint::black_box(frame)[31] & 1)
}

/// Allocates and touches `mib` MiB, then holds it for `hold_ms` (an allocation the host
/// refuses aborts the guest: the client then gets the host's 500 naming the limit).
fn grow(mib: u64, hold_ms: u64) -> String {
    let mut held = Vec::new();
    for _ in 0..mib {
        held.push(vec![1u8; 1 << 20]);
    }
    if hold_ms > 0 {
        eprintln!("hostile: holding {mib} MiB");
    }
    std::thread::sleep(std::time::Duration::from_millis(hold_ms));
    format!("held {} MiB\n", std::hint::black_box(&held).len())
}

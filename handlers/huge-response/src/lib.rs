//! `huge-response`: streams `?mb=N` MiB (default 100) of a checkable pattern.
//!
//! Byte `i` of the body (counted over the whole response) is `i % 251`, so a
//! client can verify every byte. `content-length` is set up front and the body
//! is written in 64 KiB slices of one precomputed pattern buffer, so memory use
//! stays flat whatever `N` is. A bad `mb` gets `400`.

use std::io::Write;

use wsrun_sdk::{Error, Headers, Request, Responder, Response, StreamingHandler};

const MIB: u64 = 1024 * 1024;
const DEFAULT_MB: u64 = 100;
/// Upper bound on `mb` (1 TiB), only to keep `mb * MIB` from overflowing.
const MAX_MB: u64 = 1024 * 1024;
const PERIOD: usize = 251;
const SLICE: usize = 64 * 1024;

struct HugeResponse;

impl StreamingHandler for HugeResponse {
    fn handle_streaming(request: Request, responder: Responder) -> Result<(), Error> {
        let megabytes = match request.query_param("mb") {
            None => DEFAULT_MB,
            Some(text) => match text.parse::<u64>() {
                Ok(n) if n <= MAX_MB => n,
                _ => {
                    let msg = format!("bad mb parameter {text:?}: want 0..={MAX_MB}\n");
                    return responder.send(Response::text(400, msg));
                }
            },
        };
        let total = megabytes * MIB;
        let headers = Headers::new()
            .with("content-type", "application/octet-stream")
            .with("content-length", total.to_string());
        let mut out = responder.start(200, headers)?;

        // pattern[j] == j % PERIOD, long enough to cut SLICE bytes at any phase.
        let pattern: Vec<u8> = (0..SLICE + PERIOD).map(|j| (j % PERIOD) as u8).collect();
        let mut sent: u64 = 0;
        while sent < total {
            let phase = (sent % PERIOD as u64) as usize;
            let len = (total - sent).min(SLICE as u64) as usize;
            out.write_all(&pattern[phase..phase + len])?;
            sent += len as u64;
        }
        out.finish()
    }
}

wsrun_sdk::export!(HugeResponse);

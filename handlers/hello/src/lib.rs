//! `hello`: answers every request with `200 text/plain` and a fixed greeting.
//!
//! The greeting carries the marker `wsrun-rev:0000`, which occurs exactly once
//! in the built `.wasm`: hot-reload tests patch those four digits in place to
//! make a "new version" without rebuilding. Keep the marker in this one string
//! literal and nowhere else in this crate.

use wsrun_sdk::{Error, Handler, Request, Response};

/// The whole response body, marker included.
const GREETING: &str = "Hello from WebAssembly! (wsrun-rev:0000)\n";

struct Hello;

impl Handler for Hello {
    fn handle(_request: Request) -> Result<Response, Error> {
        Ok(Response::text(200, GREETING))
    }
}

wsrun_sdk::export!(Hello);

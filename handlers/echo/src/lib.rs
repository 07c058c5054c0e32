//! `echo`: streams the request body back, chunk by chunk.
//!
//! Status 200; `content-type` copied from the request (default
//! `application/octet-stream`); `x-echo-method`, `x-echo-path` (path and query)
//! and `x-echo-script-name` (the route prefix, empty if none) describe the
//! request. The body is never held whole: one chunk (at most 64 KiB) at a time.

use std::io::Write;

use wsrun_sdk::{Error, Headers, Request, Responder, StreamingHandler};

struct Echo;

impl StreamingHandler for Echo {
    fn handle_streaming(mut request: Request, responder: Responder) -> Result<(), Error> {
        let content_type = request
            .headers()
            .get_raw("content-type")
            .map_or_else(|| b"application/octet-stream".to_vec(), <[u8]>::to_vec);
        let headers = Headers::new()
            .with("content-type", content_type)
            .with("x-echo-method", request.method().as_str())
            .with("x-echo-path", request.path_with_query())
            .with("x-echo-script-name", request.script_name());
        let mut out = responder.start(200, headers)?;
        while let Some(chunk) = request.body().read_chunk()? {
            out.write_all(&chunk)?;
        }
        out.finish()
    }
}

wsrun_sdk::export!(Echo);

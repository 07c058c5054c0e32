//! `bench-suite`: the WebAssembly variant of the Fapws3 benchmark suite that
//! `wsrun bench --suite` runs (examples/bench-suite/, mounted at `/wasm`).
//!
//! The same routes as the Python app, answered the same way:
//! - `/hello`: one complete `hello world!!` body (content-length known);
//! - `/iterhello`: `hello worlds!!` streamed in three writes (chunked);
//! - `/long`: the suite's 154 kB `long.txt`, embedded at build time;
//! - `/getenv`: what the guest knows of its versions, as `key: value` lines;
//! - `/post`: reads the whole request body and answers its size.
//!
//! Owns only its answers; it keeps no state between requests.

use std::io::Write;

use wsrun_sdk::{Error, Headers, Request, Responder, Response, StreamingHandler};

/// The same file the Python `/long` route sends.
const LONG: &[u8] = include_bytes!("../../../examples/bench-suite/long.txt");

struct Suite;

impl StreamingHandler for Suite {
    fn handle_streaming(mut request: Request, responder: Responder) -> Result<(), Error> {
        let path = request.path().to_string();
        let route = path
            .strip_prefix(request.script_name())
            .unwrap_or(&path)
            .to_string();
        match route.as_str() {
            "/hello" => responder.send(html(b"hello world!!".to_vec())),
            "/iterhello" => {
                let headers = Headers::new().with("content-type", "text/html");
                let mut body = responder.start(200, headers)?;
                for part in ["hello", " ", "worlds!!"] {
                    body.write_all(part.as_bytes())?;
                    body.flush()?;
                }
                body.finish()
            }
            "/long" => responder.send(html(LONG.to_vec())),
            "/getenv" => responder.send(Response::text(200, getenv())),
            "/post" => {
                let size = request.body().read_all()?.len();
                responder.send(Response::text(200, format!("received {size} bytes\n")))
            }
            _ => responder.send(Response::text(404, "not found\n")),
        }
    }
}

fn html(body: Vec<u8>) -> Response {
    Response::bytes(200, "text/html", body)
}

/// The guest's view: its SDK and target; the host's versions come in through the
/// route's environment when the configuration gives them.
fn getenv() -> String {
    let mut out = format!(
        "variant: wasm\nwsrun-sdk: {}\ntarget: wasm32-wasip2\n",
        env!("CARGO_PKG_VERSION")
    );
    for (key, value) in std::env::vars() {
        out.push_str(&format!("env {key}: {value}\n"));
    }
    out
}

wsrun_sdk::export!(Suite);

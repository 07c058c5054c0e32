//! `raw-hello`: a handler written against the raw `wasi` crate, no SDK.
//!
//! Shows that wsrun runs any `wasi:http/proxy` component: this one implements
//! the exported `incoming-handler` itself and answers `200 text/plain`
//! `raw wasi hello\n`. Resource rules it follows by hand: the response goes to
//! the outparam before the body is written, and the body's stream is dropped
//! before `outgoing-body.finish`.

use wasi::exports::http::incoming_handler::Guest;
use wasi::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

const BODY: &[u8] = b"raw wasi hello\n";

struct RawHello;

impl Guest for RawHello {
    fn handle(_request: IncomingRequest, response_out: ResponseOutparam) {
        let headers = Fields::from_list(&[
            ("content-type".to_string(), b"text/plain".to_vec()),
            (
                "content-length".to_string(),
                BODY.len().to_string().into_bytes(),
            ),
        ])
        .expect("valid headers");
        let response = OutgoingResponse::new(headers);
        response.set_status_code(200).expect("valid status");
        let body = response.body().expect("body taken once");
        ResponseOutparam::set(response_out, Ok(response));

        let stream = body.write().expect("stream taken once");
        // BODY is under 4096 bytes, the most one blocking-write-and-flush takes.
        if let Err(err) = stream.blocking_write_and_flush(BODY) {
            eprintln!("raw-hello: write failed: {err:?}");
            return;
        }
        drop(stream);
        if let Err(err) = OutgoingBody::finish(body, None) {
            eprintln!("raw-hello: finish failed: {err:?}");
        }
    }
}

wasi::http::proxy::export!(RawHello);

//! The glue between a handler type and the exported `wasi:http/incoming-handler`.
//!
//! Owns the [`Handler`] and [`StreamingHandler`] traits, the [`export!`](crate::export)
//! macro, and `run`, which the macro calls for every request: it builds the
//! [`Request`], calls the handler, and decides what the client sees when the
//! handler fails (a bare `500 internal error`, details to stderr only). It must
//! not grow request or response features: those live in their own modules.

use std::cell::RefCell;
use std::rc::Rc;

use wasi::http::types::{ErrorCode, IncomingRequest, ResponseOutparam};

use crate::responder::{Responder, Slot};
use crate::{Error, Request, Response};

/// The body the client gets when a handler fails.
pub const INTERNAL_ERROR_BODY: &str = "internal error";

/// A handler that answers each request with a complete [`Response`].
///
/// ```
/// use wsrun_sdk::{Error, Handler, Request, Response};
///
/// struct Hello;
///
/// impl Handler for Hello {
///     fn handle(req: Request) -> Result<Response, Error> {
///         Ok(Response::text(200, format!("hello from {}\n", req.path())))
///     }
/// }
///
/// wsrun_sdk::export!(Hello);
/// ```
pub trait Handler {
    /// Handles one request. An `Err` becomes `500 internal error`; the error
    /// itself is written to stderr.
    fn handle(request: Request) -> Result<Response, Error>;
}

/// A handler that answers through a [`Responder`], e.g. to stream a body.
///
/// ```
/// use std::io::Write;
/// use wsrun_sdk::{Error, Headers, Request, Responder, StreamingHandler};
///
/// struct Count;
///
/// impl StreamingHandler for Count {
///     fn handle_streaming(_req: Request, res: Responder) -> Result<(), Error> {
///         let mut body = res.start(200, Headers::new().with("content-type", "text/plain"))?;
///         for i in 0..1000 {
///             writeln!(body, "line {i}")?;
///         }
///         body.finish()
///     }
/// }
///
/// wsrun_sdk::export!(Count);
/// ```
///
/// Every [`Handler`] is also a `StreamingHandler`, so [`export!`](crate::export)
/// takes either kind.
pub trait StreamingHandler {
    /// Handles one request. An `Err` before a response was started becomes
    /// `500 internal error`; after it started, the body is left unfinished so
    /// the client sees an aborted response. Either way the error goes to stderr.
    fn handle_streaming(request: Request, responder: Responder) -> Result<(), Error>;
}

impl<H: Handler> StreamingHandler for H {
    fn handle_streaming(request: Request, responder: Responder) -> Result<(), Error> {
        responder.send(H::handle(request)?)
    }
}

/// Exports a [`Handler`] or [`StreamingHandler`] type as the component's
/// `wasi:http/incoming-handler`. Use it once per crate, at the top level.
///
/// On targets other than `wasm32` the macro still type-checks the handler but
/// exports nothing, so a handler crate can run unit tests on the host.
#[macro_export]
macro_rules! export {
    ($handler:ty) => {
        const _: () = {
            #[allow(dead_code)]
            struct __WsrunSdkExport;

            impl $crate::__private::Guest for __WsrunSdkExport {
                fn handle(
                    request: $crate::__private::IncomingRequest,
                    response_out: $crate::__private::ResponseOutparam,
                ) {
                    $crate::__private::run::<$handler>(request, response_out);
                }
            }

            #[cfg(target_arch = "wasm32")]
            $crate::__private::wasi::http::proxy::export!(__WsrunSdkExport);
        };
    };
}

/// Runs handler `H` for one request from the host. Called by [`export!`](crate::export).
pub fn run<H: StreamingHandler>(request: IncomingRequest, response_out: ResponseOutparam) {
    let slot: Slot = Rc::new(RefCell::new(Some(response_out)));
    let responder = Responder::new(Rc::clone(&slot));
    let outcome = H::handle_streaming(Request::from_wasi(request), responder);
    let unanswered = slot.borrow_mut().take();
    match (outcome, unanswered) {
        (Ok(()), None) => {}
        (Ok(()), Some(out)) => {
            eprintln!("wsrun-sdk: handler returned without sending a response");
            internal_error(out);
        }
        (Err(err), Some(out)) => {
            eprintln!("wsrun-sdk: handler error: {err}");
            internal_error(out);
        }
        (Err(err), None) => {
            eprintln!("wsrun-sdk: handler error after the response started: {err}");
        }
    }
}

/// Answers `500 internal error`, with no details.
fn internal_error(out: ResponseOutparam) {
    let slot: Slot = Rc::new(RefCell::new(Some(out)));
    let sent = Responder::new(Rc::clone(&slot)).send(Response::text(500, INTERNAL_ERROR_BODY));
    if let Err(err) = sent {
        eprintln!("wsrun-sdk: could not send the 500 response: {err}");
        if let Some(out) = slot.borrow_mut().take() {
            ResponseOutparam::set(out, Err(ErrorCode::InternalError(None)));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{Error, Handler, Request, Response};

    struct Plain;

    impl Handler for Plain {
        fn handle(req: Request) -> Result<Response, Error> {
            if req.path() == "/fail" {
                return Err(Error::msg("nope"));
            }
            Ok(Response::text(200, "ok"))
        }
    }

    // Expands on the host too (it exports nothing there): this checks the macro.
    crate::export!(Plain);

    #[test]
    fn handlers_are_plain_functions_on_the_host() {
        let ok = Plain::handle(Request::new(crate::Method::Get, "/")).unwrap();
        assert_eq!(ok.body(), b"ok");
        let err = Plain::handle(Request::new(crate::Method::Get, "/fail")).unwrap_err();
        assert_eq!(err.to_string(), "nope");
    }
}

//! # wsrun-sdk: `wasi:http` handlers in plain Rust
//!
//! A handler is a WebAssembly component that exports the standard
//! `wasi:http/proxy` world (0.2). wsrun (or any other `wasi:http` host, such as
//! `wasmtime serve`) creates a fresh instance for every request, calls the
//! exported `incoming-handler.handle` once, and throws the instance away after
//! the response is complete. Nothing survives between requests: keep state
//! outside (environment, outbound HTTP) rather than in statics.
//!
//! This crate wraps the raw bindings of the [`wasi`] crate into:
//!
//! - [`Request`]: method, path and query, headers (case-insensitive,
//!   multi-valued), [`Request::script_name`] (the route prefix wsrun passes in
//!   the `wsrun-script-name` header), and a streaming [`Body`] that
//!   implements [`std::io::Read`];
//! - [`Response`] for answers held in memory, and [`Responder`] /
//!   [`BodyWriter`] for answers streamed with back-pressure
//!   ([`std::io::Write`]);
//! - the [`Handler`] and [`StreamingHandler`] traits and the [`export!`] macro
//!   that makes a type the component's entry point;
//! - [`services`]: wsrun's durable jobs and timers (a handler that uses them
//!   runs on wsrun only; one that does not stays a plain `wasi:http` handler).
//!
//! When a handler returns an [`Error`], the client gets `500 internal error`
//! and nothing else; the error text goes to stderr, which wsrun writes to its
//! log. A panic traps the instance; the host then answers on its own.
//!
//! ## Example
//!
//! ```
//! use wsrun_sdk::{Error, Handler, Request, Response};
//!
//! struct Hello;
//!
//! impl Handler for Hello {
//!     fn handle(req: Request) -> Result<Response, Error> {
//!         let who = req.query_param("name").unwrap_or_else(|| "world".into());
//!         Ok(Response::text(200, format!("Hello, {who}!\n")))
//!     }
//! }
//!
//! wsrun_sdk::export!(Hello);
//! ```
//!
//! Build with `cargo build --release --target wasm32-wasip2` in a `cdylib`
//! crate: the `.wasm` it produces is already a component, no extra tool needed.
//!
//! The crate also compiles for the host so handlers can be unit-tested there
//! with [`Request::new`]; anything that calls into wasi (reading a live body,
//! sending through a [`Responder`]) only works inside a component.

mod body;
mod error;
mod export;
mod headers;
mod query;
mod request;
mod responder;
mod response;
pub mod services;

pub use body::{Body, READ_CHUNK};
pub use error::Error;
pub use export::{Handler, INTERNAL_ERROR_BODY, StreamingHandler, run};
pub use headers::Headers;
pub use request::{Method, Request, SCRIPT_NAME_HEADER};
pub use responder::{BodyWriter, Responder, WRITE_CHUNK};
pub use response::Response;

/// The raw `wasi` bindings this SDK is built on (wasi:http, wasi:io,
/// wasi:clocks, ...), for what the SDK does not wrap, e.g. outgoing HTTP.
pub use wasi;

#[doc(hidden)]
pub mod __private {
    //! Paths used by [`export!`](crate::export); not a public API.
    pub use crate::export::run;
    pub use wasi;
    pub use wasi::exports::http::incoming_handler::Guest;
    pub use wasi::http::types::{IncomingRequest, ResponseOutparam};
}

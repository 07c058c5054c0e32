//! A WASM route's `GET` on the inline path: the request its guest sees, made from the head's
//! bytes as hyper's path makes it from hyper's.
//!
//! Owns: turning an inline head into the guest's request (`head_parts`, then the same rules as
//! `service` and `handler_run` apply on hyper's path: a client's `wsrun-job-*` fields dropped,
//! `wsrun-script-name` and `Host` set, scheme `https` over TLS). Must not touch: running the
//! guest (`wasm::WasmHost::handle` does, with every limit), the connection, or how the reply is
//! written (`reply`).
//!
//! Why: with the guest kept warm (`requests_per_instance`), hyper's dispatcher, header maps and
//! encoder were more of a WASM hello's CPU than the guest itself (issue 13).

use http::Request;

use super::head_parts;
use crate::python::FieldSpan;
use crate::server::handler_run::guest_request;
use crate::server::peer::Peer;
use crate::server::service::strip_job_headers;
use crate::spool::SpooledBody;
use crate::wasm::GuestRequestBody;

/// Where a WASM `GET` arrived and what it was addressed to.
pub struct Arrival<'a> {
    pub peer: Peer,
    pub script_name: &'a str,
    pub server_name: &'a str,
}

/// The guest's request for the head whose target and fields lie in `buf`; `None` when the
/// `http` types refuse its target or a field (hyper's path then answers it, as before).
pub fn request(
    arrival: Arrival<'_>,
    buf: &[u8],
    target: &str,
    fields: &[FieldSpan],
) -> Option<Request<GuestRequestBody>> {
    let mut parts = head_parts::parts(buf, target, fields)?;
    strip_job_headers(&mut parts.headers);
    Some(guest_request(
        arrival.peer,
        arrival.script_name,
        arrival.server_name,
        parts,
        SpooledBody::Empty,
    ))
}

//! Compute attacks (see lib.rs). Not built yet: answers 501.

use wsrun_sdk::{Error, Request, Responder, Response};

pub fn run(attack: &str, _request: &Request, responder: Responder) -> Result<(), Error> {
    responder.send(Response::text(501, format!("attack {attack:?} is not built yet\n")))
}

//! Attacks of the `outbound` group (see lib.rs). Not built yet: answers 501.

use wsrun_sdk::{Request, Response};

pub fn run(attack: &str, _request: &Request) -> Response {
    Response::text(501, format!("attack {attack:?} is not built yet\n"))
}

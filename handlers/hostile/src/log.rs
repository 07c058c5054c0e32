//! The guest-log attack (see lib.rs). Not built yet: answers 501.

use wsrun_sdk::{Request, Response};

pub fn run(_request: &Request) -> Response {
    Response::text(501, "attack \"log\" is not built yet\n")
}

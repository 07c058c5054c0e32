//! `trap`: panics before sending anything, which traps the instance.
//!
//! The panic message contains `secret-internal-detail`; tests check that the
//! host logs it at most and never sends it to the client.

use wsrun_sdk::{Error, Handler, Request, Response};

struct Trap;

impl Handler for Trap {
    fn handle(request: Request) -> Result<Response, Error> {
        panic!(
            "secret-internal-detail: deliberate panic while handling {}",
            request.path()
        );
    }
}

wsrun_sdk::export!(Trap);

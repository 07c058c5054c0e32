//! `spin-loop`: burns CPU forever and never answers.
//!
//! Exists to show that a route's CPU deadline (epoch interruption) stops a
//! runaway handler. `black_box` keeps the optimiser from removing the loop.
//! It writes `spin-loop: spinning` to stderr first, so a test can wait until an instance
//! is running (the host logs guest lines as they come) instead of sleeping.

use std::hint::black_box;

use wsrun_sdk::{Error, Handler, Request, Response};

struct SpinLoop;

impl Handler for SpinLoop {
    fn handle(_request: Request) -> Result<Response, Error> {
        eprintln!("spin-loop: spinning");
        let mut counter: u64 = 0;
        loop {
            counter = black_box(counter.wrapping_add(1));
        }
    }
}

wsrun_sdk::export!(SpinLoop);

//! `hostile`: a tenant that attacks the sandbox, one attack per `?attack=NAME` (the other
//! query parameters tune it). Each attack lives in its own module and answers what it got
//! (how far it went, which call was refused), so a test can check both that the host held
//! and that the guest saw a clear refusal.
//!
//! - `memory`: host memory outside linear memory (`fields`, `resources`, `outgoing-bodies`),
//!   the guest stack (`stack`), shared memory budgets (`grow`);
//! - `outbound`: outgoing requests (`sockets`, `rebind`, `userinfo`);
//! - `services`: jobs and timers (`jobs`, `big-jobs`, `timers`, `fast-timer`, `attempts`);
//! - `log`: guest log volume (`log`);
//! - `cpu`: compute (`spin`, `stream-then-spin`).
//!
//! Exists for the hostile-tenant tests (`tests/test_hostile_*.py`) and `bench/hostile.py`;
//! never serve it to anyone.

mod cpu;
mod log;
mod memory;
mod outbound;
mod services;

use wsrun_sdk::{Error, Request, Responder, Response, StreamingHandler};

struct Hostile;

impl StreamingHandler for Hostile {
    fn handle_streaming(request: Request, responder: Responder) -> Result<(), Error> {
        let attack = request.query_param("attack").unwrap_or_default();
        let response = match attack.as_str() {
            "fields" | "resources" | "outgoing-bodies" | "stack" | "grow" => {
                memory::run(&attack, &request)
            }
            "sockets" | "rebind" | "userinfo" => outbound::run(&attack, &request),
            "jobs" | "big-jobs" | "timers" | "fast-timer" | "attempts" => {
                services::run(&attack, &request)
            }
            "log" => log::run(&request),
            "spin" | "stream-then-spin" => return cpu::run(&attack, &request, responder),
            other => Response::text(400, format!("unknown attack {other:?}\n")),
        };
        responder.send(response)
    }
}

/// A numeric query parameter, or `default`.
pub fn param(request: &Request, name: &str, default: u64) -> u64 {
    request
        .query_param(name)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

wsrun_sdk::export!(Hostile);

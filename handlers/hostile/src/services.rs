//! Attacks of the `services` group (see lib.rs): jobs and timers past every quota.
//!
//! - `jobs&n=N`: N small jobs (`delay_ms=` keeps them pending);
//! - `big-jobs&n=N&size=BYTES`: N jobs with a body of BYTES each;
//! - `timers&n=N&period_ms=P`: N durable timers `t0`..`tN-1` (`prefix=` renames them);
//! - `fast-timer&period_ms=P`: one timer (`name=`, default `fast`) every P ms;
//! - `attempts&n=N`: one job asking for N attempts.
//!
//! Every job goes to `to=` (default `/sink`) on the tenant's own host. The answer is one
//! line: `accepted=A refused=R first_refusal=KIND: MESSAGE` (status 200 whatever the host
//! did), so a test sees both how far the guest got and what it was told.

use std::time::Duration;

use wsrun_sdk::services::{self, Error, Job};
use wsrun_sdk::{Request, Response};

use crate::param;

/// What the guest got back from its calls.
#[derive(Default)]
struct Tally {
    accepted: u64,
    refused: u64,
    first_refusal: Option<Error>,
}

impl Tally {
    fn add<T>(&mut self, result: Result<T, Error>) {
        match result {
            Ok(_) => self.accepted += 1,
            Err(err) => {
                self.refused += 1;
                self.first_refusal.get_or_insert(err);
            }
        }
    }

    fn response(&self) -> Response {
        let refusal = match &self.first_refusal {
            Some(err) => err.to_string(),
            None => "none".to_string(),
        };
        Response::text(
            200,
            format!(
                "accepted={} refused={} first_refusal={refusal}\n",
                self.accepted, self.refused
            ),
        )
    }
}

pub fn run(attack: &str, request: &Request) -> Response {
    let to = request
        .query_param("to")
        .unwrap_or_else(|| "/sink".to_string());
    let n = param(request, "n", 1);
    let delay = Duration::from_millis(param(request, "delay_ms", 0));
    let period = Duration::from_millis(param(request, "period_ms", 1000));
    let job = |body: Vec<u8>| Job::post(to.as_str()).body(body).delay(delay);
    let mut tally = Tally::default();
    match attack {
        "jobs" => (0..n).for_each(|i| tally.add(services::enqueue(job(i.to_string().into())))),
        "big-jobs" => {
            let size = usize::try_from(param(request, "size", 1 << 20)).unwrap_or(usize::MAX);
            (0..n).for_each(|_| tally.add(services::enqueue(job(vec![b'x'; size]))));
        }
        "timers" => {
            let prefix = request
                .query_param("prefix")
                .unwrap_or_else(|| "t".to_string());
            for i in 0..n {
                let name = format!("{prefix}{i}");
                tally.add(services::every(&name, period, job(Vec::new())));
            }
        }
        "fast-timer" => {
            let name = request
                .query_param("name")
                .unwrap_or_else(|| "fast".to_string());
            tally.add(services::every(&name, period, job(Vec::new())));
        }
        _ => {
            let attempts = u32::try_from(n).unwrap_or(u32::MAX);
            tally.add(services::enqueue(job(Vec::new()).max_attempts(attempts)));
        }
    }
    tally.response()
}

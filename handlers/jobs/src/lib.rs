//! `jobs`: wsrun's durable jobs and timers driven from WebAssembly (runs on wsrun only).
//!
//! Paths below the route prefix (`/jobs` in the examples):
//!
//! - `/jobs/defer?to=PATH[&method=M][&delay=MS][&max_attempts=N][&h-NAME=VALUE...]` queues a
//!   job to `PATH` (a route of this server, with its query) carrying the request's body;
//!   answers `200` with the job id.
//! - `/jobs/every?name=N&period=MS&to=PATH`, `/jobs/once?name=N&delay=MS&to=PATH` set a
//!   durable timer whose job carries the request's body (`200 set`);
//!   `/jobs/cancel?name=N` removes one (`200 true` / `200 false`).
//! - anything else (`/jobs/work`, ...) is a job target: it prints
//!   `jobs: work job=ID attempt=A method=M body=B` to stdout (wsrun's log), answers `200` with
//!   `job=ID attempt=A` and an `x-job-id` header (`-` when not called by a job). With
//!   `?then=PATH` it queues a follow-up job to `PATH` whose body is
//!   `wasm-saw:job=ID:attempt=A:BODY`, so a chain of jobs can be followed across runtimes.
//!   `?status=CODE` answers with that status instead (to test retries).
//!
//! A refused call answers `400` (`no-route`, `invalid`) or `503` (`unavailable`) with
//! `KIND: MESSAGE`, the server's reason.

use std::time::Duration;

use wsrun_sdk::services::{self, Job};
use wsrun_sdk::{Error, Handler, Request, Response};

struct Jobs;

impl Handler for Jobs {
    fn handle(mut request: Request) -> Result<Response, Error> {
        let body = request.body().read_all()?;
        let action = request
            .path()
            .strip_prefix(request.script_name())
            .unwrap_or(request.path())
            .trim_start_matches('/')
            .to_string();
        let answer = match action.as_str() {
            "defer" => defer(&request, body),
            "every" => every(&request, body),
            "once" => once(&request, body),
            "cancel" => required(&request, "name")
                .and_then(|name| services::cancel(&name).map_err(refused))
                .map(|found| Response::text(200, found.to_string())),
            _ => Ok(work(&request, body)),
        };
        Ok(answer.unwrap_or_else(|response| response))
    }
}

/// A refusal as the client sees it.
fn refused(err: services::Error) -> Response {
    let status = match err {
        services::Error::Unavailable(_) => 503,
        services::Error::NoRoute(_) | services::Error::Invalid(_) => 400,
    };
    Response::text(status, format!("{err}\n"))
}

fn required(request: &Request, name: &str) -> Result<String, Response> {
    request
        .query_param(name)
        .ok_or_else(|| Response::text(400, format!("missing query parameter `{name}`\n")))
}

fn number<T: std::str::FromStr>(request: &Request, name: &str) -> Result<Option<T>, Response> {
    match request.query_param(name) {
        None => Ok(None),
        Some(text) => text
            .parse()
            .map(Some)
            .map_err(|_| Response::text(400, format!("`{name}` must be a number\n"))),
    }
}

fn millis(request: &Request, name: &str) -> Result<Duration, Response> {
    Ok(Duration::from_millis(number(request, name)?.unwrap_or(0)))
}

/// The job a request describes: `to`, `method`, `h-NAME` headers, and `body`.
fn job(request: &Request, body: Vec<u8>) -> Result<Job, Response> {
    let mut job = Job::new(required(request, "to")?).body(body);
    for (name, value) in request.query_pairs() {
        if name == "method" {
            job = job.method(value);
        } else if let Some(header) = name.strip_prefix("h-") {
            job = job.header(header, value);
        }
    }
    Ok(job)
}

fn defer(request: &Request, body: Vec<u8>) -> Result<Response, Response> {
    let mut job = job(request, body)?.delay(millis(request, "delay")?);
    if let Some(attempts) = number(request, "max_attempts")? {
        job = job.max_attempts(attempts);
    }
    let id = services::enqueue(job).map_err(refused)?;
    Ok(Response::text(200, id.to_string()).with_header("x-job-id", id.to_string()))
}

fn every(request: &Request, body: Vec<u8>) -> Result<Response, Response> {
    let name = required(request, "name")?;
    let period = millis(request, "period")?;
    services::every(&name, period, job(request, body)?).map_err(refused)?;
    Ok(Response::text(200, "set"))
}

fn once(request: &Request, body: Vec<u8>) -> Result<Response, Response> {
    let name = required(request, "name")?;
    let delay = millis(request, "delay")?;
    services::once(&name, delay, job(request, body)?).map_err(refused)?;
    Ok(Response::text(200, "set"))
}

/// A job target: says which job called it, optionally passing the work on.
fn work(request: &Request, body: Vec<u8>) -> Response {
    let job_id = request.header("wsrun-job-id").unwrap_or("-").to_string();
    let attempt = request.header("wsrun-job-attempt").unwrap_or("-");
    let text = String::from_utf8_lossy(&body);
    let seen = format!("job={job_id} attempt={attempt}");
    println!(
        "jobs: work {seen} method={} body={text}",
        request.method().as_str()
    );
    if let Some(then) = request.query_param("then") {
        let follow_up =
            Job::new(then).body(format!("wasm-saw:job={job_id}:attempt={attempt}:{text}"));
        if let Err(err) = services::enqueue(follow_up) {
            return refused(err);
        }
    }
    let status = request
        .query_param("status")
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    Response::text(status, seen).with_header("x-job-id", job_id)
}

wsrun_sdk::export!(Jobs);

//! The jobs demo's WebAssembly side, served at `/api` (paths below are relative to it).
//!
//! - `POST /signup` with a name as the body: answers `202` at once and queues a durable job
//!   `POST /py/welcome` (the Python app sends the welcome mail), tried up to 5 times.
//! - `POST /digest`: the target of the Python app's durable timer. It "builds the digest",
//!   prints a line to the log and reports back with a job `POST /py/digest-done`.
//! - `GET /health`: `ok`.
//!
//! It uses `wsrun_sdk::services`, so it runs on wsrun only.

use wsrun_sdk::services::{self, Job};
use wsrun_sdk::{Error, Handler, Method, Request, Response};

struct Signup;

impl Handler for Signup {
    fn handle(mut request: Request) -> Result<Response, Error> {
        let path = request
            .path()
            .strip_prefix(request.script_name())
            .unwrap_or(request.path())
            .to_string();
        match (request.method(), path.as_str()) {
            (Method::Post, "/signup") => {
                let name = request.body().read_all_string()?;
                Ok(signup(name.trim()))
            }
            (Method::Post, "/digest") => Ok(digest(&request)),
            (Method::Get, "/health") => Ok(Response::text(200, "ok\n")),
            _ => Ok(Response::text(404, "try POST /api/signup\n")),
        }
    }
}

fn signup(name: &str) -> Response {
    if name.is_empty() || name.len() > 100 {
        return Response::text(400, "send a name (1 to 100 bytes) as the body\n");
    }
    let welcome = Job::post("/py/welcome")
        .header("content-type", "text/plain; charset=utf-8")
        .body(name)
        .max_attempts(5);
    match services::enqueue(welcome) {
        Ok(id) => Response::text(202, format!("welcome mail for {name} queued as job {id}\n")),
        Err(err) => failed(&err),
    }
}

fn digest(request: &Request) -> Response {
    let job = request.header("wsrun-job-id").unwrap_or("-").to_string();
    println!("digest: built for job {job}");
    let report = Job::post("/py/digest-done").body(format!("digest built by wasm for job {job}"));
    match services::enqueue(report) {
        Ok(_) => Response::text(200, "digest built\n"),
        Err(err) => failed(&err),
    }
}

/// A refused job: the client hears why (a 503 for `unavailable` invites a retry).
fn failed(err: &services::Error) -> Response {
    let status = match err {
        services::Error::Unavailable(_) => 503,
        _ => 500,
    };
    Response::text(status, format!("cannot queue the job: {err}\n"))
}

wsrun_sdk::export!(Signup);

//! wsrun's shared services: durable jobs and timers from a handler.
//!
//! **A handler that calls anything in this module runs on wsrun only.** It imports the
//! `wsrun:services@0.1.0` interfaces (`runtime/wit/services.wit` in the wsrun repository) on
//! top of `wasi:http/proxy`; other `wasi:http` hosts (`wasmtime serve`, Spin) refuse to
//! instantiate it. A handler that never calls this module imports nothing extra and stays
//! portable: the linker drops unused imports.
//!
//! A job is an HTTP request to a route of the same wsrun server — Python or WebAssembly —
//! written to the server's journal before [`enqueue`] returns, then delivered in-process at
//! least once, with `wsrun-job-id` and `wsrun-job-attempt` request headers. A 5xx answer (or a
//! trap) is retried with backoff up to the job's attempt limit. The host a job goes to is the
//! handler's own: a tenant's handler reaches only its tenant's routes.
//!
//! ```no_run
//! use std::time::Duration;
//! use wsrun_sdk::services::{self, Job};
//!
//! # fn main() -> Result<(), services::Error> {
//! // POST /reports/build in 5 s, at most 3 attempts.
//! let job = Job::post("/reports/build")
//!     .header("content-type", "application/json")
//!     .body(br#"{"month":"2024-05"}"#.to_vec())
//!     .delay(Duration::from_secs(5))
//!     .max_attempts(3);
//! let id = services::enqueue(job)?;
//!
//! // GET /tasks/cleanup every 30 s until cancelled.
//! services::every("cleanup", Duration::from_secs(30), Job::get("/tasks/cleanup"))?;
//! services::cancel("cleanup")?;
//! # let _ = id;
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::time::Duration;

mod bindings {
    wit_bindgen::generate!({
        path: "../runtime/wit",
        world: "wsrun:services/services",
    });
}

use bindings::wsrun::services::{defer, timers, types};

/// A request to a route of this server, to run later (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    path: String,
    method: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    delay: Duration,
    max_attempts: Option<u32>,
}

impl Job {
    /// A `POST` to `path` (path and optional query, starting with `/`), with no body, run as
    /// soon as possible, with the server's default attempt limit.
    pub fn new(path: impl Into<String>) -> Job {
        Job {
            path: path.into(),
            method: "POST".to_string(),
            headers: Vec::new(),
            body: Vec::new(),
            delay: Duration::ZERO,
            max_attempts: None,
        }
    }

    /// Same as [`Job::new`].
    pub fn post(path: impl Into<String>) -> Job {
        Job::new(path)
    }

    /// A `GET` to `path`.
    pub fn get(path: impl Into<String>) -> Job {
        Job::new(path).method("GET")
    }

    /// The request method (an HTTP token such as `PUT`; default `POST`).
    pub fn method(mut self, method: impl Into<String>) -> Job {
        self.method = method.into();
        self
    }

    /// Adds a request header (`host`, `wsrun-job-id` and `wsrun-job-attempt` are refused:
    /// the server sets them).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Job {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The request body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Job {
        self.body = body.into();
        self
    }

    /// How long to wait before the first delivery ([`enqueue`] only; millisecond precision).
    pub fn delay(mut self, delay: Duration) -> Job {
        self.delay = delay;
        self
    }

    /// Deliveries to try before the job goes to the dead-letter table ([`enqueue`] only).
    pub fn max_attempts(mut self, attempts: u32) -> Job {
        self.max_attempts = Some(attempts);
        self
    }

    pub fn path_with_query(&self) -> &str {
        &self.path
    }

    pub fn method_name(&self) -> &str {
        &self.method
    }

    fn into_wit(self) -> types::Job {
        types::Job {
            path: self.path,
            method: self.method,
            headers: self.headers,
            body: self.body,
        }
    }
}

/// Why the server refused a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// No route of this server serves the job's path (for this handler's host).
    NoRoute(String),
    /// An argument is out of its domain: a bad method, path, header or timer name.
    Invalid(String),
    /// The services cannot take the call now (not running, or the journal failed): retrying
    /// later may work.
    Unavailable(String),
}

impl Error {
    /// The server's message.
    pub fn message(&self) -> &str {
        match self {
            Error::NoRoute(m) | Error::Invalid(m) | Error::Unavailable(m) => m,
        }
    }

    /// `no-route`, `invalid` or `unavailable`: the WIT case name.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::NoRoute(_) => "no-route",
            Error::Invalid(_) => "invalid",
            Error::Unavailable(_) => "unavailable",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind(), self.message())
    }
}

impl std::error::Error for Error {}

impl From<types::Error> for Error {
    fn from(err: types::Error) -> Error {
        match err {
            types::Error::NoRoute(m) => Error::NoRoute(m),
            types::Error::Invalid(m) => Error::Invalid(m),
            types::Error::Unavailable(m) => Error::Unavailable(m),
        }
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Queues `job`; returns its id once the server has written it to its journal.
pub fn enqueue(job: Job) -> Result<u64, Error> {
    let (delay, max_attempts) = (millis(job.delay), job.max_attempts);
    defer::enqueue(&job.into_wit(), delay, max_attempts).map_err(Error::from)
}

/// Sets the durable timer `name` to queue `job` every `period` (first one period from now);
/// a timer of that name is replaced. The job's delay and attempt limit are not used.
pub fn every(name: &str, period: Duration, job: Job) -> Result<(), Error> {
    timers::every(name, millis(period), &job.into_wit()).map_err(Error::from)
}

/// Sets the durable timer `name` to queue `job` once, `delay` from now.
pub fn once(name: &str, delay: Duration, job: Job) -> Result<(), Error> {
    timers::once(name, millis(delay), &job.into_wit()).map_err(Error::from)
}

/// Removes the timer `name`; `false` when there was none.
pub fn cancel(name: &str) -> Result<bool, Error> {
    timers::cancel(name).map_err(Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builder_keeps_what_it_is_given() {
        let job = Job::new("/a?b=1")
            .header("x-one", "1")
            .body("hi")
            .delay(Duration::from_millis(1500))
            .max_attempts(2);
        assert_eq!(job.method_name(), "POST");
        assert_eq!(job.path_with_query(), "/a?b=1");
        assert_eq!(millis(job.delay), 1500);
        assert_eq!(job.max_attempts, Some(2));
        let wit = job.into_wit();
        assert_eq!(wit.headers, vec![("x-one".to_string(), b"1".to_vec())]);
        assert_eq!(wit.body, b"hi");
        assert_eq!(Job::get("/x").method_name(), "GET");
    }

    #[test]
    fn errors_say_their_kind() {
        let err = Error::from(types::Error::NoRoute("no route serves \"/x\"".into()));
        assert_eq!(err.to_string(), "no-route: no route serves \"/x\"");
        assert_eq!(Error::Invalid("m".into()).kind(), "invalid");
    }
}

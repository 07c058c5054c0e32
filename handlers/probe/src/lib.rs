//! `probe`: a diagnostic handler that shows tests what the host lets a
//! component see and do. Dispatch is on the first recognised query parameter:
//!
//! - `?env=NAME`: the variable's value, or `<unset>`; `?env=*`: every `K=V`
//!   line, sorted;
//! - `?log=TEXT`: prints `TEXT` to stdout and `stderr:TEXT` to stderr, answers
//!   `logged`;
//! - `?fetch=URL`: outgoing `GET URL` through `wasi:http/outgoing-handler`:
//!   `fetched <status>`, or `502` with `fetch error: <error-code>`;
//! - `?sleep_ms=N`: blocks on a monotonic-clock pollable for N ms, answers
//!   `slept`;
//! - `?files`: lists `/`, or answers `no filesystem`;
//! - `?fail=TEXT`: returns an SDK error carrying `TEXT` (the client must get a
//!   bare `500 internal error`; `TEXT` belongs in the server log only);
//! - `?count`: increments a static counter and answers its new value; the host
//!   gives every request a fresh instance, so the answer is always `1`;
//! - anything else: `probe ok\n` with `x-probe-path` set to the path.
//!
//! Outbound HTTP lives in `fetch`; this file only dispatches and must stay
//! free of wasi resource handling beyond the clock call.

mod fetch;

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use wsrun_sdk::wasi::clocks::monotonic_clock;
use wsrun_sdk::{Error, Handler, Request, Response};

struct Probe;

/// Requests this instance has counted (`?count`): it starts at zero in every
/// fresh instance.
static COUNTER: AtomicU64 = AtomicU64::new(0);

impl Handler for Probe {
    fn handle(request: Request) -> Result<Response, Error> {
        for (name, value) in request.query_pairs() {
            match name.as_str() {
                "env" => return Ok(text(200, env(&value))),
                "log" => return log(&value),
                "fetch" => return Ok(fetch::get(&value)),
                "sleep_ms" => return sleep(&value),
                "files" => return Ok(text(200, files())),
                "fail" => return Err(Error::msg(format!("probe failure requested: {value}"))),
                "count" => return Ok(text(200, count())),
                _ => {}
            }
        }
        Ok(text(200, "probe ok\n".into()).with_header("x-probe-path", request.path()))
    }
}

/// A `text/plain` response.
fn text(status: u16, body: String) -> Response {
    Response::text(status, body)
}

fn env(name: &str) -> String {
    if name == "*" {
        let mut lines: Vec<String> = std::env::vars_os()
            .map(|(k, v)| format!("{}={}\n", k.to_string_lossy(), v.to_string_lossy()))
            .collect();
        lines.sort();
        return lines.concat();
    }
    std::env::var_os(name).map_or_else(
        || "<unset>".to_string(),
        |v| v.to_string_lossy().into_owned(),
    )
}

fn log(message: &str) -> Result<Response, Error> {
    println!("{message}");
    std::io::stdout().flush()?;
    eprintln!("stderr:{message}");
    Ok(text(200, "logged".into()))
}

fn sleep(millis: &str) -> Result<Response, Error> {
    let Ok(millis) = millis.parse::<u64>() else {
        return Ok(text(400, format!("bad sleep_ms {millis:?}\n")));
    };
    eprintln!("probe: sleeping {millis} ms");
    let pollable = monotonic_clock::subscribe_duration(millis.saturating_mul(1_000_000));
    pollable.block();
    Ok(text(200, "slept".into()))
}

fn count() -> String {
    let value = COUNTER.fetch_add(1, Ordering::Relaxed) + 1;
    value.to_string()
}

fn files() -> String {
    match std::fs::read_dir("/") {
        Err(_) => "no filesystem".to_string(),
        Ok(entries) => {
            let mut names: Vec<String> = entries
                .filter_map(Result::ok)
                .map(|e| format!("{}\n", e.file_name().to_string_lossy()))
                .collect();
            names.sort();
            names.concat()
        }
    }
}

wsrun_sdk::export!(Probe);

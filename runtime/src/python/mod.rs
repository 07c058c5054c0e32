//! The WSGI host: embedded CPython serving PEP 3333 apps.
//!
//! Owns: turning a routed, fully spooled request into an app call and the app's answer into a
//! response, on the right thread. With `--threads 1` (the default) the app runs on the worker's
//! event-loop thread — no thread hop, like bjoern; with `--threads N` it runs on N Python
//! threads and streams back through bounded channels. Must not touch: sockets, HTTP parsing,
//! routing; the WASM host (the two runtimes never import each other).

pub mod environ;
mod errors;
mod fapws3;
mod file_wrapper;
mod head_fields;
mod input;
pub mod interpreter;
pub mod loader;
pub mod profile;
mod request_view;
mod response;
pub mod services;
mod start_response;
mod streaming;

use std::sync::{mpsc as std_mpsc, Arc, Mutex};

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use pyo3::prelude::*;
use tokio::sync::{mpsc, oneshot};

use crate::body::{plain, BoxError, ResponseBody};
use crate::spool::SpooledBody;
use environ::EnvironBuilder;
use input::Input;
pub use request_view::{FieldSpan, RawGet, RequestParts, RequestView};
use response::{run_app, BodyPlan, Outcome};
pub use start_response::Head;
use streaming::{ChannelChunks, InlineIter};

/// A loaded WSGI callable.
pub struct WsgiApp {
    pub callable: Py<PyAny>,
    /// Fapws-script handlers may return str, bytes or open files.
    pub lenient: bool,
    /// For logs: `module:attr` or `script.py PATHS[i]`.
    pub name: String,
}

type Job = Box<dyn FnOnce(Python<'_>) + Send>;

enum Executor {
    Inline,
    Pool(std_mpsc::Sender<Job>),
}

/// Per-worker WSGI state: environ template and the executor.
pub struct WsgiHost {
    environ: EnvironBuilder,
    executor: Executor,
    debug: bool,
}

/// How many chunks a Python thread may run ahead of the client.
const STREAM_BUFFER_CHUNKS: usize = 4;

impl WsgiHost {
    /// Creates the host for this worker process (after fork): starts `threads` Python threads
    /// when `threads > 1`.
    pub fn start(threads: usize, multiprocess: bool, debug: bool) -> Result<Arc<WsgiHost>, String> {
        let environ = Python::attach(|py| {
            EnvironBuilder::new(py, threads > 1, multiprocess)
                .map_err(|e| errors::format_exception(py, &e))
        })?;
        let executor = if threads > 1 {
            start_pool(threads)?
        } else {
            Executor::Inline
        };
        // `--profile`: this thread runs the apps with `--threads 1`.
        if threads == 1 && crate::profile::target().is_some() {
            Python::attach(profile::start);
        }
        Ok(Arc::new(WsgiHost {
            environ,
            executor,
            debug,
        }))
    }

    /// Whether apps run on the worker's event-loop thread (`--threads 1`).
    pub fn runs_inline(&self) -> bool {
        matches!(self.executor, Executor::Inline)
    }

    /// Serves one request with `app`.
    pub async fn handle(
        self: &Arc<Self>,
        app: &Arc<WsgiApp>,
        script_name: &str,
        parts: RequestParts,
        body: SpooledBody,
    ) -> Response<ResponseBody> {
        match &self.executor {
            Executor::Inline => {
                let response = self
                    .reply_now(app, script_name, &parts, body)
                    .into_response();
                // Let the other connections whose requests are ready run their apps before
                // this response is written: the responses then leave back to back, and a
                // client busy reading one finds the next without being woken again (libev
                // servers such as bjoern get this by writing on the next loop turn).
                tokio::task::yield_now().await;
                response
            }
            Executor::Pool(jobs) => {
                self.handle_on_pool(jobs, app, script_name, parts, body)
                    .await
            }
        }
    }

    /// Runs `app` for `request` on this thread now (`--threads 1`; the caller is the worker's
    /// event loop) and returns the app's head and body as they are, for a caller that writes
    /// them itself. The calls the request deferred travel with the body.
    pub fn reply_now(
        &self,
        app: &WsgiApp,
        script_name: &str,
        request: &impl RequestView,
        body: SpooledBody,
    ) -> Reply {
        Python::attach(|py| {
            services::begin_request();
            let reply = match self.call(py, app, script_name, request, body) {
                Ok(outcome) => {
                    let Outcome { head, body } = outcome;
                    Reply::App(head, inline_body(body))
                }
                Err(response) => Reply::Server(response),
            };
            reply.holding(services::end_request())
        })
    }

    async fn handle_on_pool(
        self: &Arc<Self>,
        jobs: &std_mpsc::Sender<Job>,
        app: &Arc<WsgiApp>,
        script_name: &str,
        parts: RequestParts,
        body: SpooledBody,
    ) -> Response<ResponseBody> {
        let (reply, response) = oneshot::channel();
        let (host, app, script_name) = (self.clone(), app.clone(), script_name.to_owned());
        let job: Job = Box::new(move |py| {
            services::begin_request();
            let called = host.call(py, &app, &script_name, &parts, body);
            let deferred = services::end_request();
            match called {
                Err(failure) => {
                    let _ = reply.send(hold_deferred(failure, deferred));
                }
                Ok(outcome) => pooled_response(py, outcome, reply, deferred),
            };
        });
        if jobs.send(job).is_err() {
            return plain(StatusCode::SERVICE_UNAVAILABLE, "Python threads are gone\n");
        }
        response
            .await
            .unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error\n"))
    }

    /// Builds the environ, calls the app, and logs failures. Runs with the GIL held.
    #[allow(clippy::result_large_err)] // the error is the response itself, built once
    fn call(
        &self,
        py: Python<'_>,
        app: &WsgiApp,
        script_name: &str,
        parts: &impl RequestView,
        body: SpooledBody,
    ) -> Result<Outcome, Response<ResponseBody>> {
        let input =
            Bound::new(py, Input::new(body)).map_err(|e| self.failure(py, app, parts, &e))?;
        let environ = self
            .environ
            .build(py, parts, script_name, &input)
            .map_err(|e| self.failure(py, app, parts, &e))?;
        match run_app(py, &app.callable, environ.into_any(), &input, app.lenient) {
            Ok(outcome) => {
                if !matches!(outcome.body, BodyPlan::Iter(_)) {
                    if let Ok(mut input) = input.try_borrow_mut() {
                        input.release();
                    }
                }
                Ok(outcome)
            }
            Err(err) => {
                if let Ok(mut input) = input.try_borrow_mut() {
                    input.release();
                }
                Err(self.error_response(app, parts, &err.traceback))
            }
        }
    }

    fn failure(
        &self,
        py: Python<'_>,
        app: &WsgiApp,
        parts: &impl RequestView,
        err: &PyErr,
    ) -> Response<ResponseBody> {
        self.error_response(app, parts, &errors::format_exception(py, err))
    }

    fn error_response(
        &self,
        app: &WsgiApp,
        parts: &impl RequestView,
        traceback: &str,
    ) -> Response<ResponseBody> {
        tracing::error!(
            "{} {} failed in {}:\n{}",
            parts.method(),
            parts.raw_target(),
            app.name,
            traceback
        );
        let body = if self.debug {
            format!("Internal Server Error\n\n{traceback}\n")
        } else {
            "Internal Server Error\n".to_string()
        };
        plain(StatusCode::INTERNAL_SERVER_ERROR, body)
    }
}

fn start_pool(threads: usize) -> Result<Executor, String> {
    let (sender, receiver) = std_mpsc::channel::<Job>();
    let receiver = Arc::new(Mutex::new(receiver));
    for index in 0..threads {
        let receiver = receiver.clone();
        std::thread::Builder::new()
            .name(format!("wsrun-python-{index}"))
            .spawn(move || run_jobs(&receiver))
            .map_err(|e| format!("could not start Python thread {index}: {e}"))?;
    }
    Ok(Executor::Pool(sender))
}

/// An executor thread: runs jobs until the channel closes.
fn run_jobs(receiver: &Mutex<std_mpsc::Receiver<Job>>) {
    loop {
        let job = match receiver.lock() {
            Ok(guard) => guard.recv(),
            Err(_) => return,
        };
        match (job, crate::profile::target()) {
            (Ok(job), None) => Python::attach(job),
            (Ok(job), Some(_)) => Python::attach(|py| {
                profile::start(py);
                job(py);
                profile::stop(py);
            }),
            (Err(_), _) => return,
        }
    }
}

/// What a request got: the app's own head and body, or a response the server made.
pub enum Reply {
    App(Head, ResponseBody),
    Server(Response<ResponseBody>),
}

impl Reply {
    /// The reply as an `http` response (hyper's path).
    pub fn into_response(self) -> Response<ResponseBody> {
        match self {
            Reply::App(head, body) => with_head(head, body),
            Reply::Server(response) => response,
        }
    }

    /// Attaches the calls a request deferred to the body (see `hold_deferred`).
    fn holding(self, deferred: Option<services::DeferredUntilSent>) -> Reply {
        match (self, deferred) {
            (reply, None) => reply,
            (Reply::App(head, body), Some(deferred)) => Reply::App(
                head,
                ResponseBody::Guarded(Box::new(body), Box::new(deferred)),
            ),
            (Reply::Server(response), deferred) => Reply::Server(hold_deferred(response, deferred)),
        }
    }
}

fn inline_body(body: BodyPlan) -> ResponseBody {
    match body {
        BodyPlan::Full(bytes) => ResponseBody::full(bytes),
        BodyPlan::File(region) => ResponseBody::File(region),
        BodyPlan::Iter(pending) => ResponseBody::Stream(Box::new(InlineIter::new(pending))),
    }
}

/// Attaches the calls a request deferred to its response body: they are released when the
/// body is dropped, after it has been sent.
fn hold_deferred(
    response: Response<ResponseBody>,
    deferred: Option<services::DeferredUntilSent>,
) -> Response<ResponseBody> {
    match deferred {
        None => response,
        Some(deferred) => {
            response.map(|body| ResponseBody::Guarded(Box::new(body), Box::new(deferred)))
        }
    }
}

/// On a Python thread: answer the head now, then keep streaming the rest.
fn pooled_response(
    py: Python<'_>,
    outcome: Outcome,
    reply: oneshot::Sender<Response<ResponseBody>>,
    deferred: Option<services::DeferredUntilSent>,
) {
    let Outcome { head, body } = outcome;
    match body {
        BodyPlan::Full(bytes) => {
            let response = with_head(head, ResponseBody::full(bytes));
            let _ = reply.send(hold_deferred(response, deferred));
        }
        BodyPlan::File(region) => {
            let response = with_head(head, ResponseBody::File(region));
            let _ = reply.send(hold_deferred(response, deferred));
        }
        BodyPlan::Iter(pending) => {
            let (sender, receiver) = mpsc::channel::<Result<Bytes, BoxError>>(STREAM_BUFFER_CHUNKS);
            let body = ResponseBody::Stream(Box::new(ChannelChunks::new(receiver)));
            let _ = reply.send(hold_deferred(with_head(head, body), deferred));
            streaming::pump(py, pending, sender);
        }
    }
}

fn with_head(head: Head, body: ResponseBody) -> Response<ResponseBody> {
    let mut response = Response::new(body);
    *response.status_mut() = head.status;
    let headers = response.headers_mut();
    headers.reserve(head.headers.len() + 1);
    for (name, value) in head.headers.iter() {
        // Checked when the app gave it (`FieldValue::new`), so this cannot fail.
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.append(name.clone(), value);
        }
    }
    if head.close {
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    if let Some(reason) = head.reason {
        if let Ok(reason) = hyper::ext::ReasonPhrase::try_from(reason.into_bytes()) {
            response.extensions_mut().insert(reason);
        }
    }
    response
}

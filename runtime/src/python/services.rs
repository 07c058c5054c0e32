//! The Python face of the shared services: the native module `wsrun._services`.
//!
//! Owns: in-process timers and deferred calls (Fapws3 semantics: they run Python callables on
//! the worker's event loop, are not durable, and each worker runs its own), holding back the
//! calls a request defers until its response has been sent, and the adapters from Python
//! arguments to the durable `services` API (`enqueue`, `every`, `cancel`) with their
//! exceptions. Must not touch: the journal or delivery (`services`), the WASM host.
//!
//! Timers and defers made while apps are imported (in the master, before the fork) wait in a
//! list that every worker copies and starts, so each worker runs them.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};
use tokio::sync::watch;

use super::errors::format_exception;
use crate::config::Schedule;
use crate::services::{self, JobRequest, ServiceError, TimerRequest};

pyo3::create_exception!(
    _services,
    PyServiceError,
    PyException,
    "A wsrun service refused the call."
);
pyo3::create_exception!(
    _services,
    PyUnknownRouteError,
    PyServiceError,
    "No route of this server serves the path."
);

/// A Python callable and its arguments.
struct Call {
    callable: Py<PyAny>,
    args: Py<PyTuple>,
    kwargs: Option<Py<PyDict>>,
}

/// An in-process timer.
struct PyTimer {
    id: u64,
    period: Duration,
    repeat: bool,
    callable: Py<PyAny>,
    cancelled: AtomicBool,
}

enum Task {
    Defer(Call),
    StartTimer(Arc<PyTimer>),
}

/// The worker's task channel, once its runner is up; tasks made before wait in `early`.
static RUNNER: Mutex<Option<UnboundedSender<Task>>> = Mutex::new(None);
static EARLY: Mutex<Vec<Task>> = Mutex::new(Vec::new());
static TIMERS: Mutex<Option<HashMap<u64, Arc<PyTimer>>>> = Mutex::new(None);
static NEXT_TIMER: AtomicU64 = AtomicU64::new(1);
/// Deferred calls not yet run (held back by a request, queued, or waiting for the runner).
static DEFERRED: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// While an app handles a request on this thread: the calls it deferred.
    static REQUEST_DEFERS: RefCell<Option<Vec<Call>>> = const { RefCell::new(None) };
}

fn submit(task: Task) {
    let sender = RUNNER.lock().ok().and_then(|slot| slot.clone());
    let task = match sender {
        Some(sender) => match sender.send(task) {
            Ok(()) => return,
            Err(failed) => failed.0,
        },
        None => task,
    };
    if let Ok(mut early) = EARLY.lock() {
        early.push(task);
    }
}

/// Marks the start of a request on this thread: calls deferred until `end_request` are held.
pub fn begin_request() {
    REQUEST_DEFERS.with(|slot| *slot.borrow_mut() = Some(Vec::new()));
}

/// Ends the request scope; what it deferred is released when the returned guard drops (the
/// front end drops it with the response body, once the body has been sent).
pub fn end_request() -> Option<DeferredUntilSent> {
    let calls = REQUEST_DEFERS.with(|slot| slot.borrow_mut().take())?;
    (!calls.is_empty()).then_some(DeferredUntilSent(calls))
}

/// Calls a request deferred; queued for the runner when dropped.
pub struct DeferredUntilSent(Vec<Call>);

impl Drop for DeferredUntilSent {
    fn drop(&mut self) {
        for call in self.0.drain(..) {
            submit(Task::Defer(call));
        }
    }
}

/// The worker's runner: starts the timers made before it, then runs deferred calls one at a
/// time (yielding between them so requests go on) until the worker drains.
pub async fn run_worker_tasks(mut draining: watch::Receiver<bool>) {
    let (sender, mut tasks) = unbounded_channel();
    let early = EARLY
        .lock()
        .map(|mut e| std::mem::take(&mut *e))
        .unwrap_or_default();
    for task in early {
        let _ = sender.send(task);
    }
    if let Ok(mut slot) = RUNNER.lock() {
        *slot = Some(sender);
    }
    loop {
        let task = tokio::select! {
            task = tasks.recv() => task,
            _ = draining.changed() => None,
        };
        match task {
            Some(Task::Defer(call)) => {
                DEFERRED.fetch_sub(1, Ordering::Relaxed);
                Python::attach(|py| run_call(py, &call, "deferred call"));
                tokio::task::yield_now().await;
            }
            Some(Task::StartTimer(timer)) => {
                tokio::task::spawn_local(run_timer(timer, draining.clone()));
            }
            None => return,
        }
    }
}

async fn run_timer(timer: Arc<PyTimer>, mut draining: watch::Receiver<bool>) {
    let start = tokio::time::Instant::now() + timer.period;
    let mut ticks = tokio::time::interval_at(start, timer.period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = draining.changed() => return,
        }
        if timer.cancelled.load(Ordering::Relaxed) {
            return;
        }
        Python::attach(|py| {
            if let Err(err) = timer.callable.call0(py) {
                let name = callable_name(py, &timer.callable);
                tracing::error!("timer {name} failed:\n{}", format_exception(py, &err));
            }
        });
        if !timer.repeat {
            forget_timer(timer.id);
            return;
        }
    }
}

fn run_call(py: Python<'_>, call: &Call, what: &str) {
    let kwargs = call.kwargs.as_ref().map(|k| k.bind(py));
    if let Err(err) = call.callable.bind(py).call(call.args.bind(py), kwargs) {
        let name = callable_name(py, &call.callable);
        tracing::error!("{what} {name} failed:\n{}", format_exception(py, &err));
    }
}

fn callable_name(py: Python<'_>, callable: &Py<PyAny>) -> String {
    let callable = callable.bind(py);
    callable
        .getattr("__qualname__")
        .or_else(|_| callable.getattr("__name__"))
        .and_then(|n| n.extract::<String>())
        .unwrap_or_else(|_| "<callable>".to_string())
}

fn forget_timer(id: u64) {
    if let Ok(mut timers) = TIMERS.lock() {
        if let Some(map) = timers.as_mut() {
            map.remove(&id);
        }
    }
}

fn seconds(value: f64, what: &str) -> PyResult<Duration> {
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| PyValueError::new_err(format!("{what} must be a number of seconds above 0")))
}

#[pyfunction]
fn add_timer(seconds_: f64, callable: Py<PyAny>, repeat: bool, py: Python<'_>) -> PyResult<u64> {
    if !callable.bind(py).is_callable() {
        return Err(PyValueError::new_err("add_timer needs a callable"));
    }
    let timer = Arc::new(PyTimer {
        id: NEXT_TIMER.fetch_add(1, Ordering::Relaxed),
        period: seconds(seconds_, "a timer's period")?,
        repeat,
        callable,
        cancelled: AtomicBool::new(false),
    });
    if let Ok(mut timers) = TIMERS.lock() {
        timers
            .get_or_insert_with(HashMap::new)
            .insert(timer.id, timer.clone());
    }
    let id = timer.id;
    submit(Task::StartTimer(timer));
    Ok(id)
}

#[pyfunction]
fn cancel_timer(id: u64) -> bool {
    let timer = TIMERS
        .lock()
        .ok()
        .and_then(|mut t| t.as_mut().and_then(|map| map.remove(&id)));
    match timer {
        Some(timer) => !timer.cancelled.swap(true, Ordering::Relaxed),
        None => false,
    }
}

#[pyfunction]
#[pyo3(signature = (callable, args, kwargs=None))]
fn defer(
    callable: Py<PyAny>,
    args: Py<PyTuple>,
    kwargs: Option<Py<PyDict>>,
    py: Python<'_>,
) -> PyResult<()> {
    if !callable.bind(py).is_callable() {
        return Err(PyValueError::new_err("defer needs a callable"));
    }
    let call = Call {
        callable,
        args,
        kwargs,
    };
    DEFERRED.fetch_add(1, Ordering::Relaxed);
    let held = REQUEST_DEFERS.with(|slot| match slot.borrow_mut().as_mut() {
        Some(held) => {
            held.push(call);
            None
        }
        None => Some(call),
    });
    if let Some(call) = held {
        submit(Task::Defer(call));
    }
    Ok(())
}

#[pyfunction]
fn defer_queue_size() -> usize {
    DEFERRED.load(Ordering::Relaxed)
}

fn to_py_error(err: ServiceError) -> PyErr {
    match err {
        ServiceError::NoRoute { .. } => PyUnknownRouteError::new_err(err.to_string()),
        ServiceError::Invalid(message) => PyValueError::new_err(message),
        ServiceError::Journal(_) | ServiceError::Unavailable(_) => {
            PyServiceError::new_err(err.to_string())
        }
    }
}

fn running() -> PyResult<services::Services> {
    services::current().ok_or_else(|| {
        PyServiceError::new_err("the wsrun services are not running in this process")
    })
}

fn job_request(
    path: String,
    body: Vec<u8>,
    method: String,
    headers: Vec<(String, String)>,
    host: Option<String>,
) -> JobRequest {
    JobRequest {
        method: method.to_ascii_uppercase(),
        host: host.unwrap_or_default().to_ascii_lowercase(),
        path,
        headers: headers
            .into_iter()
            .map(|(name, value)| (name, value.into_bytes()))
            .collect(),
        body,
    }
}

#[pyfunction]
#[pyo3(signature = (path, body, method, headers, delay, max_attempts=None, host=None))]
#[allow(clippy::too_many_arguments)] // mirrors the keyword arguments of wsrun.enqueue
fn enqueue(
    py: Python<'_>,
    path: String,
    body: Vec<u8>,
    method: String,
    headers: Vec<(String, String)>,
    delay: f64,
    max_attempts: Option<u32>,
    host: Option<String>,
) -> PyResult<i64> {
    let delay = match delay {
        0.0 => Duration::ZERO,
        d => Duration::try_from_secs_f64(d)
            .map_err(|_| PyValueError::new_err("delay must be a number of seconds, 0 or more"))?,
    };
    let request = job_request(path, body, method, headers, host);
    let services = running()?;
    py.detach(|| services.enqueue_blocking(request, delay, max_attempts, "python"))
        .map_err(to_py_error)
}

#[pyfunction]
#[pyo3(signature = (name, seconds_, path, body, method, headers, host=None))]
fn every(
    py: Python<'_>,
    name: String,
    seconds_: f64,
    path: String,
    body: Vec<u8>,
    method: String,
    headers: Vec<(String, String)>,
    host: Option<String>,
) -> PyResult<()> {
    let timer = TimerRequest {
        name,
        schedule: Schedule::Every(seconds(seconds_, "a timer's period")?),
        delay: Duration::ZERO,
        request: job_request(path, body, method, headers, host),
    };
    let services = running()?;
    py.detach(|| services.set_timer_blocking(timer))
        .map_err(to_py_error)
}

#[pyfunction]
fn cancel(py: Python<'_>, name: String) -> PyResult<bool> {
    let services = running()?;
    py.detach(|| services.cancel_timer_blocking(&name))
        .map_err(to_py_error)
}

/// Builds `wsrun._services` and registers it in `sys.modules` (before any app is imported).
pub fn register(py: Python<'_>) -> PyResult<()> {
    let module = PyModule::new(py, "_services")?;
    module.add_function(wrap_pyfunction!(add_timer, &module)?)?;
    module.add_function(wrap_pyfunction!(cancel_timer, &module)?)?;
    module.add_function(wrap_pyfunction!(defer, &module)?)?;
    module.add_function(wrap_pyfunction!(defer_queue_size, &module)?)?;
    module.add_function(wrap_pyfunction!(enqueue, &module)?)?;
    module.add_function(wrap_pyfunction!(every, &module)?)?;
    module.add_function(wrap_pyfunction!(cancel, &module)?)?;
    module.add("ServiceError", py.get_type::<PyServiceError>())?;
    module.add("UnknownRouteError", py.get_type::<PyUnknownRouteError>())?;
    let modules = py.import("sys")?.getattr("modules")?;
    modules.set_item("wsrun._services", module)?;
    Ok(())
}

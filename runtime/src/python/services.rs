//! The Python face of the shared services: the native module `wsrun._services`.
//!
//! Owns: the module's state (`ModuleState`, stored on the module as `_state`: the process's
//! `Services`, installed by the start-up code and replaced by each worker, and its in-process
//! tasks), in-process timers and deferred calls (Fapws3 semantics: they run Python callables
//! on the worker's event loop, are not durable, and each worker runs its own), holding back
//! the calls a request defers until its response has been sent, and the adapters from Python
//! arguments to the durable `services` API (`enqueue`, `every`, `cancel`) with their
//! exceptions. Must not touch: the store or delivery (`services`), the WASM host.
//!
//! Timers and defers made while apps are imported (in the master, before the fork) wait in
//! the state's `early` list, which every forked worker inherits and starts, so each worker
//! runs them. Nothing here is a Rust `static`: a request's deferred calls are held in a
//! thread-local only for the length of that request on its Python thread.

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
use crate::services::{Caller, JobRequest, ServiceError, Services, TimerRequest};

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

/// Where the module lives in `sys.modules`, and its state attribute.
const MODULE: &str = "wsrun._services";
const STATE: &str = "_state";

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

/// The in-process timers and deferred calls of this process.
#[derive(Default)]
struct Tasks {
    /// The worker's task channel, once its runner is up; tasks made before wait in `early`.
    runner: Mutex<Option<UnboundedSender<Task>>>,
    early: Mutex<Vec<Task>>,
    timers: Mutex<HashMap<u64, Arc<PyTimer>>>,
    next_timer: AtomicU64,
    /// Deferred calls not yet run (held back by a request, queued, or waiting for the runner).
    deferred: AtomicUsize,
}

impl Tasks {
    fn submit(&self, task: Task) {
        let sender = self.runner.lock().ok().and_then(|slot| slot.clone());
        let task = match sender {
            Some(sender) => match sender.send(task) {
                Ok(()) => return,
                Err(failed) => failed.0,
            },
            None => task,
        };
        if let Ok(mut early) = self.early.lock() {
            early.push(task);
        }
    }

    fn forget_timer(&self, id: u64) {
        if let Ok(mut timers) = self.timers.lock() {
            timers.remove(&id);
        }
    }
}

/// The state of `wsrun._services` in this process.
#[pyclass(frozen)]
struct ModuleState {
    /// The services calls go to: the master's while apps are imported, then the worker's.
    services: Mutex<Option<Services>>,
    tasks: Arc<Tasks>,
}

impl ModuleState {
    fn of<'py>(module: &Bound<'py, PyModule>) -> PyResult<Bound<'py, ModuleState>> {
        Ok(module.getattr(STATE)?.cast_into::<ModuleState>()?)
    }

    fn services(&self) -> PyResult<Services> {
        let services = self.services.lock().ok().and_then(|s| s.clone());
        services.ok_or_else(|| {
            PyServiceError::new_err("the wsrun services are not running in this process")
        })
    }
}

/// The module's state, found through `sys.modules` (registered before any app is imported).
fn module_state(py: Python<'_>) -> PyResult<Bound<'_, ModuleState>> {
    let module = py
        .import("sys")?
        .getattr("modules")?
        .get_item(MODULE)?
        .cast_into::<PyModule>()?;
    ModuleState::of(&module)
}

/// Makes `services` the ones `wsrun._services` calls go to in this process (the start-up
/// code's during imports, then each worker's own); returns the process's in-process tasks,
/// for a worker to run.
pub fn install(services: Services) -> Result<PyTasks, String> {
    Python::attach(|py| {
        let state = module_state(py).map_err(|e| format_exception(py, &e))?;
        let state = state.get();
        if let Ok(mut slot) = state.services.lock() {
            *slot = Some(services);
        }
        Ok(PyTasks(state.tasks.clone()))
    })
}

/// A request's deferred calls while it runs on this thread (`None`: no request is running).
struct Held {
    calls: Vec<Call>,
    tasks: Option<Arc<Tasks>>,
}

thread_local! {
    /// While an app handles a request on this thread: the calls it deferred.
    static REQUEST_DEFERS: RefCell<Option<Held>> = const { RefCell::new(None) };
}

/// Marks the start of a request on this thread: calls deferred until `end_request` are held.
pub fn begin_request() {
    REQUEST_DEFERS.with(|slot| {
        *slot.borrow_mut() = Some(Held {
            calls: Vec::new(),
            tasks: None,
        })
    });
}

/// Ends the request scope; what it deferred is released when the returned guard drops (the
/// front end drops it with the response body, once the body has been sent).
pub fn end_request() -> Option<DeferredUntilSent> {
    let held = REQUEST_DEFERS.with(|slot| slot.borrow_mut().take())?;
    let tasks = held.tasks?;
    (!held.calls.is_empty()).then_some(DeferredUntilSent {
        calls: held.calls,
        tasks,
    })
}

/// Calls a request deferred; queued for the runner when dropped.
pub struct DeferredUntilSent {
    calls: Vec<Call>,
    tasks: Arc<Tasks>,
}

impl Drop for DeferredUntilSent {
    fn drop(&mut self) {
        for call in self.calls.drain(..) {
            self.tasks.submit(Task::Defer(call));
        }
    }
}

/// The in-process timers and deferred calls of this process, for its worker to run.
pub struct PyTasks(Arc<Tasks>);

impl PyTasks {
    /// The worker's runner: starts the timers made before it, then runs deferred calls one at
    /// a time (yielding between them so requests go on) until the worker drains.
    pub async fn run(self, mut draining: watch::Receiver<bool>) {
        let tasks = self.0;
        let (sender, mut queue) = unbounded_channel();
        let early = tasks
            .early
            .lock()
            .map(|mut e| std::mem::take(&mut *e))
            .unwrap_or_default();
        for task in early {
            let _ = sender.send(task);
        }
        if let Ok(mut slot) = tasks.runner.lock() {
            *slot = Some(sender);
        }
        loop {
            let task = tokio::select! {
                task = queue.recv() => task,
                _ = draining.changed() => None,
            };
            match task {
                Some(Task::Defer(call)) => {
                    tasks.deferred.fetch_sub(1, Ordering::Relaxed);
                    Python::attach(|py| run_call(py, &call, "deferred call"));
                    tokio::task::yield_now().await;
                }
                Some(Task::StartTimer(timer)) => {
                    let run = run_timer(tasks.clone(), timer, draining.clone());
                    tokio::task::spawn_local(run);
                }
                None => return,
            }
        }
    }
}

async fn run_timer(tasks: Arc<Tasks>, timer: Arc<PyTimer>, mut draining: watch::Receiver<bool>) {
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
            tasks.forget_timer(timer.id);
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

fn seconds(value: f64, what: &str) -> PyResult<Duration> {
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| PyValueError::new_err(format!("{what} must be a number of seconds above 0")))
}

#[pyfunction]
#[pyo3(pass_module)]
fn add_timer(
    module: &Bound<'_, PyModule>,
    seconds_: f64,
    callable: Py<PyAny>,
    repeat: bool,
) -> PyResult<u64> {
    if !callable.bind(module.py()).is_callable() {
        return Err(PyValueError::new_err("add_timer needs a callable"));
    }
    let state = ModuleState::of(module)?;
    let tasks = &state.get().tasks;
    let timer = Arc::new(PyTimer {
        id: tasks.next_timer.fetch_add(1, Ordering::Relaxed) + 1,
        period: seconds(seconds_, "a timer's period")?,
        repeat,
        callable,
        cancelled: AtomicBool::new(false),
    });
    if let Ok(mut timers) = tasks.timers.lock() {
        timers.insert(timer.id, timer.clone());
    }
    let id = timer.id;
    tasks.submit(Task::StartTimer(timer));
    Ok(id)
}

#[pyfunction]
#[pyo3(pass_module)]
fn cancel_timer(module: &Bound<'_, PyModule>, id: u64) -> PyResult<bool> {
    let state = ModuleState::of(module)?;
    let timer = state
        .get()
        .tasks
        .timers
        .lock()
        .ok()
        .and_then(|mut map| map.remove(&id));
    Ok(match timer {
        Some(timer) => !timer.cancelled.swap(true, Ordering::Relaxed),
        None => false,
    })
}

#[pyfunction]
#[pyo3(pass_module, signature = (callable, args, kwargs=None))]
fn defer(
    module: &Bound<'_, PyModule>,
    callable: Py<PyAny>,
    args: Py<PyTuple>,
    kwargs: Option<Py<PyDict>>,
) -> PyResult<()> {
    if !callable.bind(module.py()).is_callable() {
        return Err(PyValueError::new_err("defer needs a callable"));
    }
    let call = Call {
        callable,
        args,
        kwargs,
    };
    let state = ModuleState::of(module)?;
    let tasks = &state.get().tasks;
    tasks.deferred.fetch_add(1, Ordering::Relaxed);
    let not_held = REQUEST_DEFERS.with(|slot| match slot.borrow_mut().as_mut() {
        Some(held) => {
            held.calls.push(call);
            held.tasks.get_or_insert_with(|| tasks.clone());
            None
        }
        None => Some(call),
    });
    if let Some(call) = not_held {
        tasks.submit(Task::Defer(call));
    }
    Ok(())
}

#[pyfunction]
#[pyo3(pass_module)]
fn defer_queue_size(module: &Bound<'_, PyModule>) -> PyResult<usize> {
    let state = ModuleState::of(module)?;
    Ok(state.get().tasks.deferred.load(Ordering::Relaxed))
}

fn to_py_error(err: ServiceError) -> PyErr {
    match err {
        ServiceError::NoRoute { .. } => PyUnknownRouteError::new_err(err.to_string()),
        ServiceError::Invalid(message) | ServiceError::OverLimit(message) => {
            PyValueError::new_err(message)
        }
        ServiceError::Store(_) | ServiceError::Unavailable(_) | ServiceError::OverQuota(_) => {
            PyServiceError::new_err(err.to_string())
        }
    }
}

fn running(module: &Bound<'_, PyModule>) -> PyResult<Services> {
    ModuleState::of(module)?.get().services()
}

fn job_request(
    path: String,
    body: Vec<u8>,
    method: String,
    headers: Vec<(String, String)>,
    host: Option<String>,
) -> JobRequest {
    let headers = headers
        .into_iter()
        .map(|(name, value)| (name, value.into_bytes()))
        .collect();
    JobRequest::new(&method, host.as_deref().unwrap_or(""), path, headers, body)
}

#[pyfunction]
#[pyo3(pass_module, signature = (path, body, method, headers, delay, max_attempts=None, host=None))]
#[allow(clippy::too_many_arguments)] // mirrors the keyword arguments of wsrun.enqueue
fn enqueue(
    module: &Bound<'_, PyModule>,
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
    let services = running(module)?;
    module
        .py()
        .detach(|| {
            services.enqueue_blocking(request, delay, max_attempts, "python", &Caller::operator())
        })
        .map_err(to_py_error)
}

#[pyfunction]
#[pyo3(pass_module, signature = (name, seconds_, path, body, method, headers, host=None))]
#[allow(clippy::too_many_arguments)] // mirrors the keyword arguments of wsrun.every
fn every(
    module: &Bound<'_, PyModule>,
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
    let services = running(module)?;
    module
        .py()
        .detach(|| services.set_timer_blocking(timer, &Caller::operator()))
        .map_err(to_py_error)
}

#[pyfunction]
#[pyo3(pass_module)]
fn cancel(module: &Bound<'_, PyModule>, name: String) -> PyResult<bool> {
    let services = running(module)?;
    module
        .py()
        .detach(|| services.cancel_timer_blocking(&name, &Caller::operator()))
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
    let state = ModuleState {
        services: Mutex::new(None),
        tasks: Arc::new(Tasks::default()),
    };
    module.add(STATE, Bound::new(py, state)?)?;
    let modules = py.import("sys")?.getattr("modules")?;
    modules.set_item(MODULE, module)?;
    Ok(())
}

//! The admin listener: `GET /metrics` (Prometheus text) and `GET /status` (JSON), served by
//! the master process from the metrics segment every worker counts into.
//!
//! Owns: binding the admin address (`bind`) apart from serving an already bound listener
//! (`serve`: a re-executed master is handed the socket and the segment's fd by name), the one
//! admin thread (a blocking accept loop; one short request per connection, answered and
//! closed; 404 for any other path, 405 for any other method), and its place beside `fork()`
//! (`gate`). The page bodies: `render` (metrics) and `status`. Must not touch: the public
//! listeners (the admin address never serves routes, and no public listener serves these
//! pages), the workers, or the counters' layout (`crate::metrics`).
//!
//! Why a plain thread and not hyper on a runtime: the master forks, and a thread that may
//! hold a lock at the fork is only safe when every lock-taking step sits inside the fork gate
//! (`gate`). A blocking loop over stack buffers makes that boundary plain; two pages answered
//! with `Connection: close` need nothing more.

mod gate;
mod status;

pub use gate::ForkGate;
pub use status::{RouteDesc, StatusInfo};

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use std::os::fd::{AsRawFd, RawFd};

use super::handler::Handler;
use crate::config::Config;
use crate::handover::{Inherited, Outgoing};
use crate::metrics::{render, MetricsSegment, MAX_WORKERS};
use crate::router::Router;
use crate::services::job_figures;

/// How long a client may take to send its request, or to take the answer.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(2);
/// Request heads larger than this get 431.
const HEAD_MAX: usize = 4096;

/// What the admin thread serves from.
pub struct Admin {
    pub segment: &'static MetricsSegment,
    pub status: StatusInfo,
    pub gate: Arc<ForkGate>,
}

/// A running admin listener, as the master's fork hooks and workers need it.
pub struct Started {
    pub segment: &'static MetricsSegment,
    pub gate: Arc<ForkGate>,
    /// The listener's fd, which a forked worker closes.
    pub fd: RawFd,
}

/// When `[admin] bind` is set: creates the metrics segment (before any fork), gives every
/// route of `router` its label slot, binds the admin address and starts the admin thread.
/// After a live reload both come from the old image instead (`inherited`: the segment as
/// "metrics", so counters go on; the socket as "admin", so the address is never unbound),
/// and both are registered in `outgoing` for the next one.
pub fn start(
    config: &Config,
    router: &Router<Handler>,
    inherited: &mut Inherited,
    outgoing: &mut Outgoing,
) -> Result<Option<Started>, String> {
    let Some(admin) = &config.server.admin else {
        return Ok(None);
    };
    // `build_config` checked flags and the file; a script's `SERVER` is only known now.
    if let Some(public) = admin.clashes_with(&config.server.bind_addrs()) {
        let message = format!(
            "the admin listener {} would share the public address {public}",
            admin.addr
        );
        return Err(admin.error(message).to_string());
    }
    if config.server.workers > MAX_WORKERS {
        return Err(format!(
            "the admin listener's metrics have room for {MAX_WORKERS} workers, not {}",
            config.server.workers
        ));
    }
    let segment = inherited_segment(inherited)
        .map_or_else(|| MetricsSegment::create(MAX_WORKERS), Ok)
        .map_err(|e| format!("cannot create the metrics segment: {e}"))?;
    // The master's for its whole life, and every forked worker's copy of the mapping too.
    let segment: &'static MetricsSegment = Box::leak(Box::new(segment));
    let labels = &segment.layout().labels;
    router.label_routes(|prefix, tenant| labels.claim(prefix, tenant.unwrap_or("")));
    let listener = match inherited_listener(inherited, admin.addr) {
        Some(listener) => listener,
        None => bind(admin.addr).map_err(|e| e.to_string())?,
    };
    let fd = listener.as_raw_fd();
    outgoing.register(HANDOVER_METRICS, segment.fd().as_raw_fd());
    outgoing.register(HANDOVER_ADMIN, fd);
    let gate = Arc::new(ForkGate::default());
    let status = StatusInfo::of(config, router);
    serve(
        listener,
        Admin {
            segment,
            status,
            gate: gate.clone(),
        },
    )
    .map_err(|e| format!("cannot start the admin listener: {e}"))?;
    Ok(Some(Started { segment, gate, fd }))
}

/// The names of the admin socket and the metrics segment in a reload's handover.
const HANDOVER_ADMIN: &str = "admin";
const HANDOVER_METRICS: &str = "metrics";

/// The old image's metrics segment, if it handed one over that maps cleanly.
fn inherited_segment(inherited: &mut Inherited) -> Option<MetricsSegment> {
    let fd = inherited.take(HANDOVER_METRICS)?;
    match MetricsSegment::from_fd(fd) {
        Ok(segment) => Some(segment),
        Err(err) => {
            tracing::warn!("the inherited metrics segment is unusable ({err}); counting anew");
            None
        }
    }
}

/// The old image's admin socket, if it listens on `addr` (else it is closed here, and the
/// caller binds the new address).
fn inherited_listener(inherited: &mut Inherited, addr: SocketAddr) -> Option<TcpListener> {
    let listener = TcpListener::from(inherited.take(HANDOVER_ADMIN)?);
    match listener.local_addr() {
        Ok(bound) if bound == addr => Some(listener),
        _ => None,
    }
}

/// Binds the admin address (not `SO_REUSEPORT`: a second server on it is an error).
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    TcpListener::bind(addr).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot bind the admin listener {addr}: {e}"),
        )
    })
}

/// Starts the admin thread on `listener`. Spawned with every signal blocked, so the master's
/// `sigtimedwait` still receives the signals meant for it.
pub fn serve(listener: TcpListener, admin: Admin) -> io::Result<()> {
    let addr = listener.local_addr()?;
    let spawned = with_signals_blocked(|| {
        std::thread::Builder::new()
            .name("wsrun-admin".to_string())
            .spawn(move || accept_loop(listener, admin))
    });
    spawned?;
    tracing::info!("admin listener on http://{addr} (/metrics, /status)");
    Ok(())
}

/// Runs `spawn` with all signals blocked in this thread (a new thread inherits the mask).
fn with_signals_blocked<T>(spawn: impl FnOnce() -> T) -> T {
    // SAFETY: sigset_t values filled by sigfillset/pthread_sigmask before use.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_BLOCK, &all, &mut old);
        let out = spawn();
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        out
    }
}

fn accept_loop(listener: TcpListener, admin: Admin) {
    loop {
        match listener.accept() {
            Ok((stream, _)) => answer(stream, &admin),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                {
                    let _inside = admin.gate.enter();
                    tracing::warn!("admin listener: accept failed: {e}");
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// Which page a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Page {
    Metrics,
    Status,
    NotFound,
    BadMethod,
    BadRequest,
}

/// Reads one request head into a stack buffer (no allocation outside the gate), then answers
/// it inside the gate and closes the connection.
fn answer(mut stream: TcpStream, admin: &Admin) {
    let _ = stream.set_read_timeout(Some(CLIENT_TIMEOUT));
    let _ = stream.set_write_timeout(Some(CLIENT_TIMEOUT));
    let mut buf = [0u8; HEAD_MAX];
    let mut len = 0;
    let page = loop {
        match stream.read(&mut buf[len..]) {
            Ok(0) | Err(_) => return,
            Ok(n) => len += n,
        }
        match page_of(&buf[..len]) {
            Some(page) => break page,
            None if len == buf.len() => break Page::BadRequest,
            None => {}
        }
    };
    let _inside = admin.gate.enter();
    let (status, content_type, body) = respond(page, admin);
    let head = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body.as_bytes());
}

/// The page of a complete head (`None`: the head is not complete yet).
fn page_of(head: &[u8]) -> Option<Page> {
    let mut fields = [httparse::EMPTY_HEADER; 32];
    let mut request = httparse::Request::new(&mut fields);
    match request.parse(head) {
        Ok(httparse::Status::Partial) => None,
        Err(_) => Some(Page::BadRequest),
        Ok(httparse::Status::Complete(_)) => {
            let path = request.path.unwrap_or("");
            let path = path.split_once('?').map_or(path, |(p, _)| p);
            Some(match (request.method, path) {
                (Some("GET"), "/metrics") => Page::Metrics,
                (Some("GET"), "/status") => Page::Status,
                (Some("GET"), _) => Page::NotFound,
                _ => Page::BadMethod,
            })
        }
    }
}

/// Status line, content type and body of `page`.
fn respond(page: Page, admin: &Admin) -> (&'static str, &'static str, String) {
    const TEXT: &str = "text/plain; charset=utf-8";
    match page {
        Page::Metrics => {
            let jobs = jobs(admin);
            let text = render::render(
                admin.segment,
                admin.status.workers,
                Some(admin.status.master_pid),
                jobs.ok(),
            );
            ("200 OK", "text/plain; version=0.0.4; charset=utf-8", text)
        }
        Page::Status => {
            let body = status::json(&admin.status, admin.segment, jobs(admin));
            ("200 OK", "application/json", body)
        }
        Page::NotFound => (
            "404 Not Found",
            TEXT,
            "Not Found: /metrics or /status\n".into(),
        ),
        Page::BadMethod => (
            "405 Method Not Allowed",
            TEXT,
            "Method Not Allowed\n".into(),
        ),
        Page::BadRequest => ("400 Bad Request", TEXT, "Bad Request\n".into()),
    }
}

/// The job store's figures now (the error, also logged, when the store cannot be read).
fn jobs(admin: &Admin) -> Result<render::JobFigures, String> {
    let status = &admin.status;
    job_figures::read(&status.state_dir, status.jobs_backend.as_ref()).inspect_err(|e| {
        tracing::warn!("admin listener: cannot read the job store: {e}");
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_map_to_pages_only_when_complete() {
        assert_eq!(page_of(b"GET /metrics HTTP/1.1\r\n"), None);
        assert_eq!(
            page_of(b"GET /metrics HTTP/1.1\r\n\r\n"),
            Some(Page::Metrics)
        );
        assert_eq!(
            page_of(b"GET /status?x=1 HTTP/1.0\r\nHost: a\r\n\r\n"),
            Some(Page::Status)
        );
        assert_eq!(page_of(b"GET / HTTP/1.1\r\n\r\n"), Some(Page::NotFound));
        assert_eq!(
            page_of(b"POST /metrics HTTP/1.1\r\n\r\n"),
            Some(Page::BadMethod)
        );
        assert_eq!(
            page_of(b"\x01\x02 nonsense\r\n\r\n"),
            Some(Page::BadRequest)
        );
    }
}

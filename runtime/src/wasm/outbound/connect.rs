//! Reaching an allowed origin: resolve in the host, keep only the addresses that may be
//! reached, connect to one of those (never resolving again), TLS for `https`, an HTTP/1
//! handshake, and the exchange itself, all inside the bounds the caller gives.
//!
//! Owns: the worker-wide cap on name resolutions in flight (`MAX_RESOLVING`), the TLS client
//! configuration (webpki roots, as `default_send_request` has it), `Bounds` and `Target`, and
//! the mapping of what fails to the `wasi:http` error the guest sees. Must not touch: the
//! allow-list or the caps (`mod.rs` decided before), the log, or the guest's resources.

use std::future::{poll_fn, Future};
use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{ready, Poll};
use std::time::Duration;

use http::{Request, Response};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::time::error::Elapsed;
use tokio::time::{timeout_at, Instant};
use tokio_rustls::TlsConnector;
use wasmtime_wasi_http::{Error as HttpError, WasiBody};

use super::address::{non_public, Host};
use super::response::GuardedBody;
use super::share::OutboundPermit;

/// Name resolutions in flight per worker, whatever the number of tenants. Each takes a
/// blocking thread (getaddrinfo) until it returns, even when its request gave up: the permit
/// lives in that thread. The resource it guards, tokio's blocking pool, is process-wide too.
const MAX_RESOLVING: usize = 64;
static RESOLVING: Semaphore = Semaphore::const_new(MAX_RESOLVING);

/// Where one allowed request goes.
pub struct Target {
    pub tls: bool,
    pub host: Host,
    pub port: u16,
    /// The origin names this very IP literal: its class does not matter.
    pub any_address: bool,
}

/// Time limits of one outgoing request (already capped by the instance's deadline).
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// Resolve, connect, TLS and HTTP handshake end by then.
    pub connect_by: Instant,
    /// The guest's own limit from the request sent to its response head, if it set one.
    pub first_byte: Option<Duration>,
    /// The guest's own limit between body frames, if it set one.
    pub between_bytes: Option<Duration>,
    /// The instance's deadline: nothing of this request outlives it.
    pub deadline: Instant,
}

/// Why a request did not get through.
#[derive(Debug)]
pub enum SendError {
    /// Every address the host resolved to is one the guest may not reach.
    NotPublic {
        addr: IpAddr,
        why: &'static str,
    },
    Http(HttpError),
}

impl From<HttpError> for SendError {
    fn from(err: HttpError) -> Self {
        SendError::Http(err)
    }
}

type IoFuture = Box<dyn Future<Output = Result<(), HttpError>> + Send>;

trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

/// Sends `request` to `target`; `permit` lives until the response body ends or is dropped.
pub async fn send(
    mut request: Request<WasiBody>,
    target: Target,
    bounds: Bounds,
    permit: OutboundPermit,
) -> Result<(Response<WasiBody>, IoFuture), SendError> {
    let stream = open(&target, bounds.connect_by).await?;
    let handshake = http1::Builder::new().handshake(TokioIo::new(stream));
    let (mut sender, conn) = timeout_at(bounds.connect_by, handshake)
        .await
        .map_err(|_| HttpError::ConnectionTimeout)?
        .map_err(HttpError::from)?;
    // On the wire the target is origin-form: the scheme and authority are not a proxy's.
    *request.uri_mut() = origin_form(request.uri());
    let mut conn: Option<Pin<Box<Connection>>> = Some(Box::pin(timeout_at(bounds.deadline, conn)));
    let first_byte_by = bounds.first_byte.map_or(bounds.deadline, |wait| {
        within(Instant::now(), wait, bounds.deadline)
    });
    let exchange = timeout_at(first_byte_by, sender.send_request(request));
    let mut exchange = std::pin::pin!(exchange);
    // Drive the connection while waiting for the response head (as `default_send_request`).
    let head = poll_fn(|cx| {
        if let Poll::Ready(head) = exchange.as_mut().poll(cx) {
            return Poll::Ready(head_result(head));
        }
        let Some(running) = conn.as_mut() else {
            return Poll::Pending;
        };
        let done = ready!(running.as_mut().poll(cx));
        conn = None;
        match done {
            Ok(Ok(())) => exchange.as_mut().poll(cx).map(head_result),
            Ok(Err(err)) => Poll::Ready(Err(hyper_error(err))),
            Err(_) => Poll::Ready(Err(HttpError::HttpResponseTimeout)),
        }
    })
    .await?;
    let body = GuardedBody::new(bounds.between_bytes, bounds.deadline, permit);
    let response = head.map(|incoming| body.wrap(incoming));
    let io: IoFuture = Box::new(async move {
        let Some(conn) = conn else {
            return Ok(());
        };
        match conn.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => Err(hyper_error(err)),
            Err(_) => Err(HttpError::HttpResponseTimeout),
        }
    });
    Ok((response, io))
}

type Connection = tokio::time::Timeout<http1::Connection<TokioIo<Box<dyn Stream>>, WasiBody>>;
type Head = Result<hyper::Response<hyper::body::Incoming>, HttpError>;

/// The response head, or why it did not come in time.
fn head_result(
    head: Result<hyper::Result<hyper::Response<hyper::body::Incoming>>, Elapsed>,
) -> Head {
    match head {
        Ok(Ok(response)) => Ok(response),
        Ok(Err(err)) => Err(hyper_error(err)),
        Err(_) => Err(HttpError::ConnectionReadTimeout),
    }
}

/// `now + wait`, but never past `cap` (nor overflowing on a guest's huge value).
pub fn within(now: Instant, wait: Duration, cap: Instant) -> Instant {
    now.checked_add(wait).map_or(cap, |t| t.min(cap))
}

fn hyper_error(err: hyper::Error) -> HttpError {
    if err.is_timeout() {
        HttpError::HttpResponseTimeout
    } else {
        HttpError::from(err)
    }
}

/// `/path?query` of `uri` (or `/`).
fn origin_form(uri: &http::Uri) -> http::Uri {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    path.parse().unwrap_or_else(|_| http::Uri::from_static("/"))
}

/// A connected (and for `https`, TLS-wrapped) stream to an address that may be reached.
async fn open(target: &Target, by: Instant) -> Result<Box<dyn Stream>, SendError> {
    let candidates = match &target.host {
        Host::Ip(ip) => vec![*ip],
        Host::Name(name) => resolve(name, target.port, by).await?,
    };
    let mut refused = None;
    let allowed: Vec<IpAddr> = candidates
        .into_iter()
        .filter(|ip| match non_public(*ip) {
            Some(why) if !target.any_address => {
                refused.get_or_insert((*ip, why));
                false
            }
            _ => true,
        })
        .collect();
    if allowed.is_empty() {
        return Err(match refused {
            Some((addr, why)) => SendError::NotPublic { addr, why },
            None => SendError::Http(HttpError::DestinationNotFound),
        });
    }
    let tcp = connect(&allowed, target.port, by).await?;
    let _ = tcp.set_nodelay(true);
    if !target.tls {
        return Ok(Box::new(tcp));
    }
    let name = server_name(&target.host)?;
    let tls = timeout_at(by, TlsConnector::from(tls_config()).connect(name, tcp))
        .await
        .map_err(|_| HttpError::ConnectionTimeout)?
        .map_err(HttpError::Tls)?;
    Ok(Box::new(tls))
}

/// The addresses of `name`, looked up on a blocking thread under the worker-wide cap.
async fn resolve(name: &str, port: u16, by: Instant) -> Result<Vec<IpAddr>, HttpError> {
    let permit = timeout_at(by, RESOLVING.acquire())
        .await
        .map_err(|_| HttpError::DnsTimeout)?
        .map_err(|_| HttpError::InternalError(Some("resolver closed".into())))?;
    let name = name.to_string();
    let lookup = tokio::task::spawn_blocking(move || {
        let _held = permit;
        (name.as_str(), port)
            .to_socket_addrs()
            .map(|found| found.map(|a| a.ip()).collect::<Vec<_>>())
    });
    match timeout_at(by, lookup).await {
        Err(_) => Err(HttpError::DnsTimeout),
        Ok(Err(join)) => Err(HttpError::InternalError(Some(join.to_string()))),
        Ok(Ok(Err(err))) => Err(HttpError::DnsError {
            rcode: Some(err.to_string()),
            info_code: None,
        }),
        Ok(Ok(Ok(found))) if found.is_empty() => Err(HttpError::DestinationNotFound),
        Ok(Ok(Ok(found))) => Ok(found),
    }
}

/// The first of `addrs` that accepts a connection by `by`.
async fn connect(addrs: &[IpAddr], port: u16, by: Instant) -> Result<TcpStream, HttpError> {
    let mut last = None;
    for ip in addrs {
        match timeout_at(by, TcpStream::connect(SocketAddr::new(*ip, port))).await {
            Err(_) => return Err(HttpError::ConnectionTimeout),
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(err)) => last = Some(err),
        }
    }
    Err(match last {
        Some(err) if err.kind() == io::ErrorKind::ConnectionRefused => HttpError::ConnectionRefused,
        Some(err) => HttpError::Connect(err),
        None => HttpError::DestinationNotFound,
    })
}

/// The name the certificate must carry: the host the allow-list checked.
fn server_name(host: &Host) -> Result<ServerName<'static>, HttpError> {
    match host {
        Host::Ip(ip) => Ok(ServerName::IpAddress((*ip).into())),
        Host::Name(name) => ServerName::try_from(name.clone())
            .map_err(|err| HttpError::Tls(io::Error::new(io::ErrorKind::InvalidInput, err))),
    }
}

/// Built once per worker: the webpki roots, no client certificate.
fn tls_config() -> Arc<ClientConfig> {
    static CONFIG: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.into(),
            };
            let config = ClientConfig::builder()
                .with_root_certificates(roots)
                .with_no_client_auth();
            Arc::new(config)
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_form_drops_scheme_and_authority() {
        let uri: http::Uri = "http://x.test:8080/a/b?c=1".parse().unwrap();
        assert_eq!(origin_form(&uri), "/a/b?c=1");
        let bare: http::Uri = "http://x.test".parse().unwrap();
        assert_eq!(origin_form(&bare), "/");
    }

    #[tokio::test]
    async fn non_public_addresses_are_refused_unless_literal() {
        let by = Instant::now() + Duration::from_secs(5);
        let target = |any_address| Target {
            tls: false,
            host: Host::Ip("127.0.0.1".parse().unwrap()),
            port: 9,
            any_address,
        };
        match open(&target(false), by).await {
            Err(SendError::NotPublic { why, .. }) => assert_eq!(why, "loopback"),
            other => panic!("{:?}", other.err()),
        }
        // As a literal it is tried (port 9 on loopback: nothing listens, refused).
        match open(&target(true), by).await {
            Err(SendError::Http(HttpError::ConnectionRefused)) => {}
            other => panic!("{:?}", other.err()),
        }
    }
}

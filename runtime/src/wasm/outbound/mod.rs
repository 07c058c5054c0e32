//! Outgoing HTTP requests of one instance (`wasi:http/outgoing-handler`): who may be reached,
//! how many at once, and for how long.
//!
//! Owns: `OutboundHooks` (the instance's `WasiHttpHooks`): the authority normalised and
//! checked against the route's `allow_outbound` (`address`), the caps `outbound_per_request`,
//! the route's and the tenant's `max_outbound` (`share`; over a cap: refused at once with
//! `connection-limit-reached`, logged once per instance), the time bounds (`connect_timeout`,
//! the guest's options, never past the instance's deadline), and the log lines that name the
//! route and the limit. Files: `address` (authority, origin match, address classes), `share`
//! (the caps and permits), `connect` (resolve, filter, connect, TLS, HTTP/1 exchange),
//! `response` (the body the guest reads, holding the permit). Must not touch: the instance's
//! store, the engine, or incoming requests.

mod address;
mod connect;
mod response;
mod share;

pub use share::{OutboundShare, TenantCap};

use std::future::Future;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

use http::Request;
use tokio::time::Instant;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use super::route_info::RouteInfo;
use crate::config::format_duration;
use address::{allowed_by, Authority, Host, Match};
use connect::{within, Bounds, SendError, Target};
use share::OutboundPermit;

type IoFuture = Box<dyn Future<Output = Result<(), HttpError>> + Send>;
type SendResult = Result<(http::Response<WasiBody>, IoFuture), HttpError>;

/// The `wasi:http` hooks of one instance.
pub struct OutboundHooks {
    route: Arc<RouteInfo>,
    /// When the instance's `timeout` ends: no outgoing request lasts longer.
    deadline: Instant,
    /// Requests of this instance in flight (made at the first one: most guests make none).
    in_flight: Option<Arc<AtomicUsize>>,
    /// A cap refusal was logged already (once per instance, however many follow).
    told_full: bool,
}

impl OutboundHooks {
    /// Hooks for an instance of `route` that started now.
    pub fn new(route: &Arc<RouteInfo>) -> OutboundHooks {
        let now = Instant::now();
        OutboundHooks {
            route: route.clone(),
            deadline: now
                .checked_add(route.limits.timeout)
                .unwrap_or(now + Duration::from_secs(86_400 * 365)),
            in_flight: None,
            told_full: false,
        }
    }

    /// The checked target of `request` and its slot, or the error the guest gets.
    fn admit(
        &mut self,
        request: &Request<WasiBody>,
    ) -> Result<(Authority, Target, OutboundPermit), HttpError> {
        let uri = request.uri();
        let scheme = uri.scheme_str().unwrap_or_default();
        let raw = uri.authority().map_or("", |a| a.as_str());
        let authority = Authority::parse(scheme, raw).map_err(|why| {
            tracing::warn!(
                "{}: outgoing request to {scheme}://{raw} refused ({why})",
                self.route.label()
            );
            HttpError::HttpRequestUriInvalid
        })?;
        let allowed = allowed_by(&self.route.limits.allow_outbound, &authority);
        if allowed == Match::No {
            tracing::warn!(
                "{}: outgoing request to {authority} refused (not in allow_outbound)",
                self.route.label()
            );
            return Err(HttpError::HttpRequestDenied);
        }
        let permit = self.take_slot()?;
        let target = Target {
            tls: authority.scheme == "https",
            host: authority.host.clone(),
            port: authority.port,
            any_address: allowed == Match::Literal,
        };
        Ok((authority, target, permit))
    }

    /// A slot under the instance's, the route's and the tenant's caps.
    fn take_slot(&mut self) -> Result<OutboundPermit, HttpError> {
        let in_flight = self.in_flight.get_or_insert_with(Default::default);
        let per_instance = self.route.limits.outbound_per_request;
        self.route
            .outbound
            .try_acquire(in_flight, per_instance)
            .map_err(|full| {
                if !std::mem::replace(&mut self.told_full, true) {
                    tracing::warn!(
                        "{}: outgoing request refused: {full} is reached \
                         (connection-limit-reached; further refusals of this instance not logged)",
                        self.route.label()
                    );
                }
                HttpError::ConnectionLimitReached
            })
    }

    /// The time bounds of a request sent now with the guest's `options`.
    fn bounds(&self, options: Option<RequestOptions>) -> (Bounds, String) {
        let now = Instant::now();
        let deadline = self.deadline.max(now);
        let guest = options.unwrap_or_default();
        let own = self.route.limits.connect_timeout;
        let mut connect_by = within(now, own, deadline);
        let mut why = format!("connect_timeout of {}", format_duration(own));
        if connect_by == deadline {
            why = format!("timeout of {}", format_duration(self.route.limits.timeout));
        }
        if let Some(asked) = guest.connect_timeout {
            if within(now, asked, deadline) < connect_by {
                connect_by = within(now, asked, deadline);
                why = format!("the guest's connect-timeout of {}", format_duration(asked));
            }
        }
        let bounds = Bounds {
            connect_by,
            first_byte: guest.first_byte_timeout,
            between_bytes: guest.between_bytes_timeout,
            deadline,
        };
        (bounds, why)
    }
}

impl WasiHttpHooks for OutboundHooks {
    fn p2_outgoing_body_chunk_size(&mut self) -> usize {
        super::memory_budget::OUTGOING_BODY_CHUNK
    }

    fn p2_outgoing_body_buffer_chunks(&mut self) -> usize {
        super::memory_budget::OUTGOING_BODY_BUFFER_CHUNKS
    }

    fn send_request(
        &mut self,
        request: Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        let _ = fut;
        let (authority, target, permit) = match self.admit(&request) {
            Ok(admitted) => admitted,
            Err(err) => return Box::new(async move { Err(err) }),
        };
        let (bounds, connect_limit) = self.bounds(options);
        let route = self.route.clone();
        Box::new(async move {
            let sent = connect::send(request, target, bounds, permit).await;
            sent.map_err(|err| log_failure(&route, &authority, err, &connect_limit))
        })
    }
}

/// Logs what the operator must know of a failed request; returns what the guest sees.
fn log_failure(
    route: &RouteInfo,
    to: &Authority,
    err: SendError,
    connect_limit: &str,
) -> HttpError {
    let label = route.label();
    match err {
        SendError::NotPublic { addr, why } => {
            let addr = Host::Ip(addr);
            tracing::warn!(
                "{label}: outgoing request to {to} refused: {addr} is not a public address \
                 ({why}); only an allow_outbound origin written as that IP may reach it"
            );
            HttpError::DestinationIpProhibited
        }
        SendError::Http(err @ (HttpError::DnsTimeout | HttpError::ConnectionTimeout)) => {
            tracing::warn!(
                "{label}: outgoing request to {to} stopped: the {connect_limit} ran out ({err})"
            );
            err
        }
        SendError::Http(err) => {
            tracing::debug!("{label}: outgoing request to {to} failed: {err}");
            err
        }
    }
}

//! Job delivery: a durable job becomes an in-process request through this worker's router.
//!
//! Owns: the worker's `Deliver` implementation — building the request head from a stored
//! record (with the delivery headers `services::job` names, `Host`, `Content-Length`), routing it,
//! running the route's handler exactly as for a client, and reading the response to its end
//! so the handler finishes (a Python iterable's `close()`, a WASM instance's last write), and
//! counting each delivery as delivered (below 400) or failed in the worker's metrics.
//! Must not touch: sockets, the journal, or the retry policy (`services::dispatch`).

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::rc::Rc;

use bytes::Bytes;
use http::{header, HeaderName, HeaderValue, Method, Request, Uri, Version};
use http_body_util::BodyExt;

use super::context::WorkerContext;
use super::peer::Peer;
use super::service::{run_handler, Target};
use crate::http_path::percent_decode;
use crate::services::dispatch::{Deliver, Delivered};
use crate::services::job::{JOB_ATTEMPT_HEADER, JOB_ID_HEADER};
use crate::services::JobRecord;
use crate::spool::SpooledBody;

/// Delivers this worker's claimed jobs.
pub struct JobDelivery {
    pub ctx: Rc<WorkerContext>,
    /// The address jobs appear to arrive at (the worker's first listener).
    pub local: SocketAddr,
}

impl Deliver for JobDelivery {
    fn deliver(&self, job: JobRecord) -> Pin<Box<dyn Future<Output = Delivered>>> {
        let ctx = self.ctx.clone();
        let peer = Peer {
            remote: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            local: self.local,
            socket: None,
            tls: false,
        };
        Box::pin(async move {
            let delivered = deliver(&ctx, peer, job).await;
            if let Some(m) = ctx.metrics {
                m.job_done(matches!(delivered, Delivered::Status(status) if status < 400));
            }
            delivered
        })
    }
}

async fn deliver(ctx: &Rc<WorkerContext>, peer: Peer, job: JobRecord) -> Delivered {
    let parts = match request_head(&job) {
        Ok(parts) => parts,
        Err(reason) => return Delivered::Failed(reason),
    };
    let router = ctx.router();
    let path = percent_decode(parts.uri.path().as_bytes()).into_owned();
    let Some(matched) = router.find(&job.request.host, &path) else {
        return Delivered::NoRoute;
    };
    let body_len = job.request.body.len() as u64;
    if body_len > matched.route.max_body_size {
        return Delivered::Status(413);
    }
    let spooled = match body_len {
        0 => SpooledBody::Empty,
        _ => SpooledBody::Memory(Bytes::from(job.request.body)),
    };
    let target = Target {
        route: matched.route,
        path_info_start: matched.path_info_start,
        path,
        server_name: server_name(&job.request.host),
    };
    let response = run_handler(ctx, peer, target, parts, spooled, Some(body_len)).await;
    let status = response.status().as_u16();
    let mut body = response.into_body();
    while let Some(frame) = body.frame().await {
        if let Err(err) = frame {
            return Delivered::Failed(format!(
                "the response broke off after status {status}: {err}"
            ));
        }
    }
    Delivered::Status(status)
}

fn server_name(host: &str) -> String {
    match host {
        "" => "localhost".to_string(),
        host => host.to_string(),
    }
}

/// The request head of a job; an error if the journal holds something no longer valid.
fn request_head(job: &JobRecord) -> Result<http::request::Parts, String> {
    let r = &job.request;
    let method = Method::from_bytes(r.method.as_bytes())
        .map_err(|_| format!("bad method {:?}", r.method))?;
    let uri: Uri = r
        .path
        .parse()
        .map_err(|_| format!("bad path {:?}", r.path))?;
    let mut builder = Request::builder()
        .method(method)
        .uri(uri)
        .version(Version::HTTP_11);
    let headers = builder
        .headers_mut()
        .ok_or_else(|| "bad request head".to_string())?;
    for (name, value) in &r.headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("bad header name {name:?}"))?;
        let value =
            HeaderValue::from_bytes(value).map_err(|_| format!("bad value for header {name}"))?;
        headers.append(name, value);
    }
    let host = HeaderValue::from_str(&server_name(&r.host))
        .map_err(|_| format!("bad host {:?}", r.host))?;
    headers.insert(header::HOST, host);
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(r.body.len()));
    headers.insert(JOB_ID_HEADER, HeaderValue::from(job.id));
    headers.insert(JOB_ATTEMPT_HEADER, HeaderValue::from(job.attempts));
    let (parts, ()) = builder
        .body(())
        .map_err(|e| format!("bad request head: {e}"))?
        .into_parts();
    Ok(parts)
}

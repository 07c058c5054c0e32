//! The access log: one line per response, in the combined log format (the default) or as
//! JSON (`access_log_format = "json"`, see `access_json`).
//!
//! Owns: the log sink (stdout or an append-only file), what a record captures when the request
//! arrives, and the combined line
//! `host - - [time] "request line" status bytes "referer" "user-agent"`, written once the
//! response body has been sent (or abandoned). Must not touch: requests or responses beyond
//! reading the few fields it prints.

use std::cell::RefCell;
use std::fs::OpenOptions;
use std::io::{self, BufWriter, Write};
use std::net::SocketAddr;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use http::{header, Request, Version};

use super::access_json::{JsonLine, RouteLabel};
use super::handler::Handler;
use crate::config::AccessLogFormat;
use crate::router::Route;

/// Where access lines go (one per worker; single-threaded).
pub struct AccessLog {
    sink: RefCell<BufWriter<Box<dyn Write>>>,
    format: AccessLogFormat,
    /// The worker's index, for JSON lines.
    worker: usize,
}

impl AccessLog {
    /// `-` is stdout; anything else a file opened for appending.
    pub fn open(target: &str, format: AccessLogFormat, worker: usize) -> io::Result<AccessLog> {
        let sink: Box<dyn Write> = if target == "-" {
            Box::new(io::stdout())
        } else {
            Box::new(OpenOptions::new().create(true).append(true).open(target)?)
        };
        Ok(AccessLog {
            sink: RefCell::new(BufWriter::new(sink)),
            format,
            worker,
        })
    }

    /// Whether records carry the JSON fields (route, start instant).
    pub fn is_json(&self) -> bool {
        self.format == AccessLogFormat::Json
    }

    /// The record of a request on hyper's path, taken when its head has been read.
    pub fn capture<B>(&self, req: &Request<B>, remote: SocketAddr) -> AccessRecord {
        if self.is_json() {
            let target = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
            return AccessRecord::Json(JsonLine::new(
                req.method().as_str(),
                target,
                remote,
                Instant::now(),
            ));
        }
        AccessRecord::Combined(CombinedRecord::of_head(
            req.method(),
            req.uri(),
            req.version(),
            req.headers(),
            remote,
        ))
    }

    /// The record of a `GET` over HTTP/1.1 with origin-form `target` (the inline path's
    /// requests), given its `Referer` and `User-Agent` values, its route (`None`: no route
    /// matched) and, for JSON, when its head was read. For the combined format this is exactly
    /// the work it was before JSON existed: the route and instant are not looked at.
    pub fn record_get(
        &self,
        target: &str,
        (referer, user_agent): (Option<&[u8]>, Option<&[u8]>),
        remote: SocketAddr,
        route: Option<&Route<Handler>>,
        started: Option<Instant>,
    ) -> AccessRecord {
        if !self.is_json() {
            return AccessRecord::Combined(CombinedRecord::of_get(
                target, referer, user_agent, remote,
            ));
        }
        let mut line = JsonLine::new("GET", target, remote, started.unwrap_or_else(Instant::now));
        if let Some(route) = route {
            line.route = RouteLabel::of(route);
        }
        AccessRecord::Json(line)
    }

    pub fn write(&self, record: &AccessRecord, status: u16, bytes: Option<u64>) {
        let line = match record {
            AccessRecord::Combined(record) => record.line(status, bytes),
            AccessRecord::Json(record) => record.line(self.worker, status, bytes),
        };
        if let Ok(mut sink) = self.sink.try_borrow_mut() {
            let _ = sink.write_all(line.as_bytes());
            let _ = sink.flush();
        }
    }
}

/// The request-side fields of an access line, captured when the request arrives.
pub enum AccessRecord {
    Combined(CombinedRecord),
    Json(JsonLine),
}

impl AccessRecord {
    /// Where the request's route is to be noted, for the formats that print it.
    pub fn route_label(&mut self) -> Option<&mut RouteLabel> {
        match self {
            AccessRecord::Combined(_) => None,
            AccessRecord::Json(line) => Some(&mut line.route),
        }
    }
}

/// The fields of a combined line.
pub struct CombinedRecord {
    remote: SocketAddr,
    time: SystemTime,
    request_line: String,
    referer: String,
    user_agent: String,
}

impl CombinedRecord {
    fn line(&self, status: u16, bytes: Option<u64>) -> String {
        let bytes = bytes.map_or_else(|| "-".to_string(), |b| b.to_string());
        format!(
            "{} - - [{}] \"{}\" {} {} \"{}\" \"{}\"\n",
            self.remote.ip(),
            clf_time(self.time),
            self.request_line,
            status,
            bytes,
            self.referer,
            self.user_agent
        )
    }

    fn of_get(
        target: &str,
        referer: Option<&[u8]>,
        user_agent: Option<&[u8]>,
        remote: SocketAddr,
    ) -> CombinedRecord {
        CombinedRecord::new(
            format_args!("GET {target} HTTP/1.1"),
            referer,
            user_agent,
            remote,
        )
    }

    fn of_head(
        method: &http::Method,
        uri: &http::Uri,
        version: Version,
        headers: &http::HeaderMap,
        remote: SocketAddr,
    ) -> CombinedRecord {
        let version = match version {
            Version::HTTP_10 => "HTTP/1.0",
            Version::HTTP_2 => "HTTP/2.0",
            _ => "HTTP/1.1",
        };
        let target = uri.path_and_query().map_or("/", |pq| pq.as_str());
        let field = |name| headers.get(name).map(http::HeaderValue::as_bytes);
        CombinedRecord::new(
            format_args!("{method} {target} {version}"),
            field(header::REFERER),
            field(header::USER_AGENT),
            remote,
        )
    }

    fn new(
        request_line: std::fmt::Arguments<'_>,
        referer: Option<&[u8]>,
        user_agent: Option<&[u8]>,
        remote: SocketAddr,
    ) -> CombinedRecord {
        let field_text = |value: Option<&[u8]>| {
            value.map_or_else(|| "-".to_string(), |v| escape(&String::from_utf8_lossy(v)))
        };
        CombinedRecord {
            remote,
            time: SystemTime::now(),
            request_line: escape(&request_line.to_string()),
            referer: field_text(referer),
            user_agent: field_text(user_agent),
        }
    }
}

fn escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

/// `21/Nov/2026:04:32:50 +0000`.
fn clf_time(time: SystemTime) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    let month_name = MONTHS
        .get((month as usize).wrapping_sub(1))
        .copied()
        .unwrap_or("Jan");
    format!(
        "{day:02}/{month_name}/{year}:{:02}:{:02}:{:02} +0000",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn common_log_time() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_580_000);
        assert_eq!(clf_time(t), "25/Nov/2026:04:13:20 +0000");
        assert_eq!(clf_time(UNIX_EPOCH), "01/Jan/1970:00:00:00 +0000");
    }
}

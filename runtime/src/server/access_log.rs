//! The access log: one line per response, in the combined log format.
//!
//! Owns: the log sink (stdout or an append-only file) and the line format
//! `host - - [time] "request line" status bytes "referer" "user-agent"`, written once the
//! response body has been sent (or abandoned). Must not touch: requests or responses beyond
//! reading the few fields it prints.

use std::cell::RefCell;
use std::fs::OpenOptions;
use std::io::{self, BufWriter, Write};
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use http::{header, Request, Version};

/// Where access lines go (one per worker; single-threaded).
pub struct AccessLog {
    sink: RefCell<BufWriter<Box<dyn Write>>>,
}

impl AccessLog {
    /// `-` is stdout; anything else a file opened for appending.
    pub fn open(target: &str) -> io::Result<AccessLog> {
        let sink: Box<dyn Write> = if target == "-" {
            Box::new(io::stdout())
        } else {
            Box::new(OpenOptions::new().create(true).append(true).open(target)?)
        };
        Ok(AccessLog {
            sink: RefCell::new(BufWriter::new(sink)),
        })
    }

    pub fn write(&self, record: &AccessRecord, status: u16, bytes: Option<u64>) {
        let bytes = bytes.map_or_else(|| "-".to_string(), |b| b.to_string());
        let line = format!(
            "{} - - [{}] \"{}\" {} {} \"{}\" \"{}\"\n",
            record.remote.ip(),
            clf_time(record.time),
            record.request_line,
            status,
            bytes,
            record.referer,
            record.user_agent
        );
        if let Ok(mut sink) = self.sink.try_borrow_mut() {
            let _ = sink.write_all(line.as_bytes());
            let _ = sink.flush();
        }
    }
}

/// The request-side fields of an access line, captured when the request arrives.
pub struct AccessRecord {
    remote: SocketAddr,
    time: SystemTime,
    request_line: String,
    referer: String,
    user_agent: String,
}

impl AccessRecord {
    pub fn capture<B>(req: &Request<B>, remote: SocketAddr) -> AccessRecord {
        AccessRecord::of_head(
            req.method(),
            req.uri(),
            req.version(),
            req.headers(),
            remote,
        )
    }

    /// The record of a `GET` over HTTP/1.1 with origin-form `target` (the inline path's
    /// requests), given its `Referer` and `User-Agent` values.
    pub fn of_get(
        target: &str,
        referer: Option<&[u8]>,
        user_agent: Option<&[u8]>,
        remote: SocketAddr,
    ) -> AccessRecord {
        AccessRecord::new(
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
    ) -> AccessRecord {
        let version = match version {
            Version::HTTP_10 => "HTTP/1.0",
            Version::HTTP_2 => "HTTP/2.0",
            _ => "HTTP/1.1",
        };
        let target = uri.path_and_query().map_or("/", |pq| pq.as_str());
        let field = |name| headers.get(name).map(http::HeaderValue::as_bytes);
        AccessRecord::new(
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
    ) -> AccessRecord {
        let field_text = |value: Option<&[u8]>| {
            value.map_or_else(|| "-".to_string(), |v| escape(&String::from_utf8_lossy(v)))
        };
        AccessRecord {
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

//! Static responses: a resolved file to its 200, 206, 304, 412 or 416, and the other answers
//! a static route gives (the slash-adding redirect, a listing page).
//!
//! Owns: which headers each status carries (ETag, Last-Modified, Cache-Control, Vary,
//! Content-Encoding, Accept-Ranges, Content-Range; HEAD has GET's headers without the body) and
//! the body (a `FileRegion`, a multipart chain). Must not touch: path safety (`resolve`),
//! parsing of conditional or range fields (`conditional`, `ranges`), reading file contents
//! (`body::FileRegion` does, off the event loop when the page cache misses).

use std::fs::{File, Metadata};
use std::path::Path;

use bytes::Bytes;
use http::request::Parts;
use http::{header, HeaderMap, HeaderValue, Method, Response, StatusCode, Uri};

use super::conditional::{evaluate, if_range_holds, Precondition, Validators};
use super::mime::{content_type, precompressed};
use super::options::StaticOptions;
use super::ranges::{multipart, RangeRequest};
use crate::body::{plain, FileRegion, ResponseBody};

/// The response for the regular file `path` (under `root`); `opened` is that file and its
/// metadata when the caller has it open already.
pub fn file(
    parts: &Parts,
    root: &Path,
    path: &Path,
    opened: Option<(File, Metadata)>,
    options: &StaticOptions,
) -> Response<ResponseBody> {
    let accept = parts
        .headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok());
    let sibling = match accept {
        Some(accept) if options.precompressed => precompressed(root, path, accept),
        _ => None,
    };
    let (send_path, codec) = match &sibling {
        Some((sibling, codec)) => (sibling.as_path(), Some(*codec)),
        None => (path, None),
    };
    let opened = match opened.filter(|_| codec.is_none()) {
        Some(opened) => Some(opened),
        None => File::open(send_path)
            .and_then(|file| file.metadata().map(|meta| (file, meta)))
            .ok(),
    };
    let Some((file, meta)) = opened else {
        return plain(StatusCode::NOT_FOUND, "Not Found\n");
    };
    if !meta.is_file() {
        return plain(StatusCode::NOT_FOUND, "Not Found\n");
    }
    let len = meta.len();
    let modified = meta.modified().ok();
    let validators = Validators::of_file(modified, len, codec.map_or("", |c| c.token()));

    let mut head = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(&validators.etag) {
        head.insert(header::ETAG, value);
    }
    if let Some(modified) = modified {
        if let Ok(value) = HeaderValue::from_str(&httpdate::fmt_http_date(modified)) {
            head.insert(header::LAST_MODIFIED, value);
        }
    }
    if let Some(max_age) = options.max_age {
        if let Ok(value) = HeaderValue::from_str(&format!("max-age={max_age}")) {
            head.insert(header::CACHE_CONTROL, value);
        }
    }
    if options.precompressed {
        head.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    }

    match evaluate(&parts.headers, &validators) {
        Precondition::Failed => {
            return with_headers(
                plain(StatusCode::PRECONDITION_FAILED, "Precondition Failed\n"),
                head,
            );
        }
        Precondition::NotModified => {
            let mut response = Response::new(ResponseBody::Empty);
            *response.status_mut() = StatusCode::NOT_MODIFIED;
            return with_headers(response, head);
        }
        Precondition::Proceed => {}
    }

    let kind = content_type(path);
    if let Some(codec) = codec {
        head.insert(
            header::CONTENT_ENCODING,
            HeaderValue::from_static(codec.token()),
        );
    }
    head.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    let get = parts.method == Method::GET;
    let range = parts
        .headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .filter(|_| get && if_range_holds(&parts.headers, &validators));
    let ranges = range.map_or(RangeRequest::Ignore, |value| {
        super::ranges::parse(value, len)
    });
    match ranges {
        RangeRequest::Ignore => {
            head.insert(header::CONTENT_TYPE, kind);
            let body = ResponseBody::File(FileRegion::new(file, 0, len));
            sized(StatusCode::OK, head, body, len, get)
        }
        RangeRequest::Unsatisfiable => {
            let mut response = plain(StatusCode::RANGE_NOT_SATISFIABLE, "Range Not Satisfiable\n");
            if let Ok(value) = HeaderValue::from_str(&format!("bytes */{len}")) {
                head.insert(header::CONTENT_RANGE, value);
            }
            head.remove(header::CONTENT_ENCODING);
            response.headers_mut().extend(head);
            response
        }
        RangeRequest::Ranges(ranges) if ranges.len() == 1 => {
            let range = ranges[0];
            head.insert(header::CONTENT_TYPE, kind);
            if let Ok(value) = HeaderValue::from_str(&range.content_range(len)) {
                head.insert(header::CONTENT_RANGE, value);
            }
            let body = ResponseBody::File(FileRegion::new(file, range.first, range.len()));
            sized(StatusCode::PARTIAL_CONTENT, head, body, range.len(), true)
        }
        RangeRequest::Ranges(ranges) => {
            let boundary = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
            let kind = kind.to_str().unwrap_or("application/octet-stream");
            let (body, length) = multipart(file, &ranges, len, kind, &boundary);
            let multipart_type = format!("multipart/byteranges; boundary={boundary}");
            if let Ok(value) = HeaderValue::from_str(&multipart_type) {
                head.insert(header::CONTENT_TYPE, value);
            }
            sized(StatusCode::PARTIAL_CONTENT, head, body, length, true)
        }
    }
}

/// A response of `length` bytes; a HEAD (`with_body` false) keeps the Content-Length and drops
/// the body.
fn sized(
    status: StatusCode,
    head: HeaderMap,
    body: ResponseBody,
    length: u64,
    with_body: bool,
) -> Response<ResponseBody> {
    let body = if with_body { body } else { ResponseBody::Empty };
    let mut response = with_headers(Response::new(body), head);
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    response
}

fn with_headers(mut response: Response<ResponseBody>, head: HeaderMap) -> Response<ResponseBody> {
    response.headers_mut().extend(head);
    response
}

/// 301 to the same path with a `/` added, the query kept.
pub fn add_slash(uri: &Uri) -> Response<ResponseBody> {
    let location = match uri.query() {
        Some(query) => format!("{}/?{query}", uri.path()),
        None => format!("{}/", uri.path()),
    };
    let mut response = plain(StatusCode::MOVED_PERMANENTLY, "Moved Permanently\n");
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// A generated HTML page (a directory listing); a HEAD gets its headers only.
pub fn html(page: String, head: bool) -> Response<ResponseBody> {
    let mut fields = HeaderMap::new();
    fields.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    let length = page.len() as u64;
    let body = ResponseBody::full(Bytes::from(page));
    sized(StatusCode::OK, fields, body, length, !head)
}

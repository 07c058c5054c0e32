//! `start_response` and the `write()` callable it returns (PEP 3333).
//!
//! Owns: validating and recording the status line and headers an app gives, the `exc_info`
//! rules (a second call needs `exc_info`; once headers are sent it re-raises), and the bytes
//! passed to `write()`. Must not touch: the response body iterable or the connection.

use std::cell::RefCell;

use bytes::Bytes;
use http::{HeaderName, StatusCode};
use pyo3::exceptions::{PyAssertionError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};

use super::head_fields::{is_content_length, FieldValue, HeadFields};

/// What the app said about the response head.
#[derive(Debug, Default)]
pub struct Head {
    pub status: StatusCode,
    /// Set when the app's reason phrase differs from the canonical one.
    pub reason: Option<String>,
    pub headers: HeadFields,
    /// The app sent `Connection: close`.
    pub close: bool,
}

/// The `start_response` callable of one request.
#[pyclass(module = "wsrun")]
pub struct StartResponse {
    pub head: Option<Head>,
    /// True once any body byte is committed; after that `exc_info` re-raises.
    pub headers_sent: bool,
    /// Bytes passed to `write()`, sent before the iterable's.
    pub written: Vec<Bytes>,
}

impl StartResponse {
    pub fn new() -> StartResponse {
        StartResponse {
            head: None,
            headers_sent: false,
            written: Vec::new(),
        }
    }
}

impl Default for StartResponse {
    fn default() -> Self {
        Self::new()
    }
}

#[pymethods]
impl StartResponse {
    #[pyo3(signature = (status, headers, exc_info=None))]
    fn __call__(
        slf: &Bound<'_, Self>,
        status: &Bound<'_, PyAny>,
        headers: &Bound<'_, PyAny>,
        exc_info: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let exc_info = exc_info.filter(|e| !e.is_none());
        {
            let this = slf.borrow();
            match exc_info {
                Some(info) if this.headers_sent => return Err(reraise(info)),
                None if this.head.is_some() => {
                    return Err(PyAssertionError::new_err(
                        "start_response called a second time without exc_info",
                    ))
                }
                _ => {}
            }
        }
        let head = parse_head(status, headers)?;
        slf.borrow_mut().head = Some(head);
        Ok(slf.getattr(pyo3::intern!(slf.py(), "write"))?.unbind())
    }

    /// The legacy `write(data)` callable.
    fn write(&mut self, data: &Bound<'_, PyAny>) -> PyResult<()> {
        if self.head.is_none() {
            return Err(PyAssertionError::new_err(
                "write() called before start_response",
            ));
        }
        let bytes = data
            .cast::<PyBytes>()
            .map_err(|_| PyTypeError::new_err("write() takes bytes"))?;
        if !bytes.as_bytes().is_empty() {
            self.headers_sent = true;
            self.written.push(Bytes::copy_from_slice(bytes.as_bytes()));
        }
        Ok(())
    }
}

/// Re-raises the exception of an `exc_info` triple.
fn reraise(info: &Bound<'_, PyAny>) -> PyErr {
    match info.get_item(1) {
        Ok(value) if !value.is_none() => PyErr::from_value(value),
        _ => {
            PyAssertionError::new_err("start_response called with exc_info after headers were sent")
        }
    }
}

fn parse_head(status: &Bound<'_, PyAny>, headers: &Bound<'_, PyAny>) -> PyResult<Head> {
    let status = status
        .cast::<PyString>()
        .map_err(|_| PyTypeError::new_err("status must be a str like '200 OK'"))?;
    let (code, reason) = parse_status(status.to_str()?)?;
    let mut head = Head {
        status: code,
        reason,
        headers: HeadFields::default(),
        close: false,
    };
    let add = |head: &mut Head, item: &Bound<'_, PyAny>| -> PyResult<()> {
        let pair = item.cast::<PyTuple>().map_err(|_| not_a_pair())?;
        if pair.len() != 2 {
            return Err(not_a_pair());
        }
        let name = pair.get_borrowed_item(0)?;
        let value = pair.get_borrowed_item(1)?;
        let (name, kind) = header_name(&name)?;
        add_header(head, name, kind, header_str(&value)?)
    };
    if let Ok(list) = headers.cast::<PyList>() {
        head.headers = HeadFields::with_capacity(list.len());
        for item in list.iter() {
            add(&mut head, &item)?;
        }
    } else {
        for item in headers.try_iter()? {
            add(&mut head, &item?)?;
        }
    }
    Ok(head)
}

/// What a response field's name means to the server; decided once per distinct name object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NameKind {
    /// Kept as the app gave it.
    Ordinary,
    /// Kept; its value must be a decimal length.
    ContentLength,
    /// Not kept: a `close` token ends the connection after the response.
    Connection,
    /// Hop-by-hop: the server's business (PEP 3333), dropped.
    HopByHop,
}

impl NameKind {
    fn of(name: &HeaderName) -> NameKind {
        match name.as_str() {
            "content-length" => NameKind::ContentLength,
            "connection" => NameKind::Connection,
            "keep-alive" | "transfer-encoding" | "te" | "trailer" | "upgrade"
            | "proxy-connection" => NameKind::HopByHop,
            _ => NameKind::Ordinary,
        }
    }
}

/// A remembered name: the str object the app passed (held, so its address is not reused for
/// another string while the entry lives), and what it parsed to.
struct KnownName {
    text: Py<PyString>,
    name: HeaderName,
    kind: NameKind,
}

/// Remembered names, in slots picked by the str object's address (a direct-mapped cache: a
/// name whose slot is taken replaces the one there).
const NAME_SLOTS: usize = 128;

thread_local! {
    /// Per thread (the event loop's, or each app thread's with `--threads` above 1), so a
    /// lookup takes no lock. Never dropped: at thread exit the interpreter may be gone.
    static NAMES: std::mem::ManuallyDrop<RefCell<Vec<Option<KnownName>>>> =
        std::mem::ManuallyDrop::new(RefCell::new((0..NAME_SLOTS).map(|_| None).collect()));
}

/// Header names an app passes are usually the same str objects on every request (constants of
/// its code); their parsed `HeaderName` and `NameKind` are remembered by object identity.
fn header_name(obj: &Bound<'_, PyAny>) -> PyResult<(HeaderName, NameKind)> {
    let text = obj
        .cast::<PyString>()
        .map_err(|_| PyTypeError::new_err("header names and values must be str"))?;
    // Objects are 16-byte aligned: the low bits say nothing.
    let slot = (text.as_ptr() as usize >> 4) % NAME_SLOTS;
    let known = NAMES.with(|names| {
        let names = names.try_borrow().ok()?;
        let known = names.get(slot)?.as_ref()?;
        known
            .text
            .is(text)
            .then(|| (known.name.clone(), known.kind))
    });
    if let Some(known) = known {
        return Ok(known);
    }
    let raw = text.to_cow()?;
    let name = HeaderName::from_bytes(raw.as_bytes())
        .map_err(|_| PyValueError::new_err(format!("invalid header name {raw:?}")))?;
    let kind = NameKind::of(&name);
    let known = KnownName {
        text: text.clone().unbind(),
        name: name.clone(),
        kind,
    };
    // The replaced entry's str is released here, with the interpreter attached.
    let replaced = NAMES.with(|names| {
        let mut names = names.try_borrow_mut().ok()?;
        names.get_mut(slot)?.replace(known)
    });
    drop(replaced);
    Ok((name, kind))
}

fn not_a_pair() -> PyErr {
    PyTypeError::new_err("each header must be a (name, value) tuple of str")
}

fn header_str<'a>(obj: &'a Bound<'_, PyAny>) -> PyResult<std::borrow::Cow<'a, str>> {
    obj.cast::<PyString>()
        .map_err(|_| PyTypeError::new_err("header names and values must be str"))?
        .to_cow()
}

fn parse_status(status: &str) -> PyResult<(StatusCode, Option<String>)> {
    let bad = || PyValueError::new_err(format!("invalid status {status:?}: expected '200 OK'"));
    let bytes = status.as_bytes();
    if bytes.len() < 3 || !bytes[..3].iter().all(u8::is_ascii_digit) {
        return Err(bad());
    }
    let code = StatusCode::from_bytes(&bytes[..3]).map_err(|_| bad())?;
    let reason = match &status[3..] {
        "" => None,
        rest => {
            let reason = rest.strip_prefix(' ').ok_or_else(bad)?;
            if reason.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
                return Err(bad());
            }
            // "200 OK" first: most responses, and no lookup in the reason table.
            let canonical = (code == StatusCode::OK && reason == "OK")
                || code.canonical_reason() == Some(reason);
            (!canonical).then(|| reason.to_owned())
        }
    };
    Ok((code, reason))
}

/// Hop-by-hop headers belong to the server (PEP 3333); `Connection: close` is honoured.
fn add_header(
    head: &mut Head,
    header_name: HeaderName,
    kind: NameKind,
    value: std::borrow::Cow<'_, str>,
) -> PyResult<()> {
    let value = value.as_ref();
    let latin1;
    let bytes = if value.is_ascii() {
        value.as_bytes()
    } else {
        latin1 = latin1_bytes(value).ok_or_else(|| {
            PyValueError::new_err(format!("header {header_name} value is not latin-1"))
        })?;
        &latin1[..]
    };
    let checked = FieldValue::new(bytes)
        .filter(|_| kind != NameKind::ContentLength || is_content_length(bytes));
    let Some(checked) = checked else {
        let message = format!("invalid value for header {header_name}: {value:?}");
        return Err(PyValueError::new_err(message));
    };
    match kind {
        NameKind::Ordinary | NameKind::ContentLength => head.headers.push(header_name, checked),
        NameKind::Connection => {
            head.close |= value
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("close"));
        }
        NameKind::HopByHop => {
            tracing::debug!("dropping hop-by-hop header {header_name} set by the app");
        }
    }
    Ok(())
}

/// The latin-1 bytes of `s`, or `None` if it has a character past U+00FF.
pub fn latin1_bytes(s: &str) -> Option<Vec<u8>> {
    s.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_kind_is_decided_by_the_name_in_any_spelling() {
        let kind = |name: &str| {
            HeaderName::from_bytes(name.as_bytes())
                .ok()
                .map(|n| NameKind::of(&n))
        };
        assert_eq!(kind("Content-Length"), Some(NameKind::ContentLength));
        assert_eq!(kind("CONNECTION"), Some(NameKind::Connection));
        for hop in [
            "Keep-Alive",
            "Transfer-Encoding",
            "TE",
            "Trailer",
            "Upgrade",
            "Proxy-Connection",
        ] {
            assert_eq!(kind(hop), Some(NameKind::HopByHop), "{hop}");
        }
        for kept in ["Content-Type", "X-Frame-Options", "Trailers", "Set-Cookie"] {
            assert_eq!(kind(kept), Some(NameKind::Ordinary), "{kept}");
        }
    }

    #[test]
    fn a_canonical_reason_is_not_kept_and_any_other_is() {
        let reason = |status: &str| {
            parse_status(status)
                .map(|(code, r)| (code.as_u16(), r))
                .ok()
        };
        assert_eq!(reason("200 OK"), Some((200, None)));
        assert_eq!(reason("200"), Some((200, None)));
        assert_eq!(reason("404 Not Found"), Some((404, None)));
        assert_eq!(reason("200 Fine"), Some((200, Some("Fine".to_owned()))));
        assert_eq!(reason("200 ok"), Some((200, Some("ok".to_owned()))));
        assert_eq!(
            reason("404 Gone Away"),
            Some((404, Some("Gone Away".to_owned())))
        );
    }
}

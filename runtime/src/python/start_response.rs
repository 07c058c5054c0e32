//! `start_response` and the `write()` callable it returns (PEP 3333).
//!
//! Owns: validating and recording the status line and headers an app gives, the `exc_info`
//! rules (a second call needs `exc_info`; once headers are sent it re-raises), and the bytes
//! passed to `write()`. Must not touch: the response body iterable or the connection.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::{LazyLock, Mutex};

use bytes::Bytes;
use http::{HeaderName, StatusCode};
use pyo3::exceptions::{PyAssertionError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};
use rustc_hash::FxHasher;

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
        add_header(head, header_name(&name)?, header_str(&value)?)
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

/// Header names an app passes are usually the same str objects on every request (constants of
/// its code); their parsed `HeaderName` is remembered by object identity. The cache holds a
/// reference to each key object, so an address is never reused for another string.
fn header_name(obj: &Bound<'_, PyAny>) -> PyResult<HeaderName> {
    type Names = HashMap<usize, (Py<PyString>, HeaderName), BuildHasherDefault<FxHasher>>;
    static NAMES: LazyLock<Mutex<Names>> = LazyLock::new(Mutex::default);
    const LIMIT: usize = 256;

    let text = obj
        .cast::<PyString>()
        .map_err(|_| PyTypeError::new_err("header names and values must be str"))?;
    let key = text.as_ptr() as usize;
    if let Some((_, name)) = NAMES.lock().ok().as_ref().and_then(|names| names.get(&key)) {
        return Ok(name.clone());
    }
    let raw = text.to_cow()?;
    let name = HeaderName::from_bytes(raw.as_bytes())
        .map_err(|_| PyValueError::new_err(format!("invalid header name {raw:?}")))?;
    if let Ok(mut names) = NAMES.lock() {
        if names.len() < LIMIT {
            names.insert(key, (text.clone().unbind(), name.clone()));
        }
    }
    Ok(name)
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
    value: std::borrow::Cow<'_, str>,
) -> PyResult<()> {
    let (name, value) = (header_name.as_str(), value.as_ref());
    let latin1;
    let bytes = if value.is_ascii() {
        value.as_bytes()
    } else {
        latin1 = latin1_bytes(value)
            .ok_or_else(|| PyValueError::new_err(format!("header {name} value is not latin-1")))?;
        &latin1[..]
    };
    let checked = FieldValue::new(bytes)
        .filter(|_| header_name != http::header::CONTENT_LENGTH || is_content_length(bytes));
    let Some(checked) = checked else {
        let message = format!("invalid value for header {name}: {value:?}");
        return Err(PyValueError::new_err(message));
    };
    match name {
        "connection" => {
            head.close |= value
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("close"));
        }
        "keep-alive" | "transfer-encoding" | "te" | "trailer" | "upgrade" | "proxy-connection" => {
            tracing::debug!("dropping hop-by-hop header {name} set by the app");
        }
        _ => {
            head.headers.push(header_name, checked);
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

//! The WSGI environ: building the dict an app receives for one request (PEP 3333).
//!
//! Owns: every environ key and its type — CGI variables, `HTTP_*` headers (latin-1 "bytes as
//! str"), and the `wsgi.*` entries. Constant entries live in a per-worker template that is
//! copied per request; key strings are interned once. Must not touch: the app call, the
//! response, or how the request was parsed.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::net::SocketAddr;
use std::sync::Mutex;

use http::{Method, Version};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};
use rustc_hash::FxHasher;

use super::errors::ErrorStream;
use super::file_wrapper::FileWrapper;
use super::input::Input;
pub use super::request_view::RequestParts;
use super::request_view::RequestView;

/// The Python str made for the last value of some key, reused while the value repeats.
struct LastValue<K> {
    last: Mutex<Option<(K, Py<PyString>)>>,
}

impl<K> Default for LastValue<K> {
    fn default() -> Self {
        LastValue {
            last: Mutex::new(None),
        }
    }
}

impl<K: PartialEq> LastValue<K> {
    fn get_or_make<'py, Q>(
        &self,
        py: Python<'py>,
        key: &Q,
        make: impl FnOnce(Python<'py>) -> Bound<'py, PyString>,
    ) -> Bound<'py, PyString>
    where
        K: std::borrow::Borrow<Q>,
        Q: PartialEq + ToOwned<Owned = K> + ?Sized,
    {
        let Ok(mut last) = self.last.lock() else {
            return make(py);
        };
        if let Some((cached_key, value)) = last.as_ref() {
            if cached_key.borrow() == key {
                return value.bind(py).clone();
            }
        }
        let value = make(py);
        *last = Some((key.to_owned(), value.clone().unbind()));
        value
    }
}

/// Sets an environ entry under an interned key (keys are created once per process).
macro_rules! set {
    ($env:expr, $key:literal, $value:expr) => {
        $env.set_item(pyo3::intern!($env.py(), $key), $value)
    };
}

/// How many distinct header names get a cached `HTTP_*` key (bounded against hostile clients).
const HEADER_KEY_CACHE_LIMIT: usize = 256;

/// `HTTP_*` key strings by the header name they were made from.
type HeaderKeys = HashMap<Box<[u8]>, Py<PyString>, BuildHasherDefault<FxHasher>>;

/// Per-worker environ factory.
pub struct EnvironBuilder {
    template: Py<PyDict>,
    /// Values that repeat from request to request (behind a proxy every request has the same
    /// REMOTE_ADDR; SERVER_PORT is the listener's; SERVER_NAME is usually one site): the str
    /// of the previous request is reused when the value is the same.
    last_remote_ip: LastValue<std::net::IpAddr>,
    last_server_port: LastValue<u16>,
    last_server_name: LastValue<String>,
    /// `HTTP_*` keys by header name as received (clients repeat their own spelling).
    header_keys: Mutex<HeaderKeys>,
}

/// Keys `build` sets on every request. The template holds placeholders for them, so the
/// per-request copy already has their slots: setting them replaces a value, never grows.
const PER_REQUEST_KEYS: [&str; 10] = [
    "REQUEST_METHOD",
    "PATH_INFO",
    "RAW_URI",
    "REQUEST_URI",
    "SERVER_PROTOCOL",
    "SERVER_NAME",
    "SERVER_PORT",
    "REMOTE_ADDR",
    "REMOTE_PORT",
    "wsgi.input",
];

/// Room in the template's hash table for the request's headers, so copies never resize.
const TEMPLATE_CAPACITY: ffi::Py_ssize_t = 42;

/// Builds the template of constant entries.
fn build_template(py: Python<'_>, multithread: bool, multiprocess: bool) -> PyResult<Py<PyDict>> {
    // SAFETY: _PyDict_NewPresized returns a new dict reference (or NULL with an exception set).
    let template = unsafe {
        Bound::from_owned_ptr_or_err(py, ffi::_PyDict_NewPresized(TEMPLATE_CAPACITY))?
            .cast_into_unchecked::<PyDict>()
    };
    template.set_item("wsgi.version", PyTuple::new(py, [1, 0])?)?;
    template.set_item("wsgi.url_scheme", "http")?;
    template.set_item("wsgi.multithread", multithread)?;
    template.set_item("wsgi.multiprocess", multiprocess)?;
    template.set_item("wsgi.run_once", false)?;
    template.set_item("wsgi.input_terminated", true)?;
    template.set_item("wsgi.errors", Py::new(py, ErrorStream::new())?)?;
    template.set_item("wsgi.file_wrapper", py.get_type::<FileWrapper>())?;
    template.set_item(
        "SERVER_SOFTWARE",
        concat!("wsrun/", env!("CARGO_PKG_VERSION")),
    )?;
    template.set_item("SCRIPT_NAME", "")?;
    template.set_item("QUERY_STRING", "")?;
    for key in PER_REQUEST_KEYS {
        template.set_item(PyString::intern(py, key), "")?;
    }
    Ok(template.unbind())
}

impl EnvironBuilder {
    pub fn new(py: Python<'_>, multithread: bool, multiprocess: bool) -> PyResult<EnvironBuilder> {
        Ok(EnvironBuilder {
            template: build_template(py, multithread, multiprocess)?,
            last_remote_ip: LastValue::default(),
            last_server_port: LastValue::default(),
            last_server_name: LastValue::default(),
            header_keys: Mutex::new(HashMap::default()),
        })
    }

    /// The environ for one request.
    pub fn build<'py>(
        &self,
        py: Python<'py>,
        req: &impl RequestView,
        script_name: &str,
        input: &Bound<'py, Input>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let env = self.template.bind(py).copy()?;
        set!(env, "REQUEST_METHOD", method_str(py, req.method()))?;
        if !script_name.is_empty() {
            set!(env, "SCRIPT_NAME", text(py, script_name))?;
        }
        set!(env, "PATH_INFO", latin1(py, req.path_info()))?;
        if let Some(query) = req.query().filter(|q| !q.is_empty()) {
            set!(env, "QUERY_STRING", text(py, query))?;
        }
        let raw_target = text(py, req.raw_target());
        set!(env, "RAW_URI", &raw_target)?;
        set!(env, "REQUEST_URI", raw_target)?;
        set!(env, "SERVER_PROTOCOL", protocol_str(py, req.version()))?;
        if req.https() {
            set!(env, "wsgi.url_scheme", pyo3::intern!(py, "https"))?;
        }
        let server_name = self
            .last_server_name
            .get_or_make(py, req.server_name(), |py| text(py, req.server_name()));
        set!(env, "SERVER_NAME", server_name)?;
        let port = req.server_port();
        let server_port = self
            .last_server_port
            .get_or_make(py, &port, |py| latin1(py, itoa(u64::from(port)).digits()));
        set!(env, "SERVER_PORT", server_port)?;
        let remote = req.remote();
        let remote_addr = self
            .last_remote_ip
            .get_or_make(py, &remote.ip(), |py| ip_str(py, &remote));
        set!(env, "REMOTE_ADDR", remote_addr)?;
        set!(
            env,
            "REMOTE_PORT",
            latin1(py, itoa(u64::from(remote.port())).digits())
        )?;
        if let Some(len) = req.body_len() {
            set!(env, "CONTENT_LENGTH", latin1(py, itoa(len).digits()))?;
        }
        req.for_each_field(|name, value| self.add_field(py, &env, name, value))?;
        set!(env, "wsgi.input", input.as_any().clone())?;
        Ok(env)
    }

    /// Adds one header field: `CONTENT_TYPE` (its first value), or `HTTP_*` with repeated
    /// fields joined by `,` (`; ` for Cookie, RFC 6265). `Content-Length` is the server's
    /// (`CONTENT_LENGTH` is the spooled body's); a name with `_` is dropped, since
    /// `X_Forwarded_For` would pass for `X-Forwarded-For`.
    fn add_field(
        &self,
        py: Python<'_>,
        env: &Bound<'_, PyDict>,
        name: &[u8],
        value: &[u8],
    ) -> PyResult<()> {
        if name.eq_ignore_ascii_case(b"content-length") || name.contains(&b'_') {
            return Ok(());
        }
        if name.eq_ignore_ascii_case(b"content-type") {
            let key = pyo3::intern!(py, "CONTENT_TYPE");
            if !env.contains(key)? {
                env.set_item(key, latin1(py, value))?;
            }
            return Ok(());
        }
        let key = self.header_key(py, name);
        match env.get_item(&key)? {
            None => env.set_item(key, latin1(py, value)),
            Some(earlier) => {
                let earlier = earlier.cast_into::<PyString>()?;
                let separator = if name.eq_ignore_ascii_case(b"cookie") {
                    "; "
                } else {
                    ","
                };
                let mut joined = latin1_of(&earlier.to_cow()?);
                joined.extend_from_slice(separator.as_bytes());
                joined.extend_from_slice(value);
                env.set_item(key, latin1(py, &joined))
            }
        }
    }

    fn header_key<'py>(&self, py: Python<'py>, name: &[u8]) -> Bound<'py, PyString> {
        if let Ok(cache) = self.header_keys.lock() {
            if let Some(key) = cache.get(name) {
                return key.bind(py).clone();
            }
        }
        let mut key = String::with_capacity(5 + name.len());
        key.push_str("HTTP_");
        key.extend(name.iter().map(|&byte| match byte {
            b'-' => '_',
            other => char::from(other.to_ascii_uppercase()),
        }));
        let key = PyString::intern(py, &key);
        if let Ok(mut cache) = self.header_keys.lock() {
            if cache.len() < HEADER_KEY_CACHE_LIMIT {
                cache.insert(name.into(), key.clone().unbind());
            }
        }
        key
    }
}

/// The bytes of a str made by `latin1` (every code point is one byte).
fn latin1_of(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
        .collect()
}

/// Bytes as a str with one code point per byte (PEP 3333 "bytes as str"), built directly from
/// the bytes: no UTF-8 decoding, one allocation.
pub fn latin1<'py>(py: Python<'py>, bytes: &[u8]) -> Bound<'py, PyString> {
    let max_char: ffi::Py_UCS4 = if bytes.is_ascii() { 0x7f } else { 0xff };
    let Ok(len) = ffi::Py_ssize_t::try_from(bytes.len()) else {
        return PyString::new(py, "");
    };
    // SAFETY: PyUnicode_New returns a new compact string of `len` one-byte code units (max
    // char <= 0xff) whose data we fill completely before anyone else sees it.
    unsafe {
        let raw = ffi::PyUnicode_New(len, max_char);
        if raw.is_null() {
            ffi::PyErr_Clear();
            return PyString::new(py, "");
        }
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), ffi::PyUnicode_1BYTE_DATA(raw), bytes.len());
        Bound::from_owned_ptr(py, raw).cast_into_unchecked()
    }
}

/// A str from ASCII/UTF-8 text the server produced itself.
fn text<'py>(py: Python<'py>, text: &str) -> Bound<'py, PyString> {
    if text.is_ascii() {
        latin1(py, text.as_bytes())
    } else {
        PyString::new(py, text)
    }
}

fn method_str<'py>(py: Python<'py>, method: &Method) -> Bound<'py, PyString> {
    match *method {
        Method::GET => pyo3::intern!(py, "GET").clone(),
        Method::POST => pyo3::intern!(py, "POST").clone(),
        Method::HEAD => pyo3::intern!(py, "HEAD").clone(),
        _ => PyString::new(py, method.as_str()),
    }
}

fn protocol_str(py: Python<'_>, version: Version) -> Bound<'_, PyString> {
    match version {
        Version::HTTP_10 => pyo3::intern!(py, "HTTP/1.0").clone(),
        Version::HTTP_2 => pyo3::intern!(py, "HTTP/2").clone(),
        _ => pyo3::intern!(py, "HTTP/1.1").clone(),
    }
}

/// The peer's IP address as a str; IPv4 is formatted by hand (this runs on every request).
fn ip_str<'py>(py: Python<'py>, addr: &SocketAddr) -> Bound<'py, PyString> {
    let SocketAddr::V4(v4) = addr else {
        return PyString::new(py, &addr.ip().to_string());
    };
    let mut buf = [0u8; 15];
    let mut len = 0;
    for (i, octet) in v4.ip().octets().into_iter().enumerate() {
        if i > 0 {
            buf[len] = b'.';
            len += 1;
        }
        let digits = itoa(u64::from(octet));
        let text = digits.digits();
        buf[len..len + text.len()].copy_from_slice(text);
        len += text.len();
    }
    latin1(py, &buf[..len])
}

/// Small integer to decimal without going through `format!`.
fn itoa(mut n: u64) -> ItoaBuf {
    let mut buf = ItoaBuf {
        bytes: [0; 20],
        start: 20,
    };
    loop {
        buf.start -= 1;
        buf.bytes[buf.start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return buf;
        }
    }
}

struct ItoaBuf {
    bytes: [u8; 20],
    start: usize,
}

impl ItoaBuf {
    /// The decimal digits, as ASCII bytes.
    fn digits(&self) -> &[u8] {
        &self.bytes[self.start..]
    }
}

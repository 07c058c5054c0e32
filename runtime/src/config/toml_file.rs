//! `wsrun.toml`: reads the file and applies its `[server]` table and `[[route]]` tables onto a
//! `Config` that already holds the defaults.
//!
//! Owns: the file's grammar (which keys exist, their types), locating every error by file,
//! 1-based line and dotted key, and resolving the file's relative paths against its directory.
//! Must not touch: command-line flags (`cli`), the value grammars themselves (`units`), or
//! anything at run time. Routes are named `route[N]` with N counted from 1 in file order.
//! Keys that later work will add (`wasm`, `memory`, `timeout`, ...; `[[timer]]`, `[[tenant]]`)
//! are errors saying so, never silently ignored.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::de::{DeString, DeTable, DeValue};
use toml::Spanned;

use super::units::{
    normalize_host, normalize_prefix, parse_bind, parse_duration, parse_log_level,
    parse_python_target, parse_size,
};
use super::{Config, ConfigError, RouteConfig, RouteTarget, ServerConfig};

type Key<'i> = Spanned<DeString<'i>>;
type Value<'i> = Spanned<DeValue<'i>>;
type Res<T> = Result<T, ConfigError>;

const TOP_KEYS: &[&str] = &["server", "route"];
const LATER_TOP_KEYS: &[&str] = &["timer", "tenant"];
#[rustfmt::skip]
const SERVER_KEYS: &[&str] = &[
    "bind", "workers", "threads", "state_dir", "spool_dir", "max_body_size", "spool_threshold",
    "header_timeout", "body_timeout", "body_min_rate", "keepalive_timeout", "max_header_size",
    "max_headers", "max_connections", "graceful_timeout", "log_level", "access_log",
    "pythonpath", "chdir", "debug",
];
const ROUTE_KEYS: &[&str] = &["prefix", "hosts", "python", "static", "max_body_size"];
#[rustfmt::skip]
const LATER_ROUTE_KEYS: &[&str] =
    &["wasm", "memory", "timeout", "max_concurrency", "allow_outbound", "env"];

/// Reads `path` and applies it onto `config`; errors name the file as `shown`.
/// Returns the line of the first route whose prefix is `/` (for any hosts), if there is one.
pub(crate) fn apply_file(path: &Path, shown: &str, config: &mut Config) -> Res<Option<usize>> {
    let src = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(shown, None, None, format!("cannot read this file: {e}")))?;
    let base = path.parent().unwrap_or_else(|| Path::new(""));
    let doc = Doc {
        file: shown,
        src: &src,
        base,
    };
    doc.apply(config)
}

struct Doc<'a> {
    file: &'a str,
    src: &'a str,
    base: &'a Path,
}

/// One `key = value` entry being read: where it is and what to call it in errors.
struct At<'d, 'v, 'i> {
    doc: &'d Doc<'d>,
    key: String,
    v: &'v Value<'i>,
}

impl<'d> Doc<'d> {
    fn at<'v, 'i>(&'d self, key: String, v: &'v Value<'i>) -> At<'d, 'v, 'i> {
        At { doc: self, key, v }
    }

    fn line(&self, offset: usize) -> usize {
        let end = offset.min(self.src.len());
        1 + self.src.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
    }

    fn err(&self, span: Range<usize>, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::new(self.file, Some(self.line(span.start)), Some(key), message)
    }

    fn apply(&self, config: &mut Config) -> Res<Option<usize>> {
        let root = DeTable::parse(self.src).map_err(|e| {
            let line = e.span().map(|s| self.line(s.start));
            let message = format!("TOML syntax: {}", e.message().trim_end());
            ConfigError::new(self.file, line, None, message)
        })?;
        let mut root_line = None;
        for (k, v) in in_order(root.get_ref()) {
            let name: &str = k.get_ref();
            match name {
                "server" => self.server(v, &mut config.server)?,
                "route" => root_line = self.routes(k, v, &mut config.routes)?,
                _ if SERVER_KEYS.contains(&name) => {
                    let msg =
                        format!("unknown top-level key; did you mean `{name}` under [server]?");
                    return Err(self.err(k.span(), name, msg));
                }
                _ => return Err(self.at(name.into(), v).unknown(k, TOP_KEYS, LATER_TOP_KEYS)),
            }
        }
        Ok(root_line)
    }

    fn server(&self, value: &Value, server: &mut ServerConfig) -> Res<()> {
        let DeValue::Table(table) = value.get_ref() else {
            let at = self.at("server".into(), value);
            return Err(at.type_err("a table ([server])"));
        };
        for (k, v) in in_order(table) {
            let at = self.at(format!("server.{}", k.get_ref()), v);
            match k.get_ref().as_ref() {
                "bind" => {
                    let mut addrs = Vec::new();
                    for (s, span) in at.strings()? {
                        let addr = parse_bind(s).map_err(|m| at.err_at(span.clone(), m))?;
                        if addrs.contains(&addr) {
                            return Err(at.err_at(span, format!("{addr} is listed twice")));
                        }
                        addrs.push(addr);
                    }
                    if addrs.is_empty() {
                        return Err(at.err("lists no address"));
                    }
                    server.bind = Some(addrs);
                }
                "workers" => server.workers = at.count()?,
                "threads" => server.threads = at.count()?,
                "max_headers" => server.max_headers = at.count()?,
                "max_connections" => server.max_connections = at.count()?,
                "state_dir" => server.state_dir = at.path()?,
                "spool_dir" => server.spool_dir = at.path()?,
                "chdir" => server.chdir = Some(at.dir()?),
                "max_body_size" => server.max_body_size = at.size()?,
                "spool_threshold" => server.spool_threshold = at.size()?,
                "body_min_rate" => server.body_min_rate = at.size()?,
                "max_header_size" => {
                    server.max_header_size = usize::try_from(at.size()?)
                        .map_err(|_| at.err("is too large for this platform"))?
                }
                "header_timeout" => server.header_timeout = at.duration()?,
                "body_timeout" => server.body_timeout = at.duration()?,
                "keepalive_timeout" => server.keepalive_timeout = at.duration()?,
                "graceful_timeout" => server.graceful_timeout = at.duration()?,
                "log_level" => {
                    server.log_level = parse_log_level(at.string()?).map_err(|m| at.err(m))?
                }
                "access_log" => {
                    let log = match at.string()? {
                        "-" => "-".to_string(),
                        _ => at.path()?.to_string_lossy().into_owned(),
                    };
                    server.access_log = Some(log);
                }
                "pythonpath" => {
                    let dirs: Vec<PathBuf> = match v.get_ref() {
                        // One string may list several directories, as on the command line.
                        DeValue::String(s) => std::env::split_paths(s.as_ref()).collect(),
                        _ => at
                            .strings()?
                            .iter()
                            .map(|(s, _)| PathBuf::from(s))
                            .collect(),
                    };
                    let dirs = dirs.into_iter().filter(|p| !p.as_os_str().is_empty());
                    server.pythonpath = dirs.map(|p| self.base.join(p)).collect();
                }
                "debug" => match v.get_ref() {
                    DeValue::Boolean(b) => server.debug = *b,
                    _ => return Err(at.type_err("true or false")),
                },
                _ => return Err(at.unknown(k, SERVER_KEYS, &[])),
            }
        }
        Ok(())
    }

    fn routes(&self, k: &Key, value: &Value, routes: &mut Vec<RouteConfig>) -> Res<Option<usize>> {
        let items = match value.get_ref() {
            DeValue::Array(items) => items,
            DeValue::Table(_) => {
                let msg = "write routes as [[route]] (an array of tables), not [route]";
                return Err(self.err(k.span(), "route", msg));
            }
            _ => return Err(self.at("route".into(), value).type_err("[[route]] tables")),
        };
        // Each route's prefix span, to locate duplicates and the root route.
        let mut spans: Vec<Range<usize>> = Vec::new();
        let first = routes.len();
        for (i, item) in items.iter().enumerate() {
            let n = i + 1;
            let DeValue::Table(table) = item.get_ref() else {
                return Err(self.at(format!("route[{n}]"), item).type_err("a table"));
            };
            let (route, span) = self.route(n, item.span(), table)?;
            for (j, old) in routes[first..].iter().enumerate() {
                // Same prefix, and either both for any host or for at least one common host.
                let clash = old.prefix == route.prefix
                    && old.hosts.is_empty() == route.hosts.is_empty()
                    && (old.hosts.is_empty() || route.hosts.iter().any(|h| old.hosts.contains(h)));
                if clash {
                    let (p, line) = (&route.prefix, self.line(spans[j].start));
                    let msg = format!(
                        "duplicate route: `{p}` for the same host(s) is already route[{}] (line {line})",
                        j + 1
                    );
                    return Err(self.err(span, &format!("route[{n}].prefix"), msg));
                }
            }
            routes.push(route);
            spans.push(span);
        }
        let root = routes[first..].iter().position(|r| r.prefix == "/");
        Ok(root.map(|i| self.line(spans[i].start)))
    }

    /// One `[[route]]` table; also returns its prefix's span.
    fn route(
        &self,
        n: usize,
        at_header: Range<usize>,
        table: &DeTable,
    ) -> Res<(RouteConfig, Range<usize>)> {
        let mut prefix = None;
        let mut hosts: Vec<String> = Vec::new();
        let mut target: Option<(RouteTarget, &str)> = None;
        let mut max_body_size = None;
        for (k, v) in in_order(table) {
            let name: &str = k.get_ref();
            let at = self.at(format!("route[{n}].{name}"), v);
            match name {
                "prefix" => {
                    let p = normalize_prefix(at.string()?).map_err(|m| at.err(m))?;
                    prefix = Some((p, v.span()));
                }
                "hosts" => {
                    let items = at.strings()?;
                    if items.is_empty() {
                        return Err(at.err("is empty; omit `hosts` to match any host"));
                    }
                    for (s, span) in items {
                        let h = normalize_host(s).map_err(|m| at.err_at(span, m))?;
                        if !hosts.contains(&h) {
                            hosts.push(h);
                        }
                    }
                }
                "python" | "static" => {
                    if let Some((_, other)) = &target {
                        let msg = format!("a route takes exactly one of `python` or `static`, and `{other}` is already set");
                        return Err(at.err_at(k.span(), msg));
                    }
                    let t = match name {
                        "python" => parse_python_target(at.string()?).map_err(|m| at.err(m))?,
                        _ => RouteTarget::Static { root: at.dir()? },
                    };
                    target = Some((t, name));
                }
                "max_body_size" => max_body_size = Some(at.size()?),
                _ => return Err(at.unknown(k, ROUTE_KEYS, LATER_ROUTE_KEYS)),
            }
        }
        let Some((prefix, span)) = prefix else {
            let msg = "is required, e.g. prefix = \"/\"";
            return Err(self.err(at_header, &format!("route[{n}].prefix"), msg));
        };
        let Some((target, _)) = target else {
            let msg = "needs a target: python = \"module:app\" or static = \"dir\"";
            return Err(self.err(at_header, &format!("route[{n}]"), msg));
        };
        let route = RouteConfig {
            prefix,
            hosts,
            target,
            max_body_size,
        };
        Ok((route, span))
    }
}

impl<'v> At<'_, 'v, '_> {
    /// `k` is not a key of this table (`known`), or one that later work adds (`later`).
    fn unknown(&self, k: &Key, known: &[&str], later: &[&str]) -> ConfigError {
        let name: &str = k.get_ref();
        let message = if later.contains(&name) {
            format!("`{name}` is not supported yet by this build")
        } else if let Some(s) = suggest(name, known) {
            format!("unknown key; did you mean `{s}`?")
        } else {
            format!("unknown key (known: {})", known.join(", "))
        };
        self.err_at(k.span(), message)
    }

    fn err(&self, message: impl Into<String>) -> ConfigError {
        self.err_at(self.v.span(), message)
    }

    fn err_at(&self, span: Range<usize>, message: impl Into<String>) -> ConfigError {
        self.doc.err(span, &self.key, message)
    }

    fn type_err(&self, expected: &str) -> ConfigError {
        self.err(format!(
            "expected {expected}, found {}",
            self.v.get_ref().type_str()
        ))
    }

    fn string(&self) -> Res<&'v str> {
        match self.v.get_ref() {
            DeValue::String(s) => Ok(s.as_ref()),
            _ => Err(self.type_err("a string")),
        }
    }

    /// A path, resolved against the file's directory.
    fn path(&self) -> Res<PathBuf> {
        match self.string()? {
            "" => Err(self.err("is an empty path")),
            s => Ok(self.doc.base.join(s)),
        }
    }

    /// A path that must name an existing directory.
    fn dir(&self) -> Res<PathBuf> {
        let dir = self.path()?;
        if !dir.is_dir() {
            return Err(self.err(format!("`{}` is not a directory", dir.display())));
        }
        Ok(dir)
    }

    /// A string, or an array of strings; each with its span.
    fn strings(&self) -> Res<Vec<(&'v str, Range<usize>)>> {
        match self.v.get_ref() {
            DeValue::String(s) => Ok(vec![(s.as_ref(), self.v.span())]),
            DeValue::Array(items) => items
                .iter()
                .map(|item| match item.get_ref() {
                    DeValue::String(s) => Ok((s.as_ref(), item.span())),
                    _ => Err(self
                        .doc
                        .at(self.key.clone(), item)
                        .type_err("strings in the array")),
                })
                .collect(),
            _ => Err(self.type_err("a string or an array of strings")),
        }
    }

    /// A non-negative integer (`None` when the value is not an integer at all).
    fn uint(&self) -> Res<Option<u64>> {
        let DeValue::Integer(i) = self.v.get_ref() else {
            return Ok(None);
        };
        if i.as_str().starts_with('-') {
            return Err(self.err("must not be negative"));
        }
        let n = u64::from_str_radix(i.as_str(), i.radix()).map_err(|_| self.err("is too large"))?;
        Ok(Some(n))
    }

    fn count(&self) -> Res<usize> {
        let negative =
            matches!(self.v.get_ref(), DeValue::Integer(i) if i.as_str().starts_with('-'));
        match if negative { Some(0) } else { self.uint()? } {
            Some(0) => Err(self.err("must be at least 1")),
            Some(n) => usize::try_from(n).map_err(|_| self.err("is too large")),
            None => Err(self.type_err("a whole number")),
        }
    }

    /// A size string (`"10MiB"`) or a number of bytes.
    fn size(&self) -> Res<u64> {
        if let Some(n) = self.uint()? {
            return Ok(n);
        }
        match self.v.get_ref() {
            DeValue::String(s) => parse_size(s).map_err(|m| self.err(m)),
            _ => Err(self.type_err("a size such as \"10MiB\" or a number of bytes")),
        }
    }

    /// A duration string (`"2s"`, `"250ms"`) or a number of seconds (integer or float).
    fn duration(&self) -> Res<Duration> {
        if let Some(n) = self.uint()? {
            return Ok(Duration::from_secs(n));
        }
        let text = match self.v.get_ref() {
            DeValue::String(s) => s.as_ref(),
            DeValue::Float(f) => f.as_str(),
            _ => return Err(self.type_err("a duration such as \"2s\" or \"250ms\"")),
        };
        parse_duration(text).map_err(|m| self.err(m))
    }
}

/// A table's entries in file order (the parsed map is sorted by name).
fn in_order<'t, 'i>(table: &'t DeTable<'i>) -> Vec<(&'t Key<'i>, &'t Value<'i>)> {
    let mut entries: Vec<_> = table.iter().collect();
    entries.sort_by_key(|(k, _)| k.span().start);
    entries
}

/// The known key closest to `name`, if it is a plausible typo (edit distance <= 2).
fn suggest<'k>(name: &str, known: &[&'k str]) -> Option<&'k str> {
    let distance = |a: &str, b: &str| {
        let b: Vec<char> = b.chars().collect();
        let mut row: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut prev = row[0];
            row[0] = i + 1;
            for (j, cb) in b.iter().enumerate() {
                let cur = row[j + 1];
                row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
                prev = cur;
            }
        }
        row[b.len()]
    };
    let best = known
        .iter()
        .map(|k| (distance(name, k), *k))
        .min_by_key(|(d, _)| *d);
    best.filter(|(d, _)| *d <= 2).map(|(_, k)| k)
}

#[cfg(test)]
#[path = "toml_file_tests.rs"]
mod tests;

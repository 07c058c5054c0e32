//! `wsrun.toml`: reads the file and applies its `[server]` table and `[[route]]` tables onto a
//! `Config` that already holds the defaults.
//!
//! Owns: the file's grammar (which keys exist, their types), locating every error by file,
//! 1-based line and dotted key, and resolving the file's relative paths against its directory.
//! Must not touch: command-line flags (`cli`), the value grammars themselves (`units`), or
//! anything at run time. Routes are named `route[N]` with N counted from 1 in file order.
//! `[[route]]` and `[[tenant]]` tables are read by `toml_routes`, `[jobs]` and `[[timer]]` by
//! `toml_jobs`. Keys that later work will add (`LATER_TOP_KEYS`) are errors saying so, never
//! silently ignored.

use std::path::{Path, PathBuf};

use toml::de::{DeTable, DeValue};

use super::toml_values::{in_order, Doc, Res, Value};
use super::units::{parse_bind, parse_log_level};
use super::{Config, ConfigError};

const TOP_KEYS: &[&str] = &["server", "route", "tenant", "jobs", "timer"];
const LATER_TOP_KEYS: &[&str] = &[];
#[rustfmt::skip]
const SERVER_KEYS: &[&str] = &[
    "bind", "workers", "threads", "state_dir", "spool_dir", "max_body_size", "spool_threshold",
    "header_timeout", "body_timeout", "body_min_rate", "keepalive_timeout", "max_header_size",
    "max_headers", "max_connections", "graceful_timeout", "log_level", "access_log",
    "pythonpath", "chdir", "debug", "watch",
];

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

impl Doc<'_> {
    pub(super) fn apply(&self, config: &mut Config) -> Res<Option<usize>> {
        let root = DeTable::parse(self.src).map_err(|e| {
            let line = e.span().map(|s| self.line(s.start));
            let message = format!("TOML syntax: {}", e.message().trim_end());
            ConfigError::new(self.file, line, None, message)
        })?;
        let mut root_line = None;
        for (k, v) in in_order(root.get_ref()) {
            let name: &str = k.get_ref();
            match name {
                "server" => self.server(v, config)?,
                "route" => root_line = self.routes(k, v, config)?,
                "tenant" => self.tenants(k, v, config)?,
                "jobs" => self.jobs(k, v, config)?,
                "timer" => self.timers(k, v, config)?,
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

    fn server(&self, value: &Value, config: &mut Config) -> Res<()> {
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
                    config.server.bind = Some(addrs);
                }
                "workers" => config.server.workers = at.count()?,
                "threads" => config.server.threads = at.count()?,
                "max_headers" => config.server.max_headers = at.count()?,
                "max_connections" => config.server.max_connections = at.count()?,
                "state_dir" => config.server.state_dir = at.path()?,
                "spool_dir" => config.server.spool_dir = at.path()?,
                "chdir" => config.server.chdir = Some(at.dir()?),
                "max_body_size" => config.server.max_body_size = at.size()?,
                "spool_threshold" => config.server.spool_threshold = at.size()?,
                "body_min_rate" => config.server.body_min_rate = at.size()?,
                "max_header_size" => {
                    config.server.max_header_size = usize::try_from(at.size()?)
                        .map_err(|_| at.err("is too large for this platform"))?
                }
                "header_timeout" => config.server.header_timeout = at.duration()?,
                "body_timeout" => config.server.body_timeout = at.duration()?,
                "keepalive_timeout" => config.server.keepalive_timeout = at.duration()?,
                "graceful_timeout" => config.server.graceful_timeout = at.duration()?,
                "log_level" => {
                    config.server.log_level =
                        parse_log_level(at.string()?).map_err(|m| at.err(m))?
                }
                "access_log" => {
                    let log = match at.string()? {
                        "-" => "-".to_string(),
                        _ => at.path()?.to_string_lossy().into_owned(),
                    };
                    config.server.access_log = Some(log);
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
                    config.server.pythonpath = dirs.map(|p| self.base.join(p)).collect();
                }
                "debug" => match v.get_ref() {
                    DeValue::Boolean(b) => config.server.debug = *b,
                    _ => return Err(at.type_err("true or false")),
                },
                "watch" => config.watch = Some(at.dir()?),
                _ => return Err(at.unknown(k, SERVER_KEYS, &[])),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "toml_file_tests.rs"]
mod tests;

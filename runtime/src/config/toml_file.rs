//! `wsrun.toml`: reads the file and applies its `[server]` table and `[[route]]` tables onto a
//! `Config` that already holds the defaults.
//!
//! Owns: the file's grammar (which tables exist; `[server]`'s keys come from the settings table
//! in `server.rs`), locating every error by file, 1-based line and dotted key, and resolving
//! the file's relative paths against its directory. Must not touch: command-line flags
//! (`cli`), the value grammars themselves (`units`), or anything at run time. Routes are named `route[N]` with N counted from 1 in file order.
//! `[[route]]` and `[[tenant]]` tables are read by `toml_routes`, `[jobs]` and `[[timer]]` by
//! `toml_jobs`; `[admin]` (its one key, `bind`) here. Keys that later work will add (`LATER_TOP_KEYS`) are errors saying so, never
//! silently ignored.

use std::path::Path;

use toml::de::{DeTable, DeValue};

use super::error::ConfigError;
use super::model::Config;
use super::server::ServerConfig;
use super::toml_values::{in_order, Doc, Res, Value};

const TOP_KEYS: &[&str] = &["server", "route", "tenant", "jobs", "timer", "admin"];
const LATER_TOP_KEYS: &[&str] = &[];

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
                "admin" => self.admin(v, config)?,
                _ if server_keys().contains(&name) => {
                    let msg =
                        format!("unknown top-level key; did you mean `{name}` under [server]?");
                    return Err(self.err(k.span(), name, msg));
                }
                _ => return Err(self.at(name.into(), v).unknown(k, TOP_KEYS, LATER_TOP_KEYS)),
            }
        }
        Ok(root_line)
    }

    /// `[server]`: every key but `watch` is a setting of the table in `server.rs`.
    fn server(&self, value: &Value, config: &mut Config) -> Res<()> {
        let DeValue::Table(table) = value.get_ref() else {
            let at = self.at("server".into(), value);
            return Err(at.type_err("a table ([server])"));
        };
        for (k, v) in in_order(table) {
            let name: &str = k.get_ref();
            let at = self.at(format!("server.{name}"), v);
            if name == "admin" {
                return Err(at.err("the admin listener is `bind` under [admin]"));
            } else if name == "watch" {
                config.watch = Some(at.dir()?);
            } else if let Some(applied) = config.server.apply_toml(name, &at) {
                applied?;
            } else {
                return Err(at.unknown(k, &server_keys(), &[]));
            }
        }
        Ok(())
    }
}

impl Doc<'_> {
    /// `[admin]`: `bind`, the admin listener's address (the `admin` setting of `server.rs`).
    fn admin(&self, value: &Value, config: &mut Config) -> Res<()> {
        let DeValue::Table(table) = value.get_ref() else {
            let at = self.at("admin".into(), value);
            return Err(at.type_err("a table ([admin])"));
        };
        for (k, v) in in_order(table) {
            let name: &str = k.get_ref();
            let at = self.at(format!("admin.{name}"), v);
            let applied = match name {
                "bind" => config.server.apply_toml("admin", &at),
                _ => None,
            };
            match applied {
                Some(applied) => applied?,
                None => return Err(at.unknown(k, &["bind"], &[])),
            }
        }
        Ok(())
    }
}

/// Every key `[server]` takes: the settings, then `watch`.
fn server_keys() -> Vec<&'static str> {
    let mut keys = ServerConfig::TOML_KEYS.to_vec();
    keys.retain(|&k| k != "admin");
    keys.push("watch");
    keys
}

#[cfg(test)]
#[path = "toml_file_tests.rs"]
mod tests;

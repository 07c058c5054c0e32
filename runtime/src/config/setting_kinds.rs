//! The kinds of setting value, each read the same way from a flag and from `wsrun.toml`.
//!
//! Owns: one `Setting` implementation per kind (`Count`, `Size`, `SizeUsize`, `Dur`,
//! `AnyPath`, `ExistingDir`, `OptionalPath`, `PathList`, `Binds`, `LogLevel`, `AccessLog`, `AccessLogFormatKind`,
//! `Limit`, `Switch`, `Codecs`, `AdminAddr`, `NodeName`) with the
//! checks and messages of that kind. Must not touch: which settings exist (`server`) or the
//! value grammars themselves (`units`); TOML access goes through `toml_values::At`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::de::DeValue;

use crate::accept_encoding::Codec;

use super::admin::AdminBind;
use super::error::{ConfigError, CLI_FILE};
use super::settings::Setting;
use super::tls::TlsFile;
use super::toml_values::{At, Res};
use super::units::{
    format_duration, format_size, parse_access_log_format, parse_bind, parse_duration,
    parse_log_level, parse_size, AccessLogFormat, DEFAULT_BIND,
};

/// A whole number, at least 1 (`workers`, `max_headers`).
pub(super) struct Count;
/// A whole number where 0 means "no limit" or "automatic" (`max_requests`, `max_connections`).
pub(super) struct Limit;
/// `combined` or `json` (`access_log_format`).
pub(super) struct AccessLogFormatKind;
/// A byte size (`10MiB`, or a number of bytes in TOML).
pub(super) struct Size;
/// A byte size kept as `usize` (sizes of in-memory buffers).
pub(super) struct SizeUsize;
/// A duration (`2s`, `250ms`; a number of seconds in TOML).
pub(super) struct Dur;
/// A path, made absolute against the working directory (flag) or the file's directory.
pub(super) struct AnyPath;
/// A path that must name an existing directory; no default.
pub(super) struct ExistingDir;
/// An optional path, made absolute like `AnyPath`; `None` by default (`profile`).
pub(super) struct OptionalPath;
/// Directories for the Python import path: repeatable, and one value may list `DIR:DIR`.
pub(super) struct PathList;
/// Listen addresses: repeatable, no duplicates; `None` means the default address.
pub(super) struct Binds;
/// One of `LOG_LEVELS`, any case.
pub(super) struct LogLevel;
/// `-` for stdout or a file path; `None` means no access log.
pub(super) struct AccessLog;
/// On or off; a flag can only turn it on.
pub(super) struct Switch;
/// Content codings in order of preference (`["zstd", "br", "gzip"]`; empty turns it off).
pub(super) struct Codecs;
/// The admin listener's address (`--admin`, `[admin] bind`), remembered with where it was
/// given so a later check (the same address as a public bind) can point back at it.
pub(super) struct AdminAddr;

/// A node's name (`[server] node`): 1 to 63 of `A-Z a-z 0-9 . _ -`; default host name + pid.
pub(super) struct NodeName;
/// A TLS certificate or key file, remembered with where it was named (its contents are read
/// and checked at start-up by `server::tls`, whose errors point back here).
pub(super) struct TlsPem;

impl Setting for Count {
    type Value = usize;
    type Flag = Option<usize>;
    fn from_flag(flag: &str, given: &Option<usize>, _: &Path) -> Res<Option<usize>> {
        match given {
            Some(0) => Err(ConfigError::flag(flag, "must be at least 1")),
            other => Ok(*other),
        }
    }
    fn from_toml(at: &At) -> Res<usize> {
        at.count()
    }
    fn shown(default: &usize) -> Option<String> {
        Some(default.to_string())
    }
}

impl Setting for Limit {
    type Value = u64;
    type Flag = Option<u64>;
    fn from_flag(_: &str, given: &Option<u64>, _: &Path) -> Res<Option<u64>> {
        Ok(*given)
    }
    fn from_toml(at: &At) -> Res<u64> {
        at.uint()?
            .ok_or_else(|| at.type_err("a whole number (0 for no limit)"))
    }
    fn shown(default: &u64) -> Option<String> {
        Some(default.to_string())
    }
}

impl Setting for AccessLogFormatKind {
    type Value = AccessLogFormat;
    type Flag = Option<String>;
    fn from_flag(flag: &str, given: &Option<String>, _: &Path) -> Res<Option<AccessLogFormat>> {
        let parse = |v: &String| parse_access_log_format(v).map_err(|m| ConfigError::flag(flag, m));
        given.as_ref().map(parse).transpose()
    }
    fn from_toml(at: &At) -> Res<AccessLogFormat> {
        parse_access_log_format(at.string()?).map_err(|m| at.err(m))
    }
    fn shown(default: &AccessLogFormat) -> Option<String> {
        Some(default.name().to_string())
    }
}

impl Setting for Size {
    type Value = u64;
    type Flag = Option<String>;
    fn from_flag(flag: &str, given: &Option<String>, _: &Path) -> Res<Option<u64>> {
        let parse = |v: &String| parse_size(v).map_err(|m| ConfigError::flag(flag, m));
        given.as_ref().map(parse).transpose()
    }
    fn from_toml(at: &At) -> Res<u64> {
        at.size()
    }
    fn shown(default: &u64) -> Option<String> {
        Some(format_size(*default))
    }
}

const TOO_LARGE: &str = "is too large for this platform";

impl Setting for SizeUsize {
    type Value = usize;
    type Flag = Option<String>;
    fn from_flag(flag: &str, given: &Option<String>, cwd: &Path) -> Res<Option<usize>> {
        let Some(size) = Size::from_flag(flag, given, cwd)? else {
            return Ok(None);
        };
        let size = usize::try_from(size).map_err(|_| ConfigError::flag(flag, TOO_LARGE))?;
        Ok(Some(size))
    }
    fn from_toml(at: &At) -> Res<usize> {
        usize::try_from(at.size()?).map_err(|_| at.err(TOO_LARGE))
    }
    fn shown(default: &usize) -> Option<String> {
        Some(format_size(*default as u64))
    }
}

impl Setting for Dur {
    type Value = Duration;
    type Flag = Option<String>;
    fn from_flag(flag: &str, given: &Option<String>, _: &Path) -> Res<Option<Duration>> {
        let parse = |v: &String| parse_duration(v).map_err(|m| ConfigError::flag(flag, m));
        given.as_ref().map(parse).transpose()
    }
    fn from_toml(at: &At) -> Res<Duration> {
        at.duration()
    }
    fn shown(default: &Duration) -> Option<String> {
        Some(format_duration(*default))
    }
}

impl Setting for AnyPath {
    type Value = PathBuf;
    type Flag = Option<PathBuf>;
    fn from_flag(_: &str, given: &Option<PathBuf>, cwd: &Path) -> Res<Option<PathBuf>> {
        Ok(given.as_ref().map(|p| cwd.join(p)))
    }
    fn from_toml(at: &At) -> Res<PathBuf> {
        at.path()
    }
    fn shown(default: &PathBuf) -> Option<String> {
        Some(default.display().to_string())
    }
}

impl Setting for OptionalPath {
    type Value = Option<PathBuf>;
    type Flag = Option<PathBuf>;
    fn from_flag(_: &str, given: &Option<PathBuf>, cwd: &Path) -> Res<Option<Self::Value>> {
        Ok(given.as_ref().map(|p| Some(cwd.join(p))))
    }
    fn from_toml(at: &At) -> Res<Option<PathBuf>> {
        at.path().map(Some)
    }
    fn shown(_: &Option<PathBuf>) -> Option<String> {
        None
    }
}

impl Setting for ExistingDir {
    type Value = Option<PathBuf>;
    type Flag = Option<PathBuf>;
    fn from_flag(flag: &str, given: &Option<PathBuf>, cwd: &Path) -> Res<Option<Self::Value>> {
        let Some(dir) = given else {
            return Ok(None);
        };
        let dir = cwd.join(dir);
        if !dir.is_dir() {
            let msg = format!("`{}` is not a directory", dir.display());
            return Err(ConfigError::flag(flag, msg));
        }
        Ok(Some(Some(dir)))
    }
    fn from_toml(at: &At) -> Res<Option<PathBuf>> {
        at.dir().map(Some)
    }
    fn shown(_: &Option<PathBuf>) -> Option<String> {
        None
    }
}

impl Setting for PathList {
    type Value = Vec<PathBuf>;
    type Flag = Vec<PathBuf>;
    fn from_flag(_: &str, given: &Vec<PathBuf>, cwd: &Path) -> Res<Option<Vec<PathBuf>>> {
        if given.is_empty() {
            return Ok(None);
        }
        let dirs = given
            .iter()
            .flat_map(|v| std::env::split_paths(v.as_os_str()).collect::<Vec<_>>())
            .filter(|p| !p.as_os_str().is_empty())
            .map(|p| cwd.join(p));
        Ok(Some(dirs.collect()))
    }
    fn from_toml(at: &At) -> Res<Vec<PathBuf>> {
        let dirs: Vec<PathBuf> = match at.v.get_ref() {
            // One string may list several directories, as on the command line.
            DeValue::String(s) => std::env::split_paths(s.as_ref()).collect(),
            _ => at
                .strings()?
                .iter()
                .map(|(s, _)| PathBuf::from(s))
                .collect(),
        };
        let dirs = dirs.into_iter().filter(|p| !p.as_os_str().is_empty());
        Ok(dirs.map(|p| at.doc.base.join(p)).collect())
    }
    fn shown(_: &Vec<PathBuf>) -> Option<String> {
        None
    }
}

impl Setting for Binds {
    type Value = Option<Vec<SocketAddr>>;
    type Flag = Vec<String>;
    fn from_flag(flag: &str, given: &Vec<String>, _: &Path) -> Res<Option<Self::Value>> {
        if given.is_empty() {
            return Ok(None);
        }
        let mut addrs = Vec::new();
        for b in given {
            let addr = parse_bind(b).map_err(|m| ConfigError::flag(flag, m))?;
            if addrs.contains(&addr) {
                return Err(ConfigError::flag(flag, format!("{addr} is given twice")));
            }
            addrs.push(addr);
        }
        Ok(Some(Some(addrs)))
    }
    fn from_toml(at: &At) -> Res<Self::Value> {
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
        Ok(Some(addrs))
    }
    fn shown(_: &Self::Value) -> Option<String> {
        Some(DEFAULT_BIND.to_string())
    }
}

impl Setting for LogLevel {
    type Value = String;
    type Flag = Option<String>;
    fn from_flag(flag: &str, given: &Option<String>, _: &Path) -> Res<Option<String>> {
        let parse = |v: &String| parse_log_level(v).map_err(|m| ConfigError::flag(flag, m));
        given.as_ref().map(parse).transpose()
    }
    fn from_toml(at: &At) -> Res<String> {
        parse_log_level(at.string()?).map_err(|m| at.err(m))
    }
    fn shown(default: &String) -> Option<String> {
        Some(default.clone())
    }
}

impl Setting for AccessLog {
    type Value = Option<String>;
    type Flag = Option<String>;
    fn from_flag(flag: &str, given: &Option<String>, cwd: &Path) -> Res<Option<Self::Value>> {
        match given.as_deref() {
            None => Ok(None),
            Some("") => Err(ConfigError::flag(
                flag,
                "is empty (use `-` for stdout or a file path)",
            )),
            Some("-") => Ok(Some(Some("-".to_string()))),
            Some(log) => Ok(Some(Some(cwd.join(log).to_string_lossy().into_owned()))),
        }
    }
    fn from_toml(at: &At) -> Res<Option<String>> {
        let log = match at.string()? {
            "-" => "-".to_string(),
            _ => at.path()?.to_string_lossy().into_owned(),
        };
        Ok(Some(log))
    }
    fn shown(_: &Option<String>) -> Option<String> {
        None
    }
}

impl Setting for Switch {
    type Value = bool;
    type Flag = bool;
    fn from_flag(_: &str, given: &bool, _: &Path) -> Res<Option<bool>> {
        Ok(given.then_some(true))
    }
    fn from_toml(at: &At) -> Res<bool> {
        match at.v.get_ref() {
            DeValue::Boolean(b) => Ok(*b),
            _ => Err(at.type_err("true or false")),
        }
    }
    fn shown(_: &bool) -> Option<String> {
        None
    }
}

impl Setting for Codecs {
    type Value = Vec<Codec>;
    type Flag = Option<String>;
    fn from_flag(flag: &str, given: &Option<String>, _: &Path) -> Res<Option<Vec<Codec>>> {
        let Some(given) = given else {
            return Ok(None);
        };
        let names = given.split(',').map(str::trim).filter(|n| !n.is_empty());
        let mut codecs = Vec::new();
        for name in names.filter(|n| *n != "off") {
            let codec = parse_codec(name, &codecs).map_err(|m| ConfigError::flag(flag, m))?;
            codecs.push(codec);
        }
        Ok(Some(codecs))
    }
    fn from_toml(at: &At) -> Res<Vec<Codec>> {
        if !matches!(at.v.get_ref(), DeValue::Array(_)) {
            return Err(at.type_err("an array such as [\"zstd\", \"br\", \"gzip\"]"));
        }
        let mut codecs = Vec::new();
        for (name, span) in at.strings()? {
            let codec = parse_codec(name, &codecs).map_err(|m| at.err_at(span, m))?;
            codecs.push(codec);
        }
        Ok(codecs)
    }
    fn shown(default: &Vec<Codec>) -> Option<String> {
        let names: Vec<&str> = default.iter().map(|c| c.token()).collect();
        Some(names.join(","))
    }
}

/// One coding's name, exactly as `Content-Encoding` writes it, not already in `seen`.
fn parse_codec(name: &str, seen: &[Codec]) -> Result<Codec, String> {
    let codec = Codec::ALL
        .into_iter()
        .find(|c| c.token() == name)
        .ok_or_else(|| format!("unknown coding `{name}`: use \"zstd\", \"br\" or \"gzip\""))?;
    if seen.contains(&codec) {
        return Err(format!("`{name}` is listed twice"));
    }
    Ok(codec)
}

impl Setting for TlsPem {
    type Value = Option<TlsFile>;
    type Flag = Option<PathBuf>;
    fn from_flag(flag: &str, given: &Option<PathBuf>, cwd: &Path) -> Res<Option<Self::Value>> {
        Ok(given.as_ref().map(|path| {
            Some(TlsFile {
                path: cwd.join(path),
                source: CLI_FILE.to_string(),
                line: None,
                key: flag.to_string(),
            })
        }))
    }
    fn from_toml(at: &At) -> Res<Option<TlsFile>> {
        at.tls_file().map(Some)
    }
    fn shown(_: &Option<TlsFile>) -> Option<String> {
        None
    }
}

impl Setting for AdminAddr {
    type Value = Option<AdminBind>;
    type Flag = Option<String>;
    fn from_flag(flag: &str, given: &Option<String>, _: &Path) -> Res<Option<Self::Value>> {
        let Some(text) = given else {
            return Ok(None);
        };
        let addr = parse_bind(text).map_err(|m| ConfigError::flag(flag, m))?;
        let at = ConfigError::flag(flag, "");
        Ok(Some(Some(AdminBind { addr, at })))
    }
    fn from_toml(at: &At) -> Res<Self::Value> {
        let addr = parse_bind(at.string()?).map_err(|m| at.err(m))?;
        Ok(Some(AdminBind {
            addr,
            at: at.err(""),
        }))
    }
    fn shown(_: &Self::Value) -> Option<String> {
        None
    }
}

impl Setting for NodeName {
    type Value = String;
    type Flag = Option<String>;
    fn from_flag(flag: &str, given: &Option<String>, _: &Path) -> Res<Option<String>> {
        let check = |v: &String| check_node(v).map_err(|m| ConfigError::flag(flag, m));
        given.as_ref().map(check).transpose()
    }
    fn from_toml(at: &At) -> Res<String> {
        check_node(at.string()?).map_err(|m| at.err(m))
    }
    fn shown(_: &String) -> Option<String> {
        Some("host name + pid".to_string())
    }
}

fn check_node(name: &str) -> Result<String, String> {
    let ok = (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    match ok {
        true => Ok(name.to_string()),
        false => Err(format!(
            "{name:?} is not a node name (1 to 63 letters, digits, '.', '_' or '-')"
        )),
    }
}

/// The default node name: this machine's host name and this process's id (the master's: the
/// config is built before the workers are forked), `web1-4242`.
pub(super) fn default_node() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that many bytes.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let host: String = match rc {
        0 => String::from_utf8_lossy(&buf[..end])
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '-'
                }
            })
            .take(50)
            .collect(),
        _ => String::new(),
    };
    let host = if host.is_empty() {
        "node".to_string()
    } else {
        host
    };
    format!("{host}-{}", std::process::id())
}

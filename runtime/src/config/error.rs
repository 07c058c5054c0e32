//! The one error type of configuration: a problem located by file, line and dotted key.
//!
//! Owns: `ConfigError` and how it is shown (`file:line: key `k`: message`), `CLI_FILE` (the
//! `file` of every error that comes from a flag or the TARGET), and `ValueError`, the not yet
//! located error of one value's grammar. Must not touch: how values are
//! read or checked (every other file under `config/` builds these errors; this file depends on
//! none of them).

use std::fmt;

/// The `file` of every error that comes from a flag or the TARGET.
pub const CLI_FILE: &str = "<command line>";

/// A configuration problem, located as precisely as we can.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file the problem is in (`<command line>` for flags).
    pub file: String,
    pub line: Option<usize>,
    /// The key at fault, dotted (`route[2].prefix`), when known.
    pub key: Option<String>,
    pub message: String,
}

impl ConfigError {
    pub fn new(
        file: impl Into<String>,
        line: Option<usize>,
        key: Option<&str>,
        message: impl Into<String>,
    ) -> Self {
        ConfigError {
            file: file.into(),
            line,
            key: key.map(str::to_string),
            message: message.into(),
        }
    }

    /// An error about one flag (or `TARGET`) of the command line.
    pub fn flag(flag: &str, message: impl Into<String>) -> Self {
        ConfigError::new(CLI_FILE, None, Some(flag), message)
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": key `{key}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// A user-written value that does not parse (a size, a duration, an address, a cron
/// expression, ...), said in plain English and not yet located: whoever read the value turns
/// it into a `ConfigError` with the file, line and key (or the flag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueError(String);

impl From<String> for ValueError {
    fn from(message: String) -> Self {
        ValueError(message)
    }
}

impl From<&str> for ValueError {
    fn from(message: &str) -> Self {
        ValueError(message.to_string())
    }
}

impl From<ValueError> for String {
    fn from(e: ValueError) -> String {
        e.0
    }
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ValueError {}

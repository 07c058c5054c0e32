//! What a configured TLS file is: the PEM file's path plus where the configuration named it
//! (config file, line, key or flag), so that whoever opens it later can say which file and
//! which key are at fault.
//!
//! Owns: `TlsFile`. Must not touch: reading or checking PEM contents (`server::tls::certs`
//! does that); depends only on `error`.

use std::path::PathBuf;

use super::error::ConfigError;

/// A certificate or key file named by `[server] tls_cert`/`tls_key`, `--certfile`/`--keyfile`
/// or a tenant's `tls_cert`/`tls_key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFile {
    /// The PEM file, absolute (relative paths are resolved against the config file's
    /// directory, or the working directory for a flag).
    pub path: PathBuf,
    /// The config file that named it (`<command line>` for a flag).
    pub source: String,
    pub line: Option<usize>,
    /// The dotted key (`server.tls_cert`, `tenant[1].tls_key`) or the flag (`--certfile`).
    pub key: String,
}

impl TlsFile {
    /// A start-up error about this file, located where the configuration named it; the
    /// message starts with the PEM file's path.
    pub fn error(&self, message: impl std::fmt::Display) -> ConfigError {
        let message = format!("{}: {message}", self.path.display());
        ConfigError::new(&self.source, self.line, Some(&self.key), message)
    }
}

//! The admin listener's address as configured (`--admin`, `[admin] bind`).
//!
//! Owns: `AdminBind` (the address and where it was given, so an error found later points
//! back at the flag or the file's line and key) and the rule for when it clashes with a public
//! address. Must not touch: reading it (`setting_kinds::AdminAddr`) or serving it
//! (`server::admin`).

use std::net::SocketAddr;

use super::error::ConfigError;

/// The admin listener's address and where it was given (file, line and key, or the flag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminBind {
    pub addr: SocketAddr,
    /// An error located where the address was given; its message is filled by `error`.
    pub at: ConfigError,
}

impl AdminBind {
    /// An error about this address, located where it was given.
    pub fn error(&self, message: impl Into<String>) -> ConfigError {
        let mut err = self.at.clone();
        err.message = message.into();
        err
    }

    /// Whether the admin address would take a public one's port: the same port on the same
    /// address, or on the unspecified address of either side.
    pub fn clashes_with(&self, public: &[SocketAddr]) -> Option<SocketAddr> {
        let a = self.addr;
        public.iter().copied().find(|p| {
            p.port() == a.port()
                && (p.ip() == a.ip() || p.ip().is_unspecified() || a.ip().is_unspecified())
        })
    }
}

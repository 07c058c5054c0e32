//! Which certificate a handshake gets, and picking up certificate files that changed.
//!
//! Owns: `SniResolver` (rustls asks it for each ClientHello: the certificate of the tenant
//! whose hosts match the SNI name, else the server-wide one) and `CertSource` (one pair of
//! files and the `CertifiedKey` last read from them). Reload: each handshake compares the
//! files' stamps (mtime, length, inode: two `stat`s, no reads) with those last loaded; on a
//! change the pair is read again, and if it is broken the error is logged and the previous
//! certificate keeps serving. So the next handshake after a good replacement uses it, in every
//! worker. Must not touch: reading or checking PEM contents (`certs`) or the TLS stream.

use std::sync::{Arc, Mutex};

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::certs::{load_pair, Stamp};
use crate::config::{ConfigError, TlsFile};
use crate::router::HostPattern;

/// One certificate/key pair on disk and what was last loaded from it.
#[derive(Debug)]
pub struct CertSource {
    provider: Arc<CryptoProvider>,
    cert: TlsFile,
    key: TlsFile,
    /// The hosts it must cover (a tenant's; empty for the server-wide pair).
    hosts: Vec<String>,
    state: Mutex<Loaded>,
}

#[derive(Debug)]
struct Loaded {
    key: Arc<CertifiedKey>,
    /// The files' stamps when last read (successfully or not).
    stamps: (Option<Stamp>, Option<Stamp>),
}

impl CertSource {
    /// Reads and checks the pair now (a start-up error names the file and key at fault).
    pub fn load(
        provider: Arc<CryptoProvider>,
        cert: TlsFile,
        key: TlsFile,
        hosts: Vec<String>,
    ) -> Result<CertSource, ConfigError> {
        let stamps = (Stamp::of(&cert.path), Stamp::of(&key.path));
        let loaded = load_pair(&provider, &cert, &key, &hosts)?;
        Ok(CertSource {
            provider,
            cert,
            key,
            hosts,
            state: Mutex::new(Loaded {
                key: loaded,
                stamps,
            }),
        })
    }

    /// The certificate to serve now: re-read first if either file changed since last time.
    pub fn current(&self) -> Arc<CertifiedKey> {
        let mut state = match self.state.lock() {
            Ok(state) => state,
            Err(poisoned) => poisoned.into_inner(),
        };
        let stamps = (Stamp::of(&self.cert.path), Stamp::of(&self.key.path));
        if stamps != state.stamps {
            state.stamps = stamps;
            match load_pair(&self.provider, &self.cert, &self.key, &self.hosts) {
                Ok(key) => {
                    tracing::info!("TLS: reloaded {}", self.cert.path.display());
                    state.key = key;
                }
                Err(err) => tracing::error!(
                    "TLS: cannot reload the certificate, the previous one stays: {err}"
                ),
            }
        }
        state.key.clone()
    }
}

/// The server's certificates: the server-wide default and the tenants' own, by host.
#[derive(Debug)]
pub struct SniResolver {
    default: CertSource,
    tenants: Vec<(Vec<HostPattern>, CertSource)>,
}

impl SniResolver {
    pub fn new(default: CertSource, tenants: Vec<(Vec<String>, CertSource)>) -> SniResolver {
        let tenants = tenants
            .into_iter()
            .map(|(hosts, source)| {
                (
                    hosts.iter().map(|h| HostPattern::parse(h)).collect(),
                    source,
                )
            })
            .collect();
        SniResolver { default, tenants }
    }

    /// The pair serving `name` (an SNI host name, or none).
    fn source_for(&self, name: Option<&str>) -> &CertSource {
        name.and_then(|name| {
            self.tenants
                .iter()
                .find(|(patterns, _)| patterns.iter().any(|p| p.matches(name)))
                .map(|(_, source)| source)
        })
        .unwrap_or(&self.default)
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.source_for(hello.server_name()).current())
    }
}

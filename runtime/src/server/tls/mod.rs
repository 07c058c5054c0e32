//! Serving TLS: the rustls server configuration a worker accepts TLS connections with.
//!
//! Owns: whether the bound addresses serve TLS (`[server] tls_cert`/`tls_key`, or
//! `--certfile`/`--keyfile`: then every connection is TLS), the start-up checks of every
//! configured pair (server-wide and tenants'; a bad one is a configuration error naming the
//! file and key, before anything is bound), and the protocols offered by ALPN (`h2`, then
//! `http/1.1`). Must not touch: what is served over the TLS stream (`connection`), or PEM
//! parsing and reloading inside (`certs`, `sni`).

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::ServerConfig;
pub use tokio_rustls::TlsAcceptor;

use crate::config::{Config, ConfigError, TlsFile};

mod certs;
mod sni;

use sni::{CertSource, SniResolver};

/// The ALPN protocol names offered, in order of preference.
pub const ALPN_H2: &[u8] = b"h2";
const ALPN_HTTP11: &[u8] = b"http/1.1";

/// Checks every configured certificate and key (run before anything is bound).
pub fn check(config: &Config) -> Result<(), ConfigError> {
    acceptor(config).map(|_| ())
}

/// The TLS acceptor of the bound addresses; `None` when no server-wide certificate is set.
pub fn acceptor(config: &Config) -> Result<Option<TlsAcceptor>, ConfigError> {
    let server = &config.server;
    let Some((cert, key)) = pair(&server.certfile, &server.keyfile)? else {
        if let Some(file) = config.tenants.iter().find_map(|t| t.tls_cert.as_ref()) {
            return Err(file.error(
                "a tenant certificate needs the server-wide one too ([server] tls_cert and \
                 tls_key, or --certfile and --keyfile): only then do the bound addresses \
                 serve TLS",
            ));
        }
        return Ok(None);
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let default = CertSource::load(provider.clone(), cert.clone(), key.clone(), Vec::new())?;
    let mut tenants = Vec::new();
    for tenant in &config.tenants {
        if let Some((cert, key)) = pair(&tenant.tls_cert, &tenant.tls_key)? {
            let hosts = tenant.hosts.clone();
            let source = CertSource::load(provider.clone(), cert.clone(), key.clone(), hosts)?;
            tenants.push((tenant.hosts.clone(), source));
        }
    }
    let resolver = Arc::new(SniResolver::new(default, tenants));
    let mut tls = server_config(provider, cert)?.with_cert_resolver(resolver);
    tls.alpn_protocols = vec![ALPN_H2.to_vec(), ALPN_HTTP11.to_vec()];
    Ok(Some(TlsAcceptor::from(Arc::new(tls))))
}

/// rustls' builder up to the certificate: the ring provider, TLS 1.2 and 1.3, no client
/// certificates.
fn server_config(
    provider: Arc<CryptoProvider>,
    cert: &TlsFile,
) -> Result<rustls::ConfigBuilder<ServerConfig, rustls::server::WantsServerCert>, ConfigError> {
    let builder = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(rustls::DEFAULT_VERSIONS)
        .map_err(|e| cert.error(format!("cannot set up TLS: {e}")))?;
    Ok(builder.with_no_client_auth())
}

/// A certificate and its key: both set, or neither.
fn pair<'a>(
    cert: &'a Option<TlsFile>,
    key: &'a Option<TlsFile>,
) -> Result<Option<(&'a TlsFile, &'a TlsFile)>, ConfigError> {
    match (cert, key) {
        (Some(cert), Some(key)) => Ok(Some((cert, key))),
        (None, None) => Ok(None),
        (Some(set), None) | (None, Some(set)) => {
            let missing = missing_partner(&set.key);
            Err(ConfigError::new(
                &set.source,
                set.line,
                Some(&set.key),
                format!("is set but `{missing}` is not: a certificate needs its key"),
            ))
        }
    }
}

/// The key a set `tls_cert`/`tls_key` (or flag) needs beside it.
fn missing_partner(key: &str) -> String {
    let swaps = [
        ("--certfile", "--keyfile"),
        ("--keyfile", "--certfile"),
        ("tls_cert", "tls_key"),
        ("tls_key", "tls_cert"),
    ];
    swaps
        .iter()
        .find_map(|(from, to)| key.strip_suffix(from).map(|head| format!("{head}{to}")))
        .unwrap_or_else(|| key.to_string())
}

//! Reading and checking one certificate/key pair from PEM files.
//!
//! Owns: turning a `tls_cert`/`tls_key` pair into a rustls `CertifiedKey` (the chain parses,
//! the key parses and matches the leaf certificate), the check that a tenant's certificate
//! covers the tenant's hosts (its SAN DNS names, wildcards as TLS clients read them), and
//! `Stamp`, what tells that a file changed on disk. Every error names the PEM file and the
//! config key that named it (`TlsFile::error`). Must not touch: handshakes, SNI or when files
//! are re-read (`sni`).

use std::os::unix::fs::MetadataExt;
use std::sync::Arc;
use std::time::SystemTime;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::sign::CertifiedKey;

use crate::config::{ConfigError, TlsFile};

/// A certificate and its key, read and checked. `hosts` (a tenant's; empty for the server-wide
/// certificate) must all be covered by the certificate.
pub fn load_pair(
    provider: &CryptoProvider,
    cert: &TlsFile,
    key: &TlsFile,
    hosts: &[String],
) -> Result<Arc<CertifiedKey>, ConfigError> {
    let chain = read_chain(cert)?;
    check_covers(cert, &chain[0], hosts)?;
    let key_der = read_key(key)?;
    let certified = CertifiedKey::from_der(chain, key_der, provider).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => key.error(format!(
            "this private key does not match the certificate {}",
            cert.path.display()
        )),
        other => key.error(format!("cannot use this private key: {other}")),
    })?;
    Ok(Arc::new(certified))
}

/// The PEM certificates of `cert`, leaf first; at least one, and the leaf parses as X.509.
fn read_chain(cert: &TlsFile) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let bytes = std::fs::read(&cert.path)
        .map_err(|e| cert.error(format!("cannot read the certificate: {e}")))?;
    let chain = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert.error(format!("is not a valid PEM certificate file: {e}")))?;
    let Some(leaf) = chain.first() else {
        return Err(cert.error("holds no PEM certificate (-----BEGIN CERTIFICATE-----)"));
    };
    webpki::EndEntityCert::try_from(leaf)
        .map_err(|e| cert.error(format!("is not a valid X.509 certificate: {e}")))?;
    Ok(chain)
}

/// The first PEM private key of `key` (PKCS#8, PKCS#1 or SEC1).
fn read_key(key: &TlsFile) -> Result<PrivateKeyDer<'static>, ConfigError> {
    let bytes =
        std::fs::read(&key.path).map_err(|e| key.error(format!("cannot read the key: {e}")))?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => {
            key.error("holds no PEM private key (-----BEGIN PRIVATE KEY-----)")
        }
        other => key.error(format!("is not a valid PEM private key: {other}")),
    })
}

/// Every host must be a name the certificate is valid for, as a client checks it: an exact
/// SAN DNS name, or a `*.` SAN wildcard covering one label. A tenant host `*.example.com` is
/// covered only by a `*.example.com` SAN (checked with a one-label name under it).
fn check_covers(
    cert: &TlsFile,
    leaf: &CertificateDer<'_>,
    hosts: &[String],
) -> Result<(), ConfigError> {
    let parsed = webpki::EndEntityCert::try_from(leaf)
        .map_err(|e| cert.error(format!("is not a valid X.509 certificate: {e}")))?;
    for host in hosts {
        let probe = match host.strip_prefix("*.") {
            Some(rest) => format!("wsrun-sni-probe.{rest}"),
            None => host.clone(),
        };
        let covered = ServerName::try_from(probe.as_str())
            .is_ok_and(|name| parsed.verify_is_valid_for_subject_name(&name).is_ok());
        if !covered {
            return Err(cert.error(format!(
                "does not cover the tenant's host `{host}` (no subjectAltName DNS entry \
                 matches it)"
            )));
        }
    }
    Ok(())
}

/// What a file looked like on disk: a change of any part means it was rewritten or replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

impl Stamp {
    /// The stamp of `path`; `None` if it cannot be read (a reload then fails and says why).
    pub fn of(path: &std::path::Path) -> Option<Stamp> {
        let meta = std::fs::metadata(path).ok()?;
        Some(Stamp {
            modified: meta.modified().ok(),
            len: meta.len(),
            inode: meta.ino(),
        })
    }
}

//! TLS with rustls on its ring backend (contract §8): `--tls-cert` / `--tls-key`, and with
//! `--tls-client-ca` mutual TLS (a client certificate chaining to that CA is required). The
//! configuration is swapped whole on SIGHUP: connections already open keep theirs.

use arc_swap::ArcSwap;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;

pub struct Tls {
    cert: PathBuf,
    key: PathBuf,
    client_ca: Option<PathBuf>,
    config: ArcSwap<ServerConfig>,
}

impl Tls {
    pub fn load(cert: PathBuf, key: PathBuf, client_ca: Option<PathBuf>) -> Result<Self, String> {
        let config = build(&cert, &key, client_ca.as_deref())?;
        Ok(Self {
            cert,
            key,
            client_ca,
            config: ArcSwap::from_pointee(config),
        })
    }

    /// Reads the certificate, key and client CA again; the old configuration stays on failure.
    pub fn reload(&self) -> Result<(), String> {
        let config = build(&self.cert, &self.key, self.client_ca.as_deref())?;
        self.config.store(Arc::new(config));
        Ok(())
    }

    /// An acceptor with the current configuration.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.config.load_full())
    }

    pub fn mutual(&self) -> bool {
        self.client_ca.is_some()
    }
}

fn certificates(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{what} {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{what} {}: no certificate in it", path.display()));
    }
    Ok(certs)
}

fn build(cert: &Path, key: &Path, client_ca: Option<&Path>) -> Result<ServerConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = certificates(cert, "--tls-cert")?;
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("--tls-key {}: {e}", key.display()))?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?;
    let builder = match client_ca {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for c in certificates(ca, "--tls-client-ca")? {
                roots
                    .add(c)
                    .map_err(|e| format!("--tls-client-ca {}: {e}", ca.display()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| format!("--tls-client-ca {}: {e}", ca.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| format!("--tls-cert / --tls-key: {e}"))?;
    // The server speaks HTTP/1.1 only (see `http::server`).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

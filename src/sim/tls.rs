//! Serving the simulator over TLS, optionally requiring client certificates (mutual TLS).

use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;

/// TLS material of a simulator, as PEM text.
#[derive(Clone)]
pub struct SimTls {
    /// The server certificate chain (leaf first).
    pub cert_pem: Vec<u8>,
    /// The server's private key (PKCS#8, PKCS#1 or SEC1).
    pub key_pem: Vec<u8>,
    /// When set, clients must present a certificate signed by one of these CAs.
    pub client_ca_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for SimTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key: SimOptions is printed in debug logs.
        f.debug_struct("SimTls")
            .field("key_pem", &crate::secret::SENSITIVE)
            .field("client_auth", &self.client_ca_pem.is_some())
            .finish_non_exhaustive()
    }
}

impl SimTls {
    /// Whether the PEM material makes a working server configuration (the error says which part is wrong).
    pub fn check(&self) -> Result<(), String> {
        server_config(self).map(|_| ())
    }
}

fn certs(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{what}: not a PEM certificate: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{what}: no certificate found"));
    }
    Ok(certs)
}

/// The rustls configuration for `tls` (HTTP/1.1 only, like the plain listener).
pub(crate) fn server_config(tls: &SimTls) -> Result<Arc<rustls::ServerConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = certs(&tls.cert_pem, "TLS certificate")?;
    // The parse error could quote the file; say only what is wrong.
    let key = PrivateKeyDer::from_pem_slice(&tls.key_pem)
        .map_err(|_| "TLS key: no PEM private key found (PKCS#8, PKCS#1 or SEC1 expected)".to_string())?;
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?;
    let builder = match &tls.client_ca_pem {
        None => builder.with_no_client_auth(),
        Some(pem) => {
            let mut roots = RootCertStore::empty();
            for c in certs(pem, "TLS client CA")? {
                roots.add(c).map_err(|e| format!("TLS client CA: {e}"))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| format!("TLS client CA: {e}"))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config =
        builder.with_single_cert(chain, key).map_err(|e| format!("TLS certificate and key do not match: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

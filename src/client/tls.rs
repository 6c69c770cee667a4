//! Client TLS: verification on by default against the system roots (or
//! `--cacert`), optional client certificate, SNI override, and an explicit
//! `--insecure` that skips verification. ALPN h2.

use std::path::PathBuf;
use std::sync::Arc;

use tokio_rustls::rustls;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{DigitallySignedStruct, SignatureScheme};

#[derive(Clone, Debug, Default)]
pub struct TlsOptions {
    /// Trust only these CA certificates (PEM) instead of the system roots.
    pub cacert: Option<PathBuf>,
    /// Client certificate chain and key (PEM), for mutual TLS.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// Name to verify the server's certificate against (and send as SNI).
    pub server_name: Option<String>,
    /// Skip certificate verification.
    pub insecure: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    #[error("cannot read {what} {path}: {reason}")]
    File {
        what: &'static str,
        path: String,
        reason: String,
    },
    #[error("no usable system root certificates; pass --cacert FILE")]
    NoRoots,
    #[error("`{0}` is not a valid TLS server name")]
    ServerName(String),
    #[error("TLS setup failed: {0}")]
    Rustls(#[from] rustls::Error),
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_certs(
    what: &'static str,
    path: &std::path::Path,
) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    crate::pem::certs(path).map_err(|reason| TlsConfigError::File {
        what,
        path: path.display().to_string(),
        reason,
    })
}

/// A verifier that accepts any certificate (`--insecure`), still checking
/// handshake signatures so the connection is at least self-consistent.
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Builds the client config and the name to verify, for a target whose host
/// is `default_name`.
pub fn client_config(
    opts: &TlsOptions,
    default_name: &str,
) -> Result<(Arc<rustls::ClientConfig>, ServerName<'static>), TlsConfigError> {
    let name = opts
        .server_name
        .as_deref()
        .unwrap_or(default_name)
        .to_string();
    let server_name =
        ServerName::try_from(name.clone()).map_err(|_| TlsConfigError::ServerName(name))?;
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?;
    let builder = if opts.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider())))
    } else {
        let mut roots = rustls::RootCertStore::empty();
        match &opts.cacert {
            Some(path) => {
                for c in read_certs("the CA certificate", path)? {
                    roots.add(c).map_err(TlsConfigError::Rustls)?;
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                let (added, _) = roots.add_parsable_certificates(found.certs);
                if added == 0 {
                    return Err(TlsConfigError::NoRoots);
                }
            }
        }
        builder.with_root_certificates(roots)
    };
    let mut cfg = match (&opts.cert, &opts.key) {
        (Some(cert), Some(key)) => {
            let chain = read_certs("the client certificate", cert)?;
            let key = crate::pem::key(key).map_err(|reason| TlsConfigError::File {
                what: "the client key",
                path: key.display().to_string(),
                reason,
            })?;
            builder.with_client_auth_cert(chain, key)?
        }
        _ => builder.with_no_client_auth(),
    };
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    Ok((Arc::new(cfg), server_name))
}

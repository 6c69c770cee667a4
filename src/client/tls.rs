//! Client TLS: verification on by default against the system roots (or
//! `--cacert`), optional client certificate, SNI override, and an explicit
//! `--insecure` that skips verification. ALPN h2.
//!
//! One exception to webpki's rules, the one grpc-go and C-core make too: a
//! server certificate that is itself one of the `--cacert` certificates is
//! accepted although it is a CA (CA:TRUE, what `openssl req -x509` makes
//! by default), with its name, validity and key usage still checked.

use std::path::PathBuf;
use std::sync::Arc;

use tokio_rustls::rustls;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::client::WebPkiServerVerifier;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::server::ParsedCertificate;
use tokio_rustls::rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

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

/// webpki's verifier, and a server certificate that is one of the
/// `--cacert` certificates (`anchors`) accepted although it is a CA.
#[derive(Debug)]
struct GivenCa {
    inner: Arc<WebPkiServerVerifier>,
    anchors: Vec<CertificateDer<'static>>,
}

/// The server's certificate is a CA (webpki's CaUsedAsEndEntity).
pub fn is_ca_as_end_entity(e: &rustls::Error) -> bool {
    match e {
        rustls::Error::InvalidCertificate(CertificateError::Other(o)) => matches!(
            o.0.downcast_ref::<webpki::Error>(),
            Some(webpki::Error::CaUsedAsEndEntity)
        ),
        _ => false,
    }
}

/// What webpki checks of an end entity besides its chain and the CA flag:
/// the name, the validity period, and, when the certificate restricts its
/// use, that serving TLS is among its uses.
fn check_self(
    cert: &CertificateDer<'_>,
    name: &ServerName<'_>,
    now: UnixTime,
) -> Result<(), rustls::Error> {
    let parsed = ParsedCertificate::try_from(cert)?;
    rustls::client::verify_server_name(&parsed, name)?;
    let bad = || rustls::Error::InvalidCertificate(CertificateError::BadEncoding);
    let (_, x) = x509_parser::parse_x509_certificate(cert.as_ref()).map_err(|_| bad())?;
    let now = now.as_secs() as i64;
    if now < x.validity().not_before.timestamp() {
        return Err(rustls::Error::InvalidCertificate(
            CertificateError::NotValidYet,
        ));
    }
    if now > x.validity().not_after.timestamp() {
        return Err(rustls::Error::InvalidCertificate(CertificateError::Expired));
    }
    if let Ok(Some(eku)) = x.extended_key_usage() {
        let e = eku.value;
        if !(e.server_auth || e.any) {
            return Err(rustls::Error::InvalidCertificate(
                CertificateError::InvalidPurpose,
            ));
        }
    }
    Ok(())
}

impl ServerCertVerifier for GivenCa {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(e)
                if is_ca_as_end_entity(&e)
                    && self
                        .anchors
                        .iter()
                        .any(|a| a.as_ref() == end_entity.as_ref()) =>
            {
                check_self(end_entity, server_name, now)?;
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
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
        let mut anchors = Vec::new();
        match &opts.cacert {
            Some(path) => {
                for c in read_certs("the CA certificate", path)? {
                    roots.add(c.clone()).map_err(TlsConfigError::Rustls)?;
                    anchors.push(c);
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
        let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .map_err(|e| TlsConfigError::Rustls(rustls::Error::General(e.to_string())))?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(GivenCa { inner, anchors }))
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

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, KeyPair};
    use tokio_rustls::rustls::pki_types::PrivateKeyDer;

    struct Made {
        cert: rcgen::Certificate,
        key: KeyPair,
    }

    fn params(ca: bool) -> CertificateParams {
        let mut p = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        if ca {
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        }
        p
    }

    fn self_signed(p: CertificateParams) -> Made {
        let key = KeyPair::generate().unwrap();
        let cert = p.self_signed(&key).unwrap();
        Made { cert, key }
    }

    /// A TLS server on loopback with `chain`, accepting one handshake; the
    /// client's result with `cacert` trusted, dialing `name`.
    async fn handshake(server: &Made, cacert: &[&Made], name: &str) -> Result<(), String> {
        let chain = vec![server.cert.der().clone()];
        let key = PrivateKeyDer::try_from(server.key.serialize_der()).unwrap();
        let cfg = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
        let served = tokio::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            let _ = acceptor.accept(s).await;
        });
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        let pem: String = cacert.iter().map(|m| m.cert.pem()).collect();
        std::fs::write(&path, pem).unwrap();
        let opts = TlsOptions {
            cacert: Some(path),
            ..TlsOptions::default()
        };
        let (cfg, server_name) = client_config(&opts, name).unwrap();
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let out = tokio_rustls::TlsConnector::from(cfg)
            .connect(server_name, tcp)
            .await
            .map(|_| ())
            .map_err(|e| format!("{e:?}"));
        served.abort();
        out
    }

    #[tokio::test]
    async fn a_self_signed_ca_given_as_cacert_is_accepted_as_the_server() {
        let ca = self_signed(params(true));
        handshake(&ca, &[&ca], "localhost").await.unwrap();
        // Among other CA certificates in the file too.
        let other = self_signed(params(true));
        handshake(&ca, &[&other, &ca], "localhost").await.unwrap();
        // A plain self-signed leaf, as before.
        let leaf = self_signed(params(false));
        handshake(&leaf, &[&leaf], "localhost").await.unwrap();
    }

    #[tokio::test]
    async fn nothing_looser_is_accepted() {
        let ca = self_signed(params(true));
        // Not the name on it.
        let e = handshake(&ca, &[&ca], "other.example").await.unwrap_err();
        assert!(e.contains("NotValidForName"), "{e}");
        // Not one of the --cacert certificates (webpki sees the CA flag
        // before it looks for an issuer).
        let other = self_signed(params(true));
        let e = handshake(&ca, &[&other], "localhost").await.unwrap_err();
        assert!(e.contains("CaUsedAsEndEntity"), "{e}");
        // A CA signed by the given CA: a CA used as the server, refused.
        let issuer = self_signed(params(true));
        let key = KeyPair::generate().unwrap();
        let cert = params(true)
            .signed_by(&key, &issuer.cert, &issuer.key)
            .unwrap();
        let sub = Made { cert, key };
        let e = handshake(&sub, &[&issuer], "localhost").await.unwrap_err();
        assert!(e.contains("CaUsedAsEndEntity"), "{e}");
        // For clients only.
        let mut p = params(true);
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client_only = self_signed(p);
        let e = handshake(&client_only, &[&client_only], "localhost")
            .await
            .unwrap_err();
        assert!(e.contains("InvalidPurpose"), "{e}");
        // Expired.
        let mut p = params(true);
        p.not_before = rcgen::date_time_ymd(2000, 1, 1);
        p.not_after = rcgen::date_time_ymd(2001, 1, 1);
        let old = self_signed(p);
        let e = handshake(&old, &[&old], "localhost").await.unwrap_err();
        assert!(e.contains("Expired"), "{e}");
    }

    #[test]
    fn the_ca_as_server_error_is_told_apart() {
        let e = rustls::Error::InvalidCertificate(CertificateError::Other(rustls::OtherError(
            Arc::new(webpki::Error::CaUsedAsEndEntity),
        )));
        assert!(is_ca_as_end_entity(&e));
        let e = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        assert!(!is_ca_as_end_entity(&e));
    }
}

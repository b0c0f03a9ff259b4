//! The TLS configuration for `insecureSkipVerify`: a certificate verifier that accepts anything.

use std::sync::{Arc, Once};

use rustls::{
    DigitallySignedStruct, SignatureScheme,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::CryptoProvider,
    pki_types::{CertificateDer, ServerName, UnixTime},
};

static WARN_ONCE: Once = Once::new();

/// A rustls `ClientConfig` that accepts every server certificate, with ring as the provider.
pub(crate) fn danger_accept_any_certificate_config() -> Result<rustls::ClientConfig, rustls::Error>
{
    WARN_ONCE.call_once(|| {
        tracing::warn!(
            "TLS certificate verification is DISABLED (insecureSkipVerify): anyone on the network \
             path can read the client secret and the tokens; use caCertFilePath instead"
        );
    });
    // ring, which reqwest also uses when the program installed no default provider (README,
    // "TLS"). rustls 0.23.48 deprecates this constructor, as ring has no post-quantum key
    // exchange, and offers no other one for ring.
    #[allow(deprecated, reason = "ring on purpose: README, TLS")]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(DangerAcceptAnyServerCertificate { provider }))
        .with_no_client_auth();
    // HTTP/1.1 only, like every client of this crate (reqwest is built without HTTP/2).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Accepts any certificate for any name. Signatures are still checked with the provider's
/// algorithms, so the handshake itself is well-formed; only the identity is not.
#[derive(Debug)]
struct DangerAcceptAnyServerCertificate {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for DangerAcceptAnyServerCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
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
            &self.provider.signature_verification_algorithms,
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
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

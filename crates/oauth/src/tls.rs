//! The TLS configurations of the HTTP client: the verifying one, whose certificate roots load
//! while the first connection is made, and the one for `insecureSkipVerify`, whose verifier
//! accepts anything.

use std::sync::{Arc, Once, OnceLock};

use rustls::{
    DigitallySignedStruct, RootCertStore, SignatureScheme,
    client::{
        WebPkiServerVerifier,
        danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    },
    crypto::CryptoProvider,
    pki_types::{CertificateDer, ServerName, UnixTime},
};

/// The verifying TLS configuration: the server's certificate must chain to the system's
/// roots, the bundled Mozilla roots (`webpki-roots`) or one of `extra` (the CA file). The roots
/// load now on a thread of their own, waited for only by the first certificate check (or
/// loaded then, when no thread can be started).
pub(crate) fn verifying_config(
    extra: Vec<CertificateDer<'static>>,
) -> Result<rustls::ClientConfig, rustls::Error> {
    let provider = provider();
    let roots = Arc::new(Roots {
        extra,
        provider: Arc::clone(&provider),
        verifier: OnceLock::new(),
    });
    let loading = Arc::clone(&roots);
    if let Err(e) = std::thread::Builder::new()
        .name("flyte-auth-tls-roots".into())
        .spawn(move || {
            let _ = loading.verifier();
        })
    {
        tracing::debug!(error = %e, "could not load the TLS roots on a thread; loading them when needed");
    }
    client_config(Verifier {
        roots: Some(roots),
        provider,
    })
}

/// The program's default crypto provider, else ring: what `reqwest` chooses too.
fn provider() -> Arc<CryptoProvider> {
    CryptoProvider::get_default().cloned().unwrap_or_else(ring)
}

/// ring's provider. rustls 0.23.48 deprecates its only constructor, as ring has no
/// post-quantum key exchange; ring is chosen on purpose (README, "TLS").
fn ring() -> Arc<CryptoProvider> {
    #[allow(deprecated, reason = "ring on purpose: README, TLS")]
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificate roots, loaded once by whoever needs them first.
#[derive(Debug)]
struct Roots {
    extra: Vec<CertificateDer<'static>>,
    provider: Arc<CryptoProvider>,
    verifier: OnceLock<Result<Arc<WebPkiServerVerifier>, String>>,
}

impl Roots {
    /// The verifier over every root, loading them now unless done (or waiting for the load).
    fn verifier(&self) -> Result<&Arc<WebPkiServerVerifier>, rustls::Error> {
        self.verifier
            .get_or_init(|| self.load())
            .as_ref()
            .map_err(|e| rustls::Error::General(e.clone()))
    }

    fn load(&self) -> Result<Arc<WebPkiServerVerifier>, String> {
        let mut store = RootCertStore::empty();
        store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let native = rustls_native_certs::load_native_certs();
        for e in &native.errors {
            tracing::debug!(error = %e, "a system certificate store could not be read");
        }
        // Native stores often hold old certificates rustls cannot parse; they are skipped.
        let (added, skipped) = store.add_parsable_certificates(native.certs);
        let (_, unusable) = store.add_parsable_certificates(self.extra.iter().cloned());
        tracing::debug!(
            system = added,
            skipped,
            unusable,
            "loaded the TLS certificate roots"
        );
        WebPkiServerVerifier::builder_with_provider(Arc::new(store), Arc::clone(&self.provider))
            .build()
            .map_err(|e| format!("could not set up the TLS certificate roots: {e}"))
    }
}

/// The verifier of both configurations: [`WebPkiServerVerifier`] over the roots, or without
/// them (`insecureSkipVerify`) any certificate for any name. Handshake signatures are checked
/// either way.
#[derive(Debug)]
struct Verifier {
    /// `None`: every certificate is accepted.
    roots: Option<Arc<Roots>>,
    provider: Arc<CryptoProvider>,
}

/// A client configuration checking certificates with `verifier`, HTTP/1.1 only (reqwest is
/// built without HTTP/2).
fn client_config(verifier: Verifier) -> Result<rustls::ClientConfig, rustls::Error> {
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::clone(&verifier.provider))
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match &self.roots {
            Some(roots) => roots.verifier()?.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            ),
            None => Ok(ServerCertVerified::assertion()),
        }
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
    client_config(Verifier {
        roots: None,
        provider: ring(),
    })
}

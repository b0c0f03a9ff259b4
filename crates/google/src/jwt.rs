//! The signed JWT a service account presents for an ID token (RFC 7523 §2.1, RS256).

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use flyte_auth_core::{Error, SecretString};
use ring::{
    rand::SystemRandom,
    signature::{RSA_PKCS1_SHA256, RsaKeyPair},
};
use rustls_pki_types::{PrivateKeyDer, pem::PemObject as _};

/// How long an assertion is valid: the hour Google allows at most.
pub(crate) const ASSERTION_LIFETIME_SECS: u64 = 3600;

/// What the assertion claims.
pub(crate) struct Claims<'a> {
    /// The service account's e-mail: `iss` and `sub`.
    pub(crate) client_email: &'a str,
    /// The token endpoint: `aud`.
    pub(crate) token_uri: &'a str,
    /// The ID token's audience: `target_audience`.
    pub(crate) target_audience: &'a str,
    /// The key's id, sent as `kid` so Google picks the right public key.
    pub(crate) key_id: Option<&'a str>,
}

/// The service account's RSA key, parsed from the key file's PEM (PKCS#8, or PKCS#1). Errors
/// name the kind of problem only, never any part of the key.
pub(crate) fn parse_key(pem: &SecretString) -> Result<RsaKeyPair, Error> {
    let not = |what: &str| {
        Error::config(format!(
            "the private_key of the Google service-account key file is not {what}"
        ))
    };
    let der = PrivateKeyDer::from_pem_slice(pem.expose_secret().as_bytes())
        .map_err(|_| not("a PEM private key"))?;
    match &der {
        PrivateKeyDer::Pkcs8(key) => RsaKeyPair::from_pkcs8(key.secret_pkcs8_der()),
        PrivateKeyDer::Pkcs1(key) => RsaKeyPair::from_der(key.secret_pkcs1_der()),
        _ => return Err(not("an RSA key")),
    }
    .map_err(|rejected| not(&format!("a usable RSA key ({rejected})")))
}

/// The signed assertion `header.claims.signature`, issued at `iat` (Unix seconds), valid for
/// [`ASSERTION_LIFETIME_SECS`].
pub(crate) fn assertion(
    key: &RsaKeyPair,
    claims: &Claims<'_>,
    iat: u64,
) -> Result<SecretString, Error> {
    let mut header = serde_json::json!({ "alg": "RS256", "typ": "JWT" });
    if let Some(kid) = claims.key_id {
        header["kid"] = kid.into();
    }
    let body = serde_json::json!({
        "iss": claims.client_email,
        "sub": claims.client_email,
        "aud": claims.token_uri,
        "iat": iat,
        "exp": iat.saturating_add(ASSERTION_LIFETIME_SECS),
        "target_audience": claims.target_audience,
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(body.to_string())
    );
    let mut signature = vec![0; key.public().modulus_len()];
    key.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        signing_input.as_bytes(),
        &mut signature,
    )
    .map_err(|_| Error::config("the Google service-account key could not sign the assertion"))?;
    Ok(SecretString::new(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature)
    )))
}

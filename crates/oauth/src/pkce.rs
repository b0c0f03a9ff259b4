//! PKCE (RFC 7636) and `state` helpers for the authorization code flow: random bytes from the
//! operating system and SHA-256, both from `ring` (already the TLS crypto provider), encoded
//! base64url without padding.
//!
//! ```
//! use flyte_auth_oauth::pkce::{Pkce, new_state, s256_challenge};
//! let pkce = Pkce::new_s256()?;
//! assert_eq!(pkce.method(), "S256");
//! assert_eq!(pkce.challenge().len(), 43);
//! assert_eq!(s256_challenge(pkce.verifier().expose_secret()), pkce.challenge());
//! assert!(!format!("{pkce:?}").contains(pkce.verifier().expose_secret()));
//! assert_ne!(new_state()?, new_state()?);
//! # Ok::<(), flyte_auth_core::Error>(())
//! ```

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use flyte_auth_core::{Error, SecretString};
use ring::rand::{SecureRandom as _, SystemRandom};
use zeroize::Zeroizing;

/// How many random bytes a verifier carries (43 characters once encoded, RFC 7636 §4.1).
const VERIFIER_BYTES: usize = 32;

/// The `code_challenge_method` of [`Pkce::new_s256`]: SHA-256 (RFC 7636 §4.2).
pub const S256: &str = "S256";

/// How many random bytes [`new_state`] carries.
const STATE_BYTES: usize = 16;

/// A fresh PKCE pair: the `code_challenge` of the authorization request and the
/// `code_verifier` of the code exchange.
#[derive(Debug, Clone)]
pub struct Pkce {
    challenge: String,
    verifier: SecretString,
}

impl Pkce {
    /// A random 32-byte verifier and its S256 challenge; [`Error::Authentication`] when the
    /// operating system gives no random bytes.
    pub fn new_s256() -> Result<Self, Error> {
        let verifier = Zeroizing::new(random_url_safe(VERIFIER_BYTES)?);
        Ok(Self {
            challenge: s256_challenge(&verifier),
            verifier: SecretString::new(verifier.as_str()),
        })
    }

    /// The `code_challenge`.
    pub fn challenge(&self) -> &str {
        &self.challenge
    }

    /// The `code_challenge_method` (`S256`).
    pub fn method(&self) -> &str {
        S256
    }

    /// The `code_verifier`.
    pub fn verifier(&self) -> &SecretString {
        &self.verifier
    }
}

/// The S256 `code_challenge` of a verifier: `BASE64URL(SHA256(ASCII(verifier)))`
/// (RFC 7636 §4.2). The verifier's syntax is not checked here.
pub fn s256_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        verifier.as_bytes(),
    ))
}

/// A random, URL-safe `state` value (16 random bytes); fails as [`random_url_safe`].
pub fn new_state() -> Result<String, Error> {
    random_url_safe(STATE_BYTES)
}

/// `bytes` random bytes from the operating system, base64url without padding;
/// [`Error::Authentication`] when it gives none.
pub fn random_url_safe(bytes: usize) -> Result<String, Error> {
    let mut buf = Zeroizing::new(vec![0u8; bytes]);
    SystemRandom::new().fill(&mut buf).map_err(|_| {
        Error::authentication("the operating system's random number generator failed")
    })?;
    Ok(URL_SAFE_NO_PAD.encode(&*buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b_vector() {
        assert_eq!(
            s256_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn random_values_have_the_asked_length_and_differ() {
        let a = random_url_safe(32).unwrap();
        assert_eq!(a.len(), 43);
        assert_ne!(a, random_url_safe(32).unwrap());
        assert_eq!(new_state().unwrap().len(), 22);
        assert!(
            a.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
    }
}

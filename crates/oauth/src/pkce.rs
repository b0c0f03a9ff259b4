//! PKCE (RFC 7636) and `state` helpers for the authorization code flow, from the `oauth2` crate.
//!
//! ```
//! use flyte_auth_oauth::pkce::{Pkce, new_state};
//! let pkce = Pkce::new_s256();
//! assert_eq!(pkce.method(), "S256");
//! assert_eq!(pkce.challenge().len(), 43);
//! assert!(!format!("{pkce:?}").contains(pkce.verifier().expose_secret()));
//! assert_ne!(new_state(), new_state());
//! ```

use flyte_auth_core::SecretString;

pub use oauth2::{CsrfToken, PkceCodeChallenge, PkceCodeVerifier};

/// A fresh PKCE pair: the `code_challenge` sent with the authorization request, and the
/// `code_verifier` sent with the code exchange ([`TokenRequest::authorization_code`]).
///
/// [`TokenRequest::authorization_code`]: crate::TokenRequest::authorization_code
#[derive(Debug, Clone)]
pub struct Pkce {
    challenge: String,
    method: String,
    verifier: SecretString,
}

impl Pkce {
    /// A random 32-byte verifier and its SHA-256 challenge (`code_challenge_method=S256`).
    pub fn new_s256() -> Self {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        Self {
            challenge: challenge.as_str().to_owned(),
            method: challenge.method().as_str().to_owned(),
            verifier: SecretString::new(verifier.secret().clone()),
        }
    }

    /// The `code_challenge`.
    pub fn challenge(&self) -> &str {
        &self.challenge
    }

    /// The `code_challenge_method` (`S256`).
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The `code_verifier`.
    pub fn verifier(&self) -> &SecretString {
        &self.verifier
    }
}

/// A random, URL-safe `state` value for an authorization request (16 random bytes).
pub fn new_state() -> String {
    CsrfToken::new_random().secret().clone()
}

//! PKCE (RFC 7636) verifier and challenge, the `state` and `nonce` values, and the
//! constant-time comparison of the `state` and `nonce` that come back.

use flyte_auth_core::{Error, SecretString};
use flyte_auth_oauth::pkce::{Pkce, random_url_safe, s256_challenge};

/// The `code_challenge_method` this crate sends: SHA-256 (RFC 7636 §4.2).
pub(crate) use flyte_auth_oauth::pkce::S256;

/// How many random bytes the `state` carries (256 bits; RFC 6749 §10.12 asks for a value
/// that cannot be guessed).
const STATE_BYTES: usize = 32;

/// A PKCE pair: the `code_verifier` kept here and the `code_challenge` sent to the
/// authorization server.
#[derive(Debug, Clone)]
pub(crate) struct PkcePair {
    verifier: SecretString,
    challenge: String,
}

impl PkcePair {
    /// A fresh pair: 32 bytes from the operating system's generator, base64url-encoded into
    /// a 43-character verifier, and its S256 challenge.
    ///
    /// Fails with [`Error::Authentication`] when the operating system gives no random bytes.
    pub(crate) fn generate() -> Result<Self, Error> {
        let pkce = Pkce::new_s256()?;
        debug_assert_eq!(pkce.method(), S256);
        Ok(Self {
            verifier: pkce.verifier().clone(),
            challenge: pkce.challenge().to_owned(),
        })
    }

    /// The pair for a given verifier: `BASE64URL(SHA256(ASCII(verifier)))` (RFC 7636 §4.2).
    ///
    /// The verifier must be 43 to 128 characters from the unreserved set
    /// `[A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"` (§4.1).
    #[cfg_attr(
        not(test),
        allow(dead_code, reason = "used by the tests of RFC 7636's vector")
    )]
    pub(crate) fn from_verifier(verifier: &str) -> Result<Self, Error> {
        let valid_chars = verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
        if !(43..=128).contains(&verifier.len()) || !valid_chars {
            return Err(Error::config(
                "a PKCE code_verifier must be 43 to 128 characters of A-Z, a-z, 0-9, '-', '.', '_' and '~' (RFC 7636 §4.1)",
            ));
        }
        Ok(Self {
            verifier: SecretString::new(verifier),
            challenge: s256_challenge(verifier),
        })
    }

    /// The `code_verifier`, sent with the code exchange only.
    pub(crate) fn verifier(&self) -> &SecretString {
        &self.verifier
    }

    /// The `code_challenge`, sent with the authorization request.
    pub(crate) fn challenge(&self) -> &str {
        &self.challenge
    }
}

/// A fresh `state`: 32 random bytes, base64url-encoded (43 characters).
///
/// Fails with [`Error::Authentication`] when the operating system gives no random bytes.
pub(crate) fn new_state() -> Result<String, Error> {
    random_url_safe(STATE_BYTES)
}

/// A fresh OpenID Connect `nonce`: 32 random bytes, base64url-encoded (43 characters). Sent
/// with an authorization request that asks for `openid`; an id token the code is exchanged
/// for must carry it.
///
/// Fails with [`Error::Authentication`] when the operating system gives no random bytes.
pub(crate) fn new_nonce() -> Result<String, Error> {
    random_url_safe(STATE_BYTES)
}

/// Compares two byte strings in time that depends on their length only, not on where they
/// differ, so that the `state` cannot be found byte by byte by timing the callback server.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn is_base64url(s: &str) -> bool {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    }

    #[test]
    fn rfc7636_appendix_b_vector() {
        let pair = PkcePair::from_verifier("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
            .expect("the RFC's verifier is valid");
        assert_eq!(
            pair.challenge(),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn generated_pairs_are_s256_of_a_43_char_random_verifier() {
        let mut seen = HashSet::new();
        for _ in 0..64 {
            let pair = PkcePair::generate().unwrap();
            let verifier = pair.verifier().expose_secret();
            assert_eq!(verifier.len(), 43, "32 random bytes, base64url");
            assert!(is_base64url(verifier), "{verifier}");
            let recomputed = PkcePair::from_verifier(verifier).expect("valid verifier");
            assert_eq!(recomputed.challenge(), pair.challenge());
            assert_ne!(pair.challenge(), verifier);
            assert!(seen.insert(verifier.to_owned()), "verifier repeated");
        }
    }

    #[test]
    fn verifiers_outside_the_rfc_alphabet_or_length_are_refused() {
        for bad in [
            "short",
            &"a".repeat(129),
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjX+",
            "dBjftJeZ4CVP mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
        ] {
            assert!(PkcePair::from_verifier(bad).is_err(), "{bad}");
        }
        assert!(PkcePair::from_verifier(&"a~.-_".repeat(9)).is_ok());
    }

    #[test]
    fn state_has_256_bits_of_randomness_and_never_repeats() {
        let mut seen = HashSet::new();
        for _ in 0..256 {
            let state = new_state().unwrap();
            assert_eq!(state.len(), 43, "32 bytes base64url without padding");
            assert!(is_base64url(&state), "{state}");
            assert!(seen.insert(state), "state repeated");
        }
    }

    #[test]
    fn debug_of_a_pair_hides_the_verifier() {
        let pair = PkcePair::generate().unwrap();
        let printed = format!("{pair:?}");
        assert!(!printed.contains(pair.verifier().expose_secret()));
    }

    #[test]
    fn constant_time_eq_compares_content_and_length() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(!constant_time_eq(b"", b"a"));
        assert!(constant_time_eq(b"", b""));
    }
}

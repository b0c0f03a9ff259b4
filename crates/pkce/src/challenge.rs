//! The `state` and `nonce` values, and the constant-time comparison of the ones that come
//! back. The PKCE pair is oauth's [`Pkce`](flyte_auth_oauth::pkce::Pkce).

use flyte_auth_core::Error;
use flyte_auth_oauth::pkce::random_url_safe;

/// A fresh `state` or OpenID Connect `nonce`: 32 random bytes (256 bits; RFC 6749 §10.12
/// asks for a value that cannot be guessed), base64url-encoded (43 characters).
///
/// Fails with [`Error::Authentication`] when the operating system gives no random bytes.
pub(crate) fn new_state() -> Result<String, Error> {
    random_url_safe(32)
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

    use flyte_auth_oauth::pkce::{Pkce, s256_challenge};

    use super::*;

    fn is_base64url(s: &str) -> bool {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    }

    #[test]
    fn rfc7636_appendix_b_vector() {
        assert_eq!(
            s256_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn generated_pairs_are_s256_of_a_43_char_random_verifier() {
        let mut seen = HashSet::new();
        for _ in 0..64 {
            let pair = Pkce::new_s256().unwrap();
            let verifier = pair.verifier().expose_secret();
            assert_eq!(verifier.len(), 43, "32 random bytes, base64url");
            assert!(is_base64url(verifier), "{verifier}");
            assert_eq!(s256_challenge(verifier), pair.challenge());
            assert_ne!(pair.challenge(), verifier);
            assert!(seen.insert(verifier.to_owned()), "verifier repeated");
        }
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
        let pair = Pkce::new_s256().unwrap();
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

//! Token endpoint answers (RFC 6749 §5.1 tokens, §5.2 errors, and whatever else a server or a
//! proxy sends): `TokenResponse::from_http`, then the credentials made from a token.
//!
//! Input: `<status> <content-type>` on the first line, then the body (see the crate docs).
//! Checked: no panic; no error quotes a secret the request sent, as it is or encoded as it was
//! sent (form or percent encoding); a token becomes credentials.
#![no_main]

use std::sync::OnceLock;

use flyte_auth_fuzz::{Answer, SECRETS, assert_no_secret, secret_forms};
use flyte_auth_oauth::TokenResponse;
use libfuzzer_sys::fuzz_target;

/// The request sent both secrets (one in a Basic header, one in a form body, say).
fn forms() -> &'static [String] {
    static FORMS: OnceLock<Vec<String>> = OnceLock::new();
    FORMS.get_or_init(|| secret_forms(&SECRETS, None))
}

fuzz_target!(|input: &[u8]| {
    let answer = Answer::parse(input);
    match TokenResponse::from_http(
        answer.status,
        answer.content_type.as_deref(),
        &answer.body,
        &SECRETS,
    ) {
        Ok(token) => {
            assert!(!token.access_token.expose_secret().is_empty());
            let credentials = token.into_credentials("flyte.example.org:443");
            assert!(credentials.expires_at().is_some() || credentials.expires_in.is_none());
            let _ = format!("{credentials:?}");
        }
        Err(error) => {
            assert_no_secret("the error's Display", &error.to_string(), forms());
            assert_no_secret("the error's Debug", &format!("{error:?}"), forms());
        }
    }
});

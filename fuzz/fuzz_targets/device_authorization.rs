//! Device authorization answers (RFC 8628 §3.2): a request through `OAuthClient` to a loopback
//! server that answers with the fuzzer's bytes.
//!
//! Input: `<status> <content-type>` on the first line, then the body (see the crate docs).
//! Checked: no panic, no hang; no error quotes the client secret (as it is,
//! encoded, or in the Basic credentials); an accepted answer has a
//! user code and a URL to show.
#![no_main]

use flyte_auth_fuzz::{
    Answer, CLIENT_ID, SECRETS, StubServer, assert_no_secret, oauth_client, runtime, secret_forms,
};
use flyte_auth_oauth::{ClientAuth, DeviceAuthorizationRequest, OAuthClient};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn client() -> &'static OAuthClient {
    static CLIENT: OnceLock<OAuthClient> = OnceLock::new();
    CLIENT.get_or_init(oauth_client)
}

/// The request sends `SECRETS[0]` in an HTTP Basic header as `CLIENT_ID`.
fn forms() -> &'static [String] {
    static FORMS: OnceLock<Vec<String>> = OnceLock::new();
    FORMS.get_or_init(|| secret_forms(&SECRETS[..1], Some(CLIENT_ID)))
}

fuzz_target!(|input: &[u8]| {
    let server = StubServer::get();
    server.set("/device/auth", Answer::parse(input));
    let request = DeviceAuthorizationRequest::new(
        format!("{}/device/auth", server.base_url()),
        ClientAuth::confidential(CLIENT_ID, SECRETS[0]),
    )
    .with_scopes(["all"]);
    match runtime().block_on(client().device_authorization(&request)) {
        Ok(answer) => {
            assert!(!answer.user_code.trim().is_empty());
            assert!(!answer.url_for_user().trim().is_empty());
            let _ = answer.poll_interval();
            let _ = format!("{answer:?}");
        }
        Err(error) => {
            assert_no_secret("the error's Display", &error.to_string(), forms());
            assert_no_secret("the error's Debug", &format!("{error:?}"), forms());
        }
    }
});

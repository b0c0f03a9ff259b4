//! Flyte discovery documents: `/.well-known/oauth-authorization-server` (RFC 8414) and
//! flyteadmin's `/config/v1/flyte_client`, read by `RemoteClientConfigStore` from a loopback
//! server that answers with the fuzzer's bytes, then combined into a `ClientConfig`.
//!
//! Input: the metadata answer, a line `=====`, the flyte_client answer; each answer is
//! `<status> <content-type>` on its first line, then the body (see the crate docs). Without
//! the separator line the flyte_client answer is `{}`.
//! Checked: no panic, no hang; endpoints given as paths are resolved against the server.
#![no_main]

use flyte_auth_core::ClientConfigStore as _;
use flyte_auth_fuzz::{Answer, StubServer, oauth_client, runtime};
use flyte_auth_oauth::{
    FLYTE_CLIENT_CONFIG_PATH, OAUTH_METADATA_PATH, OAuthClient, RemoteClientConfigStore,
};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

const SEPARATOR: &[u8] = b"\n=====\n";

fn client() -> &'static OAuthClient {
    static CLIENT: OnceLock<OAuthClient> = OnceLock::new();
    CLIENT.get_or_init(oauth_client)
}

fuzz_target!(|input: &[u8]| {
    let (metadata, flyte_client) = match input.windows(SEPARATOR.len()).position(|w| w == SEPARATOR)
    {
        Some(i) => (&input[..i], &input[i + SEPARATOR.len()..]),
        None => (input, &b"{}"[..]),
    };
    let server = StubServer::get();
    server.set(OAUTH_METADATA_PATH, Answer::parse(metadata));
    server.set(FLYTE_CLIENT_CONFIG_PATH, Answer::parse(flyte_client));
    let store = RemoteClientConfigStore::from_base_url(server.base_url(), client().clone());
    runtime().block_on(async {
        let Ok(discovery) = store.discover().await else {
            return;
        };
        for endpoint in [
            &discovery.metadata.token_endpoint,
            &discovery.metadata.authorization_endpoint,
            &discovery.metadata.device_authorization_endpoint,
        ]
        .into_iter()
        .flatten()
        {
            assert!(
                !endpoint.starts_with('/'),
                "a relative endpoint was not resolved: {endpoint}"
            );
        }
        if let Ok(config) = store.get_client_config().await {
            assert!(!config.token_endpoint.is_empty());
            let _ = format!("{config:?}");
        }
    });
});

//! The redirect URI and authorization endpoint of a browser login, which come from the
//! server's discovery documents or the config file: `AuthorizationClientBuilder::build`.
//!
//! Input: the redirect URI on the first line, the authorization endpoint on the second.
//! Checked: no panic; an accepted redirect URI is a loopback http URL.
#![no_main]

use std::sync::OnceLock;

use flyte_auth_fuzz::oauth_client;
use flyte_auth_oauth::OAuthClient;
use flyte_auth_pkce::{AuthorizationClient, BrowserOpener};
use libfuzzer_sys::fuzz_target;

fn http() -> &'static OAuthClient {
    static CLIENT: OnceLock<OAuthClient> = OnceLock::new();
    CLIENT.get_or_init(oauth_client)
}

fuzz_target!(|input: &[u8]| {
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    let mut lines = text.splitn(2, '\n');
    let redirect_uri = lines.next().unwrap_or_default();
    let auth_endpoint = lines.next().unwrap_or("https://idp.example.org/authorize");
    let built = AuthorizationClient::builder(
        "flyte.example.org:443",
        auth_endpoint,
        "https://idp.example.org/token",
        "flytectl",
        redirect_uri,
    )
    .http_client(http().clone())
    .browser(BrowserOpener::disabled())
    .build();
    match built {
        Ok(client) => {
            let uri = url::Url::parse(client.redirect_uri().trim())
                .expect("an accepted redirect URI is a URL");
            assert_eq!(uri.scheme(), "http");
            let loopback = match uri.host() {
                Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                None => false,
            };
            assert!(loopback, "a non-loopback redirect URI was accepted: {uri}");
        }
        Err(e) => {
            let _ = format!("{e} {e:?}");
        }
    }
});

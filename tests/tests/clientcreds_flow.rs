//! Client credentials against the real OpenID provider: Basic and body authentication,
//! discovery from the Flyte endpoint, the token served from the cache, a wrong secret. The
//! cache's own promises (renewal before expiry, one request for many callers, a stored token
//! reused) are tested once, in `flyte-auth-core`.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

use std::time::{Duration, SystemTime};

use flyte_auth_clientcreds::{ClientCredentialsAuthenticator, ClientCredentialsFlow};
use flyte_auth_core::{Authenticator, CachingAuthenticator, OAuthErrorCode};
use flyte_auth_oauth::{HttpSettings, OAuthClient, Overrides};
use flyte_auth_tests::{
    BASIC_CLIENT, ConfidentialClient, GRANT_CLIENT_CREDENTIALS, Idp, POST_CLIENT,
    client_credentials_flow, idp_context,
};

fn http() -> OAuthClient {
    OAuthClient::new(HttpSettings::new().request_timeout(Duration::from_secs(10))).unwrap()
}

/// An authenticator that discovers the token endpoint from the IdP's Flyte documents.
fn authenticator(idp: &Idp, client: &ConfidentialClient) -> ClientCredentialsAuthenticator {
    let flow = client_credentials_flow(idp, http(), Overrides::new().scopes(["all"]), client)
        .build()
        .unwrap();
    CachingAuthenticator::builder(flow).build()
}

#[tokio::test]
async fn basic_authentication_obtains_a_token_and_serves_it_from_the_cache() {
    let idp = Idp::start().await;
    let auth = authenticator(&idp, &BASIC_CLIENT);

    let first = auth.get_credentials().await.unwrap();
    let second = auth.get_credentials().await.unwrap();

    assert!(!first.access_token.expose_secret().is_empty());
    assert_eq!(first.access_token, second.access_token);
    assert!(first.expires_at().unwrap() > SystemTime::now());
    assert_eq!(idp.token_requests(GRANT_CLIENT_CREDENTIALS).await, 1);
    let header = auth.fetch_grpc_call_auth_metadata().unwrap();
    assert_eq!(header.name().as_str(), "authorization");
    assert_eq!(
        header.value().to_str().unwrap(),
        format!("Bearer {}", first.access_token.expose_secret())
    );
}

#[tokio::test]
async fn body_authentication_works_with_a_secret_full_of_special_characters() {
    let idp = Idp::start().await;
    let auth = authenticator(&idp, &POST_CLIENT);

    let creds = auth.get_credentials().await.unwrap();

    assert!(!creds.access_token.expose_secret().is_empty());
    assert_eq!(idp.token_requests(GRANT_CLIENT_CREDENTIALS).await, 1);
}

#[tokio::test]
async fn a_wrong_secret_is_refused_with_the_servers_error_and_no_secret_in_the_message() {
    let idp = Idp::start().await;
    let ctx = idp_context(&idp, http(), Overrides::new());
    let flow = ClientCredentialsFlow::builder(ctx, BASIC_CLIENT.id(), "not-the-secret-XYZ")
        .build()
        .unwrap();
    let auth = CachingAuthenticator::builder(flow).build();

    let err = auth.get_credentials().await.unwrap_err();

    assert_eq!(
        err.oauth().map(|e| e.code.clone()),
        Some(OAuthErrorCode::InvalidClient),
        "{err}"
    );
    assert!(!format!("{err} {err:?}").contains("not-the-secret-XYZ"));
}

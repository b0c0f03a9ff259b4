//! Client credentials against the real OpenID provider: Basic and body authentication,
//! discovery from the Flyte endpoint, caching, refresh before expiry, a wrong secret.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

use std::{
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use flyte_auth_clientcreds::{ClientCredentialsAuthenticator, ClientCredentialsFlow};
use flyte_auth_core::{
    Authenticator, CachingAuthenticator, MemoryStore, OAuthErrorCode, TokenStore,
};
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
async fn a_short_lived_token_is_replaced_before_it_expires() {
    let idp = Idp::builder()
        .access_token_ttl(Duration::from_secs(8))
        .start()
        .await;
    let auth = authenticator(&idp, &BASIC_CLIENT);
    let first = auth.get_credentials().await.unwrap();
    let first_expiry = first.expires_at().unwrap();

    // The cache stops serving the header a quarter of the lifetime before expiry.
    let deadline = Instant::now() + Duration::from_secs(20);
    while auth.fetch_grpc_call_auth_metadata().is_some() {
        assert!(
            Instant::now() < deadline,
            "the token was never due for refresh"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let second = auth.get_credentials().await.unwrap();

    assert!(
        SystemTime::now() < first_expiry,
        "refreshed only after expiry"
    );
    assert_ne!(first.access_token, second.access_token);
    assert_eq!(idp.token_requests(GRANT_CLIENT_CREDENTIALS).await, 2);
    assert_eq!(
        auth.fetch_grpc_call_auth_metadata()
            .unwrap()
            .value()
            .to_str()
            .unwrap(),
        format!("Bearer {}", second.access_token.expose_secret())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_callers_cause_one_token_request() {
    let idp = Idp::start().await;
    let auth = Arc::new(authenticator(&idp, &BASIC_CLIENT));

    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let auth = Arc::clone(&auth);
            tokio::spawn(async move { auth.get_credentials().await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }

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

#[tokio::test]
async fn a_stored_token_is_reused_by_a_new_authenticator() {
    let idp = Idp::start().await;
    let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
    let with_store = |idp: &Idp| {
        let flow = client_credentials_flow(idp, http(), Overrides::new(), &BASIC_CLIENT)
            .build()
            .unwrap();
        CachingAuthenticator::builder(flow)
            .store(Arc::clone(&store))
            .build()
    };

    let first = with_store(&idp).get_credentials().await.unwrap();
    let again = with_store(&idp).get_credentials().await.unwrap();

    assert_eq!(first.access_token, again.access_token);
    assert_eq!(idp.token_requests(GRANT_CLIENT_CREDENTIALS).await, 1);
}

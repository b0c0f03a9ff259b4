//! `flyte_auth::logout`: the stored refresh token is revoked where the server announces a
//! `revocation_endpoint` (RFC 7009), the client authenticating as at the token endpoint, and
//! the stored login is deleted whatever the revocation's outcome.
#![cfg(all(feature = "device", feature = "clientcreds"))]
#![allow(clippy::unwrap_used, reason = "tests")]

use std::sync::Arc;

use base64::Engine as _;
use flyte_auth::{
    AuthMode, Credentials, FactoryOptions, MemoryStore, PlatformConfig, Revocation, TokenStore,
    config::PlatformConfigBuilder,
    logout_with,
    oauth::{HttpSettings, RetryPolicy},
};
use serde_json::json;
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path},
};

fn base(server: &MockServer) -> PlatformConfigBuilder {
    PlatformConfig::builder()
        .no_config_file()
        .no_env()
        .endpoint(server.uri())
        .insecure(true)
}

/// One attempt per request, so that a failing server fails at once.
fn options() -> FactoryOptions {
    FactoryOptions::new().http_settings(
        HttpSettings::new()
            .system_proxy(false)
            .retry(RetryPolicy::new().max_retries(0)),
    )
}

/// Serves the discovery documents; the metadata names `revocation` as its
/// `revocation_endpoint` when given.
async fn serve_discovery(server: &MockServer, revocation: Option<&str>) {
    let uri = server.uri();
    let mut metadata = json!({
        "issuer": uri,
        "authorization_endpoint": format!("{uri}/authorize"),
        "token_endpoint": format!("{uri}/token"),
        "device_authorization_endpoint": format!("{uri}/device"),
    });
    if let Some(revocation) = revocation {
        metadata["revocation_endpoint"] = json!(format!("{uri}{revocation}"));
    }
    Mock::given(method("GET"))
        .and(path("/.well-known/oauth-authorization-server"))
        .respond_with(ResponseTemplate::new(200).set_body_json(metadata))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/config/v1/flyte_client"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "client_id": "flytectl",
            "redirect_uri": "http://localhost:53593/callback",
            "scopes": ["all"],
        })))
        .mount(server)
        .await;
}

async fn revocation_answers(server: &MockServer, status: u16) {
    Mock::given(method("POST"))
        .and(path("/revoke"))
        .respond_with(ResponseTemplate::new(status))
        .mount(server)
        .await;
}

/// A store holding a login with `refresh_token` for `cfg`'s endpoint, issued to `client_id`.
fn store_with(cfg: &PlatformConfig, refresh_token: &str, client_id: &str) -> Arc<MemoryStore> {
    let store = Arc::new(MemoryStore::new());
    let credentials = Credentials::new("access-1", cfg.endpoint().key())
        .with_refresh_token(refresh_token)
        .with_client_id(client_id);
    store.store(cfg.endpoint(), &credentials).unwrap();
    store
}

/// The form and `authorization` header of each revocation request.
async fn revocations(server: &MockServer) -> Vec<(Vec<(String, String)>, Option<String>)> {
    server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.url.path() == "/revoke")
        .map(|r| {
            // The test's values need no decoding.
            let form = String::from_utf8(r.body)
                .unwrap()
                .split('&')
                .map(|pair| {
                    let (k, v) = pair.split_once('=').unwrap();
                    (k.to_owned(), v.to_owned())
                })
                .collect();
            let authorization = r
                .headers
                .get("authorization")
                .map(|v| v.to_str().unwrap().to_owned());
            (form, authorization)
        })
        .collect()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[tokio::test]
async fn a_public_clients_refresh_token_is_revoked_with_its_client_id_then_deleted() {
    let server = MockServer::start().await;
    serve_discovery(&server, Some("/revoke")).await;
    revocation_answers(&server, 200).await;
    let cfg = base(&server)
        .auth_mode(AuthMode::DeviceFlow)
        .build()
        .unwrap();
    let store = store_with(&cfg, "refresh-1", "device-client");

    let outcome = logout_with(&cfg, Arc::clone(&store) as Arc<dyn TokenStore>, &options())
        .await
        .unwrap();
    assert!(
        matches!(outcome.revocation, Revocation::Revoked),
        "{outcome:?}"
    );
    assert!(outcome.stored);
    assert_eq!(outcome.store, "memory");
    assert_eq!(store.retrieve(cfg.endpoint()).unwrap(), None);
    assert_eq!(
        revocations(&server).await,
        [(
            pairs(&[
                ("token", "refresh-1"),
                ("token_type_hint", "refresh_token"),
                ("client_id", "device-client"),
            ]),
            None
        )]
    );
}

#[tokio::test]
async fn a_confidential_client_authenticates_with_basic_as_at_the_token_endpoint() {
    let server = MockServer::start().await;
    serve_discovery(&server, Some("/revoke")).await;
    revocation_answers(&server, 200).await;
    let cfg = base(&server)
        .auth_mode(AuthMode::ClientSecret)
        .client_id("svc")
        .client_secret("s3cret")
        .build()
        .unwrap();
    let store = store_with(&cfg, "refresh-2", "svc");

    let outcome = logout_with(&cfg, Arc::clone(&store) as Arc<dyn TokenStore>, &options())
        .await
        .unwrap();
    assert!(
        matches!(outcome.revocation, Revocation::Revoked),
        "{outcome:?}"
    );
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("svc:s3cret")
    );
    assert_eq!(
        revocations(&server).await,
        [(
            pairs(&[("token", "refresh-2"), ("token_type_hint", "refresh_token")]),
            Some(basic)
        )]
    );
}

/// Only the configured client's secret is known: a login another confidential client
/// obtained is not revoked (nothing is sent, not even discovery), and is deleted all the same.
#[tokio::test]
async fn a_login_of_another_confidential_client_is_not_revoked_but_deleted() {
    let server = MockServer::start().await;
    serve_discovery(&server, Some("/revoke")).await;
    revocation_answers(&server, 200).await;
    let cfg = base(&server)
        .auth_mode(AuthMode::ClientSecret)
        .client_id("svc")
        .client_secret("s3cret")
        .build()
        .unwrap();
    let store = store_with(&cfg, "refresh-other", "other-svc");

    let outcome = logout_with(&cfg, Arc::clone(&store) as Arc<dyn TokenStore>, &options())
        .await
        .unwrap();
    let Revocation::Skipped { client_id } = &outcome.revocation else {
        panic!("{outcome:?}");
    };
    assert_eq!(client_id, "other-svc");
    let said = outcome.revocation.to_string();
    assert!(
        said.contains("other-svc") && said.contains("not revoked"),
        "{said}"
    );
    assert!(outcome.stored);
    assert_eq!(store.retrieve(cfg.endpoint()).unwrap(), None);
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_failed_revocation_still_deletes_the_login_and_says_why() {
    let server = MockServer::start().await;
    serve_discovery(&server, Some("/revoke")).await;
    revocation_answers(&server, 500).await;
    let cfg = base(&server)
        .auth_mode(AuthMode::DeviceFlow)
        .build()
        .unwrap();
    let store = store_with(&cfg, "refresh-XYZ", "flytectl");

    let outcome = logout_with(&cfg, Arc::clone(&store) as Arc<dyn TokenStore>, &options())
        .await
        .unwrap();
    let Revocation::Failed(e) = &outcome.revocation else {
        panic!("{outcome:?}");
    };
    assert!(e.to_string().contains("500"), "{e}");
    let shown = format!("{} {outcome:?}", outcome.revocation);
    assert!(
        !shown.contains("XYZ"),
        "the refresh token is shown: {shown}"
    );
    assert!(outcome.stored);
    assert_eq!(store.retrieve(cfg.endpoint()).unwrap(), None);
}

#[tokio::test]
async fn without_an_announced_endpoint_nothing_is_sent_and_the_login_is_deleted() {
    let server = MockServer::start().await;
    serve_discovery(&server, None).await;
    let cfg = base(&server)
        .auth_mode(AuthMode::DeviceFlow)
        .build()
        .unwrap();
    let store = store_with(&cfg, "refresh-3", "flytectl");
    let outcome = logout_with(&cfg, Arc::clone(&store) as Arc<dyn TokenStore>, &options())
        .await
        .unwrap();
    assert!(
        matches!(outcome.revocation, Revocation::NotOffered),
        "{outcome:?}"
    );
    assert_eq!(store.retrieve(cfg.endpoint()).unwrap(), None);

    // A configured token endpoint belongs to another authorization server: the announced
    // revocation endpoint is not used for its tokens.
    let server = MockServer::start().await;
    serve_discovery(&server, Some("/revoke")).await;
    revocation_answers(&server, 200).await;
    let cfg = base(&server)
        .auth_mode(AuthMode::DeviceFlow)
        .token_url("https://idp.example.org/token")
        .build()
        .unwrap();
    let store = store_with(&cfg, "refresh-4", "flytectl");
    let outcome = logout_with(&cfg, Arc::clone(&store) as Arc<dyn TokenStore>, &options())
        .await
        .unwrap();
    assert!(
        matches!(outcome.revocation, Revocation::NotOffered),
        "{outcome:?}"
    );
    assert!(revocations(&server).await.is_empty());
}

#[tokio::test]
async fn nothing_stored_sends_nothing() {
    let server = MockServer::start().await;
    let cfg = base(&server)
        .auth_mode(AuthMode::DeviceFlow)
        .build()
        .unwrap();
    let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
    let outcome = logout_with(&cfg, store, &options()).await.unwrap();
    assert!(!outcome.stored);
    assert!(matches!(outcome.revocation, Revocation::NothingToRevoke));
    assert!(server.received_requests().await.unwrap().is_empty());
}

/// With `proxyGoogleAudience`, the Google proxy's ID token (filed under
/// `google-id-token.<audience>`) goes too, without a revocation request: an ID token cannot
/// be revoked. Other entries stay. (Without the `google` feature the login cannot be revoked:
/// no transport can be built for a proxy it cannot serve.)
#[cfg(feature = "google")]
#[tokio::test]
async fn the_google_proxys_id_token_is_deleted_too_and_not_revoked() {
    const AUDIENCE: &str = "123-iap.apps.googleusercontent.com";
    let server = MockServer::start().await;
    serve_discovery(&server, Some("/revoke")).await;
    revocation_answers(&server, 200).await;
    let cfg = base(&server)
        .auth_mode(AuthMode::DeviceFlow)
        .proxy_google_audience(AUDIENCE)
        .build()
        .unwrap();
    let store = store_with(&cfg, "refresh-5", "flytectl");
    let proxy = flyte_auth::Endpoint::parse(&format!("google-id-token.{AUDIENCE}")).unwrap();
    let other = flyte_auth::Endpoint::parse("google-id-token.another-audience").unwrap();
    for entry in [&proxy, &other] {
        let id_token = Credentials::new("google-id-token-sample", entry.key());
        store.store(entry, &id_token).unwrap();
    }

    let outcome = logout_with(&cfg, Arc::clone(&store) as Arc<dyn TokenStore>, &options())
        .await
        .unwrap();
    let google = outcome
        .google_proxy
        .clone()
        .expect("the proxy is configured");
    assert_eq!(google.audience, AUDIENCE);
    assert!(google.stored);
    let said = google.to_string();
    assert!(said.contains("cannot be revoked"), "{said}");
    assert_eq!(store.retrieve(&proxy).unwrap(), None);
    assert!(store.retrieve(&other).unwrap().is_some());
    // Only the login's refresh token was sent for revocation.
    let sent = revocations(&server).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(!format!("{sent:?}").contains("google-id-token-sample"));

    // Nothing stored for the proxy: said so; without the setting: `None`.
    let outcome = logout_with(&cfg, Arc::clone(&store) as Arc<dyn TokenStore>, &options())
        .await
        .unwrap();
    assert!(!outcome.google_proxy.unwrap().stored);
    let without = base(&server)
        .auth_mode(AuthMode::DeviceFlow)
        .build()
        .unwrap();
    let outcome = logout_with(&without, store as Arc<dyn TokenStore>, &options())
        .await
        .unwrap();
    assert!(outcome.google_proxy.is_none());
}

#![allow(clippy::unwrap_used, reason = "tests")]
//! The client credentials authenticator against a mock token endpoint.

use std::{
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use flyte_auth_clientcreds::{
    ClientCredentialsAuthenticator, ClientCredentialsFlow, ClientCredentialsFlowBuilder,
};
use flyte_auth_core::{
    Authenticator, CachingAuthenticator, ClientConfig, Endpoint, Error, OAuthErrorCode,
    StaticClientConfigStore,
};
use flyte_auth_oauth::{
    ClientAuthMethod, ClientContext, ClientContextBuilder, HttpSettings, Overrides,
};
use wiremock::{
    Mock, MockServer, Request, Respond, ResponseTemplate,
    matchers::{body_string_contains, header_exists, method, path},
};

const SECRET: &str = "s3cr3t-XYZ";

fn cfg_store(server: &MockServer) -> Arc<StaticClientConfigStore> {
    Arc::new(StaticClientConfigStore::new(
        ClientConfig::new(format!("{}/oauth2/token", server.uri()), "flytectl")
            .with_scopes(["all"])
            .with_audience("https://flyte.example.org")
            .with_header_key("flyte-authorization"),
    ))
}

fn context(endpoint: &str) -> ClientContextBuilder {
    ClientContext::builder(Endpoint::parse(endpoint).unwrap())
        .http_settings(HttpSettings::new().system_proxy(false))
}

/// A flow for `server`'s client config, with `overrides`.
fn flow(server: &MockServer, overrides: Overrides) -> ClientCredentialsFlowBuilder {
    let ctx = context("dns:///flyte.example.org")
        .discovery(cfg_store(server))
        .overrides(overrides)
        .build()
        .unwrap();
    ClientCredentialsFlow::builder(ctx, "my-service", SECRET)
}

fn authenticator(flow: ClientCredentialsFlowBuilder) -> ClientCredentialsAuthenticator {
    CachingAuthenticator::builder(flow.build().unwrap()).build()
}

fn auth(server: &MockServer) -> ClientCredentialsAuthenticator {
    authenticator(flow(server, Overrides::new()))
}

/// Answers `token-1`, `token-2`, ... with the given lifetime.
struct Counting {
    expires_in: u64,
    delay: Duration,
    count: std::sync::atomic::AtomicUsize,
}

impl Respond for Counting {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let n = self.count.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        ResponseTemplate::new(200)
            .set_body_json(serde_json::json!({
                "access_token": format!("token-{n}"),
                "token_type": "Bearer",
                "expires_in": self.expires_in,
                "refresh_token": "unused-refresh"
            }))
            .set_delay(self.delay)
    }
}

fn counting(expires_in: u64, delay: Duration) -> Counting {
    Counting {
        expires_in,
        delay,
        count: Default::default(),
    }
}

#[tokio::test]
async fn scopes_audience_and_header_come_from_the_client_config() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth2/token"))
        .and(header_exists("authorization"))
        .and(body_string_contains("grant_type=client_credentials"))
        .and(body_string_contains("scope=all"))
        .and(body_string_contains(
            "audience=https%3A%2F%2Fflyte.example.org",
        ))
        .respond_with(counting(3600, Duration::ZERO))
        .expect(1)
        .mount(&server)
        .await;
    let auth = auth(&server);
    assert!(auth.fetch_grpc_call_auth_metadata().is_none(), "lazy");

    let creds = auth.get_credentials().await.unwrap();
    assert_eq!(creds.access_token.expose_secret(), "token-1");
    assert_eq!(creds.for_endpoint, "flyte.example.org");
    assert_eq!(creds.client_id.as_deref(), Some("my-service"));
    assert!(
        creds.refresh_token.is_none(),
        "client credentials keep no refresh token"
    );
    let header = auth.fetch_grpc_call_auth_metadata().unwrap();
    assert_eq!(header.name().as_str(), "flyte-authorization");
    assert_eq!(header.value().to_str().unwrap(), "Bearer token-1");
}

#[tokio::test]
async fn explicit_scopes_audience_header_and_body_auth_win_over_the_config() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth2/token"))
        .and(body_string_contains("client_id=my-service"))
        .and(body_string_contains("client_secret=s3cr3t-XYZ"))
        .and(body_string_contains("scope=read+write"))
        .and(body_string_contains("audience=api"))
        .and(body_string_contains("resource=flyte"))
        .respond_with(counting(3600, Duration::ZERO))
        .expect(1)
        .mount(&server)
        .await;
    let overrides = Overrides::new()
        .scopes(["read", "write"])
        .audience("api")
        .header_key("X-Flyte-Token");
    let auth = authenticator(
        flow(&server, overrides)
            .param("resource", "flyte")
            .auth_method(ClientAuthMethod::ClientSecretPost),
    );
    let header = auth.auth_header().await.unwrap();
    assert_eq!(header.name().as_str(), "x-flyte-token");
    let requests = server.received_requests().await.unwrap();
    assert!(requests[0].headers.get("authorization").is_none());
}

#[tokio::test]
async fn a_token_endpoint_override_needs_no_config_store() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/custom/token"))
        .respond_with(counting(3600, Duration::ZERO))
        .expect(1)
        .mount(&server)
        .await;
    let ctx = context("flyte.example.org")
        .no_discovery()
        .overrides(Overrides::new().token_endpoint(format!("{}/custom/token", server.uri())))
        .build()
        .unwrap();
    let auth = authenticator(ClientCredentialsFlow::builder(ctx, "my-service", SECRET));
    let header = auth.auth_header().await.unwrap();
    assert_eq!(header.name().as_str(), "authorization");
}

#[tokio::test]
async fn without_a_config_store_the_flyte_server_is_asked() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/.well-known/oauth-authorization-server"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "token_endpoint": format!("{}/oauth2/token", server.uri())
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/config/v1/flyte_client"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "clientId": "flytectl", "scopes": ["all"], "authorizationMetadataKey": ""
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/oauth2/token"))
        .and(body_string_contains("scope=all"))
        .respond_with(counting(3600, Duration::ZERO))
        .expect(1)
        .mount(&server)
        .await;
    let endpoint = server.uri().replace("http://", "dns:///");
    let ctx = ClientContext::builder(Endpoint::parse(&endpoint).unwrap().with_insecure(true))
        .http_settings(HttpSettings::new().system_proxy(false))
        .build()
        .unwrap();
    let auth = authenticator(ClientCredentialsFlow::builder(ctx, "my-service", SECRET));
    let creds = auth.get_credentials().await.unwrap();
    assert_eq!(creds.access_token.expose_secret(), "token-1");
}

#[tokio::test]
async fn the_expiry_is_kept() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(counting(3600, Duration::ZERO))
        .mount(&server)
        .await;
    let auth = auth(&server);
    let before = SystemTime::now();
    let creds = auth.get_credentials().await.unwrap();
    assert_eq!(creds.expires_in, Some(3600));
    let at = creds.expires_at().unwrap();
    let lifetime = at.duration_since(before).unwrap();
    assert!(
        lifetime > Duration::from_secs(3590) && lifetime <= Duration::from_secs(3601),
        "{lifetime:?}"
    );
    // Fresh: asked again, no second request.
    auth.get_credentials().await.unwrap();
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_short_lived_token_is_renewed_before_it_expires() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(counting(6, Duration::ZERO))
        .mount(&server)
        .await;
    // Margin capped at a quarter of the 6 s lifetime: renewed about 1.5 s before expiry.
    let auth = CachingAuthenticator::builder(flow(&server, Overrides::new()).build().unwrap())
        .refresh_margin(Duration::from_secs(60))
        .build();
    let first = auth.get_credentials().await.unwrap();
    let first_expiry = first.expires_at().unwrap();
    let started = Instant::now();
    let mut renewed = None;
    for _ in 0..200 {
        let header = auth.auth_header().await.unwrap();
        if header.value().to_str().unwrap() != "Bearer token-1" {
            renewed = Some((header, SystemTime::now()));
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (header, when) = renewed.expect("the token was renewed");
    assert_eq!(header.value().to_str().unwrap(), "Bearer token-2");
    assert!(
        when < first_expiry,
        "renewed proactively, while the first token was still valid"
    );
    assert!(started.elapsed() < Duration::from_secs(30), "did not hang");
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn two_hundred_concurrent_callers_cause_one_token_request() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(counting(3600, Duration::from_millis(500)))
        .expect(1)
        .mount(&server)
        .await;
    let auth = Arc::new(auth(&server));
    let calls = (0..200).map(|_| {
        let auth = Arc::clone(&auth);
        tokio::spawn(async move { auth.get_credentials().await })
    });
    let results = futures_util::future::join_all(calls).await;
    for result in results {
        assert_eq!(
            result.unwrap().unwrap().access_token.expose_secret(),
            "token-1"
        );
    }
}

#[tokio::test]
async fn a_rejected_client_is_an_oauth_error_without_the_secret() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(401).set_body_json(serde_json::json!({
            "error": "invalid_client", "error_description": "bad secret"
        })))
        .mount(&server)
        .await;
    let auth = auth(&server);
    let e = auth.get_credentials().await.unwrap_err();
    assert_eq!(e.oauth().unwrap().code, OAuthErrorCode::InvalidClient);
    let shown = format!("{e} {e:?} {auth:?}");
    assert!(!shown.contains("XYZ"), "{shown}");
}

#[tokio::test]
async fn after_a_rejection_the_caller_gets_a_new_token_with_one_request() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(counting(3600, Duration::from_millis(500)))
        .expect(2)
        .mount(&server)
        .await;
    let auth = Arc::new(auth(&server));
    auth.get_credentials().await.unwrap();
    // The server said 401 to many calls at once: each caller asks for a refresh.
    let calls = (0..50).map(|_| {
        let auth = Arc::clone(&auth);
        tokio::spawn(async move { auth.refresh_credentials().await })
    });
    for result in futures_util::future::join_all(calls).await {
        assert_eq!(
            result.unwrap().unwrap().access_token.expose_secret(),
            "token-2"
        );
    }
}

#[test]
fn missing_id_or_secret_fails_at_construction() {
    let store = Arc::new(StaticClientConfigStore::new(ClientConfig::new(
        "https://idp/token",
        "flytectl",
    )));
    let ctx = context("flyte.example.org")
        .discovery(store.clone())
        .build()
        .unwrap();
    for (id, secret) in [("", "secret"), ("id", ""), ("  ", " ")] {
        let e = ClientCredentialsFlow::builder(ctx.clone(), id, secret)
            .build()
            .unwrap_err();
        assert!(matches!(e, Error::Config { .. }), "{e:?}");
    }
    let e = context("flyte.example.org")
        .discovery(store)
        .overrides(Overrides::new().header_key("bad header"))
        .build()
        .unwrap_err();
    assert!(matches!(e, Error::Config { .. }), "{e:?}");
}

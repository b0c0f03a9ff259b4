#![allow(clippy::unwrap_used, reason = "tests")]
//! The client credentials authenticator against a mock token endpoint.

use std::{
    sync::Arc,
    time::{Duration, SystemTime},
};

use flyte_auth_clientcreds::{
    ClientCredentialsAuthenticator, ClientCredentialsFlow, ClientCredentialsFlowBuilder,
};
use flyte_auth_core::{
    Authenticator, CachingAuthenticator, ClientConfig, DiscoveryAnswer, DiscoveryFlavour,
    DiscoveryHints, Endpoint, Error, OAuthErrorCode, StaticClientConfigStore, StoreError,
};
use flyte_auth_oauth::{
    ClientAuthMethod, ClientContext, ClientContextBuilder, HttpSettings, Overrides, RetryPolicy,
};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
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

/// A token answer: `token-1`, valid for an hour.
fn token_answer() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(serde_json::json!({
        "access_token": "token-1",
        "token_type": "Bearer",
        "expires_in": 3600,
        "refresh_token": "unused-refresh"
    }))
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
        .respond_with(token_answer())
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
        .respond_with(token_answer())
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
        .respond_with(token_answer())
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
        .respond_with(token_answer())
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

/// With `tokenUrl` and `scopes` configured, a token costs exactly one request, the token
/// POST: no discovery only to learn the header name, which obtaining a token does not use.
/// The header is discovered when a caller asks for it, once.
#[tokio::test]
async fn configured_token_url_and_scopes_cost_one_request_and_no_discovery() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth2/token"))
        .respond_with(token_answer())
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/config/v1/flyte_client"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "client_id": "flytectl", "authorization_metadata_key": "flyte-authorization"
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/.well-known/oauth-authorization-server"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "token_endpoint": format!("{}/oauth2/token", server.uri())
        })))
        .mount(&server)
        .await;
    let endpoint = server.uri().replace("http://", "dns:///");
    let ctx = ClientContext::builder(Endpoint::parse(&endpoint).unwrap().with_insecure(true))
        .http_settings(HttpSettings::new().system_proxy(false))
        .overrides(
            Overrides::new()
                .token_endpoint(format!("{}/oauth2/token", server.uri()))
                .scopes(["all"]),
        )
        .build()
        .unwrap();
    let auth = authenticator(ClientCredentialsFlow::builder(
        ctx.clone(),
        "my-service",
        SECRET,
    ));
    let creds = auth.get_credentials().await.unwrap();
    assert_eq!(creds.access_token.expose_secret(), "token-1");
    let requests = server.received_requests().await.unwrap();
    let seen: Vec<String> = requests
        .iter()
        .map(|r| format!("{} {}", r.method, r.url.path()))
        .collect();
    assert_eq!(seen, ["POST /oauth2/token"]);

    // A caller that needs the header learns it from the server, once.
    let name = ctx.resolve_header_name().await.unwrap();
    assert_eq!(name.as_str(), "flyte-authorization");
    assert_eq!(
        ctx.resolve_header_name().await.unwrap().as_str(),
        "flyte-authorization"
    );
    let discovery_gets = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() == "GET")
        .count();
    assert_eq!(discovery_gets, 2, "one discovery: its two documents");
}

#[tokio::test]
async fn the_expiry_is_kept() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(token_answer())
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

/// Discovery answers kept in memory, as `flyte-auth-store`'s hint files keep them on disk.
#[derive(Debug, Default)]
struct MemoryHints(
    std::sync::Mutex<
        std::collections::HashMap<String, (DiscoveryFlavour, Option<DiscoveryAnswer>)>,
    >,
);

impl DiscoveryHints for MemoryHints {
    fn recall(&self, endpoint: &str) -> Option<DiscoveryFlavour> {
        self.0.lock().unwrap().get(endpoint).map(|(f, _)| *f)
    }
    fn remember(&self, endpoint: &str, flavour: DiscoveryFlavour) -> Result<(), StoreError> {
        self.0
            .lock()
            .unwrap()
            .insert(endpoint.to_owned(), (flavour, None));
        Ok(())
    }
    fn recall_answer(&self, endpoint: &str) -> Option<DiscoveryAnswer> {
        self.0.lock().unwrap().get(endpoint)?.1.clone()
    }
    fn remember_answer(&self, endpoint: &str, answer: &DiscoveryAnswer) -> Result<(), StoreError> {
        self.0
            .lock()
            .unwrap()
            .insert(endpoint.to_owned(), (answer.flavour, Some(answer.clone())));
        Ok(())
    }
}

/// A flyteadmin at `server` announcing its token endpoint `/oauth2/token` and the header
/// `flyte-authorization`, which answers token requests there.
async fn flyteadmin(server: &MockServer) {
    Mock::given(method("GET"))
        .and(path("/.well-known/oauth-authorization-server"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "token_endpoint": format!("{}/oauth2/token", server.uri())
        })))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/config/v1/flyte_client"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "client_id": "flytectl", "scopes": ["all"],
            "authorization_metadata_key": "flyte-authorization"
        })))
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path("/oauth2/token"))
        .respond_with(token_answer())
        .mount(server)
        .await;
}

/// A new process's authenticator for `server`, discovering it and keeping the answer in
/// `hints`; transient failures are not retried.
fn process(server: &MockServer, hints: &Arc<MemoryHints>) -> ClientCredentialsAuthenticator {
    let endpoint = server.uri().replace("http://", "dns:///");
    let ctx = ClientContext::builder(Endpoint::parse(&endpoint).unwrap().with_insecure(true))
        .http_settings(
            HttpSettings::new()
                .system_proxy(false)
                .retry(RetryPolicy::new().max_retries(0)),
        )
        .discovery_hints(Arc::clone(hints) as Arc<dyn DiscoveryHints>)
        .build()
        .unwrap();
    authenticator(ClientCredentialsFlow::builder(ctx, "my-service", SECRET))
}

/// What `server` was asked, in order: `GET /path`.
async fn requests(server: &MockServer) -> Vec<String> {
    let mut seen: Vec<String> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| format!("{} {}", r.method, r.url.path()))
        .collect();
    // The two discovery GETs go at once: their order is not the point.
    seen.sort();
    seen
}

/// `server`'s key in the hints: the endpoint's.
fn key(server: &MockServer) -> String {
    Endpoint::parse(&server.uri().replace("http://", "dns:///"))
        .unwrap()
        .key()
        .to_owned()
}

/// A second process finds the first one's discovery answer and goes straight to the token
/// endpoint, with the header the server named.
#[tokio::test]
async fn a_kept_discovery_answer_sends_the_next_process_straight_to_the_token_endpoint() {
    let server = MockServer::start().await;
    flyteadmin(&server).await;
    let hints = Arc::new(MemoryHints::default());
    process(&server, &hints).get_credentials().await.unwrap();
    assert_eq!(
        requests(&server).await,
        [
            "GET /.well-known/oauth-authorization-server",
            "GET /config/v1/flyte_client",
            "POST /flyteidl2.auth.AuthMetadataService/GetPublicClientConfig",
            "POST /oauth2/token"
        ],
        "first contact: both flavours asked at once"
    );
    let kept = hints
        .recall_answer(&key(&server))
        .expect("the answer is kept");
    assert_eq!(kept.flavour, DiscoveryFlavour::FlyteAdmin);
    assert_eq!(kept.config.scopes, ["all"]);

    server.reset().await;
    flyteadmin(&server).await;
    let second = process(&server, &hints);
    second.get_credentials().await.unwrap();
    assert_eq!(requests(&server).await, ["POST /oauth2/token"]);
    let header = second.fetch_grpc_call_auth_metadata().unwrap();
    assert_eq!(header.name().as_str(), "flyte-authorization");
}

/// An answer older than a day, dated in the future or unusable is not used: the server is
/// asked, and its answer kept instead.
#[tokio::test]
async fn an_expired_or_unusable_kept_answer_is_not_used() {
    let server = MockServer::start().await;
    let day = flyte_auth_oauth::DISCOVERY_ANSWER_LIFETIME;
    let good = ClientConfig::new(format!("{}/oauth2/token", server.uri()), "flytectl")
        .with_scopes(["all"]);
    let now = SystemTime::now();
    for (config, at) in [
        (good.clone(), now - day - Duration::from_secs(60)),
        (good.clone(), now + Duration::from_secs(3600)),
        (good.clone().with_header_key("bad header"), now),
        (ClientConfig::new("", "flytectl"), now),
    ] {
        server.reset().await;
        flyteadmin(&server).await;
        let hints = Arc::new(MemoryHints::default());
        let answer = DiscoveryAnswer::new(DiscoveryFlavour::FlyteAdmin, config, at);
        hints.remember_answer(&key(&server), &answer).unwrap();
        process(&server, &hints).get_credentials().await.unwrap();
        assert_eq!(
            requests(&server).await,
            [
                "GET /.well-known/oauth-authorization-server",
                "GET /config/v1/flyte_client",
                "POST /oauth2/token"
            ],
            "{answer:?}"
        );
        let kept = hints.recall_answer(&key(&server)).unwrap();
        assert!(kept.discovered_at >= now, "replaced: {kept:?}");
        assert_eq!(kept.config.header_key, "flyte-authorization");
    }
}

/// A kept answer never causes a failure: when its token endpoint is gone (404) or nothing
/// listens there (connection refused), the server is asked again, once, and the token is
/// requested where it says; the new answer is kept.
#[tokio::test]
async fn a_stale_kept_answer_is_discovered_again_once_and_the_request_retried() {
    let server = MockServer::start().await;
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    for stale in [
        format!("{}/moved/token", server.uri()),
        format!("http://{closed}/oauth2/token"),
    ] {
        server.reset().await;
        flyteadmin(&server).await;
        let hints = Arc::new(MemoryHints::default());
        let answer = DiscoveryAnswer::new(
            DiscoveryFlavour::FlyteAdmin,
            ClientConfig::new(stale.clone(), "flytectl").with_scopes(["all"]),
            SystemTime::now(),
        );
        hints.remember_answer(&key(&server), &answer).unwrap();
        let creds = process(&server, &hints).get_credentials().await.unwrap();
        assert_eq!(creds.access_token.expose_secret(), "token-1", "{stale}");
        let mut expected = vec![
            "GET /.well-known/oauth-authorization-server",
            "GET /config/v1/flyte_client",
            "POST /oauth2/token",
        ];
        if stale.contains("/moved/") {
            expected.insert(2, "POST /moved/token");
        }
        assert_eq!(requests(&server).await, expected, "{stale}");
        let kept = hints.recall_answer(&key(&server)).unwrap();
        assert_eq!(
            kept.config.token_endpoint,
            format!("{}/oauth2/token", server.uri())
        );
    }
}

/// A failure a stale answer does not explain (the server refuses the client) is the
/// answer: no second discovery, no second request.
#[tokio::test]
async fn a_refusal_with_a_kept_answer_is_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth2/token"))
        .respond_with(ResponseTemplate::new(401).set_body_json(serde_json::json!({
            "error": "invalid_client"
        })))
        .mount(&server)
        .await;
    let hints = Arc::new(MemoryHints::default());
    let answer = DiscoveryAnswer::new(
        DiscoveryFlavour::FlyteAdmin,
        ClientConfig::new(format!("{}/oauth2/token", server.uri()), "flytectl"),
        SystemTime::now(),
    );
    hints.remember_answer(&key(&server), &answer).unwrap();
    let err = process(&server, &hints)
        .get_credentials()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::OAuth(_)), "{err:?}");
    assert_eq!(requests(&server).await, ["POST /oauth2/token"]);
}

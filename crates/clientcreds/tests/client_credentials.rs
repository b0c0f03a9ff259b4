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
    Authenticator, CachingAuthenticator, ClientConfig, Endpoint, Error, OAuthErrorCode,
    StaticClientConfigStore,
};
use flyte_auth_oauth::{
    ClientAuthMethod, ClientContext, ClientContextBuilder, HttpSettings, Overrides,
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

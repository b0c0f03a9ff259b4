#![allow(clippy::unwrap_used, reason = "tests")]
//! Token revocation (RFC 7009) against a mock server: what is sent, how each answer is read,
//! and what discovery tells the flows (the revocation endpoint, the PKCE methods).

use std::time::{Duration, Instant};

use flyte_auth_core::{ClientConfigStore, Error};
use flyte_auth_oauth::{
    ClientAuth, HttpSettings, OAuthClient, RemoteClientConfigStore, RetryPolicy, RevocationRequest,
};
use serde_json::json;
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{body_string, header, method, path},
};

fn client(retries: u32) -> OAuthClient {
    OAuthClient::new(
        HttpSettings::new()
            .system_proxy(false)
            .request_timeout(Duration::from_secs(2))
            .retry(RetryPolicy::new().max_retries(retries)),
    )
    .unwrap()
}

fn request(server: &MockServer, token: &str) -> RevocationRequest {
    RevocationRequest::refresh_token(
        format!("{}/revoke", server.uri()),
        ClientAuth::public("flytectl"),
        token,
    )
}

async fn answer(server: &MockServer, template: ResponseTemplate) {
    Mock::given(method("POST"))
        .and(path("/revoke"))
        .respond_with(template)
        .mount(server)
        .await;
}

#[tokio::test]
async fn a_revocation_posts_the_token_its_hint_and_the_client_and_200_is_done() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/revoke"))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(body_string(
            "token=r-1&token_type_hint=refresh_token&client_id=flytectl",
        ))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    client(0).revoke(&request(&server, "r-1")).await.unwrap();
}

#[tokio::test]
async fn a_refusal_is_the_servers_oauth_error_without_the_token() {
    let server = MockServer::start().await;
    answer(
        &server,
        ResponseTemplate::new(400).set_body_json(json!({
            "error": "unsupported_token_type",
            "error_description": "cannot revoke r-XYZ",
        })),
    )
    .await;
    let err = client(0)
        .revoke(&request(&server, "r-XYZ"))
        .await
        .unwrap_err();
    assert_eq!(
        err.oauth().expect("an OAuth error").code.as_str(),
        "unsupported_token_type"
    );
    assert!(!format!("{err} {err:?}").contains("XYZ"), "{err}");
}

#[tokio::test]
async fn a_failing_server_is_retried_then_an_error_naming_the_status() {
    let server = MockServer::start().await;
    answer(&server, ResponseTemplate::new(503).set_body_string("down")).await;
    let err = client(1)
        .revoke(&request(&server, "r-XYZ"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidResponse {
                status: Some(503),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!err.to_string().contains("XYZ"), "{err}");
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_server_that_never_answers_is_a_time_out() {
    let server = MockServer::start().await;
    answer(
        &server,
        ResponseTemplate::new(200).set_delay(Duration::from_secs(30)),
    )
    .await;
    let started = Instant::now();
    let err = client(0)
        .revoke(&request(&server, "r-1"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn discovery_tells_the_revocation_endpoint_and_the_pkce_methods() {
    let server = MockServer::start().await;
    let base = server.uri();
    Mock::given(method("GET"))
        .and(path("/.well-known/oauth-authorization-server"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "issuer": base,
            "token_endpoint": format!("{base}/token"),
            "revocation_endpoint": "/token/revocation",
            "code_challenge_methods_supported": ["plain", "S256"],
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/config/v1/flyte_client"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"client_id": "flytectl"})))
        .mount(&server)
        .await;
    let store = RemoteClientConfigStore::from_base_url(base.clone(), client(0));
    let discovery = store.discover().await.unwrap();
    assert_eq!(
        discovery.metadata.revocation_endpoint.as_deref(),
        Some(format!("{base}/token/revocation").as_str())
    );
    let cfg = store.get_client_config().await.unwrap();
    assert_eq!(
        cfg.revocation_endpoint,
        Some(format!("{base}/token/revocation"))
    );
    assert_eq!(cfg.code_challenge_methods_supported, ["plain", "S256"]);
}

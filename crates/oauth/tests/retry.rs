#![allow(clippy::unwrap_used, reason = "tests")]
//! Retries of discovery and token requests against a server that fails N times, then answers.

use std::time::{Duration, Instant};

use flyte_auth_oauth::{ClientAuth, Grant, HttpSettings, OAuthClient, RetryPolicy, TokenRequest};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path},
};

fn client(policy: RetryPolicy) -> OAuthClient {
    OAuthClient::new(HttpSettings::new().system_proxy(false).retry(policy)).unwrap()
}

fn quick(retries: u32) -> RetryPolicy {
    RetryPolicy::new()
        .max_retries(retries)
        .delays(Duration::from_millis(10), Duration::from_millis(50))
}

fn token_ok() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(serde_json::json!({
        "access_token": "at-after-retries", "token_type": "Bearer", "expires_in": 60
    }))
}

/// `/token` answers `failure` `times` times, then a token.
async fn failing(times: u64, failure: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(failure)
        .up_to_n_times(times)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(token_ok())
        .mount(&server)
        .await;
    server
}

fn request(server: &MockServer, grant: Grant) -> TokenRequest {
    TokenRequest::new(
        format!("{}/token", server.uri()),
        ClientAuth::confidential("app", "secret"),
        grant,
    )
}

async fn sent(server: &MockServer) -> usize {
    server.received_requests().await.unwrap().len()
}

#[tokio::test]
async fn a_token_request_failing_twice_with_503_succeeds_on_the_third_attempt() {
    let server = failing(2, ResponseTemplate::new(503)).await;
    let token = client(quick(3))
        .token(&request(&server, Grant::ClientCredentials))
        .await
        .unwrap();
    assert_eq!(token.access_token.expose_secret(), "at-after-retries");
    assert_eq!(sent(&server).await, 3);
}

#[tokio::test]
async fn retries_stop_at_max_retries_and_return_the_last_failure() {
    let server = failing(10, ResponseTemplate::new(502)).await;
    let err = client(quick(2))
        .token(&request(&server, Grant::ClientCredentials))
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert_eq!(sent(&server).await, 3, "one attempt and two retries");
}

#[tokio::test]
async fn the_default_retries_four_times_as_flytes_go_client_does() {
    // The default count, with short waits: four failures, then the answer...
    let policy = RetryPolicy::new().delays(Duration::from_millis(1), Duration::from_millis(5));
    let server = failing(4, ResponseTemplate::new(503)).await;
    client(policy)
        .token(&request(&server, Grant::ClientCredentials))
        .await
        .unwrap();
    assert_eq!(sent(&server).await, 5, "one attempt and four retries");
    // ...while a fifth failure is the error.
    let server = failing(5, ResponseTemplate::new(503)).await;
    let err = client(policy)
        .token(&request(&server, Grant::ClientCredentials))
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert_eq!(sent(&server).await, 5);
}

#[tokio::test]
async fn zero_retries_is_one_attempt() {
    let server = failing(1, ResponseTemplate::new(503)).await;
    client(RetryPolicy::new().max_retries(0))
        .token(&request(&server, Grant::ClientCredentials))
        .await
        .unwrap_err();
    assert_eq!(sent(&server).await, 1);
}

#[tokio::test]
async fn a_4xx_is_not_retried() {
    let failure =
        ResponseTemplate::new(401).set_body_json(serde_json::json!({"error": "invalid_client"}));
    let server = failing(1, failure).await;
    let err = client(quick(3))
        .token(&request(&server, Grant::ClientCredentials))
        .await
        .unwrap_err();
    assert!(err.is_rejected_grant(), "{err}");
    assert_eq!(sent(&server).await, 1);
}

#[tokio::test]
async fn a_code_exchange_is_sent_once_even_with_retries_configured() {
    let server = failing(1, ResponseTemplate::new(503)).await;
    let grant = Grant::AuthorizationCode {
        code: "one-time-code".into(),
        code_verifier: None,
        redirect_uri: None,
    };
    client(quick(3))
        .token(&request(&server, grant))
        .await
        .unwrap_err();
    assert_eq!(sent(&server).await, 1);
}

#[tokio::test]
async fn retry_after_is_waited_for() {
    let server = failing(
        1,
        ResponseTemplate::new(429).insert_header("retry-after", "1"),
    )
    .await;
    let start = Instant::now();
    client(quick(1))
        .token(&request(
            &server,
            Grant::RefreshToken {
                refresh_token: "rt".into(),
            },
        ))
        .await
        .unwrap();
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(sent(&server).await, 2);
}

#[tokio::test]
async fn no_retry_starts_past_the_total_time_limit() {
    let server = failing(
        1,
        ResponseTemplate::new(429).insert_header("retry-after", "30"),
    )
    .await;
    let start = Instant::now();
    client(quick(3).max_elapsed(Duration::from_secs(2)))
        .token(&request(&server, Grant::ClientCredentials))
        .await
        .unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(2));
    assert_eq!(sent(&server).await, 1);
}

#[tokio::test]
async fn each_attempt_has_its_own_timeout_and_a_slow_answer_is_retried() {
    let server = failing(
        1,
        ResponseTemplate::new(200).set_delay(Duration::from_secs(5)),
    )
    .await;
    let start = Instant::now();
    let token = client(quick(1).per_attempt_timeout(Duration::from_millis(300)))
        .token(&request(&server, Grant::ClientCredentials))
        .await
        .unwrap();
    assert_eq!(token.access_token.expose_secret(), "at-after-retries");
    assert!(start.elapsed() < Duration::from_secs(4));
}

#[tokio::test]
async fn discovery_is_retried_after_a_5xx() {
    let server = MockServer::start().await;
    Mock::given(path("/.well-known/oauth-authorization-server"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(path("/.well-known/oauth-authorization-server"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "issuer": server.uri(),
            "token_endpoint": format!("{}/token", server.uri()),
        })))
        .mount(&server)
        .await;
    Mock::given(path("/config/v1/flyte_client"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "client_id": "flytectl", "redirect_uri": "http://localhost:53593/callback",
            "scopes": ["all"], "authorizationMetadataKey": "flyte-authorization"
        })))
        .mount(&server)
        .await;
    use flyte_auth_core::ClientConfigStore as _;
    let store = flyte_auth_oauth::RemoteClientConfigStore::new(
        server.uri().trim_start_matches("http://"),
        true,
        client(quick(2)),
    )
    .unwrap();
    let config = store.get_client_config().await.unwrap();
    assert_eq!(config.token_endpoint, format!("{}/token", server.uri()));
}

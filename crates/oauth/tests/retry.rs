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

// --- The deadline of an operation ----------------------------------------------------------

fn with_deadline(policy: RetryPolicy, deadline: Duration) -> OAuthClient {
    OAuthClient::new(
        HttpSettings::new()
            .system_proxy(false)
            .retry(policy)
            .deadline(deadline),
    )
    .unwrap()
}

#[tokio::test]
async fn the_deadline_bounds_every_attempt_and_retry_of_a_request_that_never_answers() {
    // Every attempt hangs: the default policy would make five of 15 s each.
    let server = failing(
        10,
        ResponseTemplate::new(200).set_delay(Duration::from_secs(60)),
    )
    .await;
    let start = Instant::now();
    let err = with_deadline(RetryPolicy::new(), Duration::from_secs(1))
        .token(&request(&server, Grant::ClientCredentials))
        .await
        .unwrap_err();
    assert!(
        start.elapsed() < Duration::from_millis(1500),
        "{:?}",
        start.elapsed()
    );
    match &err {
        flyte_auth_core::Error::Timeout { after, .. } => {
            assert_eq!(*after, Duration::from_secs(1));
        }
        other => panic!("not a time-out: {other:?}"),
    }
    assert!(err.to_string().contains("deadline"), "{err}");
    assert!(err.is_transient());
}

#[tokio::test]
async fn no_retry_is_made_that_could_not_start_before_the_deadline() {
    // A server that keeps answering 503, and waits of 300 ms doubling: the default four
    // retries would take more than two seconds.
    let server = failing(10, ResponseTemplate::new(503)).await;
    let policy = RetryPolicy::new().delays(Duration::from_millis(300), Duration::from_secs(5));
    let start = Instant::now();
    let err = with_deadline(policy, Duration::from_secs(1))
        .token(&request(&server, Grant::ClientCredentials))
        .await
        .unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    // The server's own answer, not a time-out: it says what went wrong.
    assert!(
        !matches!(err, flyte_auth_core::Error::Timeout { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("503"), "{err}");
    let attempts = sent(&server).await;
    assert!((2..5).contains(&attempts), "{attempts} attempts");
}

#[tokio::test]
async fn a_discovery_is_one_operation_under_the_deadline() {
    // Every document hangs: each would be asked five times, in every flavour.
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(60)))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(60)))
        .mount(&server)
        .await;
    let endpoint = flyte_auth_core::Endpoint::parse(&server.uri()).unwrap();
    let ctx = flyte_auth_oauth::ClientContext::builder(endpoint)
        .http_client(with_deadline(RetryPolicy::new(), Duration::from_secs(1)))
        .build()
        .unwrap();
    let start = Instant::now();
    let err = ctx
        .resolve(&[flyte_auth_oauth::Field::TokenEndpoint])
        .await
        .unwrap_err();
    assert!(
        start.elapsed() < Duration::from_millis(1500),
        "{:?}",
        start.elapsed()
    );
    assert!(
        matches!(err, flyte_auth_core::Error::Timeout { after, .. } if after == Duration::from_secs(1)),
        "{err:?}"
    );
    assert!(err.to_string().contains("discovery"), "{err}");
}

/// `/token` asks to come back in a second, then to come back in `u64::MAX` seconds.
async fn retry_after_one_second_then_never() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "1"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(
            ResponseTemplate::new(503).insert_header("retry-after", u64::MAX.to_string().as_str()),
        )
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn a_retry_after_or_a_time_limit_of_any_size_is_not_a_panic() {
    // The second answer comes more than a second in: its wait cannot be added to that.
    let server = retry_after_one_second_then_never().await;
    let err = client(quick(3))
        .token(&request(&server, Grant::ClientCredentials))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("503"), "{err}");
    assert_eq!(
        sent(&server).await,
        2,
        "a wait past the limit is not waited"
    );

    let server = retry_after_one_second_then_never().await;
    let huge = Duration::from_secs(u64::MAX);
    let err = with_deadline(RetryPolicy::new().per_attempt_timeout(huge), huge)
        .token(&request(&server, Grant::ClientCredentials))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("503"), "{err}");
    assert_eq!(sent(&server).await, 2);
}

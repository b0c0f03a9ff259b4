//! The test identity provider itself: discovery, client credentials, authorization code with
//! PKCE and refresh-token rotation, the device flow, counters, faults and cleanup.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test with its message"
)]

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use flyte_auth_tests::{
    BASIC_CLIENT, BrowserError, COLON_ID_CLIENT, FLYTECTL, FLYTECTL_REDIRECT_URI, Fault,
    FlyteClientStyle, FlyteClientUpdate, GRANT_AUTHORIZATION_CODE, GRANT_CLIENT_CREDENTIALS,
    GRANT_DEVICE_CODE, GRANT_REFRESH_TOKEN, Idp, POST_CLIENT,
};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use url::Url;

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .no_proxy()
        .build()
        .unwrap()
}

async fn get_json(url: Url) -> Value {
    let response = http().get(url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// POSTs a form to the token endpoint; returns status and JSON body.
async fn token_request(idp: &Idp, form: &[(&str, &str)]) -> (u16, Value) {
    let response = http()
        .post(idp.token_endpoint())
        .form(form)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// `Authorization: Basic base64(form(id):form(secret))` (RFC 6749 section 2.3.1).
fn basic_header(id_encoded: &str, secret_encoded: &str) -> String {
    format!(
        "Basic {}",
        STANDARD.encode(format!("{id_encoded}:{secret_encoded}"))
    )
}

fn str_field<'a>(doc: &'a Value, key: &str) -> &'a str {
    doc.get(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string {key:?} in {doc}"))
}

struct Pkce {
    verifier: String,
    challenge: String,
}

fn pkce() -> Pkce {
    let verifier = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    Pkce {
        verifier,
        challenge,
    }
}

/// A loopback callback server for one request: answers 200 "signed in" and returns the
/// request target it got.
async fn callback_listener() -> (String, JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let redirect_uri = format!(
        "http://127.0.0.1:{}/callback",
        listener.local_addr().unwrap().port()
    );
    let task = tokio::spawn(async move {
        let (mut stream, _) = tokio::time::timeout(Duration::from_secs(60), listener.accept())
            .await
            .expect("the browser reaches the callback within a minute")
            .unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 1024];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 16 * 1024 {
            let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
                .await
                .unwrap()
                .unwrap();
            if n == 0 {
                break;
            }
            request.extend_from_slice(&buf[..n]);
        }
        let body = "signed in; you can close this tab";
        let answer = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(answer.as_bytes()).await.unwrap();
        let request = String::from_utf8_lossy(&request).into_owned();
        request
            .lines()
            .next()
            .and_then(|line| line.split(' ').nth(1))
            .unwrap_or_default()
            .to_owned()
    });
    (redirect_uri, task)
}

fn authorization_url(idp: &Idp, redirect_uri: &str, pkce: &Pkce, state: &str) -> Url {
    let mut url = idp.authorization_endpoint();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", FLYTECTL)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", "all offline")
        .append_pair("state", state)
        .append_pair("code_challenge", &pkce.challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("audience", idp.audience());
    url
}

#[tokio::test]
async fn both_discovery_documents_are_served() {
    let idp = Idp::start().await;

    let metadata = get_json(idp.metadata_url()).await;
    assert_eq!(str_field(&metadata, "issuer"), idp.issuer());
    assert_eq!(
        str_field(&metadata, "authorization_endpoint"),
        idp.authorization_endpoint().as_str()
    );
    assert_eq!(
        str_field(&metadata, "token_endpoint"),
        idp.token_endpoint().as_str()
    );
    assert_eq!(
        str_field(&metadata, "device_authorization_endpoint"),
        idp.device_authorization_endpoint().as_str()
    );
    let list = |key: &str| -> Vec<String> {
        metadata[key]
            .as_array()
            .unwrap_or_else(|| panic!("no {key} in {metadata}"))
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    assert!(list("code_challenge_methods_supported").contains(&"S256".to_owned()));
    for grant in [
        GRANT_AUTHORIZATION_CODE,
        GRANT_REFRESH_TOKEN,
        GRANT_CLIENT_CREDENTIALS,
        GRANT_DEVICE_CODE,
    ] {
        assert!(
            list("grant_types_supported").contains(&grant.to_owned()),
            "{grant}"
        );
    }
    assert!(list("scopes_supported").contains(&"all".to_owned()));

    let client = get_json(idp.flyte_client_url()).await;
    assert_eq!(client["client_id"], FLYTECTL);
    assert_eq!(client["redirect_uri"], FLYTECTL_REDIRECT_URI);
    assert_eq!(client["scopes"], serde_json::json!(["all"]));
    assert_eq!(client["authorization_metadata_key"], "");
    assert_eq!(client["service_http_endpoint"], idp.issuer());
    assert_eq!(client["audience"], idp.audience());
}

#[tokio::test]
async fn flyte_client_document_style_and_redirect_uri_can_be_chosen() {
    let idp = Idp::builder()
        .flyte_client_style(FlyteClientStyle::LowerCamelCase)
        .redirect_uri("http://127.0.0.1:41234/callback")
        .authorization_metadata_key("flyte-authorization")
        .start()
        .await;
    let client = get_json(idp.flyte_client_url()).await;
    assert_eq!(client["clientId"], FLYTECTL);
    assert_eq!(client["redirectUri"], "http://127.0.0.1:41234/callback");
    assert_eq!(client["authorizationMetadataKey"], "flyte-authorization");
    assert_eq!(client["serviceHttpEndpoint"], idp.issuer());
    assert!(client.get("client_id").is_none(), "{client}");

    idp.update_flyte_client(
        FlyteClientUpdate::new()
            .style(FlyteClientStyle::SnakeCase)
            .redirect_uri("http://127.0.0.1:41235/callback")
            .scopes(["all", "offline"]),
    )
    .await;
    let client = get_json(idp.flyte_client_url()).await;
    assert_eq!(client["redirect_uri"], "http://127.0.0.1:41235/callback");
    assert_eq!(client["scopes"], serde_json::json!(["all", "offline"]));
}

#[tokio::test]
async fn client_credentials_with_basic_auth_return_an_access_token() {
    let idp = Idp::builder()
        .access_token_ttl(Duration::from_secs(7))
        .start()
        .await;
    for client in [BASIC_CLIENT, COLON_ID_CLIENT] {
        let response = http()
            .post(idp.token_endpoint())
            .header(
                "authorization",
                basic_header(&client.form_encoded_id(), &client.form_encoded_secret()),
            )
            .form(&[
                ("grant_type", "client_credentials"),
                ("scope", "all"),
                ("audience", idp.audience()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{client:?}");
        let token: Value = response.json().await.unwrap();
        assert!(!str_field(&token, "access_token").is_empty());
        assert_eq!(str_field(&token, "token_type"), "Bearer");
        assert_eq!(str_field(&token, "scope"), "all");
        assert_eq!(token["expires_in"], 7);
    }
}

#[tokio::test]
async fn basic_auth_without_form_encoding_is_refused() {
    let idp = Idp::start().await;
    // The raw secret contains `%&` and `:`; sent without form-encoding it is invalid.
    let response = http()
        .post(idp.token_endpoint())
        .header(
            "authorization",
            basic_header(BASIC_CLIENT.id(), BASIC_CLIENT.secret()),
        )
        .form(&[("grant_type", "client_credentials"), ("scope", "all")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert_eq!(str_field(&error, "error"), "invalid_request");
}

#[tokio::test]
async fn client_credentials_with_post_auth_return_an_access_token() {
    let idp = Idp::start().await;
    let (status, token) = token_request(
        &idp,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", POST_CLIENT.id()),
            ("client_secret", POST_CLIENT.secret()),
            ("scope", "all"),
            ("audience", "https://any-audience.example.com"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{token}");
    assert!(!str_field(&token, "access_token").is_empty());
    assert_eq!(token["expires_in"], 3600);

    let (status, error) = token_request(
        &idp,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", POST_CLIENT.id()),
            ("client_secret", "wrong"),
            ("scope", "all"),
        ],
    )
    .await;
    assert_eq!(status, 401, "{error}");
    assert_eq!(str_field(&error, "error"), "invalid_client");
}

#[tokio::test]
async fn pkce_login_then_refresh_tokens_rotate() {
    let idp = Idp::start().await;
    let (redirect_uri, callback) = callback_listener().await;
    let pkce = pkce();
    let url = authorization_url(&idp, &redirect_uri, &pkce, "state-123");

    let answer = idp.complete_browser_login(&url).await.unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.body(), "signed in; you can close this tab");
    assert_eq!(answer.state().as_deref(), Some("state-123"));
    let code = answer.code().expect("an authorization code");
    let target = callback.await.unwrap();
    assert!(target.starts_with("/callback?"), "{target}");
    assert!(target.contains("state=state-123"), "{target}");

    let (status, tokens) = token_request(
        &idp,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", FLYTECTL),
            ("code", &code),
            ("redirect_uri", &redirect_uri),
            ("code_verifier", &pkce.verifier),
            ("audience", idp.audience()),
        ],
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    assert!(!str_field(&tokens, "access_token").is_empty());
    assert_eq!(tokens["expires_in"], 3600);
    assert!(str_field(&tokens, "scope").split(' ').any(|s| s == "all"));
    let first = str_field(&tokens, "refresh_token").to_owned();

    let refresh = |token: String| {
        let idp = &idp;
        async move {
            token_request(
                idp,
                &[
                    ("grant_type", "refresh_token"),
                    ("client_id", FLYTECTL),
                    ("refresh_token", &token),
                    ("audience", idp.audience()),
                ],
            )
            .await
        }
    };
    let (status, second) = refresh(first.clone()).await;
    assert_eq!(status, 200, "{second}");
    assert!(!str_field(&second, "access_token").is_empty());
    let second = str_field(&second, "refresh_token").to_owned();
    assert_ne!(second, first, "refresh tokens rotate");

    let (status, third) = refresh(second.clone()).await;
    assert_eq!(status, 200, "{third}");
    assert_ne!(str_field(&third, "refresh_token"), second);

    let (status, reused) = refresh(first).await;
    assert_eq!(status, 400, "{reused}");
    assert_eq!(str_field(&reused, "error"), "invalid_grant");

    let stats = idp.stats().await;
    assert_eq!(stats.token_requests(GRANT_AUTHORIZATION_CODE), 1);
    assert_eq!(stats.token_requests(GRANT_REFRESH_TOKEN), 3);
    assert_eq!(stats.authorization_requests, 1);
}

#[tokio::test]
async fn a_code_without_the_right_verifier_is_refused() {
    let idp = Idp::start().await;
    let pkce = pkce();
    let redirect_uri = "http://127.0.0.1:9/callback";
    let redirect = idp
        .browser()
        .authorize(&authorization_url(&idp, redirect_uri, &pkce, "s"))
        .await
        .unwrap();
    let code = redirect
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let (status, error) = token_request(
        &idp,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", FLYTECTL),
            ("code", &code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", &self::pkce().verifier),
        ],
    )
    .await;
    assert_eq!(status, 400, "{error}");
    assert_eq!(str_field(&error, "error"), "invalid_grant");
}

#[tokio::test]
async fn denying_consent_sends_access_denied_to_the_callback() {
    let idp = Idp::start().await;
    let (redirect_uri, callback) = callback_listener().await;
    let url = authorization_url(&idp, &redirect_uri, &pkce(), "state-9");

    let answer = idp.deny_browser_login(&url).await.unwrap();
    assert_eq!(answer.error().as_deref(), Some("access_denied"));
    assert_eq!(answer.state().as_deref(), Some("state-9"));
    assert_eq!(answer.code(), None);
    assert_eq!(answer.status(), 200);
    let target = callback.await.unwrap();
    assert!(target.contains("error=access_denied"), "{target}");
}

#[tokio::test]
async fn an_unregistered_redirect_uri_stops_at_an_error_page() {
    let idp = Idp::start().await;
    let url = authorization_url(&idp, "http://attacker.example/callback", &pkce(), "s");
    let err = idp.complete_browser_login(&url).await.unwrap_err();
    assert!(
        matches!(err, BrowserError::ErrorPage { status: 400, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("redirect_uri"), "{err}");
}

async fn device_authorization(idp: &Idp) -> Value {
    let response = http()
        .post(idp.device_authorization_endpoint())
        .form(&[
            ("client_id", FLYTECTL),
            ("scope", "all offline"),
            ("audience", idp.audience()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn poll_device_token(idp: &Idp, device_code: &str) -> (u16, Value) {
    token_request(
        idp,
        &[
            ("grant_type", GRANT_DEVICE_CODE),
            ("client_id", FLYTECTL),
            ("device_code", device_code),
        ],
    )
    .await
}

#[tokio::test]
async fn an_approved_device_code_gives_tokens() {
    let idp = Idp::builder()
        .device_poll_interval(Duration::from_secs(1))
        .device_code_ttl(Duration::from_secs(120))
        .start()
        .await;
    let device = device_authorization(&idp).await;
    assert_eq!(device["interval"], 1);
    assert_eq!(device["expires_in"], 120);
    assert_eq!(
        str_field(&device, "verification_uri"),
        idp.verification_uri().as_str()
    );
    let device_code = str_field(&device, "device_code");
    let (status, pending) = poll_device_token(&idp, device_code).await;
    assert_eq!(status, 400);
    assert_eq!(str_field(&pending, "error"), "authorization_pending");

    idp.approve_device_code(str_field(&device, "user_code"))
        .await
        .unwrap();

    let (status, tokens) = poll_device_token(&idp, device_code).await;
    assert_eq!(status, 200, "{tokens}");
    assert!(!str_field(&tokens, "access_token").is_empty());
    assert!(!str_field(&tokens, "refresh_token").is_empty());
    assert_eq!(idp.token_requests(GRANT_DEVICE_CODE).await, 2);
    assert_eq!(idp.stats().await.device_authorization_requests, 1);
}

#[tokio::test]
async fn a_denied_device_code_gives_access_denied() {
    let idp = Idp::start().await;
    let device = device_authorization(&idp).await;
    assert!(device.get("interval").is_none(), "{device}");
    idp.deny_device_code(str_field(&device, "user_code"))
        .await
        .unwrap();
    let (status, error) = poll_device_token(&idp, str_field(&device, "device_code")).await;
    assert_eq!(status, 400, "{error}");
    assert_eq!(str_field(&error, "error"), "access_denied");
}

#[tokio::test]
async fn an_unknown_user_code_is_rejected() {
    let idp = Idp::start().await;
    let err = idp.approve_device_code("BCDF-GHJK").await.unwrap_err();
    assert!(
        matches!(err, BrowserError::UserCodeRejected { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn token_requests_are_counted_by_grant_type() {
    let idp = Idp::start().await;
    assert_eq!(idp.token_requests(GRANT_CLIENT_CREDENTIALS).await, 0);
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", POST_CLIENT.id()),
        ("client_secret", POST_CLIENT.secret()),
        ("scope", "all"),
    ];
    for _ in 0..2 {
        assert_eq!(token_request(&idp, &form).await.0, 200);
    }
    let (status, _) = token_request(&idp, &[("grant_type", "refresh_token")]).await;
    assert_eq!(status, 400);

    let stats = idp.stats().await;
    assert_eq!(stats.token_requests(GRANT_CLIENT_CREDENTIALS), 2);
    assert_eq!(stats.token_requests(GRANT_REFRESH_TOKEN), 1);
    assert_eq!(stats.token_requests.len(), 2, "{stats:?}");

    idp.reset_stats().await;
    assert_eq!(idp.stats().await, flyte_auth_tests::Stats::default());
}

#[tokio::test]
async fn injected_faults_answer_the_next_token_requests() {
    let idp = Idp::start().await;
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", POST_CLIENT.id()),
        ("client_secret", POST_CLIENT.secret()),
        ("scope", "all"),
    ];
    idp.fail_token_requests(503, 2).await;
    idp.inject_fault(
        Fault::token(500)
            .body("<html>proxy error</html>")
            .content_type("text/html"),
    )
    .await;
    for _ in 0..2 {
        let (status, error) = token_request(&idp, &form).await;
        assert_eq!(status, 503);
        assert_eq!(str_field(&error, "error"), "temporarily_unavailable");
    }
    let response = http()
        .post(idp.token_endpoint())
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 500);
    assert_eq!(response.text().await.unwrap(), "<html>proxy error</html>");
    assert_eq!(token_request(&idp, &form).await.0, 200);

    let stats = idp.stats().await;
    assert_eq!(stats.injected_faults, 3);
    assert_eq!(stats.token_requests(GRANT_CLIENT_CREDENTIALS), 4);
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn dropping_the_idp_stops_its_process() {
    let idp = Idp::start().await;
    let pid = idp.process_id().unwrap();
    let proc_dir = std::path::PathBuf::from(format!("/proc/{pid}"));
    assert!(proc_dir.exists());
    let token_endpoint = idp.token_endpoint();
    drop(idp);
    assert!(!proc_dir.exists(), "process {pid} is still there");
    let err = http().get(token_endpoint).send().await.unwrap_err();
    assert!(err.is_connect(), "{err}");
}

#![allow(clippy::unwrap_used, reason = "tests")]
//! Token-endpoint requests against a mock server: what is sent, and how every kind of answer
//! is mapped.

mod support;

use std::time::{Duration, Instant};

use base64::Engine as _;
use flyte_auth_core::{Credentials, Error, OAuthErrorCode, SecretString};
use flyte_auth_oauth::{
    ClientAuth, ClientAuthMethod, DeviceAuthorizationRequest, HttpSettings, OAuthClient,
    TokenRequest,
};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{body_string_contains, header, method, path},
};

const SECRET: &str = "client-secret-XYZ";

fn client() -> OAuthClient {
    OAuthClient::new(HttpSettings::new().system_proxy(false)).unwrap()
}

fn quick_client(timeout: Duration) -> OAuthClient {
    OAuthClient::new(
        HttpSettings::new()
            .system_proxy(false)
            .request_timeout(timeout),
    )
    .unwrap()
}

fn cc_request(server: &MockServer) -> TokenRequest {
    TokenRequest::client_credentials(
        format!("{}/token", server.uri()),
        ClientAuth::confidential("app", SECRET),
    )
}

async fn answer(
    template: ResponseTemplate,
) -> (MockServer, Result<flyte_auth_oauth::TokenResponse, Error>) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(template)
        .mount(&server)
        .await;
    let result = client().token(&cc_request(&server)).await;
    (server, result)
}

fn assert_no_secret(e: &Error) {
    let shown = format!("{e} {e:?}");
    assert!(!shown.contains("XYZ"), "a secret leaked: {shown}");
}

#[tokio::test]
async fn oauth_errors_keep_code_description_uri_and_status() {
    for status in [400u16, 401] {
        let (_server, result) = answer(ResponseTemplate::new(status).set_body_json(
            serde_json::json!({
                "error": "invalid_client",
                "error_description": "Client authentication failed",
                "error_uri": "https://idp.example.org/help"
            }),
        ))
        .await;
        let e = result.unwrap_err();
        assert_no_secret(&e);
        let oauth = e
            .oauth()
            .unwrap_or_else(|| panic!("not an OAuth error: {e}"));
        assert_eq!(oauth.code, OAuthErrorCode::InvalidClient);
        assert_eq!(
            oauth.description.as_deref(),
            Some("Client authentication failed")
        );
        assert_eq!(oauth.uri.as_deref(), Some("https://idp.example.org/help"));
        assert_eq!(oauth.status, Some(status));
        assert!(
            e.to_string().contains("check the client id and secret"),
            "{e}"
        );
    }
}

#[tokio::test]
async fn an_html_502_from_a_proxy_names_the_status_and_shows_a_short_excerpt() {
    let page = format!(
        "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center>{}</body></html>",
        "<!-- padding -->".repeat(100)
    );
    let (_server, result) =
        answer(ResponseTemplate::new(502).set_body_raw(page, "text/html")).await;
    let e = result.unwrap_err();
    match &e {
        Error::InvalidResponse { status, message } => {
            assert_eq!(*status, Some(502));
            assert!(message.contains("502 Bad Gateway"), "{message}");
            assert!(message.contains("text/html"), "{message}");
            assert!(!message.contains("<title>"), "{message}");
            assert!(message.len() < 600, "{message}");
        }
        other => panic!("expected InvalidResponse, got {other:?}"),
    }
    assert!(e.is_transient(), "a 502 is worth retrying");
}

#[tokio::test]
async fn a_token_answer_without_access_token_is_invalid_and_lists_only_field_names() {
    let (_server, result) = answer(ResponseTemplate::new(200).set_body_json(serde_json::json!({
        "id_token": "id-XYZ", "token_type": "Bearer"
    })))
    .await;
    let e = result.unwrap_err();
    assert_no_secret(&e);
    match &e {
        Error::InvalidResponse { status, message } => {
            assert_eq!(*status, Some(200));
            assert!(message.contains("no access_token"), "{message}");
            assert!(message.contains("id_token"), "{message}");
        }
        other => panic!("expected InvalidResponse, got {other:?}"),
    }
}

#[tokio::test]
async fn expires_in_as_number_as_string_or_missing() {
    for (value, expected) in [
        (serde_json::json!(3600), Some(3600)),
        (serde_json::json!("3599"), Some(3599)),
        (serde_json::Value::Null, None),
    ] {
        let mut body = serde_json::json!({"access_token": "at", "token_type": "Bearer"});
        if !value.is_null() {
            body["expires_in"] = value;
        }
        let (_server, result) = answer(ResponseTemplate::new(200).set_body_json(body)).await;
        let token = result.unwrap();
        assert_eq!(token.expires_in, expected);
        let creds = token.into_credentials("flyte.example.org");
        assert_eq!(creds.expires_in, expected);
        assert_eq!(creds.expires_at().is_some(), expected.is_some());
    }
}

#[tokio::test]
async fn a_refresh_answer_without_refresh_token_keeps_the_old_one_through_carry_forward() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string_contains("grant_type=refresh_token"))
        .and(body_string_contains("refresh_token=old-refresh"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "access_token": "new-access", "expires_in": 60, "id_token": "new-id",
            "scope": "all offline"
        })))
        .expect(1)
        .mount(&server)
        .await;
    let token = client()
        .token(&TokenRequest::refresh_token(
            format!("{}/token", server.uri()),
            ClientAuth::public("flytectl"),
            "old-refresh",
        ))
        .await
        .unwrap();
    let fresh = token.into_credentials("flyte.example.org");
    assert!(
        fresh.refresh_token.is_none(),
        "the conversion must not invent one"
    );
    assert_eq!(fresh.id_token.as_ref().unwrap().expose_secret(), "new-id");
    assert_eq!(fresh.scopes, ["all", "offline"]);

    let previous =
        Credentials::new("old-access", "flyte.example.org").with_refresh_token("old-refresh");
    let merged = fresh.carry_forward(&previous);
    assert_eq!(merged.access_token.expose_secret(), "new-access");
    assert_eq!(merged.refresh_token.unwrap().expose_secret(), "old-refresh");
}

#[tokio::test]
async fn basic_auth_form_encodes_id_and_secret_with_special_characters() {
    let id = "my client:é/1";
    let secret = ":/+%&=é ";
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(serde_json::json!({"access_token": "at"})),
        )
        .mount(&server)
        .await;
    client()
        .token(
            &TokenRequest::client_credentials(
                format!("{}/token", server.uri()),
                ClientAuth::confidential(id, secret),
            )
            .with_scopes(["all", "offline"])
            .with_audience("flyte"),
        )
        .await
        .unwrap();

    let requests = server.received_requests().await.unwrap();
    let request = &requests[0];
    let value = request
        .headers
        .get("authorization")
        .unwrap()
        .to_str()
        .unwrap();
    let encoded = value.strip_prefix("Basic ").unwrap();
    let decoded = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap(),
    )
    .unwrap();
    let (raw_id, raw_secret) = decoded.split_once(':').unwrap();
    let form_decode = |s: &str| -> String {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .unwrap()
            .1
            .into_owned()
    };
    assert_eq!(form_decode(raw_id), id);
    assert_eq!(form_decode(raw_secret), secret);

    let body = String::from_utf8(request.body.clone()).unwrap();
    let params: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    assert_eq!(
        params,
        [
            ("grant_type".to_owned(), "client_credentials".to_owned()),
            ("scope".to_owned(), "all offline".to_owned()),
            ("audience".to_owned(), "flyte".to_owned()),
        ],
        "with Basic auth neither the id nor the secret is in the body"
    );
}

#[tokio::test]
async fn client_secret_post_sends_the_credentials_in_the_body() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string_contains("client_id=app"))
        .and(body_string_contains("client_secret=s%26%3D+cret"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(serde_json::json!({"access_token": "at"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    client()
        .token(&TokenRequest::client_credentials(
            format!("{}/token", server.uri()),
            ClientAuth::confidential("app", "s&= cret")
                .with_method(ClientAuthMethod::ClientSecretPost),
        ))
        .await
        .unwrap();
    let requests = server.received_requests().await.unwrap();
    assert!(requests[0].headers.get("authorization").is_none());
}

#[tokio::test]
async fn authorization_code_exchange_sends_verifier_redirect_uri_and_extra_parameters() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "access_token": "at", "refresh_token": "rt", "expires_in": 3600
        })))
        .mount(&server)
        .await;
    let token = client()
        .token(
            &TokenRequest::authorization_code(
                format!("{}/token", server.uri()),
                ClientAuth::public("flytectl"),
                "the-code",
                Some(SecretString::from("the-verifier")),
                Some("http://localhost:53593/callback".to_owned()),
            )
            .with_params([
                ("client_id", "flytectl"),
                ("state", "abc"),
                ("code_challenge_method", "S256"),
            ]),
        )
        .await
        .unwrap();
    assert_eq!(token.refresh_token.unwrap().expose_secret(), "rt");
    let requests = server.received_requests().await.unwrap();
    let body = String::from_utf8(requests[0].body.clone()).unwrap();
    let params: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let get = |k: &str| -> Vec<&str> {
        params
            .iter()
            .filter(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    assert_eq!(get("grant_type"), ["authorization_code"]);
    assert_eq!(get("code"), ["the-code"]);
    assert_eq!(get("code_verifier"), ["the-verifier"]);
    assert_eq!(get("redirect_uri"), ["http://localhost:53593/callback"]);
    assert_eq!(get("client_id"), ["flytectl"], "sent once");
    assert_eq!(get("state"), ["abc"]);
}

#[tokio::test]
async fn device_flow_codes_are_typed_oauth_errors() {
    for (code, expected) in [
        (
            "authorization_pending",
            OAuthErrorCode::AuthorizationPending,
        ),
        ("slow_down", OAuthErrorCode::SlowDown),
        ("access_denied", OAuthErrorCode::AccessDenied),
        ("expired_token", OAuthErrorCode::ExpiredToken),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/token"))
            .and(body_string_contains(
                "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code",
            ))
            .and(body_string_contains("device_code=dev-XYZ"))
            .respond_with(
                ResponseTemplate::new(400).set_body_json(serde_json::json!({"error": code})),
            )
            .mount(&server)
            .await;
        let e = client()
            .token(&TokenRequest::device_code(
                format!("{}/token", server.uri()),
                ClientAuth::public("flytectl"),
                "dev-XYZ",
            ))
            .await
            .unwrap_err();
        assert_no_secret(&e);
        assert_eq!(e.oauth().unwrap().code, expected, "{code}");
    }
}

#[tokio::test]
async fn device_authorization_returns_codes_and_urls() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/device"))
        .and(body_string_contains("client_id=flytectl"))
        .and(body_string_contains("scope=all+offline"))
        .and(body_string_contains("audience=flyte"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "device_code": "dev-XYZ",
            "user_code": "ABCD-EFGH",
            "verification_uri": "https://idp.example.org/device",
            "verification_uri_complete": "https://idp.example.org/device?user_code=ABCD-EFGH",
            "expires_in": "600",
            "interval": 7
        })))
        .expect(1)
        .mount(&server)
        .await;
    let auth = client()
        .device_authorization(
            &DeviceAuthorizationRequest::new(
                format!("{}/device", server.uri()),
                ClientAuth::public("flytectl"),
            )
            .with_scopes(["all", "offline"])
            .with_audience("flyte"),
        )
        .await
        .unwrap();
    assert_eq!(auth.device_code.expose_secret(), "dev-XYZ");
    assert_eq!(auth.user_code, "ABCD-EFGH");
    assert_eq!(auth.expires_in, Some(600));
    assert_eq!(auth.poll_interval(), Duration::from_secs(7));
    assert_eq!(
        auth.url_for_user(),
        "https://idp.example.org/device?user_code=ABCD-EFGH"
    );
    assert!(!format!("{auth:?}").contains("dev-XYZ"));
}

#[tokio::test]
async fn device_authorization_errors_show_the_server_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/device"))
        .respond_with(ResponseTemplate::new(400).set_body_json(serde_json::json!({
            "error": "unauthorized_client",
            "error_description": "Client is not allowed to initiate the device flow"
        })))
        .mount(&server)
        .await;
    let e = client()
        .device_authorization(&DeviceAuthorizationRequest::new(
            format!("{}/device", server.uri()),
            ClientAuth::public("flytectl"),
        ))
        .await
        .unwrap_err();
    assert_eq!(e.oauth().unwrap().code, OAuthErrorCode::UnauthorizedClient);
    assert!(e.to_string().contains("not allowed to initiate"), "{e}");
}

#[tokio::test]
async fn an_oversized_body_is_refused() {
    let (_server, result) = answer(
        ResponseTemplate::new(200).set_body_raw(vec![b' '; 2 * 1024 * 1024], "application/json"),
    )
    .await;
    match result.unwrap_err() {
        Error::InvalidResponse { message, .. } => {
            assert!(message.contains("larger than"), "{message}")
        }
        other => panic!("expected InvalidResponse, got {other:?}"),
    }
}

#[tokio::test]
async fn an_oversized_chunked_body_is_cut_off_at_the_cap() {
    let addr = support::chunked_server(200, 64 * 1024).await;
    let client = OAuthClient::new(
        HttpSettings::new()
            .system_proxy(false)
            .max_body_size(8 * 1024),
    )
    .unwrap();
    let e = client
        .token(&TokenRequest::client_credentials(
            format!("http://{addr}/token"),
            ClientAuth::confidential("app", SECRET),
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::InvalidResponse { message, .. } if message.contains("larger than 8192 bytes")),
        "{e:?}"
    );
}

#[tokio::test]
async fn a_server_that_never_answers_ends_in_a_timeout() {
    let addr = support::silent_server().await;
    let started = Instant::now();
    let e = quick_client(Duration::from_millis(500))
        .token(&TokenRequest::client_credentials(
            format!("http://{addr}/token"),
            ClientAuth::confidential("app", SECRET),
        ))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e:?}");
    assert!(e.is_transient());
    assert!(e.to_string().contains("token request"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(20), "did not hang");
}

#[tokio::test]
async fn a_body_that_trickles_past_the_timeout_ends_in_a_timeout() {
    let addr = support::trickle_server(1000, Duration::from_millis(100)).await;
    let started = Instant::now();
    let e = quick_client(Duration::from_secs(1))
        .token(&TokenRequest::client_credentials(
            format!("http://{addr}/token"),
            ClientAuth::confidential("app", SECRET),
        ))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(20), "did not hang");
}

#[tokio::test]
async fn connection_refused_is_a_transport_error_with_a_hint() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let e = client()
        .token(&TokenRequest::client_credentials(
            format!("http://{addr}/token?tenant=abc"),
            ClientAuth::confidential("app", SECRET),
        ))
        .await
        .unwrap_err();
    match &e {
        Error::Transport { url, message, .. } => {
            assert_eq!(url, &format!("http://{addr}/token"), "no query in the URL");
            assert!(message.contains("connection refused"), "{message}");
        }
        other => panic!("expected Transport, got {other:?}"),
    }
    assert_no_secret(&e);
    assert!(e.is_transient());
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let server = MockServer::start().await;
    let elsewhere = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(
            ResponseTemplate::new(307)
                .insert_header("location", format!("{}/token", elsewhere.uri())),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(serde_json::json!({"access_token": "at"})),
        )
        .expect(0)
        .mount(&elsewhere)
        .await;
    let e = client().token(&cc_request(&server)).await.unwrap_err();
    assert!(
        matches!(&e, Error::InvalidResponse { status: Some(307), message } if message.contains("redirect")),
        "{e:?}"
    );
}

#[tokio::test]
async fn the_client_is_shared_and_sends_a_user_agent() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(header("user-agent", flyte_auth_oauth::DEFAULT_USER_AGENT))
        .and(header("accept", "application/json"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(serde_json::json!({"access_token": "at"})),
        )
        .expect(2)
        .mount(&server)
        .await;
    let a = client();
    let b = a.clone();
    a.token(&cc_request(&server)).await.unwrap();
    b.token(&cc_request(&server)).await.unwrap();
}

#[tokio::test]
async fn an_unreadable_ca_file_or_bad_proxy_is_a_config_error() {
    let e = OAuthClient::new(HttpSettings::new().ca_cert_file("/nonexistent/ca.pem")).unwrap_err();
    assert!(
        matches!(&e, Error::Config { message } if message.contains("/nonexistent/ca.pem")),
        "{e:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    let e = OAuthClient::new(HttpSettings::new().ca_cert_file(&empty)).unwrap_err();
    assert!(matches!(e, Error::Config { .. }), "{e:?}");
    let e = OAuthClient::new(HttpSettings::new().proxy("http://user:pw@[::1")).unwrap_err();
    assert!(
        matches!(&e, Error::Config { message } if !message.contains("pw")),
        "{e:?}"
    );
}

#[tokio::test]
async fn device_authorization_accepts_verification_url_and_rejects_missing_codes() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/google"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "device_code": "d", "user_code": "U", "verification_url": "https://g.co/device",
            "expires_in": 1800
        })))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/broken"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "user_code": "U", "verification_uri": "https://idp/device"
        })))
        .mount(&server)
        .await;
    let request = |p: &str| {
        DeviceAuthorizationRequest::new(format!("{}{p}", server.uri()), ClientAuth::public("c"))
    };
    let auth = client()
        .device_authorization(&request("/google"))
        .await
        .unwrap();
    assert_eq!(auth.verification_uri, "https://g.co/device");
    assert_eq!(auth.url_for_user(), "https://g.co/device");
    assert_eq!(
        auth.poll_interval(),
        Duration::from_secs(5),
        "RFC 8628 default"
    );
    assert_eq!(auth.lifetime(), Some(Duration::from_secs(1800)));
    let e = client()
        .device_authorization(&request("/broken"))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::InvalidResponse { message, .. } if message.contains("device_code")),
        "{e:?}"
    );
}

/// A token of another type (DPoP, MAC) is bound to a key this client does not hold: sent as
/// a bearer token it would fail at the server, or worse, be accepted as one. `Bearer` in any
/// case is fine, and so is no `token_type` at all (some providers leave it out).
#[tokio::test]
async fn only_bearer_tokens_are_accepted() {
    for accepted in [Some("Bearer"), Some("bearer"), Some("BEARER"), None] {
        let mut body = serde_json::json!({"access_token": "at-XYZ", "expires_in": 60});
        if let Some(kind) = accepted {
            body["token_type"] = kind.into();
        }
        let (_server, result) = answer(ResponseTemplate::new(200).set_body_json(body)).await;
        let token = result.unwrap_or_else(|e| panic!("{accepted:?} refused: {e}"));
        assert_eq!(token.token_type.as_deref(), accepted);
    }
    for refused in ["DPoP", "mac", "N_A"] {
        let (_server, result) =
            answer(ResponseTemplate::new(200).set_body_json(
                serde_json::json!({"access_token": "at-XYZ", "token_type": refused}),
            ))
            .await;
        let e = result.unwrap_err();
        assert_no_secret(&e);
        match &e {
            Error::InvalidResponse { status, message } => {
                assert_eq!(*status, Some(200));
                assert!(message.contains(&format!("`{refused}`")), "{message}");
                assert!(message.contains("Bearer"), "{message}");
            }
            other => panic!("expected InvalidResponse for {refused}, got {other:?}"),
        }
        assert!(!e.is_transient() && !e.is_rejected_grant(), "{e:?}");
    }
    // The refused type is shown, so it is shown printable.
    let (_server, result) = answer(ResponseTemplate::new(200).set_body_json(
        serde_json::json!({"access_token": "at-XYZ", "token_type": "\u{1b}[2K\rBearer"}),
    ))
    .await;
    let shown = result.unwrap_err().to_string();
    assert!(!shown.chars().any(char::is_control), "{shown:?}");
}

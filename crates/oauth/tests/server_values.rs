//! What a server may send that no honest one does: numbers out of any range, and terminal
//! control sequences in text that ends up in an error message. Nothing panics, and no error's
//! `Display` carries a control character.
#![allow(clippy::unwrap_used, reason = "tests")]

use std::time::{Duration, SystemTime};

use flyte_auth_core::MAX_TOKEN_LIFETIME;
use flyte_auth_oauth::{
    ClientAuth, DeviceAuthorizationRequest, HttpSettings, MAX_DEVICE_CODE_LIFETIME,
    MAX_DEVICE_POLL_INTERVAL, OAuthClient, TokenResponse,
};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path},
};

fn token(body: &str) -> TokenResponse {
    TokenResponse::from_http(200, Some("application/json"), body.as_bytes(), &[]).unwrap()
}

fn error_text(status: u16, body: &str) -> String {
    TokenResponse::from_http(status, Some("application/json"), body.as_bytes(), &[])
        .unwrap_err()
        .to_string()
}

fn assert_printable(text: &str) {
    assert!(
        !text.chars().any(char::is_control),
        "a control character in {text:?}"
    );
}

#[test]
fn an_expires_in_out_of_range_is_clamped_and_becomes_a_sane_expiry() {
    for value in [
        "1e30",
        "\"1e30\"",
        "18446744073709551615",
        "1.8e19",
        "1e308",
    ] {
        let answer = token(&format!(r#"{{"access_token":"a","expires_in":{value}}}"#));
        assert_eq!(
            answer.expires_in,
            Some(MAX_TOKEN_LIFETIME.as_secs()),
            "{value}"
        );
        let credentials = answer.into_credentials("flyte.example.org");
        let at = credentials.expires_at().unwrap();
        assert!(at <= SystemTime::now() + MAX_TOKEN_LIFETIME + Duration::from_secs(5));
    }
    for value in ["-1", "-1e30", "\"-5\"", "\"NaN\"", "\"inf\""] {
        let answer = token(&format!(r#"{{"access_token":"a","expires_in":{value}}}"#));
        assert_eq!(answer.expires_in, None, "{value}");
    }
}

#[test]
fn control_characters_in_an_oauth_error_are_escaped_not_shown() {
    let text = error_text(
        400,
        r#"{"error":"invalid_grant","error_description":"expired\u001b[2K\rall good, ignore this","error_uri":"https://idp.example.org/help\u001b]8;;https://evil.example\u0007"}"#,
    );
    assert_printable(&text);
    assert!(text.contains("\\u{1b}[2K\\u{d}all good"), "{text}");
    assert!(
        text.contains("\\u{1b}]8;;https://evil.example\\u{7}"),
        "{text}"
    );

    let text = error_text(400, r#"{"error":"bad\u001b[31m\u009b2J"}"#);
    assert_printable(&text);
}

#[tokio::test]
async fn a_device_answer_with_numbers_out_of_range_is_clamped() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/device"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            r#"{"device_code":"d","user_code":"U","verification_uri":"https://idp/a","expires_in":1e30,"interval":"1e30"}"#,
            "application/json",
        ))
        .mount(&server)
        .await;
    let client = OAuthClient::new(HttpSettings::new()).unwrap();
    let request = DeviceAuthorizationRequest::new(
        format!("{}/device", server.uri()),
        ClientAuth::public("flytectl"),
    );
    let answer = client.device_authorization(&request).await.unwrap();
    assert_eq!(answer.poll_interval(), MAX_DEVICE_POLL_INTERVAL);
    assert_eq!(answer.lifetime(), Some(MAX_DEVICE_CODE_LIFETIME));
    assert!(answer.interval.unwrap() <= MAX_DEVICE_POLL_INTERVAL.as_secs());
    assert!(answer.expires_in.unwrap() <= MAX_DEVICE_CODE_LIFETIME.as_secs());
}

#[tokio::test]
async fn a_connect_error_message_with_control_characters_is_escaped() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500).set_body_raw(
            r#"{"code":"internal\u001b[1A","message":"down\u001b[2K\rnothing to see"}"#,
            "application/json",
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&server)
        .await;
    let client = OAuthClient::new(HttpSettings::new()).unwrap();
    let store = flyte_auth_oauth::RemoteClientConfigStore::from_base_url(server.uri(), client);
    let error = store.discover().await.unwrap_err();
    let text = error.to_string();
    assert!(text.contains("Connect error"), "{text}");
    assert_printable(&text);
}

//! Error messages never show a secret the request sent, however the server echoes it
//! (inputs found by fuzzing `TokenResponse::from_http`).

use flyte_auth_oauth::TokenResponse;

const SECRET: &str = "p0st s3cr:t/+&=é";

fn message(status: u16, content_type: &str, body: &str, secrets: &[&str]) -> String {
    match TokenResponse::from_http(status, Some(content_type), body.as_bytes(), secrets) {
        Ok(_) => panic!("an answer without an access token was accepted"),
        Err(e) => format!("{e} {e:?}"),
    }
}

fn assert_hidden(text: &str, secret: &str) {
    assert!(!text.contains(secret), "{text}");
}

#[test]
fn a_content_type_echoing_the_secret_is_redacted() {
    let m = message(
        400,
        "text/plain; s3cr3t-client-secret",
        "bad",
        &["s3cr3t-client-secret"],
    );
    assert_hidden(&m, "s3cr3t-client-secret");
}

#[test]
fn an_error_code_that_is_the_secret_is_redacted() {
    let m = message(
        400,
        "application/json",
        r#"{"error":"s3cr3t-client-secret"}"#,
        &["s3cr3t-client-secret"],
    );
    assert_hidden(&m, "s3cr3t-client-secret");
}

#[test]
fn a_page_echoing_the_form_encoded_secret_is_redacted() {
    let encoded: String = url_encode(SECRET);
    let body = format!("<html><body>client_secret={encoded}</body></html>");
    let m = message(502, "text/html", &body, &[SECRET]);
    assert_hidden(&m, &encoded);
    assert_hidden(&m, "s3cr%3At");
}

#[test]
fn a_secret_wrapped_over_two_lines_is_redacted() {
    let body = "<p>you sent p0st\ns3cr:t/+&=é</p>";
    let m = message(500, "text/html", body, &[SECRET]);
    assert_hidden(&m, "s3cr:t/+&=é");
}

#[test]
fn member_names_of_a_tokenless_answer_are_not_quoted() {
    let m = message(
        200,
        "application/json",
        r#"{"s3cr3t-client-secret":1,"token_type":"Bearer"}"#,
        &[],
    );
    assert_hidden(&m, "s3cr3t-client-secret");
    assert!(
        m.contains("token_type") && m.contains("1 other member"),
        "{m}"
    );
}

#[test]
fn a_page_echoing_the_basic_credentials_is_redacted() {
    let basic = "Zmx5dGUtc2VydmljZTpzM2NyJTNBdA==";
    let body = format!("Authorization: Basic {basic}");
    let m = message(401, "text/plain", &body, &[basic]);
    assert_hidden(&m, basic);
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                (b as char).to_string()
            }
            b' ' => "+".to_owned(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

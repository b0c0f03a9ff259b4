//! `admin.deviceFlowConfig.pkce` reaches the device login built by `get_authenticator`: set,
//! the device request carries an S256 challenge and the poll its verifier even when the server
//! does not announce S256; unset, the server's announcement decides.
#![cfg(feature = "device")]
#![allow(clippy::unwrap_used, reason = "tests")]

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use flyte_auth::{
    AuthMode, Authenticator, FactoryOptions, MemoryStore, PlatformConfig, get_authenticator_with,
};
use serde_json::json;
use wiremock::{
    Mock, MockServer, Request, Respond, ResponseTemplate,
    matchers::{method, path},
};

/// Bounds every login, so that a bug shows as a failure, not a hang.
const NO_HANG: Duration = Duration::from_secs(30);

/// A request's form fields, in order.
type Form = Vec<(String, String)>;

/// Answers with `answer` and keeps the form of every request it answers.
#[derive(Clone)]
struct Recording {
    forms: Arc<Mutex<Vec<Form>>>,
    answer: serde_json::Value,
}

impl Recording {
    fn new(answer: serde_json::Value) -> Self {
        Self {
            forms: Arc::default(),
            answer,
        }
    }

    /// The value of `name` in the first recorded form.
    fn first(&self, name: &str) -> Option<String> {
        let forms = self.forms.lock().unwrap();
        let form = forms.first().expect("a request was made");
        form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }
}

impl Respond for Recording {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body = String::from_utf8_lossy(&request.body);
        let form = reqwest::Url::parse(&format!("http://form.invalid/?{body}"))
            .unwrap()
            .query_pairs()
            .into_owned()
            .collect();
        self.forms.lock().unwrap().push(form);
        ResponseTemplate::new(200).set_body_json(&self.answer)
    }
}

/// A Flyte server whose discovery announces no PKCE method, with a device endpoint and a token
/// endpoint that record their forms.
async fn server() -> (MockServer, Recording, Recording) {
    let server = MockServer::start().await;
    let uri = server.uri();
    Mock::given(method("GET"))
        .and(path("/.well-known/oauth-authorization-server"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "issuer": uri,
            "authorization_endpoint": format!("{uri}/authorize"),
            "token_endpoint": format!("{uri}/token"),
            "device_authorization_endpoint": format!("{uri}/device"),
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/config/v1/flyte_client"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "client_id": "flytectl",
            "redirect_uri": "http://localhost:53593/callback",
            "scopes": ["all"],
            "authorization_metadata_key": "authorization",
        })))
        .mount(&server)
        .await;
    let device = Recording::new(json!({
        "device_code": "device-code-sample",
        "user_code": "ABCD-EFGH",
        "verification_uri": format!("{uri}/activate"),
        "expires_in": 600,
    }));
    Mock::given(method("POST"))
        .and(path("/device"))
        .respond_with(device.clone())
        .mount(&server)
        .await;
    let token = Recording::new(json!({
        "access_token": "device-access-token",
        "token_type": "Bearer",
        "expires_in": 3600,
    }));
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(token.clone())
        .mount(&server)
        .await;
    (server, device, token)
}

/// Logs in by the device flow against `server`, `pkce` set as given.
async fn login(server: &MockServer, pkce: Option<bool>) {
    let mut builder = PlatformConfig::builder()
        .no_config_file()
        .no_env()
        .endpoint(server.address().to_string())
        .insecure(true)
        .auth_mode(AuthMode::DeviceFlow)
        .device_flow_poll_interval(Duration::from_millis(10));
    if let Some(pkce) = pkce {
        builder = builder.device_flow_pkce(pkce);
    }
    let cfg = builder.build().unwrap();
    let options = FactoryOptions::new().device_prompt(|_| {});
    let auth = get_authenticator_with(&cfg, Some(Arc::new(MemoryStore::new())), &options).unwrap();
    let credentials = tokio::time::timeout(NO_HANG, auth.get_credentials())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        credentials.access_token.expose_secret(),
        "device-access-token"
    );
}

#[tokio::test]
async fn a_configured_pkce_sends_a_challenge_the_server_did_not_announce() {
    let (server, device, token) = server().await;
    login(&server, Some(true)).await;
    assert_eq!(
        device.first("code_challenge_method").as_deref(),
        Some("S256")
    );
    let challenge = device.first("code_challenge").expect("a challenge");
    let verifier = token.first("code_verifier").expect("a verifier");
    assert_eq!(
        flyte_auth::oauth::pkce::s256_challenge(&verifier),
        challenge
    );
}

#[tokio::test]
async fn unset_the_server_that_announces_no_pkce_gets_none() {
    let (server, device, token) = server().await;
    login(&server, None).await;
    assert_eq!(device.first("code_challenge"), None);
    assert_eq!(token.first("code_verifier"), None);
}

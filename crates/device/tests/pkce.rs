//! The device login against a provider that requires PKCE of public clients (Keycloak's
//! "PKCE required", flyteorg/flyte#4735): the device authorization request must carry an S256
//! challenge and every poll the verifier whose S256 is that challenge.
#![allow(clippy::unwrap_used, reason = "tests")]

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use flyte_auth_core::{
    Authenticator, CachingAuthenticator, ClientConfig, Endpoint, Error, MemoryStore,
    StaticClientConfigStore,
};
use flyte_auth_device::DeviceCodeFlow;
use flyte_auth_oauth::{ClientContext, pkce::s256_challenge};
use serde_json::json;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate, matchers::method};

/// Bounds every test, so that a bug shows as a failure, not a hang.
const NO_HANG: Duration = Duration::from_secs(30);

fn form(request: &Request) -> Vec<(String, String)> {
    url::form_urlencoded::parse(&request.body)
        .into_owned()
        .collect()
}

fn param<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn invalid_request(description: &str) -> ResponseTemplate {
    ResponseTemplate::new(400)
        .set_body_json(json!({"error": "invalid_request", "error_description": description}))
}

/// A provider that requires PKCE: it refuses a device request without an S256 challenge and
/// a poll without the verifier of that challenge; the first good poll is pending, the second
/// gets the tokens.
#[derive(Clone, Default)]
struct StrictProvider {
    /// The challenge of the device request it accepted.
    challenge: Arc<Mutex<Option<String>>>,
    /// Polls with the right verifier.
    good_polls: Arc<Mutex<u32>>,
    /// Why each refused request was refused.
    refusals: Arc<Mutex<Vec<String>>>,
}

impl StrictProvider {
    fn refuse(&self, why: &str) -> ResponseTemplate {
        self.refusals.lock().unwrap().push(why.to_owned());
        invalid_request(why)
    }
}

impl Respond for StrictProvider {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let form = form(request);
        match request.url.path() {
            "/device" => {
                let (Some(challenge), Some("S256")) = (
                    param(&form, "code_challenge"),
                    param(&form, "code_challenge_method"),
                ) else {
                    return self.refuse("Missing parameter: code_challenge_method");
                };
                *self.challenge.lock().unwrap() = Some(challenge.to_owned());
                ResponseTemplate::new(200).set_body_json(json!({
                    "device_code": "device-code-1",
                    "user_code": "WDJB-MJHT",
                    "verification_uri": "https://idp.example.org/device",
                    "expires_in": 600,
                }))
            }
            "/token" => {
                let expected = self.challenge.lock().unwrap().clone();
                match param(&form, "code_verifier") {
                    None => return self.refuse("PKCE verification failed: code_verifier missing"),
                    Some(verifier) if Some(s256_challenge(verifier)) != expected => {
                        self.refusals
                            .lock()
                            .unwrap()
                            .push("verifier does not match".into());
                        return ResponseTemplate::new(400).set_body_json(
                            json!({"error": "invalid_grant", "error_description": "PKCE verification failed"}),
                        );
                    }
                    Some(_) => {}
                }
                let mut good = self.good_polls.lock().unwrap();
                *good += 1;
                if *good == 1 {
                    ResponseTemplate::new(400)
                        .set_body_json(json!({"error": "authorization_pending"}))
                } else {
                    ResponseTemplate::new(200).set_body_json(json!({
                        "access_token": "access-1",
                        "token_type": "Bearer",
                        "expires_in": 3600,
                        "refresh_token": "refresh-1",
                    }))
                }
            }
            _ => ResponseTemplate::new(404),
        }
    }
}

async fn start_provider() -> (MockServer, StrictProvider) {
    let server = MockServer::start().await;
    let provider = StrictProvider::default();
    Mock::given(method("POST"))
        .respond_with(provider.clone())
        .mount(&server)
        .await;
    (server, provider)
}

fn config(server: &MockServer) -> ClientConfig {
    ClientConfig::new(format!("{}/token", server.uri()), "flytectl")
        .with_device_authorization_endpoint(format!("{}/device", server.uri()))
        .with_scopes(["openid", "offline_access"])
}

/// A device login through `flow` (the prompt goes nowhere, polls every 20 ms).
async fn login(
    config: ClientConfig,
    pkce: Option<bool>,
) -> Result<Arc<flyte_auth_core::Credentials>, Error> {
    let ctx = ClientContext::builder(Endpoint::parse("flyte.example.org").unwrap())
        .discovery(Arc::new(StaticClientConfigStore::new(config)))
        .build()
        .unwrap();
    let mut flow = DeviceCodeFlow::builder(ctx)
        .poll_interval(Duration::from_millis(20))
        .prompt(|_| {});
    if let Some(pkce) = pkce {
        flow = flow.pkce(pkce);
    }
    let auth = CachingAuthenticator::builder(flow.build().unwrap())
        .store(Arc::new(MemoryStore::new()))
        .build();
    tokio::time::timeout(NO_HANG, auth.get_credentials())
        .await
        .expect("the login ends")
}

#[tokio::test]
async fn a_server_announcing_s256_gets_a_challenge_and_every_poll_its_verifier() {
    let (server, provider) = start_provider().await;
    let credentials = login(
        config(&server).with_code_challenge_methods(["plain", "S256"]),
        None,
    )
    .await
    .unwrap();
    assert_eq!(credentials.access_token.expose_secret(), "access-1");
    assert!(
        provider.refusals.lock().unwrap().is_empty(),
        "{:?}",
        provider.refusals.lock().unwrap()
    );
    assert_eq!(
        *provider.good_polls.lock().unwrap(),
        2,
        "both polls carried the verifier"
    );

    // Each login has its own verifier.
    let first = provider.challenge.lock().unwrap().clone().unwrap();
    *provider.good_polls.lock().unwrap() = 0;
    login(config(&server).with_code_challenge_methods(["S256"]), None)
        .await
        .unwrap();
    assert_ne!(provider.challenge.lock().unwrap().clone().unwrap(), first);
}

#[tokio::test]
async fn the_option_sends_a_challenge_to_a_server_that_does_not_announce_it() {
    let (server, provider) = start_provider().await;
    let credentials = login(config(&server), Some(true)).await.unwrap();
    assert_eq!(credentials.access_token.expose_secret(), "access-1");
    assert!(provider.refusals.lock().unwrap().is_empty());
}

#[tokio::test]
async fn without_an_announcement_or_the_option_no_challenge_is_sent() {
    // The provider that requires PKCE refuses, with its own words.
    let (server, provider) = start_provider().await;
    let err = login(config(&server), None).await.unwrap_err();
    let oauth = err.oauth().expect("an OAuth error");
    assert_eq!(oauth.code.as_str(), "invalid_request", "{err}");
    assert_eq!(
        *provider.refusals.lock().unwrap(),
        ["Missing parameter: code_challenge_method"]
    );

    // `pkce(false)` wins over the announcement.
    let (server, provider) = start_provider().await;
    login(
        config(&server).with_code_challenge_methods(["S256"]),
        Some(false),
    )
    .await
    .unwrap_err();
    assert_eq!(provider.refusals.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_poll_without_the_verifier_is_refused_by_such_a_provider() {
    // What the device login sent before PKCE: the challenge (forced here through an extra
    // parameter, which the flow does not count as PKCE) without a verifier on the polls.
    let (server, provider) = start_provider().await;
    let ctx = ClientContext::builder(Endpoint::parse("flyte.example.org").unwrap())
        .discovery(Arc::new(StaticClientConfigStore::new(config(&server))))
        .build()
        .unwrap();
    let flow = DeviceCodeFlow::builder(ctx)
        .poll_interval(Duration::from_millis(20))
        .param("code_challenge", s256_challenge(&"v".repeat(43)))
        .param("code_challenge_method", "S256")
        .prompt(|_| {})
        .build()
        .unwrap();
    let auth = CachingAuthenticator::builder(flow).build();
    let err = tokio::time::timeout(NO_HANG, auth.get_credentials())
        .await
        .unwrap()
        .unwrap_err();
    assert!(err.to_string().contains("code_verifier missing"), "{err}");
    assert_eq!(
        *provider.refusals.lock().unwrap(),
        ["PKCE verification failed: code_verifier missing"]
    );
}

//! A discovery answer an earlier process kept: the device flow's refresh grant and device
//! code request use it and skip discovery; a stale one is discovered again once.
#![allow(clippy::unwrap_used, reason = "tests")]

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

use flyte_auth_core::{
    Authenticator, CachingAuthenticator, ClientConfig, Credentials, DiscoveryAnswer,
    DiscoveryFlavour, DiscoveryHints, Endpoint, MemoryStore, StoreError, TokenStore,
};
use flyte_auth_device::{DeviceCodeAuthenticator, DeviceCodeFlow};
use flyte_auth_oauth::{ClientContext, HttpSettings, RetryPolicy};
use serde_json::json;
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path},
};

/// Discovery answers kept in memory, as `flyte-auth-store`'s hint files keep them on disk.
#[derive(Debug, Default)]
struct MemoryHints(Mutex<HashMap<String, (DiscoveryFlavour, Option<DiscoveryAnswer>)>>);

impl DiscoveryHints for MemoryHints {
    fn recall(&self, endpoint: &str) -> Option<DiscoveryFlavour> {
        self.0.lock().unwrap().get(endpoint).map(|(f, _)| *f)
    }
    fn remember(&self, endpoint: &str, flavour: DiscoveryFlavour) -> Result<(), StoreError> {
        self.0
            .lock()
            .unwrap()
            .insert(endpoint.to_owned(), (flavour, None));
        Ok(())
    }
    fn recall_answer(&self, endpoint: &str) -> Option<DiscoveryAnswer> {
        self.0.lock().unwrap().get(endpoint)?.1.clone()
    }
    fn remember_answer(&self, endpoint: &str, answer: &DiscoveryAnswer) -> Result<(), StoreError> {
        self.0
            .lock()
            .unwrap()
            .insert(endpoint.to_owned(), (answer.flavour, Some(answer.clone())));
        Ok(())
    }
}

/// `server` as a Flyte endpoint (plain HTTP).
fn endpoint(server: &MockServer) -> Endpoint {
    Endpoint::parse(&server.uri().replace("http://", "dns:///"))
        .unwrap()
        .with_insecure(true)
}

/// A new process's context for `server`, discovering it and keeping the answer in `hints`;
/// transient failures are not retried.
fn context(server: &MockServer, hints: &Arc<MemoryHints>) -> ClientContext {
    ClientContext::builder(endpoint(server))
        .http_settings(
            HttpSettings::new()
                .system_proxy(false)
                .retry(RetryPolicy::new().max_retries(0)),
        )
        .discovery_hints(Arc::clone(hints) as Arc<dyn DiscoveryHints>)
        .build()
        .unwrap()
}

/// How many discovery requests `server` was asked.
async fn discoveries(server: &MockServer) -> usize {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() != "/oauth2/token" && r.url.path() != "/oauth2/device")
        .count()
}

/// A kept answer for `server` whose token endpoint is `token_endpoint`.
fn keep(server: &MockServer, hints: &MemoryHints, token_endpoint: String) {
    let config = ClientConfig::new(token_endpoint, "flytectl")
        .with_authorization_endpoint(format!("{}/oauth2/authorize", server.uri()))
        .with_device_authorization_endpoint(format!("{}/oauth2/device", server.uri()))
        .with_scopes(["all"]);
    let answer = DiscoveryAnswer::new(DiscoveryFlavour::FlyteAdmin, config, SystemTime::now());
    hints
        .remember_answer(endpoint(server).key(), &answer)
        .unwrap();
}

/// A port nothing listens on.
fn closed_port() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// A flyteadmin at `server` announcing its endpoints under `/oauth2/`, answering token
/// requests with `access`.
async fn flyteadmin(server: &MockServer, access: &str) {
    Mock::given(method("GET"))
        .and(path("/.well-known/oauth-authorization-server"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "token_endpoint": format!("{}/oauth2/token", server.uri()),
            "authorization_endpoint": format!("{}/oauth2/authorize", server.uri()),
            "device_authorization_endpoint": format!("{}/oauth2/device", server.uri()),
        })))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/config/v1/flyte_client"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "client_id": "flytectl", "scopes": ["all"],
            "redirect_uri": "http://localhost:0/callback",
            "authorization_metadata_key": "flyte-authorization"
        })))
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path("/oauth2/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": access, "token_type": "Bearer", "expires_in": 3600,
            "refresh_token": "rt-2"
        })))
        .mount(server)
        .await;
}

/// Logged in an hour ago: the access token has expired, the refresh token is good.
fn expired(server: &MockServer) -> Credentials {
    Credentials::new("at-old", endpoint(server).key())
        .with_refresh_token("rt-1")
        .with_client_id("flytectl")
        .with_expires_at(SystemTime::now() - Duration::from_secs(60))
}

/// A new process; its store holds `server`'s expired login when `logged_in`.
fn process(
    server: &MockServer,
    hints: &Arc<MemoryHints>,
    logged_in: bool,
) -> DeviceCodeAuthenticator {
    let store = Arc::new(MemoryStore::new());
    if logged_in {
        store.store(&endpoint(server), &expired(server)).unwrap();
    }
    let flow = DeviceCodeFlow::builder(context(server, hints))
        .poll_interval(Duration::from_millis(10))
        .prompt(|_| {})
        .build()
        .unwrap();
    CachingAuthenticator::builder(flow).store(store).build()
}

/// The device authorization endpoint of `server` hands out a code to poll at once.
async fn device_endpoint(server: &MockServer) {
    Mock::given(method("POST"))
        .and(path("/oauth2/device"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "device_code": "dc", "user_code": "ABCD-EFGH",
            "verification_uri": "https://idp.example.org/activate", "expires_in": 600
        })))
        .mount(server)
        .await;
}

/// The paths `server` was asked, in order.
async fn asked(server: &MockServer) -> Vec<String> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| r.url.path().to_owned())
        .collect()
}

#[tokio::test]
async fn a_second_process_refreshes_and_logs_in_without_discovery() {
    let server = MockServer::start().await;
    flyteadmin(&server, "at-new").await;
    let hints = Arc::new(MemoryHints::default());

    let first = process(&server, &hints, true)
        .get_credentials()
        .await
        .unwrap();
    assert_eq!(first.access_token.expose_secret(), "at-new");
    assert!(
        discoveries(&server).await > 0,
        "the first process discovers"
    );

    for logged_in in [true, false] {
        server.reset().await;
        flyteadmin(&server, "at-new").await;
        device_endpoint(&server).await;
        let second = process(&server, &hints, logged_in);
        let creds = second.get_credentials().await.unwrap();
        assert_eq!(creds.access_token.expose_secret(), "at-new");
        assert_eq!(discoveries(&server).await, 0, "{:?}", asked(&server).await);
        let header = second.fetch_grpc_call_auth_metadata().unwrap();
        assert_eq!(header.name().as_str(), "flyte-authorization");
    }
}

#[tokio::test]
async fn a_kept_answer_with_a_dead_token_endpoint_is_discovered_again_once() {
    let server = MockServer::start().await;
    for logged_in in [true, false] {
        for stale in [
            format!("http://{}/oauth2/token", closed_port()),
            format!("{}/moved/token", server.uri()),
        ] {
            server.reset().await;
            flyteadmin(&server, "at-new").await;
            device_endpoint(&server).await;
            let hints = Arc::new(MemoryHints::default());
            keep(&server, &hints, stale.clone());
            let creds = process(&server, &hints, logged_in)
                .get_credentials()
                .await
                .unwrap();
            assert_eq!(creds.access_token.expose_secret(), "at-new", "{stale}");
            let asked = asked(&server).await;
            // Discovered once: no document asked twice, one token request that succeeded.
            let mut unique = asked.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(unique.len(), asked.len(), "{stale}: {asked:?}");
            assert!(discoveries(&server).await > 0, "{stale}");
            let kept = hints.recall_answer(endpoint(&server).key()).unwrap();
            assert_eq!(
                kept.config.token_endpoint,
                format!("{}/oauth2/token", server.uri())
            );
        }
    }
}

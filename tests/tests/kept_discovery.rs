//! A discovery answer an earlier process kept, for the browser and the device login: a new
//! process's refresh grant (and, for the device login, its device code request) uses it and
//! skips discovery; a kept answer that sends the request astray (a refused connection, a
//! token endpoint that moved) is discovered again once.
//!
//! A scripted flyteadmin (wiremock): the stale answers are faults the real provider cannot
//! make.
#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

use flyte_auth_core::{
    Authenticator, CachingAuthenticator, ClientConfig, Credentials, DiscoveryAnswer,
    DiscoveryFlavour, DiscoveryHints, Endpoint, MemoryStore, StoreError, TokenStore,
};
use flyte_auth_device::DeviceCodeFlow;
use flyte_auth_oauth::{ClientContext, HttpSettings, RetryPolicy};
use flyte_auth_pkce::PkceFlow;
use serde_json::json;
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path},
};

const TOKEN: &str = "/oauth2/token";
const DEVICE: &str = "/oauth2/device";

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

/// The login a process makes or refreshes.
#[derive(Debug, Clone, Copy)]
enum Login {
    /// The browser login (it never opens a browser here: only its refresh is used).
    Pkce,
    /// The device login; without a stored login it asks for a device code and polls.
    Device,
}

/// Every case: the flow, and whether the new process's store holds an expired login.
const CASES: [(Login, bool); 3] = [
    (Login::Pkce, true),
    (Login::Device, true),
    (Login::Device, false),
];

/// `server` as a Flyte endpoint (plain HTTP).
fn endpoint(server: &MockServer) -> Endpoint {
    Endpoint::parse(&server.uri().replace("http://", "dns:///"))
        .unwrap()
        .with_insecure(true)
}

/// A new process for `server`, discovering it and keeping the answer in `hints`, transient
/// failures not retried; its store holds `server`'s expired login when `logged_in`.
fn process(
    server: &MockServer,
    hints: &Arc<MemoryHints>,
    (login, logged_in): (Login, bool),
) -> Box<dyn Authenticator> {
    let ctx = ClientContext::builder(endpoint(server))
        .http_settings(
            HttpSettings::new()
                .system_proxy(false)
                .retry(RetryPolicy::new().max_retries(0)),
        )
        .discovery_hints(Arc::clone(hints) as Arc<dyn DiscoveryHints>)
        .build()
        .unwrap();
    let store = Arc::new(MemoryStore::new());
    if logged_in {
        // Logged in an hour ago: the access token has expired, the refresh token is good.
        let expired = Credentials::new("at-old", endpoint(server).key())
            .with_refresh_token("rt-1")
            .with_client_id("flytectl")
            .with_expires_at(SystemTime::now() - Duration::from_secs(60));
        store.store(&endpoint(server), &expired).unwrap();
    }
    match login {
        Login::Pkce => {
            let flow = PkceFlow::builder(ctx).no_browser().build().unwrap();
            Box::new(CachingAuthenticator::builder(flow).store(store).build())
        }
        Login::Device => {
            let flow = DeviceCodeFlow::builder(ctx)
                .poll_interval(Duration::from_millis(10))
                .prompt(|_| {})
                .build()
                .unwrap();
            Box::new(CachingAuthenticator::builder(flow).store(store).build())
        }
    }
}

/// A flyteadmin at `server` announcing its endpoints under `/oauth2/`, answering token
/// requests with `at-new` and device code requests with a code to poll at once.
async fn flyteadmin(server: &MockServer) {
    server.reset().await;
    let uri = server.uri();
    Mock::given(method("GET"))
        .and(path("/.well-known/oauth-authorization-server"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "token_endpoint": format!("{uri}{TOKEN}"),
            "authorization_endpoint": format!("{uri}/oauth2/authorize"),
            "device_authorization_endpoint": format!("{uri}{DEVICE}"),
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
        .and(path(TOKEN))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "at-new", "token_type": "Bearer", "expires_in": 3600,
            "refresh_token": "rt-2"
        })))
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path(DEVICE))
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

/// How many discovery requests `server` was asked.
async fn discoveries(server: &MockServer) -> usize {
    asked(server)
        .await
        .iter()
        .filter(|p| *p != TOKEN && *p != DEVICE)
        .count()
}

#[tokio::test]
async fn a_second_process_refreshes_and_logs_in_without_discovery() {
    for case in CASES {
        let server = MockServer::start().await;
        flyteadmin(&server).await;
        let hints = Arc::new(MemoryHints::default());
        let first = process(&server, &hints, (case.0, true));
        let creds = first.get_credentials().await.unwrap();
        assert_eq!(creds.access_token.expose_secret(), "at-new");
        assert!(
            discoveries(&server).await > 0,
            "the first process discovers"
        );

        flyteadmin(&server).await;
        let second = process(&server, &hints, case);
        let creds = second.get_credentials().await.unwrap();
        assert_eq!(creds.access_token.expose_secret(), "at-new", "{case:?}");
        assert_eq!(
            discoveries(&server).await,
            0,
            "{case:?}: {:?}",
            asked(&server).await
        );
        let header = second.fetch_grpc_call_auth_metadata().unwrap();
        assert_eq!(header.name().as_str(), "flyte-authorization", "{case:?}");
    }
}

#[tokio::test]
async fn a_kept_answer_with_a_dead_token_endpoint_is_discovered_again_once() {
    let server = MockServer::start().await;
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    for case in CASES {
        for stale in [
            format!("http://{closed}{TOKEN}"),
            format!("{}/moved/token", server.uri()),
        ] {
            flyteadmin(&server).await;
            let hints = Arc::new(MemoryHints::default());
            let config = ClientConfig::new(stale.clone(), "flytectl")
                .with_authorization_endpoint(format!("{}/oauth2/authorize", server.uri()))
                .with_device_authorization_endpoint(format!("{}{DEVICE}", server.uri()))
                .with_scopes(["all"]);
            let answer =
                DiscoveryAnswer::new(DiscoveryFlavour::FlyteAdmin, config, SystemTime::now());
            hints
                .remember_answer(endpoint(&server).key(), &answer)
                .unwrap();

            let creds = process(&server, &hints, case)
                .get_credentials()
                .await
                .unwrap();
            assert_eq!(
                creds.access_token.expose_secret(),
                "at-new",
                "{case:?} {stale}"
            );
            let asked = asked(&server).await;
            let context = format!("{case:?} {stale}: {asked:?}");
            assert_eq!(asked.iter().filter(|p| *p == TOKEN).count(), 1, "{context}");
            // Discovered once: no document asked twice.
            let mut unique = asked.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(unique.len(), asked.len(), "{context}");
            assert!(discoveries(&server).await > 0, "{context}");
            let kept = hints.recall_answer(endpoint(&server).key()).unwrap();
            assert_eq!(
                kept.config.token_endpoint,
                format!("{}{TOKEN}", server.uri())
            );
        }
    }
}

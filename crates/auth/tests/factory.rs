#![allow(clippy::unwrap_used, reason = "tests")]
#![cfg_attr(
    not(all(
        feature = "pkce",
        feature = "clientcreds",
        feature = "device",
        feature = "command"
    )),
    allow(
        dead_code,
        unused_imports,
        reason = "helpers of tests of flows this build lacks"
    )
)]
//! `get_authenticator`, the plugin registry and `proxy_authenticator`, against local servers:
//! the right flow for each auth type, nothing contacted while building, the config's
//! overrides honoured on the wire.

use std::{
    net::TcpListener,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, SystemTime},
};

use flyte_auth::{
    AuthMode, Authenticator, AuthenticatorFactory, AuthenticatorRegistry, BoxFuture,
    CachingAuthenticator, Credentials, Endpoint, Error, FactoryOptions, MemoryStore,
    PlatformConfig, StoreError, TokenFlow, TokenStore, config::PlatformConfigBuilder,
    get_authenticator, get_authenticator_with, proxy_authenticator,
};
use serde_json::json;
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{body_string_contains, header_exists, method, path},
};

/// A port that accepts connections and lets the test ask whether anything connected.
struct Tripwire {
    listener: TcpListener,
}

impl Tripwire {
    fn new() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        Self { listener }
    }

    fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.listener.local_addr().unwrap().port())
    }

    /// Connections made so far.
    fn connections(&self) -> usize {
        let mut n = 0;
        // Bounded: a connection storm would be a failure anyway.
        while n < 100 && self.listener.accept().is_ok() {
            n += 1;
        }
        n
    }
}

/// A store that counts every call and holds nothing.
#[derive(Debug, Default)]
struct CountingStore {
    calls: AtomicUsize,
}

impl CountingStore {
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl TokenStore for CountingStore {
    fn store(&self, _: &Endpoint, _: &Credentials) -> Result<(), StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    fn retrieve(&self, _: &Endpoint) -> Result<Option<Credentials>, StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(None)
    }
    fn delete(&self, _: &Endpoint) -> Result<(), StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    fn name(&self) -> &'static str {
        "counting"
    }
}

fn base(endpoint: &str) -> PlatformConfigBuilder {
    PlatformConfig::builder()
        .no_config_file()
        .no_env()
        .endpoint(endpoint)
        .insecure(true)
}

fn token_answer(token: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": 3600,
    }))
}

/// Serves Flyte's two discovery documents for `server`, naming `/discovered-token` as the
/// token endpoint and `flyte-authorization` as the header.
async fn serve_discovery(server: &MockServer) {
    serve_discovery_naming(server, &server.uri()).await;
}

/// Serves the discovery documents, naming endpoints under `uri`.
async fn serve_discovery_naming(server: &MockServer, uri: &str) {
    Mock::given(method("GET"))
        .and(path("/.well-known/oauth-authorization-server"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "issuer": uri,
            "authorization_endpoint": format!("{uri}/authorize"),
            "token_endpoint": format!("{uri}/discovered-token"),
            "device_authorization_endpoint": format!("{uri}/device"),
            "grant_types_supported": ["authorization_code", "client_credentials", "refresh_token"],
        })))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/config/v1/flyte_client"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "client_id": "flytectl",
            "redirect_uri": "http://localhost:53593/callback",
            "scopes": ["discovered-scope"],
            "authorization_metadata_key": "flyte-authorization",
            "audience": "discovered-audience",
        })))
        .mount(server)
        .await;
}

async fn requests_to(server: &MockServer, to: &str) -> usize {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == to)
        .count()
}

#[cfg(all(
    feature = "pkce",
    feature = "clientcreds",
    feature = "device",
    feature = "command"
))]
#[test]
fn each_auth_type_gets_its_flow_and_building_contacts_nothing() {
    let server = Tripwire::new();
    let endpoint = server.endpoint();
    let cases = [
        (base(&endpoint), "PkceFlow"),
        (
            base(&endpoint)
                .auth_mode(AuthMode::ClientSecret)
                .client_id("svc")
                .client_secret("s3cr3t-value"),
            "ClientCredentialsFlow",
        ),
        (
            base(&endpoint).auth_mode(AuthMode::DeviceFlow),
            "DeviceCodeFlow",
        ),
        (
            base(&endpoint)
                .auth_mode(AuthMode::ExternalCommand)
                .command(["print-token", "--password", "hunter2"]),
            "CommandFlow",
        ),
    ];
    for (builder, expected) in cases {
        let cfg = builder.build().unwrap();
        let store = Arc::new(CountingStore::default());
        let auth = get_authenticator(&cfg, Some(store.clone())).unwrap();
        let debug = format!("{auth:?}");
        let flow = format!("CachingAuthenticator {{ flow: {expected} ");
        assert!(debug.starts_with(&flow), "{}: {debug}", cfg.auth_mode());
        assert!(
            !debug.contains("s3cr3t-value") && !debug.contains("hunter2"),
            "{debug}"
        );
        assert!(auth.fetch_grpc_call_auth_metadata().is_none());
        assert_eq!(store.calls(), 0, "{expected} touched the store");
    }
    assert_eq!(server.connections(), 0, "building contacted the server");
}

/// The config does not restate the flows' defaults: unset, the device flow keeps its own
/// poll interval and timeout and the cache its refresh margin; set, the config's win.
#[cfg(feature = "device")]
#[test]
fn unset_flow_settings_keep_the_flows_defaults_and_set_ones_win() {
    let device = |builder: PlatformConfigBuilder| {
        let cfg = builder.auth_mode(AuthMode::DeviceFlow).build().unwrap();
        format!("{:?}", get_authenticator(&cfg, None).unwrap())
    };
    let debug = device(base("localhost:1"));
    let defaults = format!(
        "poll_interval: {:?}, timeout: {:?}",
        flyte_auth::device::DEFAULT_DEVICE_POLL_INTERVAL,
        flyte_auth::device::DEFAULT_LOGIN_TIMEOUT
    );
    assert!(debug.contains(&defaults), "{debug}");
    let margin = format!("refresh_margin: {:?}", flyte_auth::DEFAULT_REFRESH_MARGIN);
    assert!(debug.contains(&margin), "{debug}");

    let debug = device(
        base("localhost:1")
            .device_flow_poll_interval(Duration::from_secs(7))
            .device_flow_timeout(Duration::from_secs(70))
            .device_flow_refresh_time(Duration::from_secs(77)),
    );
    assert!(debug.contains("poll_interval: 7s, timeout: 70s"), "{debug}");
    assert!(debug.contains("refresh_margin: 77s"), "{debug}");
}

/// `admin.tokenRefreshWindow` is the refresh margin of every flow whose own `refreshTime` is
/// unset; `0s`, the Go client's default, keeps the cache's.
#[cfg(all(feature = "device", feature = "clientcreds"))]
#[test]
fn the_token_refresh_window_is_the_margin_unless_a_flow_sets_its_own() {
    let margin = |builder: PlatformConfigBuilder| {
        let debug = format!(
            "{:?}",
            get_authenticator(&builder.build().unwrap(), None).unwrap()
        );
        debug
            .split("refresh_margin: ")
            .nth(1)
            .and_then(|rest| rest.split(',').next())
            .unwrap()
            .to_owned()
    };
    let client = |window: u64| {
        base("localhost:1")
            .auth_mode(AuthMode::ClientSecret)
            .client_id("svc")
            .client_secret("s")
            .token_refresh_window(Duration::from_secs(window))
    };
    assert_eq!(margin(client(600)), "600s");
    let default = format!("{:?}", flyte_auth::DEFAULT_REFRESH_MARGIN);
    assert_eq!(margin(client(0)), default);
    let device = || {
        base("localhost:1")
            .auth_mode(AuthMode::DeviceFlow)
            .token_refresh_window(Duration::from_secs(600))
    };
    assert_eq!(margin(device()), "600s");
    assert_eq!(
        margin(device().device_flow_refresh_time(Duration::from_secs(77))),
        "77s"
    );
}

#[test]
fn a_mode_missing_its_settings_is_a_config_error() {
    let cfg = base("flyte.example.org")
        .auth_mode(AuthMode::ClientSecret)
        .client_id("svc")
        .build()
        .unwrap();
    let err = get_authenticator(&cfg, None).unwrap_err();
    assert!(matches!(err, Error::Config { .. }), "{err:?}");
    assert!(err.to_string().contains("needs a client secret"), "{err}");

    let cfg = base("flyte.example.org")
        .auth_mode(AuthMode::ExternalCommand)
        .build()
        .unwrap();
    let err = get_authenticator(&cfg, None).unwrap_err().to_string();
    assert!(err.contains("needs a command"), "{err}");
}

#[cfg(feature = "pkce")]
#[test]
fn an_unreadable_ca_file_fails_when_building() {
    let cfg = base("flyte.example.org")
        .insecure(false)
        .ca_cert_file_path("/nonexistent/flyte-ca.pem")
        .build()
        .unwrap();
    let err = get_authenticator(&cfg, None).unwrap_err().to_string();
    assert!(err.contains("/nonexistent/flyte-ca.pem"), "{err}");
}

#[cfg(feature = "clientcreds")]
#[tokio::test]
async fn client_credentials_with_token_url_scopes_and_header_skip_discovery() {
    let flyte = Tripwire::new();
    let idp = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth2/token"))
        .and(header_exists("authorization")) // HTTP Basic with the client's id and secret
        .and(body_string_contains("grant_type=client_credentials"))
        .and(body_string_contains("scope=all+offline"))
        .and(body_string_contains("audience=flyte-api"))
        .respond_with(token_answer("cc-token"))
        .expect(1)
        .mount(&idp)
        .await;
    let cfg = base(&flyte.endpoint())
        .auth_mode(AuthMode::ClientSecret)
        .client_id("svc")
        .client_secret("s3cr3t")
        .token_url(format!("{}/oauth2/token", idp.uri()))
        .scopes(["all", "offline"])
        .audience("flyte-api")
        .authorization_header("authorization")
        .build()
        .unwrap();
    let auth = get_authenticator(&cfg, None).unwrap();

    let credentials = auth.get_credentials().await.unwrap();
    assert_eq!(credentials.access_token.expose_secret(), "cc-token");
    let header = auth.fetch_grpc_call_auth_metadata().unwrap();
    assert_eq!(header.name().as_str(), "authorization");
    assert_eq!(header.value().to_str().unwrap(), "Bearer cc-token");
    assert_eq!(
        flyte.connections(),
        0,
        "the Flyte server was asked for discovery"
    );
}

/// Go's `TestNewTokenSourceProvider`: `tokenUrl` replaces the token endpoint only; scopes and
/// the header still come from the server's public client config when not configured.
#[cfg(feature = "clientcreds")]
#[tokio::test]
async fn a_token_url_replaces_only_the_token_endpoint() {
    let server = MockServer::start().await;
    serve_discovery(&server).await;
    Mock::given(method("POST"))
        .and(path("/configured-token"))
        .and(body_string_contains("scope=discovered-scope"))
        .respond_with(token_answer("cc-token"))
        .expect(1)
        .mount(&server)
        .await;
    let cfg = base(&server.address().to_string())
        .auth_mode(AuthMode::ClientSecret)
        .client_id("svc")
        .client_secret("s3cr3t")
        .token_url(format!("{}/configured-token", server.uri()))
        .build()
        .unwrap();
    let auth = get_authenticator(&cfg, None).unwrap();
    auth.get_credentials().await.unwrap();
    let header = auth.fetch_grpc_call_auth_metadata().unwrap();
    assert_eq!(header.name().as_str(), "flyte-authorization");
    assert_eq!(requests_to(&server, "/discovered-token").await, 0);
}

/// flytekit's `test_get_authenticator_cmd`: without `authorizationHeader`, the command's
/// token goes in the header the server names.
#[cfg(all(feature = "command", feature = "clientcreds"))]
#[tokio::test]
async fn the_external_command_uses_the_servers_header() {
    let server = MockServer::start().await;
    serve_discovery(&server).await;
    let cfg = base(&server.address().to_string())
        .auth_mode(AuthMode::ExternalCommand)
        .command(["printf", "cmd-token"])
        .build()
        .unwrap();
    let auth = get_authenticator(&cfg, None).unwrap();
    let header = auth.auth_header().await.unwrap();
    assert_eq!(header.name().as_str(), "flyte-authorization");
    assert_eq!(header.value().to_str().unwrap(), "Bearer cmd-token");
    auth.refresh_credentials().await.unwrap();
    assert_eq!(
        requests_to(&server, "/config/v1/flyte_client").await,
        1,
        "asked once"
    );
}

#[cfg(feature = "clientcreds")]
#[tokio::test]
async fn client_credentials_use_discovery_and_the_config_wins_over_it() {
    let server = MockServer::start().await;
    serve_discovery(&server).await;
    Mock::given(method("POST"))
        .and(path("/discovered-token"))
        .and(body_string_contains("scope=discovered-scope"))
        .and(body_string_contains("audience=discovered-audience"))
        .respond_with(token_answer("discovered-cc-token"))
        .expect(1)
        .mount(&server)
        .await;
    let endpoint = server.address().to_string();
    let cfg = base(&endpoint)
        .auth_mode(AuthMode::ClientSecret)
        .client_id("svc")
        .client_secret("s3cr3t")
        .build()
        .unwrap();
    let auth = get_authenticator(&cfg, None).unwrap();
    auth.get_credentials().await.unwrap();
    let header = auth.fetch_grpc_call_auth_metadata().unwrap();
    assert_eq!(header.name().as_str(), "flyte-authorization");
    assert_eq!(
        header.value().to_str().unwrap(),
        "Bearer discovered-cc-token"
    );

    // Scopes, audience and header from the config win over the discovered ones.
    let server = MockServer::start().await;
    serve_discovery(&server).await;
    Mock::given(method("POST"))
        .and(path("/discovered-token"))
        .and(body_string_contains("scope=mine"))
        .and(body_string_contains("audience=my-audience"))
        .respond_with(token_answer("configured-cc-token"))
        .expect(1)
        .mount(&server)
        .await;
    let cfg = base(&server.address().to_string())
        .auth_mode(AuthMode::ClientSecret)
        .client_id("svc")
        .client_secret("s3cr3t")
        .scopes(["mine"])
        .audience("my-audience")
        .authorization_header("x-flyte-token")
        .build()
        .unwrap();
    let auth = get_authenticator(&cfg, None).unwrap();
    auth.get_credentials().await.unwrap();
    let header = auth.fetch_grpc_call_auth_metadata().unwrap();
    assert_eq!(header.name().as_str(), "x-flyte-token");
    assert_eq!(
        header.value().to_str().unwrap(),
        "Bearer configured-cc-token"
    );
}

#[cfg(feature = "clientcreds")]
#[tokio::test]
async fn discovery_and_token_requests_go_through_the_configured_proxy() {
    // The "proxy" is a mock server: a plain-HTTP request through a proxy is sent to it with
    // the full URL, so it answers for a host that does not exist.
    let proxy = MockServer::start().await;
    serve_discovery_naming(&proxy, "http://idp.invalid").await;
    Mock::given(method("POST"))
        .and(path("/discovered-token"))
        .respond_with(token_answer("proxied-token"))
        .expect(1)
        .mount(&proxy)
        .await;
    let cfg = base("flyte.invalid:80")
        .auth_mode(AuthMode::ClientSecret)
        .client_id("svc")
        .client_secret("s3cr3t")
        .http_proxy_url(proxy.uri())
        .build()
        .unwrap();
    let auth = get_authenticator(&cfg, None).unwrap();
    let credentials = auth.get_credentials().await.unwrap();
    assert_eq!(credentials.access_token.expose_secret(), "proxied-token");
    let mut hosts: Vec<String> = proxy
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter_map(|r| r.url.host_str().map(str::to_owned))
        .collect();
    hosts.sort();
    assert_eq!(
        hosts,
        [
            "flyte.invalid",
            "flyte.invalid",
            "flyte.invalid",
            "idp.invalid"
        ],
        "two discovery documents, Flyte 2's GetPublicClientConfig (asked at once on a cold \
         start) and one token request"
    );
}

#[cfg(feature = "clientcreds")]
#[tokio::test]
async fn the_request_timeout_option_bounds_every_oauth_request() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/slow-token"))
        .respond_with(token_answer("late").set_delay(Duration::from_secs(30)))
        .mount(&server)
        .await;
    let cfg = base(&server.address().to_string())
        .auth_mode(AuthMode::ClientSecret)
        .client_id("svc")
        .client_secret("s3cr3t")
        .token_url(format!("{}/slow-token", server.uri()))
        .build()
        .unwrap();
    let options = FactoryOptions::new().http_settings(
        cfg.http_settings()
            .request_timeout(Duration::from_millis(300)),
    );
    let auth = get_authenticator_with(&cfg, None, &options).unwrap();
    let err = tokio::time::timeout(Duration::from_secs(20), auth.get_credentials())
        .await
        .expect("the request timeout ended the request")
        .unwrap_err();
    assert!(err.is_transient(), "{err:?}");
}

/// Stored credentials that are due for refresh and carry a refresh token.
fn expired_login(endpoint: &Endpoint, header_key: &str) -> Arc<MemoryStore> {
    let store = Arc::new(MemoryStore::new());
    let mut stale = Credentials::new("stale-token", endpoint.key())
        .with_refresh_token("refresh-1")
        .with_expires_at(SystemTime::now() - Duration::from_secs(60));
    stale.header_key = Some(header_key.to_owned());
    store.store(endpoint, &stale).unwrap();
    store
}

#[cfg(feature = "pkce")]
#[tokio::test]
async fn browser_login_refreshes_at_token_url_with_the_configured_audience() {
    let server = MockServer::start().await;
    serve_discovery(&server).await;
    Mock::given(method("POST"))
        .and(path("/custom-token"))
        .and(body_string_contains("grant_type=refresh_token"))
        .and(body_string_contains("refresh_token=refresh-1"))
        .respond_with(token_answer("refreshed-by-pkce"))
        .expect(1)
        .mount(&server)
        .await;
    let endpoint = server.address().to_string();
    let cfg = base(&endpoint)
        .token_url(format!("{}/custom-token", server.uri()))
        .audience("my-audience")
        .build()
        .unwrap();
    let store = expired_login(cfg.endpoint(), "flyte-authorization");
    let options = FactoryOptions::new().no_browser(true);
    let auth = get_authenticator_with(&cfg, Some(store), &options).unwrap();
    let credentials = auth.get_credentials().await.unwrap();
    assert_eq!(
        credentials.access_token.expose_secret(),
        "refreshed-by-pkce"
    );
    assert_eq!(requests_to(&server, "/discovered-token").await, 0);
    assert_eq!(
        auth.fetch_grpc_call_auth_metadata()
            .unwrap()
            .name()
            .as_str(),
        "flyte-authorization"
    );
}

#[cfg(feature = "device")]
#[tokio::test]
async fn device_login_refreshes_at_token_url_with_the_configured_header() {
    let server = MockServer::start().await;
    serve_discovery(&server).await;
    Mock::given(method("POST"))
        .and(path("/custom-token"))
        .and(body_string_contains("grant_type=refresh_token"))
        .and(body_string_contains("client_id=flytectl"))
        .and(body_string_contains("scope=mine"))
        .respond_with(token_answer("refreshed-by-device"))
        .expect(1)
        .mount(&server)
        .await;
    let endpoint = server.address().to_string();
    let cfg = base(&endpoint)
        .auth_mode(AuthMode::DeviceFlow)
        .token_url(format!("{}/custom-token", server.uri()))
        .scopes(["mine"])
        .authorization_header("x-flyte-token")
        .build()
        .unwrap();
    let store = expired_login(cfg.endpoint(), "authorization");
    let auth = get_authenticator(&cfg, Some(store)).unwrap();
    let credentials = auth.get_credentials().await.unwrap();
    assert_eq!(
        credentials.access_token.expose_secret(),
        "refreshed-by-device"
    );
    let header = auth.fetch_grpc_call_auth_metadata().unwrap();
    assert_eq!(header.name().as_str(), "x-flyte-token");
    assert_eq!(requests_to(&server, "/discovered-token").await, 0);
}

#[cfg(feature = "command")]
#[tokio::test]
async fn the_external_command_prints_the_token() {
    let cfg = base("flyte.example.org")
        .auth_mode(AuthMode::ExternalCommand)
        .command(["echo", "command-token"])
        .build()
        .unwrap();
    let auth = get_authenticator(&cfg, None).unwrap();
    let header = auth.auth_header().await.unwrap();
    assert_eq!(header.name().as_str(), "authorization");
    assert_eq!(header.value().to_str().unwrap(), "Bearer command-token");
}

#[cfg(feature = "command")]
#[tokio::test]
async fn the_configs_command_timeout_bounds_the_command_and_the_options_win() {
    let cfg = base("flyte.example.org")
        .auth_mode(AuthMode::ExternalCommand)
        .command(["sleep", "30"])
        .authorization_header("authorization")
        .command_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let start = std::time::Instant::now();
    let err = get_authenticator(&cfg, None)
        .unwrap()
        .get_credentials()
        .await
        .unwrap_err();
    assert!(
        matches!(err, flyte_auth::Error::Timeout { after, .. } if after == Duration::from_millis(300)),
        "{err:?}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );

    let options = FactoryOptions::new().command_timeout(Duration::from_millis(200));
    let err = get_authenticator_with(&cfg, None, &options)
        .unwrap()
        .get_credentials()
        .await
        .unwrap_err();
    assert!(
        matches!(err, flyte_auth::Error::Timeout { after, .. } if after == Duration::from_millis(200)),
        "{err:?}"
    );
}

#[cfg(feature = "command")]
#[tokio::test]
async fn the_command_token_is_stored_only_when_asked() {
    let cfg = base("flyte.example.org")
        .auth_mode(AuthMode::ExternalCommand)
        .command(["echo", "command-token"])
        .build()
        .unwrap();
    let store = Arc::new(MemoryStore::new());
    get_authenticator(&cfg, Some(store.clone()))
        .unwrap()
        .get_credentials()
        .await
        .unwrap();
    assert!(store.is_empty());
    let options = FactoryOptions::new().store_command_token(true);
    get_authenticator_with(&cfg, Some(store.clone()), &options)
        .unwrap()
        .get_credentials()
        .await
        .unwrap();
    assert_eq!(store.len(), 1);
}

#[cfg(feature = "command")]
#[tokio::test]
async fn proxy_command_gives_a_proxy_authorization_header() {
    let cfg = base("flyte.example.org")
        .proxy_command(["echo", "proxy-token"])
        .build()
        .unwrap();
    let proxy = proxy_authenticator(&cfg)
        .unwrap()
        .expect("proxyCommand is set");
    let header = proxy.auth_header().await.unwrap();
    assert_eq!(header.name().as_str(), "proxy-authorization");
    assert_eq!(header.value().to_str().unwrap(), "Bearer proxy-token");

    let without = base("flyte.example.org").build().unwrap();
    assert!(proxy_authenticator(&without).unwrap().is_none());
}

/// A plugin's flow: a fixed token, named after the config's endpoint.
#[derive(Debug)]
struct PluginFlow {
    endpoint: Endpoint,
}

impl TokenFlow for PluginFlow {
    fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }
    fn login(&self) -> BoxFuture<'_, Result<Credentials, Error>> {
        Box::pin(async { Ok(Credentials::new("plugin-token", "x").with_expires_in(3600)) })
    }
}

fn plugin_factory(calls: Arc<AtomicUsize>) -> AuthenticatorFactory {
    Arc::new(move |cfg: &PlatformConfig, store| {
        calls.fetch_add(1, Ordering::SeqCst);
        let flow = PluginFlow {
            endpoint: cfg.endpoint().clone(),
        };
        let auth = CachingAuthenticator::builder(flow)
            .maybe_store(store)
            .build();
        Ok(Arc::new(auth) as Arc<dyn Authenticator>)
    })
}

#[tokio::test]
async fn a_registered_plugin_is_found_by_its_name_in_any_case() {
    let registry = Arc::new(AuthenticatorRegistry::new());
    let calls = Arc::new(AtomicUsize::new(0));
    registry
        .register_factory("Corp-SSO", plugin_factory(calls.clone()))
        .unwrap();
    assert_eq!(registry.names(), ["Corp-SSO"]);

    let cfg = PlatformConfig::builder()
        .no_config_file()
        .env(|name| match name {
            "FLYTE_PLATFORM_URL" => Some("dns:///flyte.example.org".into()),
            "FLYTE_CREDENTIALS_AUTH_MODE" => Some("corp-sso".into()),
            _ => None,
        })
        .build()
        .unwrap();
    assert_eq!(cfg.auth_mode(), AuthMode::Plugin("corp-sso".into()));
    let store = Arc::new(MemoryStore::new());
    let options = FactoryOptions::new().registry(registry.clone());
    let auth = get_authenticator_with(&cfg, Some(store.clone()), &options).unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(format!("{auth:?}").contains("PluginFlow"));
    let header = auth.auth_header().await.unwrap();
    assert_eq!(header.value().to_str().unwrap(), "Bearer plugin-token");
    assert_eq!(store.len(), 1, "the plugin received the caller's store");

    // Re-registering replaces; unregistering removes.
    let again = Arc::new(AtomicUsize::new(0));
    registry
        .register_factory("CORP-SSO", plugin_factory(again.clone()))
        .unwrap();
    get_authenticator_with(&cfg, None, &options).unwrap();
    assert_eq!(
        (calls.load(Ordering::SeqCst), again.load(Ordering::SeqCst)),
        (1, 1)
    );
    assert!(registry.unregister("corp-sso"));
    let err = get_authenticator_with(&cfg, None, &options)
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown auth type `corp-sso`"), "{err}");
}

#[test]
fn an_unregistered_plugin_name_lists_what_is_accepted() {
    let registry = Arc::new(AuthenticatorRegistry::new());
    let cfg = base("flyte.example.org")
        .auth_mode("Pkse".parse().unwrap())
        .build()
        .unwrap();
    let options = FactoryOptions::new().registry(registry.clone());
    let err = get_authenticator_with(&cfg, None, &options).unwrap_err();
    assert!(matches!(err, Error::Config { .. }));
    let err = err.to_string();
    for expected in [
        "unknown auth type `Pkse`",
        "Pkce (or standard)",
        "ClientSecret (or basic, client_credentials)",
        "DeviceFlow",
        "ExternalCommand (or external_process)",
        "no authenticator is registered",
    ] {
        assert!(err.contains(expected), "{expected:?} missing from: {err}");
    }

    registry
        .register_factory("vault", plugin_factory(Arc::default()))
        .unwrap();
    registry
        .register_factory("corp-sso", plugin_factory(Arc::default()))
        .unwrap();
    let err = get_authenticator_with(&cfg, None, &options)
        .unwrap_err()
        .to_string();
    assert!(err.contains("registered: corp-sso, vault"), "{err}");
}

#[test]
fn built_in_and_invalid_names_cannot_be_registered() {
    let registry = AuthenticatorRegistry::new();
    for name in ["Pkce", "basic", "EXTERNAL_PROCESS", "deviceflow"] {
        let err = registry
            .register_factory(name, plugin_factory(Arc::default()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("built-in auth type"), "{name}: {err}");
    }
    let err = registry
        .register_factory("two words", plugin_factory(Arc::default()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("invalid auth type"), "{err}");
    assert!(registry.names().is_empty());
}

#[test]
fn the_global_registry_serves_get_authenticator() {
    let calls = Arc::new(AtomicUsize::new(0));
    let factory = plugin_factory(calls.clone());
    flyte_auth::register_authenticator("factory-test-global", move |cfg, store| {
        factory(cfg, store)
    })
    .unwrap();
    let cfg = base("flyte.example.org")
        .auth_mode(AuthMode::Plugin("Factory-Test-Global".into()))
        .build()
        .unwrap();
    get_authenticator(&cfg, None).unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(AuthenticatorRegistry::global().unregister("factory-test-global"));
}

#[cfg(not(feature = "device"))]
#[test]
fn a_mode_built_without_its_feature_says_which_feature() {
    let cfg = base("flyte.example.org")
        .auth_mode(AuthMode::DeviceFlow)
        .build()
        .unwrap();
    let err = get_authenticator(&cfg, None).unwrap_err();
    assert!(matches!(err, Error::Config { .. }));
    assert!(
        err.to_string()
            .contains("built without the `device` feature"),
        "{err}"
    );
}

#[cfg(not(feature = "pkce"))]
#[test]
fn the_default_mode_without_pkce_says_which_feature() {
    let cfg = base("flyte.example.org").build().unwrap();
    let err = get_authenticator(&cfg, None).unwrap_err().to_string();
    assert!(err.contains("built without the `pkce` feature"), "{err}");
}

#[cfg(not(feature = "command"))]
#[test]
fn proxy_command_without_the_command_feature_says_so() {
    let cfg = base("flyte.example.org")
        .proxy_command(["echo", "proxy-token"])
        .build()
        .unwrap();
    let err = proxy_authenticator(&cfg).unwrap_err().to_string();
    assert!(err.contains("built without the `command` feature"), "{err}");
}

/// One server, three spellings, one login: the store key comes from the parsed endpoint.
#[cfg(feature = "clientcreds")]
#[tokio::test]
async fn every_spelling_of_the_endpoint_shares_one_stored_login() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth2/token"))
        .respond_with(token_answer("shared-token"))
        .expect(1)
        .mount(&server)
        .await;
    let store = Arc::new(MemoryStore::new());
    let address = server.address().to_string();
    for spelling in [
        format!("dns:///{address}"),
        address.clone(),
        format!("{address}/"),
        format!("http://{address}"),
    ] {
        let cfg = base(&spelling)
            .auth_mode(AuthMode::ClientSecret)
            .client_id("svc")
            .client_secret("s3cr3t")
            .token_url(format!("{}/oauth2/token", server.uri()))
            .scopes(["all"])
            .authorization_header("authorization")
            .build()
            .unwrap();
        let store: Arc<dyn TokenStore> = store.clone();
        let auth = get_authenticator(&cfg, Some(store)).unwrap();
        let credentials = auth.get_credentials().await.unwrap();
        assert_eq!(credentials.access_token.expose_secret(), "shared-token");
        assert_eq!(credentials.for_endpoint, address, "{spelling}");
    }
}

/// The Go client's `admin.maxRetries`: a token request answered 500 once is retried.
#[cfg(feature = "clientcreds")]
#[tokio::test]
async fn max_retries_in_the_config_retries_a_failed_token_request() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth2/token"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/oauth2/token"))
        .respond_with(token_answer("after-a-retry"))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.yaml");
    std::fs::write(
        &file,
        format!(
            "admin:\n  endpoint: dns:///{}\n  insecure: true\n  authType: ClientSecret\n  \
             clientId: svc\n  tokenUrl: {}/oauth2/token\n  scopes: [all]\n  \
             authorizationHeader: authorization\n  maxRetries: 2\n",
            server.address(),
            server.uri()
        ),
    )
    .unwrap();
    let cfg = PlatformConfig::builder()
        .config_file(&file)
        .no_env()
        .client_secret("s3cr3t")
        .build()
        .unwrap();
    let auth = get_authenticator(&cfg, None).unwrap();
    let credentials = auth.get_credentials().await.unwrap();
    assert_eq!(credentials.access_token.expose_secret(), "after-a-retry");
    assert_eq!(requests_to(&server, "/oauth2/token").await, 2);
}

/// flyte#6089: behind an authenticating proxy (GCP IAP) every OAuth request needs
/// `proxy-authorization`, discovery included, not only the API calls.
#[cfg(all(feature = "command", feature = "clientcreds"))]
#[tokio::test]
async fn proxy_command_authorizes_every_oauth_request() {
    let server = MockServer::start().await;
    serve_discovery(&server).await;
    Mock::given(method("POST"))
        .and(path("/discovered-token"))
        .respond_with(token_answer("behind-the-proxy"))
        .mount(&server)
        .await;
    let cfg = base(&server.address().to_string())
        .auth_mode(AuthMode::ClientSecret)
        .client_id("svc")
        .client_secret("s3cr3t")
        .proxy_command(["printf", "iap-token"])
        .build()
        .unwrap();
    let auth = get_authenticator(&cfg, None).unwrap();
    assert_eq!(
        auth.get_credentials()
            .await
            .unwrap()
            .access_token
            .expose_secret(),
        "behind-the-proxy"
    );
    let requests = server.received_requests().await.unwrap();
    assert!(requests.len() >= 2, "discovery and the token request");
    for request in &requests {
        assert_eq!(
            request
                .headers
                .get("proxy-authorization")
                .map(|v| v.to_str().unwrap()),
            Some("Bearer iap-token"),
            "{} {}",
            request.method,
            request.url.path()
        );
    }
}

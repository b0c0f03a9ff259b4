//! `PkceAuthenticator` end to end against a mock identity provider: what the browser flow adds
//! to core's cache (the server's header key, refresh with `client_id` and flytekit's
//! parameters, no network at construction, the server's configuration and its checks).
#![allow(clippy::unwrap_used, reason = "tests")]

mod support;

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, SystemTime},
};

use flyte_auth_core::{
    Authenticator, BoxFuture, CachingAuthenticator, ClientConfig, ClientConfigStore, Credentials,
    Endpoint, Error, MemoryStore, StaticClientConfigStore, TokenStore,
};
use flyte_auth_oauth::{ClientContext, Overrides};
use flyte_auth_pkce::{BrowserOpener, PkceAuthenticator, PkceFlow, PkceFlowBuilder};
use serde_json::json;
use support::*;
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{body_string_contains, method, path},
};

const ENDPOINT: &str = "flyte.example.org";
/// [`ENDPOINT`], parsed.
static EP: std::sync::LazyLock<Endpoint> =
    std::sync::LazyLock::new(|| Endpoint::parse(ENDPOINT).expect("a valid endpoint"));

/// A client config store that counts how often it is asked.
#[derive(Debug)]
struct CountingConfigStore {
    inner: StaticClientConfigStore,
    calls: AtomicUsize,
}

impl ClientConfigStore for CountingConfigStore {
    fn get_client_config(&self) -> BoxFuture<'_, Result<ClientConfig, Error>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.get_client_config()
    }
}

fn config(idp: &MockServer) -> ClientConfig {
    ClientConfig::new(format!("{}/token", idp.uri()), "flytectl")
        .with_authorization_endpoint(format!("{}/authorize", idp.uri()))
        .with_redirect_uri("http://localhost:0/callback")
        .with_scopes(["openid", "offline"])
        .with_header_key("flyte-authorization")
}

fn counting(cfg: ClientConfig) -> Arc<CountingConfigStore> {
    Arc::new(CountingConfigStore {
        inner: StaticClientConfigStore::new(cfg),
        calls: AtomicUsize::new(0),
    })
}

fn authenticator(cfg_store: Arc<dyn ClientConfigStore>) -> Assembly {
    Assembly {
        cfg_store,
        overrides: Overrides::new(),
        store: None,
        flow: Box::new(|flow| flow),
    }
}

type FlowOptions = Box<dyn FnOnce(PkceFlowBuilder) -> PkceFlowBuilder>;

/// The authenticator under test, put together as the factory does it: a context with the
/// overrides, the flow with its login options, core's cache with the store.
struct Assembly {
    cfg_store: Arc<dyn ClientConfigStore>,
    overrides: Overrides,
    store: Option<Arc<dyn TokenStore>>,
    flow: FlowOptions,
}

impl Assembly {
    fn with_flow(mut self, f: impl FnOnce(PkceFlowBuilder) -> PkceFlowBuilder + 'static) -> Self {
        let previous = self.flow;
        self.flow = Box::new(move |flow| f(previous(flow)));
        self
    }

    fn store(mut self, store: Arc<dyn TokenStore>) -> Self {
        self.store = Some(store);
        self
    }

    fn scopes(mut self, scopes: impl IntoIterator<Item = &'static str>) -> Self {
        self.overrides = self.overrides.scopes(scopes);
        self
    }

    fn header_key(mut self, key: &str) -> Self {
        self.overrides = self.overrides.header_key(key);
        self
    }

    fn browser(self, browser: BrowserOpener) -> Self {
        self.with_flow(|flow| flow.browser(browser))
    }

    fn no_browser(self) -> Self {
        self.with_flow(PkceFlowBuilder::no_browser)
    }

    fn refresh_access_token_params(self, params: [(&'static str, &'static str); 1]) -> Self {
        self.with_flow(move |flow| flow.refresh_access_token_params(params))
    }

    fn build(self) -> Result<PkceAuthenticator, Error> {
        let ctx = ClientContext::builder(Endpoint::parse(ENDPOINT)?)
            .discovery(self.cfg_store)
            .overrides(self.overrides)
            .build()?;
        let flow = (self.flow)(
            PkceFlow::builder(ctx)
                .prompt(RecordedPrompt::default().prompt())
                .timeout(NO_HANG),
        )
        .build()?;
        Ok(CachingAuthenticator::builder(flow)
            .maybe_store(self.store)
            .build())
    }
}

fn expired(access: &str, refresh: &str) -> Credentials {
    Credentials::new(access, ENDPOINT)
        .with_refresh_token(refresh)
        .with_id_token("id-old")
        .with_client_id("flytectl")
        .with_expires_at(SystemTime::now() - Duration::from_secs(60))
}

async fn get(auth: &PkceAuthenticator) -> Result<Arc<Credentials>, Error> {
    tokio::time::timeout(NO_HANG * 2, auth.get_credentials())
        .await
        .expect("get_credentials does not hang")
}

#[tokio::test]
async fn a_browser_login_sends_the_token_under_the_servers_header_key() {
    let idp = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string_contains("grant_type=authorization_code"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"access_token": "at", "expires_in": 3600, "refresh_token": "rt"}),
        ))
        .expect(1)
        .mount(&idp)
        .await;
    let browser = ScriptedBrowser::new();
    let cfg_store = counting(config(&idp));
    let auth = authenticator(cfg_store.clone())
        .browser(browser.approving("c"))
        .build()
        .unwrap();

    let creds = get(&auth).await.unwrap();
    browser.finished().await;

    assert_eq!(creds.access_token.expose_secret(), "at");
    assert_eq!(browser.opened(), 1);
    assert_eq!(cfg_store.calls.load(Ordering::SeqCst), 1);
    let header = auth.fetch_grpc_call_auth_metadata().unwrap();
    assert_eq!(
        header.name().as_str(),
        "flyte-authorization",
        "the server's header key"
    );
    assert_eq!(header.value().to_str().unwrap(), "Bearer at");
}

#[tokio::test]
async fn creating_the_authenticator_touches_no_network_and_a_stored_token_is_reused_without_discovery()
 {
    let idp = MockServer::start().await;
    let store = Arc::new(MemoryStore::new());
    store
        .store(
            &EP,
            &Credentials::new("stored", ENDPOINT)
                .with_refresh_token("rt")
                .with_expires_in(3600),
        )
        .unwrap();
    let cfg_store = counting(config(&idp));
    let browser = ScriptedBrowser::new();

    let auth = authenticator(cfg_store.clone())
        .store(store)
        .browser(browser.approving("c"))
        .build()
        .unwrap();
    assert_eq!(
        cfg_store.calls.load(Ordering::SeqCst),
        0,
        "nothing fetched at construction"
    );
    assert!(auth.fetch_grpc_call_auth_metadata().is_none());

    let creds = get(&auth).await.unwrap();

    assert_eq!(creds.access_token.expose_secret(), "stored");
    assert_eq!(cfg_store.calls.load(Ordering::SeqCst), 0);
    assert_eq!(browser.opened(), 0);
    assert!(idp.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn refresh_sends_client_id_and_keeps_the_old_refresh_and_id_tokens_when_the_answer_omits_them()
 {
    let idp = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string_contains("grant_type=refresh_token"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"access_token": "at-2", "expires_in": 3600})),
        )
        .expect(1)
        .mount(&idp)
        .await;
    let store = Arc::new(MemoryStore::new());
    store.store(&EP, &expired("at-1", "rt-1")).unwrap();
    let browser = ScriptedBrowser::new();
    let auth = authenticator(counting(config(&idp)))
        .store(store)
        .refresh_access_token_params([("audience", "flyte")])
        .browser(browser.approving("c"))
        .build()
        .unwrap();

    let creds = get(&auth).await.unwrap();

    assert_eq!(creds.access_token.expose_secret(), "at-2");
    assert_eq!(
        creds.refresh_token.as_ref().unwrap().expose_secret(),
        "rt-1"
    );
    assert_eq!(creds.id_token.as_ref().unwrap().expose_secret(), "id-old");
    assert_eq!(browser.opened(), 0, "no browser for a refresh");
    let forms = token_requests(&idp).await;
    assert_eq!(forms.len(), 1);
    let form = &forms[0];
    assert_eq!(form_value(form, "grant_type"), Some("refresh_token"));
    assert_eq!(form_value(form, "refresh_token"), Some("rt-1"));
    assert_eq!(form_value(form, "client_id"), Some("flytectl"));
    assert_eq!(form_value(form, "audience"), Some("flyte"));
    assert_eq!(
        form_value(form, "scope"),
        None,
        "flytekit sends no scope on refresh"
    );
}

#[tokio::test]
async fn explicit_scopes_and_header_key_win_over_the_servers() {
    let idp = MockServer::start().await;
    token_endpoint_for_code(&idp, "c", json!({"access_token": "at", "expires_in": 3600})).await;
    let browser = ScriptedBrowser::new();
    let auth = authenticator(counting(config(&idp)))
        .scopes(["all"])
        .header_key("Authorization")
        .browser(browser.approving("c"))
        .build()
        .unwrap();

    let header = tokio::time::timeout(NO_HANG, auth.auth_header())
        .await
        .unwrap()
        .unwrap();
    browser.finished().await;

    assert_eq!(header.name().as_str(), "authorization");
    assert_eq!(param(&browser.last_url(), "scope").as_deref(), Some("all"));
}

#[tokio::test]
async fn an_empty_redirect_uri_in_the_servers_config_means_flytes_default() {
    let idp = MockServer::start().await;
    // A refresh configures the client without any browser login (and without binding
    // Flyte's default port, which other programs on this machine may use).
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&idp)
        .await;
    let store = Arc::new(MemoryStore::new());
    store.store(&EP, &expired("at-1", "rt-1")).unwrap();
    let auth = authenticator(counting(config(&idp).with_redirect_uri("")))
        .store(store)
        .no_browser()
        .build()
        .unwrap();
    assert!(
        auth.flow().authorization_client().is_none(),
        "nothing configured yet"
    );

    let _ = get(&auth).await;

    let client = auth.flow().authorization_client().unwrap();
    assert_eq!(client.redirect_uri(), flyte_auth_pkce::DEFAULT_REDIRECT_URI);
    assert_eq!(client.redirect_uri(), "http://localhost:53593/callback");
}

#[tokio::test]
async fn a_server_config_without_an_authorization_endpoint_is_a_config_error() {
    let idp = MockServer::start().await;
    let cfg = ClientConfig::new(format!("{}/token", idp.uri()), "flytectl")
        .with_redirect_uri("http://localhost:0/callback");
    let auth = authenticator(counting(cfg)).no_browser().build().unwrap();

    let err = get(&auth).await.unwrap_err();

    assert!(matches!(err, Error::Config { .. }), "{err:?}");
    assert!(err.to_string().contains("authorization endpoint"), "{err}");
}

#[tokio::test]
async fn a_non_loopback_redirect_uri_from_the_server_is_a_config_error_naming_it() {
    let idp = MockServer::start().await;
    let auth = authenticator(counting(
        config(&idp).with_redirect_uri("https://flyte.example.org/callback"),
    ))
    .no_browser()
    .build()
    .unwrap();

    let err = get(&auth).await.unwrap_err();

    assert!(matches!(err, Error::Config { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("https://flyte.example.org/callback"),
        "{err}"
    );
}

#[tokio::test]
async fn an_invalid_header_key_is_refused_when_building() {
    let idp = MockServer::start().await;
    let err = authenticator(counting(config(&idp)))
        .header_key("bad header")
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::Config { .. }), "{err:?}");
}

#[tokio::test]
async fn debug_output_never_shows_tokens() {
    let idp = MockServer::start().await;
    token_endpoint_for_code(
        &idp,
        "c",
        json!({"access_token": "AT-SECRET-1", "refresh_token": "RT-SECRET-1", "expires_in": 3600}),
    )
    .await;
    let browser = ScriptedBrowser::new();
    let auth = authenticator(counting(config(&idp)))
        .browser(browser.approving("c"))
        .build()
        .unwrap();
    get(&auth).await.unwrap();
    let printed = format!("{auth:?}");
    assert!(!printed.contains("SECRET"), "{printed}");
    assert!(printed.contains("flytectl"), "{printed}");
}

/// The mix-up defence end to end: the Flyte server's discovery announces RFC 9207's `iss`
/// parameter, so the browser login refuses a callback naming another issuer and never
/// exchanges its code; the callback naming the discovered issuer logs in.
#[tokio::test]
async fn a_discovered_iss_announcement_makes_the_login_refuse_another_issuer() {
    for (iss, accepted) in [("https://attacker.example.org", false), ("", true)] {
        let idp = MockServer::start().await;
        let base = idp.uri();
        let issuer = format!("{base}/oauth2");
        Mock::given(method("GET"))
            .and(path("/.well-known/oauth-authorization-server"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "issuer": issuer,
                "authorization_endpoint": format!("{base}/authorize"),
                "token_endpoint": format!("{base}/token"),
                "authorization_response_iss_parameter_supported": true,
            })))
            .mount(&idp)
            .await;
        Mock::given(method("GET"))
            .and(path("/config/v1/flyte_client"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "client_id": "flytectl",
                "redirect_uri": "http://127.0.0.1:0/callback",
            })))
            .mount(&idp)
            .await;
        token_endpoint_for_code(&idp, "c", json!({"access_token": "at"})).await;
        let discovery = flyte_auth_oauth::RemoteClientConfigStore::from_base_url(
            base.clone(),
            flyte_auth_oauth::OAuthClient::new(
                flyte_auth_oauth::HttpSettings::new().system_proxy(false),
            )
            .unwrap(),
        );
        let returned = if iss.is_empty() {
            issuer.clone()
        } else {
            iss.to_owned()
        };
        let browser = ScriptedBrowser::new();
        let opener = browser.opener(move |url, browser| {
            let returned = returned.clone();
            async move {
                let encoded: String =
                    url::form_urlencoded::byte_serialize(returned.as_bytes()).collect();
                browser
                    .visit(&format!("{}&iss={encoded}", approve(&url, "c")))
                    .await;
            }
        });
        let auth = authenticator(Arc::new(discovery))
            .browser(opener)
            .build()
            .unwrap();

        let result = get(&auth).await;
        browser.finished().await;
        let exchanged = token_requests(&idp).await.len();
        if accepted {
            assert_eq!(result.unwrap().access_token.expose_secret(), "at");
            assert_eq!(exchanged, 1);
        } else {
            let e = result.unwrap_err();
            assert!(
                matches!(&e, Error::Other(inner) if inner.downcast_ref::<flyte_auth_pkce::IssuerMismatch>().is_some()),
                "{e:?}"
            );
            assert_eq!(exchanged, 0, "the mixed-up code was exchanged");
        }
    }
}

//! The browser login (`flyte-auth-pkce`) end to end against the local OpenID provider: Flyte
//! discovery, the login driven through the provider's real login and consent pages, refresh
//! with rotation, and refusal. The test plays the user through the injected browser opener.
//! The cache's own promises (one login for many callers, a stored token reused, a rejected
//! refresh token replaced by a login) are tested once, in `flyte-auth-core`.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test with its message"
)]

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use flyte_auth_pkce::{
    BrowserOpener, PkceAuthenticator,
    flyte_auth_core::{
        Authenticator, CachingAuthenticator, Credentials, Error, MemoryStore, OAuthErrorCode,
        TokenStore,
    },
    flyte_auth_oauth::{HttpSettings, OAuthClient},
};
use flyte_auth_tests::{
    GRANT_AUTHORIZATION_CODE, GRANT_REFRESH_TOKEN, Idp, complete_browser_login, deny_browser_login,
    pkce_flow,
};
use tokio::task::JoinHandle;
use url::Url;

/// A bound that proves "does not hang", not a speed requirement.
const NO_HANG: Duration = Duration::from_secs(120);

/// What the user saw in the browser tab at the end: the callback server's answer.
#[derive(Debug, Clone)]
struct Seen {
    status: u16,
    body: String,
}

/// The person in front of the browser, approving or refusing every login they are shown.
#[derive(Clone)]
struct User {
    approve: bool,
    opened: Arc<AtomicUsize>,
    urls: Arc<Mutex<Vec<Url>>>,
    seen: Arc<Mutex<Vec<Result<Seen, String>>>>,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl User {
    fn approving() -> Self {
        Self::new(true)
    }

    fn refusing() -> Self {
        Self::new(false)
    }

    fn new(approve: bool) -> Self {
        Self {
            approve,
            opened: Arc::default(),
            urls: Arc::default(),
            seen: Arc::default(),
            tasks: Arc::default(),
        }
    }

    /// The opener the authenticator calls: the user's browser opens the URL and the user
    /// logs in (a fresh browser: login page, then consent page).
    fn browser(&self) -> BrowserOpener {
        let user = self.clone();
        BrowserOpener::new(move |url| {
            let url = Url::parse(url).unwrap();
            user.opened.fetch_add(1, Ordering::SeqCst);
            user.urls.lock().unwrap().push(url.clone());
            let this = user.clone();
            let task = tokio::spawn(async move {
                let outcome = if this.approve {
                    complete_browser_login(&url).await
                } else {
                    deny_browser_login(&url).await
                };
                let seen = outcome
                    .map(|r| Seen {
                        status: r.status(),
                        body: r.body().to_owned(),
                    })
                    .map_err(|e| e.to_string());
                this.seen.lock().unwrap().push(seen);
            });
            user.tasks.lock().unwrap().push(task);
            Ok(())
        })
    }

    /// Waits until the user is done with every browser window opened so far.
    async fn finished(&self) {
        let tasks: Vec<_> = self.tasks.lock().unwrap().drain(..).collect();
        for task in tasks {
            tokio::time::timeout(NO_HANG, task).await.unwrap().unwrap();
        }
    }

    fn opened(&self) -> usize {
        self.opened.load(Ordering::SeqCst)
    }

    fn seen(&self) -> Vec<Result<Seen, String>> {
        self.seen.lock().unwrap().clone()
    }

    fn last_url(&self) -> Url {
        self.urls.lock().unwrap().last().cloned().unwrap()
    }
}

/// A provider advertising a loopback redirect URI on any free port (so that tests running at
/// once do not compete for Flyte's 53593), with `offline` among the scopes.
async fn idp() -> Idp {
    Idp::builder()
        .redirect_uri("http://localhost:0/callback")
        .scopes(["all", "offline"])
        .start()
        .await
}

/// An authenticator configured by Flyte discovery from the provider, as `pyflyte` does.
fn authenticator(idp: &Idp, store: Arc<MemoryStore>, user: &User) -> PkceAuthenticator {
    let http = OAuthClient::new(HttpSettings::new().system_proxy(false)).unwrap();
    authenticator_through(idp, store, user, http)
}

/// [`authenticator`] with every OAuth request (discovery included) sent through `http`.
fn authenticator_through(
    idp: &Idp,
    store: Arc<MemoryStore>,
    user: &User,
    http: OAuthClient,
) -> PkceAuthenticator {
    let flow = pkce_flow(idp, http, user.browser())
        .timeout(NO_HANG)
        .build()
        .unwrap();
    CachingAuthenticator::builder(flow).store(store).build()
}

async fn get(auth: &PkceAuthenticator) -> Result<Arc<Credentials>, Error> {
    tokio::time::timeout(NO_HANG, auth.get_credentials())
        .await
        .expect("get_credentials does not hang")
}

#[tokio::test]
async fn a_browser_login_through_discovery_yields_tokens_and_stores_them() {
    let idp = idp().await;
    let user = User::approving();
    let store = Arc::new(MemoryStore::new());
    let auth = authenticator(&idp, store.clone(), &user);

    let creds = get(&auth).await.unwrap();
    user.finished().await;
    let token = creds.access_token.expose_secret();

    assert!(!token.is_empty());
    assert_eq!(user.opened(), 1);
    assert_eq!(idp.token_requests(GRANT_AUTHORIZATION_CODE).await, 1);

    // The authorization request the provider accepted.
    let url = user.last_url();
    let param = |n: &str| {
        url.query_pairs()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.into_owned())
    };
    assert_eq!(url.path(), "/auth");
    assert_eq!(param("client_id").as_deref(), Some("flytectl"));
    assert_eq!(param("scope").as_deref(), Some("all offline"));
    assert_eq!(param("code_challenge_method").as_deref(), Some("S256"));
    assert_eq!(param("audience").as_deref(), Some(idp.audience()));
    let redirect = param("redirect_uri").unwrap();
    assert!(
        redirect.starts_with("http://localhost:") && !redirect.contains(":0/"),
        "{redirect}"
    );

    // What the user saw at the end.
    let seen = user.seen();
    let page = seen[0].as_ref().unwrap();
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Login successful"), "{}", page.body);

    // Persisted, with a refresh token and the client id, and served on the hot path.
    let stored = store.retrieve(&idp.endpoint()).unwrap().unwrap();
    assert_eq!(stored.access_token.expose_secret(), token);
    assert!(stored.refresh_token.is_some());
    assert_eq!(stored.client_id.as_deref(), Some("flytectl"));
    let header = auth.fetch_grpc_call_auth_metadata().unwrap();
    assert_eq!(header.name().as_str(), "authorization");
    assert_eq!(header.value().to_str().unwrap(), format!("Bearer {token}"));
}

#[tokio::test]
async fn refresh_redeems_and_rotates_the_refresh_token_without_a_browser() {
    let idp = idp().await;
    let user = User::approving();
    let store = Arc::new(MemoryStore::new());
    let auth = authenticator(&idp, store.clone(), &user);
    let first = get(&auth).await.unwrap();
    user.finished().await;

    let refreshed = tokio::time::timeout(NO_HANG, auth.refresh_credentials())
        .await
        .unwrap()
        .unwrap();

    assert_ne!(refreshed.access_token, first.access_token);
    let (old_rt, new_rt) = (
        first.refresh_token.as_ref().unwrap(),
        refreshed.refresh_token.as_ref().unwrap(),
    );
    assert_ne!(new_rt, old_rt, "the provider rotates refresh tokens");
    assert_eq!(idp.token_requests(GRANT_REFRESH_TOKEN).await, 1);
    assert_eq!(user.opened(), 1, "no second browser window");
    let stored = store.retrieve(&idp.endpoint()).unwrap().unwrap();
    assert_eq!(
        stored.refresh_token.as_ref(),
        Some(new_rt),
        "the rotated token is persisted"
    );

    // The rotated token works for the next refresh too.
    let again = tokio::time::timeout(NO_HANG, auth.refresh_credentials())
        .await
        .unwrap()
        .unwrap();
    assert_ne!(again.access_token, refreshed.access_token);
    assert_eq!(idp.token_requests(GRANT_REFRESH_TOKEN).await, 2);
    assert_eq!(user.opened(), 1);
}

#[tokio::test]
async fn refusing_consent_ends_the_login_with_access_denied_and_the_browser_says_so() {
    let idp = idp().await;
    let user = User::refusing();
    let store = Arc::new(MemoryStore::new());
    let auth = authenticator(&idp, store.clone(), &user);

    let err = get(&auth).await.unwrap_err();
    user.finished().await;

    let oauth = err.oauth().expect("an OAuth error");
    assert_eq!(oauth.code, OAuthErrorCode::AccessDenied, "{err}");
    assert!(err.to_string().contains("access_denied"), "{err}");
    let seen = user.seen();
    let page = seen[0].as_ref().unwrap();
    assert_eq!(page.status, 400);
    assert!(page.body.contains("access_denied"), "{}", page.body);
    assert_eq!(idp.token_requests(GRANT_AUTHORIZATION_CODE).await, 0);
    assert!(store.is_empty());
}

/// The provider as a Flyte 2 backend, with the redirect URI and scopes of a browser login.
async fn flyte2_idp() -> Idp {
    Idp::builder()
        .flyte2()
        .redirect_uri("http://localhost:0/callback")
        .scopes(["all", "offline"])
        .start()
        .await
}

/// A Flyte 2 backend serves no `/config/v1/flyte_client`: the browser login finds its client
/// id, redirect URI and endpoints through the ConnectRPC `AuthMetadataService` instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_login_to_a_flyte_2_backend_discovers_through_connect() {
    let idp = flyte2_idp().await;
    let user = User::approving();
    let auth = authenticator(&idp, Arc::new(MemoryStore::new()), &user);

    let credentials = get(&auth).await.unwrap();
    user.finished().await;

    assert!(!credentials.access_token.expose_secret().is_empty());
    assert!(credentials.refresh_token.is_some());
    assert_eq!(user.opened(), 1);
    assert_eq!(idp.token_requests(GRANT_AUTHORIZATION_CODE).await, 1);
    let paths: Vec<_> = idp
        .stats()
        .await
        .requests
        .into_iter()
        .map(|r| r.path)
        .collect();
    assert!(
        paths
            .iter()
            .any(|p| p.ends_with("/flyteidl2.auth.AuthMetadataService/GetPublicClientConfig")),
        "the client config came from the Connect call: {paths:?}"
    );
    let refreshed = auth.refresh_credentials().await.unwrap();
    assert_ne!(refreshed.access_token, credentials.access_token);
}

/// flyte#6089: behind an authenticating proxy every OAuth request of the browser login carries
/// `proxy-authorization`, discovery and the code exchange included (what the browser itself
/// sends is the browser's business).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_browser_login_sends_proxy_authorization_on_discovery_and_the_code_exchange() {
    let idp = flyte2_idp().await;
    let cfg = flyte_auth::PlatformConfig::builder()
        .no_config_file()
        .no_env()
        .endpoint(idp.config_endpoint())
        .insecure(true)
        .proxy_command(["echo", "proxy-token-7"])
        .build()
        .unwrap();
    let proxy = flyte_auth::proxy_authenticator(&cfg).unwrap().unwrap();
    let http = OAuthClient::new(HttpSettings::new().system_proxy(false))
        .unwrap()
        .with_request_header(cfg.endpoint(), proxy);
    let user = User::approving();
    let auth = authenticator_through(&idp, Arc::new(MemoryStore::new()), &user, http);

    get(&auth).await.unwrap();
    user.finished().await;

    let requests = idp.stats().await.requests;
    let ours: Vec<_> = requests
        .iter()
        .filter(|r| r.path.contains("AuthMetadataService") || r.path.ends_with("/token"))
        .collect();
    assert!(
        ours.iter().any(|r| r.path.ends_with("/token")),
        "no code exchange: {requests:?}"
    );
    assert!(
        ours.iter()
            .any(|r| r.path.contains("GetPublicClientConfig")),
        "no Connect discovery: {requests:?}"
    );
    for request in ours {
        assert_eq!(
            request.proxy_authorization.as_deref(),
            Some("Bearer proxy-token-7"),
            "{request:?}"
        );
    }
}

//! The device login against the real OpenID provider: approved and denied logins, the
//! server's poll interval, a proxy error page while polling, and refresh with rotation. The
//! cache's own promises (a rejected refresh token, a stored login reused) are tested once, in
//! `flyte-auth-core`.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

use std::{
    future::Future,
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime},
};

use flyte_auth_core::{
    Authenticator, CachingAuthenticator, Credentials, MemoryStore, OAuthErrorCode, TokenStore,
};
use flyte_auth_device::{DeviceCodeAuthenticator, DevicePrompt};
use flyte_auth_oauth::{HttpSettings, OAuthClient};
use flyte_auth_tests::{FLYTECTL, Fault, GRANT_DEVICE_CODE, GRANT_REFRESH_TOKEN, Idp, device_flow};
use tokio::sync::mpsc;

/// Bounds every test: a bug shows as a failure, not a hang.
const NO_HANG: Duration = Duration::from_secs(90);

fn http() -> OAuthClient {
    OAuthClient::new(HttpSettings::new().request_timeout(Duration::from_secs(10))).unwrap()
}

/// What the user sees: every prompt the authenticator showed.
#[derive(Clone, Default)]
struct Screen {
    shown: Arc<Mutex<Vec<DevicePrompt>>>,
    next: Arc<Mutex<Option<mpsc::UnboundedSender<DevicePrompt>>>>,
}

impl Screen {
    /// Prompts from now on also arrive on the returned channel.
    fn watch(&self) -> mpsc::UnboundedReceiver<DevicePrompt> {
        let (tx, rx) = mpsc::unbounded_channel();
        *self.next.lock().unwrap() = Some(tx);
        rx
    }

    fn show(&self, prompt: &DevicePrompt) {
        self.shown.lock().unwrap().push(prompt.clone());
        if let Some(tx) = self.next.lock().unwrap().as_ref() {
            let _ = tx.send(prompt.clone());
        }
    }

    fn count(&self) -> usize {
        self.shown.lock().unwrap().len()
    }
}

/// A device authenticator that discovers everything from the provider's Flyte documents,
/// keeps its login in `store`, and shows its prompts on `screen`. The provider sends no
/// `interval` unless started with one, so the configured poll interval is short.
fn authenticator(idp: &Idp, store: &Arc<MemoryStore>, screen: &Screen) -> DeviceCodeAuthenticator {
    let screen = screen.clone();
    let flow = device_flow(idp, http())
        .poll_interval(Duration::from_millis(100))
        .prompt(move |p| screen.show(p))
        .build()
        .unwrap();
    CachingAuthenticator::builder(flow)
        .store(Arc::clone(store) as Arc<dyn TokenStore>)
        .build()
}

/// Runs `login` while the user approves (or denies) the code it shows.
async fn with_user<T>(
    idp: &Idp,
    screen: &Screen,
    approve: bool,
    login: impl Future<Output = T>,
) -> (T, DevicePrompt) {
    let mut prompts = screen.watch();
    let user = async {
        let prompt = prompts.recv().await.expect("the login shows a prompt");
        if approve {
            idp.approve_device_code(&prompt.user_code).await.unwrap();
        } else {
            idp.deny_device_code(&prompt.user_code).await.unwrap();
        }
        prompt
    };
    tokio::time::timeout(NO_HANG, async { tokio::join!(login, user) })
        .await
        .expect("the device login must not hang")
}

async fn log_in(idp: &Idp, auth: &DeviceCodeAuthenticator, screen: &Screen) -> Arc<Credentials> {
    let (credentials, _) = with_user(idp, screen, true, auth.get_credentials()).await;
    credentials.unwrap()
}

#[tokio::test]
async fn a_login_approved_while_polling_gives_tokens_and_stores_them() {
    let idp = Idp::start().await;
    let store = Arc::new(MemoryStore::new());
    let screen = Screen::default();
    let auth = authenticator(&idp, &store, &screen);

    let (credentials, prompt) = with_user(&idp, &screen, true, auth.get_credentials()).await;
    let credentials = credentials.unwrap();

    assert!(!credentials.access_token.expose_secret().is_empty());
    assert!(credentials.refresh_token.is_some());
    assert!(credentials.expires_at().unwrap() > SystemTime::now());
    // oidc-provider sends verification_uri_complete: the prompt shows it.
    assert!(prompt.url_has_code(), "{prompt:?}");
    assert!(prompt.url().contains(&prompt.user_code), "{}", prompt.url());
    assert!(
        prompt.url().starts_with(idp.verification_uri().as_str()),
        "{}",
        prompt.url()
    );
    let stats = idp.stats().await;
    assert_eq!(stats.device_authorization_requests, 1);
    assert!(stats.token_requests(GRANT_DEVICE_CODE) >= 1);
    assert_eq!(stats.token_requests(GRANT_REFRESH_TOKEN), 0);

    let stored = store.retrieve(&idp.endpoint()).unwrap().unwrap();
    assert_eq!(stored.access_token, credentials.access_token);
    assert_eq!(stored.refresh_token, credentials.refresh_token);
    assert_eq!(stored.client_id.as_deref(), Some(FLYTECTL));
    let header = auth.fetch_grpc_call_auth_metadata().unwrap();
    assert_eq!(
        header.value().to_str().unwrap(),
        format!("Bearer {}", credentials.access_token.expose_secret())
    );
}

#[tokio::test]
async fn the_servers_interval_wins_over_a_shorter_configured_one() {
    let idp = Idp::builder()
        .device_poll_interval(Duration::from_secs(1))
        .start()
        .await;
    let store = Arc::new(MemoryStore::new());
    let screen = Screen::default();
    let auth = authenticator(&idp, &store, &screen); // configured: every 100 ms
    let started = Instant::now();

    log_in(&idp, &auth, &screen).await;

    // Polls at 1 s, 2 s, ...: never more than one per elapsed second.
    let polls = idp.token_requests(GRANT_DEVICE_CODE).await;
    let bound = started.elapsed().as_secs() + 1;
    assert!(polls >= 1 && polls <= bound, "{polls} polls in {bound} s");
}

#[tokio::test]
async fn a_denied_login_ends_with_access_denied_and_stores_nothing() {
    let idp = Idp::start().await;
    let store = Arc::new(MemoryStore::new());
    let screen = Screen::default();
    let auth = authenticator(&idp, &store, &screen);

    let (result, _) = with_user(&idp, &screen, false, auth.get_credentials()).await;

    let error = result.unwrap_err();
    assert_eq!(error.oauth().unwrap().code, OAuthErrorCode::AccessDenied);
    assert!(error.to_string().contains("refused"), "{error}");
    assert!(store.is_empty());
    assert!(auth.fetch_grpc_call_auth_metadata().is_none());
}

#[tokio::test]
async fn a_proxy_error_page_while_polling_does_not_end_the_login() {
    let idp = Idp::start().await;
    idp.inject_fault(
        Fault::token(502)
            .times(2)
            .body("<html><body><h1>502 Bad Gateway</h1></body></html>")
            .content_type("text/html"),
    )
    .await;
    let store = Arc::new(MemoryStore::new());
    let screen = Screen::default();
    let auth = authenticator(&idp, &store, &screen);

    let credentials = log_in(&idp, &auth, &screen).await;

    assert!(!credentials.access_token.expose_secret().is_empty());
    let stats = idp.stats().await;
    assert_eq!(stats.injected_faults, 2, "both faulted polls were made");
    assert_eq!(stats.device_authorization_requests, 1, "one login");
}

#[tokio::test]
async fn an_expired_token_is_refreshed_once_and_the_rotated_refresh_token_stored() {
    let idp = Idp::builder()
        .access_token_ttl(Duration::from_secs(2))
        .start()
        .await;
    let store = Arc::new(MemoryStore::new());
    let screen = Screen::default();
    let auth = authenticator(&idp, &store, &screen);
    let first = log_in(&idp, &auth, &screen).await;
    let expires_at = first.expires_at().unwrap();

    // Wait until the access token has expired.
    let deadline = Instant::now() + Duration::from_secs(20);
    while SystemTime::now() <= expires_at {
        assert!(Instant::now() < deadline, "the token never expired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let second = tokio::time::timeout(NO_HANG, auth.get_credentials())
        .await
        .unwrap()
        .unwrap();

    assert_ne!(second.access_token, first.access_token);
    assert_ne!(
        second.refresh_token, first.refresh_token,
        "the provider rotates refresh tokens"
    );
    assert_eq!(idp.token_requests(GRANT_REFRESH_TOKEN).await, 1);
    assert_eq!(
        idp.stats().await.device_authorization_requests,
        1,
        "no new login"
    );
    assert_eq!(screen.count(), 1);
    let stored = store.retrieve(&idp.endpoint()).unwrap().unwrap();
    assert_eq!(stored.access_token, second.access_token);
    assert_eq!(stored.refresh_token, second.refresh_token);
}

//! The credential cache's promises, tested through a scripted flow and an in-memory store.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

use std::{
    collections::VecDeque,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, SystemTime},
};

use flyte_auth_core::{
    Authenticator, BoxFuture, CachingAuthenticator, Credentials, Endpoint, Error, MemoryStore,
    OAuthError, StoreError, StoreLock, TokenFlow, TokenStore,
};

const ENDPOINT: &str = "flyte.example.org:443";
/// [`ENDPOINT`], parsed.
static EP: std::sync::LazyLock<Endpoint> =
    std::sync::LazyLock::new(|| Endpoint::parse(ENDPOINT).expect("a valid endpoint"));

/// A flow whose answers the test scripts; it counts what it was asked to do.
#[derive(Debug, Default)]
struct ScriptedFlow {
    logins: AtomicUsize,
    refreshes: AtomicUsize,
    refresh_answers: Mutex<VecDeque<Result<Credentials, Error>>>,
    delay: Duration,
    client_id: Option<String>,
}

impl ScriptedFlow {
    fn with_delay(delay: Duration) -> Self {
        Self {
            delay,
            ..Self::default()
        }
    }

    fn answer_refresh(&self, answer: Result<Credentials, Error>) {
        self.refresh_answers.lock().unwrap().push_back(answer);
    }

    fn logins(&self) -> usize {
        self.logins.load(Ordering::SeqCst)
    }

    fn refreshes(&self) -> usize {
        self.refreshes.load(Ordering::SeqCst)
    }
}

impl TokenFlow for ScriptedFlow {
    fn endpoint(&self) -> &Endpoint {
        &EP
    }

    fn login(&self) -> BoxFuture<'_, Result<Credentials, Error>> {
        Box::pin(async move {
            let n = self.logins.fetch_add(1, Ordering::SeqCst) + 1;
            tokio::time::sleep(self.delay).await;
            Ok(Credentials::new(format!("login-{n}"), ENDPOINT)
                .with_refresh_token(format!("refresh-{n}"))
                .with_expires_in(3600))
        })
    }

    fn refresh<'a>(
        &'a self,
        _current: &'a Credentials,
    ) -> Option<BoxFuture<'a, Result<Credentials, Error>>> {
        Some(Box::pin(async move {
            let n = self.refreshes.fetch_add(1, Ordering::SeqCst) + 1;
            tokio::time::sleep(self.delay).await;
            let scripted = self.refresh_answers.lock().unwrap().pop_front();
            scripted.unwrap_or_else(|| {
                Ok(Credentials::new(format!("refreshed-{n}"), ENDPOINT).with_expires_in(3600))
            })
        }))
    }

    fn client_id(&self) -> Option<String> {
        self.client_id.clone()
    }
}

fn expired(access: &str) -> Credentials {
    Credentials::new(access, ENDPOINT)
        .with_refresh_token("old-refresh")
        .with_expires_at(SystemTime::now() - Duration::from_secs(60))
}

fn authenticator(
    flow: &Arc<ScriptedFlow>,
    store: &Arc<MemoryStore>,
) -> CachingAuthenticator<Arc<ScriptedFlow>> {
    CachingAuthenticator::builder(Arc::clone(flow))
        .store(store.clone())
        .build()
}

fn header_of(auth: &dyn Authenticator) -> String {
    auth.fetch_grpc_call_auth_metadata()
        .expect("a fresh header")
        .value()
        .to_str()
        .unwrap()
        .to_owned()
}

fn invalid_grant() -> Error {
    OAuthError::new("invalid_grant")
        .with_description("refresh token expired")
        .with_status(400)
        .into()
}

fn connection_refused() -> Error {
    Error::Transport {
        url: "https://idp.example.org/token".into(),
        message: "connection refused".into(),
        source: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_tasks_on_an_expired_token_cause_one_token_request() {
    let flow = Arc::new(ScriptedFlow::with_delay(Duration::from_millis(50)));
    let store = Arc::new(MemoryStore::new());
    store.store(&EP, &expired("stale")).unwrap();
    let auth = Arc::new(authenticator(&flow, &store));

    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let auth = Arc::clone(&auth);
            tokio::spawn(async move { auth.get_credentials().await })
        })
        .collect();
    for task in tasks {
        let creds = task.await.unwrap().unwrap();
        assert_eq!(creds.access_token.expose_secret(), "refreshed-1");
    }

    assert_eq!(flow.refreshes(), 1);
    assert_eq!(flow.logins(), 0);
    let stored = store.retrieve(&EP).unwrap().unwrap();
    assert_eq!(stored.access_token.expose_secret(), "refreshed-1");
    // The answer had no refresh token: the old one is carried forward and persisted.
    assert_eq!(stored.refresh_token.unwrap().expose_secret(), "old-refresh");
}

#[tokio::test]
async fn a_rejected_refresh_token_is_deleted_and_the_full_login_runs_once() {
    let flow = Arc::new(ScriptedFlow::default());
    let store = Arc::new(MemoryStore::new());
    store.store(&EP, &expired("stale")).unwrap();
    flow.answer_refresh(Err(invalid_grant()));
    let auth = authenticator(&flow, &store);

    let creds = auth.get_credentials().await.unwrap();

    assert_eq!(creds.access_token.expose_secret(), "login-1");
    assert_eq!((flow.refreshes(), flow.logins()), (1, 1));
    let stored = store.retrieve(&EP).unwrap().unwrap();
    assert_eq!(stored.access_token.expose_secret(), "login-1");
    assert_eq!(stored.refresh_token.unwrap().expose_secret(), "refresh-1");
}

#[tokio::test]
async fn a_transient_refresh_failure_deletes_nothing_and_returns_the_error() {
    let flow = Arc::new(ScriptedFlow::default());
    let store = Arc::new(MemoryStore::new());
    store.store(&EP, &expired("stale")).unwrap();
    flow.answer_refresh(Err(connection_refused()));
    let auth = authenticator(&flow, &store);

    let err = auth.get_credentials().await.unwrap_err();

    assert!(err.is_transient(), "{err}");
    assert_eq!(flow.logins(), 0, "no login after a network error");
    let stored = store.retrieve(&EP).unwrap().unwrap();
    assert_eq!(stored.access_token.expose_secret(), "stale");
    assert_eq!(stored.refresh_token.unwrap().expose_secret(), "old-refresh");

    // The next call tries again and succeeds.
    let creds = auth.get_credentials().await.unwrap();
    assert_eq!(creds.access_token.expose_secret(), "refreshed-2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_reaches_every_waiter_and_is_requested_once() {
    let flow = Arc::new(ScriptedFlow::with_delay(Duration::from_millis(50)));
    let store = Arc::new(MemoryStore::new());
    store.store(&EP, &expired("stale")).unwrap();
    flow.answer_refresh(Err(connection_refused()));
    let auth = Arc::new(authenticator(&flow, &store));

    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let auth = Arc::clone(&auth);
            tokio::spawn(async move { auth.get_credentials().await })
        })
        .collect();
    for task in tasks {
        let err = task.await.unwrap().unwrap_err();
        assert!(matches!(err, Error::Transport { .. }), "{err}");
    }
    assert_eq!(flow.refreshes(), 1);
}

#[tokio::test]
async fn the_header_changes_after_a_refresh() {
    let flow = Arc::new(ScriptedFlow::default());
    let store = Arc::new(MemoryStore::new());
    let auth = authenticator(&flow, &store);

    auth.get_credentials().await.unwrap();
    assert_eq!(header_of(&auth), "Bearer login-1");

    auth.refresh_credentials().await.unwrap();
    assert_eq!(header_of(&auth), "Bearer refreshed-1");
    assert_eq!(flow.refreshes(), 1);
}

/// A flow with no refresh grant (client credentials, an external command): every renewal is a
/// new login.
#[derive(Debug, Default)]
struct LoginOnlyFlow {
    logins: AtomicUsize,
}

impl TokenFlow for LoginOnlyFlow {
    fn endpoint(&self) -> &Endpoint {
        &EP
    }

    fn login(&self) -> BoxFuture<'_, Result<Credentials, Error>> {
        Box::pin(async move {
            let n = self.logins.fetch_add(1, Ordering::SeqCst) + 1;
            tokio::time::sleep(Duration::from_millis(200)).await;
            // A refresh token the flow cannot redeem, as some token endpoints send one anyway.
            Ok(Credentials::new(format!("login-{n}"), ENDPOINT)
                .with_refresh_token("unused")
                .with_expires_in(3600))
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_refresh_grant_an_expired_or_refused_token_is_replaced_by_one_login() {
    let flow = Arc::new(LoginOnlyFlow::default());
    let store = Arc::new(MemoryStore::new());
    store.store(&EP, &expired("stale")).unwrap();
    let auth = Arc::new(
        CachingAuthenticator::builder(Arc::clone(&flow))
            .store(store.clone())
            .build(),
    );

    let creds = auth.get_credentials().await.unwrap();
    assert_eq!(creds.access_token.expose_secret(), "login-1");

    // The server refused the token on many calls at once: each caller asks for new credentials.
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let auth = Arc::clone(&auth);
            tokio::spawn(async move { auth.refresh_credentials().await })
        })
        .collect();
    for task in tasks {
        let creds = task.await.unwrap().unwrap();
        assert_eq!(creds.access_token.expose_secret(), "login-2");
    }
    assert_eq!(flow.logins.load(Ordering::SeqCst), 2);
    assert_eq!(header_of(&*auth), "Bearer login-2");
    let stored = store.retrieve(&EP).unwrap().unwrap();
    assert_eq!(stored.access_token.expose_secret(), "login-2");
}

#[tokio::test]
async fn creating_an_authenticator_touches_neither_the_store_nor_the_flow() {
    let flow = Arc::new(ScriptedFlow::default());
    let store = Arc::new(MemoryStore::new());
    // A broken store would fail the first call that reaches it.
    store.fail_next(StoreError::Denied {
        store: "memory",
        message: "keyring is locked".into(),
    });
    let auth = authenticator(&flow, &store);
    assert!(auth.fetch_grpc_call_auth_metadata().is_none());
    assert_eq!((flow.logins(), flow.refreshes()), (0, 0));

    // The first real call meets the locked store: a warning and a miss, not a failure.
    let creds = auth.get_credentials().await.unwrap();
    assert_eq!(creds.access_token.expose_secret(), "login-1");
}

#[tokio::test]
async fn fresh_stored_credentials_are_used_without_any_token_request() {
    let flow = Arc::new(ScriptedFlow::default());
    let store = Arc::new(MemoryStore::new());
    store
        .store(
            &EP,
            &Credentials::new("stored", ENDPOINT).with_expires_in(3600),
        )
        .unwrap();
    let auth = authenticator(&flow, &store);

    assert_eq!(
        auth.get_credentials()
            .await
            .unwrap()
            .access_token
            .expose_secret(),
        "stored"
    );
    assert_eq!((flow.logins(), flow.refreshes()), (0, 0));
}

#[tokio::test]
async fn credentials_are_refreshed_a_margin_before_expiry() {
    let flow = Arc::new(ScriptedFlow::default());
    // A 5-minute token with 30 s left is past its refresh window (from a quarter of its
    // lifetime before expiry to an eighth): refreshed now, before any server rejects it.
    let store = Arc::new(MemoryStore::new());
    store
        .store(
            &EP,
            &Credentials::new("short-lived", ENDPOINT)
                .with_refresh_token("r")
                .with_expires_in(300)
                .with_expires_at(SystemTime::now() + Duration::from_secs(30)),
        )
        .unwrap();
    let creds = authenticator(&flow, &store)
        .get_credentials()
        .await
        .unwrap();
    assert_eq!(creds.access_token.expose_secret(), "refreshed-1");

    // A fresh 5-minute token is served as is, although the default margin is 5 minutes:
    // the margin shrinks for short lifetimes.
    let store = Arc::new(MemoryStore::new());
    store
        .store(
            &EP,
            &Credentials::new("five-minutes", ENDPOINT).with_expires_in(300),
        )
        .unwrap();
    let auth = authenticator(&flow, &store);
    let creds = auth.get_credentials().await.unwrap();
    assert_eq!(creds.access_token.expose_secret(), "five-minutes");
    assert_eq!(header_of(&auth), "Bearer five-minutes");
    assert_eq!(flow.refreshes(), 1);
}

#[tokio::test]
async fn a_store_write_failure_is_not_a_login_failure() {
    let flow = Arc::new(ScriptedFlow::default());
    let store = Arc::new(MemoryStore::new());
    let auth = authenticator(&flow, &store);
    // First call: the read misses; then the write fails.
    store.fail_next(StoreError::Unavailable {
        store: "memory",
        message: "no D-Bus".into(),
    });
    store.fail_next(StoreError::Unavailable {
        store: "memory",
        message: "no D-Bus".into(),
    });
    let creds = auth.get_credentials().await.unwrap();
    assert_eq!(creds.access_token.expose_secret(), "login-1");
    assert!(store.is_empty());
}

/// A fresh token stored by another client (`other-app`) for the same endpoint.
fn another_clients() -> Credentials {
    Credentials::new("for-someone-else", ENDPOINT)
        .with_expires_in(3600)
        .with_client_id("other-app")
}

#[tokio::test]
async fn stored_credentials_of_another_client_are_not_served() {
    let flow = Arc::new(ScriptedFlow {
        client_id: Some("flytectl".into()),
        ..ScriptedFlow::default()
    });
    let store = Arc::new(MemoryStore::new());
    store.store(&EP, &another_clients()).unwrap();
    let auth = authenticator(&flow, &store);

    let creds = auth.get_credentials().await.unwrap();
    assert_eq!(creds.access_token.expose_secret(), "login-1");
    assert_eq!(creds.client_id.as_deref(), Some("flytectl"));
}

/// A store that another process updates while we wait for its lock.
#[derive(Debug)]
struct RacingStore {
    inner: MemoryStore,
    other_process_refresh: Mutex<Option<Credentials>>,
    locks: AtomicUsize,
}

impl TokenStore for RacingStore {
    fn store(&self, endpoint: &Endpoint, credentials: &Credentials) -> Result<(), StoreError> {
        self.inner.store(endpoint, credentials)
    }
    fn retrieve(&self, endpoint: &Endpoint) -> Result<Option<Credentials>, StoreError> {
        self.inner.retrieve(endpoint)
    }
    fn delete(&self, endpoint: &Endpoint) -> Result<(), StoreError> {
        self.inner.delete(endpoint)
    }
    fn lock(&self, endpoint: &Endpoint) -> Result<Option<StoreLock>, StoreError> {
        self.locks.fetch_add(1, Ordering::SeqCst);
        // While we waited, the other process refreshed and stored its result.
        if let Some(theirs) = self.other_process_refresh.lock().unwrap().take() {
            self.inner.store(endpoint, &theirs)?;
        }
        Ok(Some(StoreLock::new(())))
    }
    fn name(&self) -> &'static str {
        "racing"
    }
}

#[tokio::test]
async fn under_the_store_lock_a_token_refreshed_by_another_process_is_reused() {
    let flow = Arc::new(ScriptedFlow::default());
    let store = Arc::new(RacingStore {
        inner: MemoryStore::new(),
        other_process_refresh: Mutex::new(Some(
            Credentials::new("theirs", ENDPOINT)
                .with_refresh_token("rotated-by-them")
                .with_expires_in(3600),
        )),
        locks: AtomicUsize::new(0),
    });
    store.store(&EP, &expired("stale")).unwrap();
    let auth = CachingAuthenticator::builder(Arc::clone(&flow))
        .store(store.clone())
        .build();

    let creds = auth.get_credentials().await.unwrap();

    assert_eq!(creds.access_token.expose_secret(), "theirs");
    assert_eq!(
        flow.refreshes(),
        0,
        "the rotated refresh token was not redeemed twice"
    );
    assert_eq!(store.locks.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn under_the_store_lock_the_newest_refresh_token_is_the_one_redeemed() {
    /// Records which refresh token the flow was given.
    #[derive(Debug, Default)]
    struct Recording(Mutex<Vec<String>>);
    impl TokenFlow for Recording {
        fn endpoint(&self) -> &Endpoint {
            &EP
        }
        fn login(&self) -> BoxFuture<'_, Result<Credentials, Error>> {
            Box::pin(async { Err(Error::authentication("no login in this test")) })
        }
        fn refresh<'a>(
            &'a self,
            current: &'a Credentials,
        ) -> Option<BoxFuture<'a, Result<Credentials, Error>>> {
            let used = current.refresh_token.as_ref().unwrap().expose_secret();
            self.0.lock().unwrap().push(used.to_owned());
            Some(Box::pin(async {
                Ok(Credentials::new("new", ENDPOINT).with_expires_in(3600))
            }))
        }
    }

    let flow = Arc::new(Recording::default());
    // The other process refreshed, but its access token is already stale too.
    let mut theirs = expired("theirs-but-stale");
    theirs.refresh_token = Some("rotated-by-them".into());
    let store = Arc::new(RacingStore {
        inner: MemoryStore::new(),
        other_process_refresh: Mutex::new(Some(theirs)),
        locks: AtomicUsize::new(0),
    });
    store.store(&EP, &expired("stale")).unwrap();
    let auth = CachingAuthenticator::builder(Arc::clone(&flow))
        .store(store.clone())
        .build();

    auth.get_credentials().await.unwrap();
    assert_eq!(*flow.0.lock().unwrap(), vec!["rotated-by-them".to_owned()]);
}

#[tokio::test]
async fn debug_output_of_the_authenticator_shows_no_secret() {
    let flow = Arc::new(ScriptedFlow::default());
    let store = Arc::new(MemoryStore::new());
    let auth = authenticator(&flow, &store);
    auth.get_credentials().await.unwrap();
    let header = auth.fetch_grpc_call_auth_metadata().unwrap();
    let printed = format!(
        "{auth:?} {header:?} {:?}",
        auth.get_credentials().await.unwrap()
    );
    assert!(!printed.contains("login-1"), "{printed}");
    assert!(!printed.contains("refresh-1"), "{printed}");
}

#[tokio::test]
async fn clear_forgets_memory_and_store() {
    let flow = Arc::new(ScriptedFlow::default());
    let store = Arc::new(MemoryStore::new());
    let auth = authenticator(&flow, &store);
    auth.get_credentials().await.unwrap();
    assert!(!store.is_empty());

    auth.clear().unwrap();
    assert!(store.is_empty());
    assert!(auth.fetch_grpc_call_auth_metadata().is_none());
    assert_eq!(
        auth.get_credentials()
            .await
            .unwrap()
            .access_token
            .expose_secret(),
        "login-2"
    );
}

#[tokio::test]
async fn a_stored_token_keeps_the_header_the_server_named_before_any_discovery() {
    /// Learns the server's header name only when it logs in (as discovery would tell it).
    #[derive(Debug, Default)]
    struct Discovering(Mutex<bool>);
    impl TokenFlow for Discovering {
        fn endpoint(&self) -> &Endpoint {
            &EP
        }
        fn login(&self) -> BoxFuture<'_, Result<Credentials, Error>> {
            *self.0.lock().unwrap() = true;
            Box::pin(async { Ok(Credentials::new("t", ENDPOINT).with_expires_in(3600)) })
        }
        fn header_name(&self) -> Option<http::HeaderName> {
            self.0
                .lock()
                .unwrap()
                .then(|| http::HeaderName::from_static("flyte-authorization"))
        }
    }

    let store = Arc::new(MemoryStore::new());
    let first = CachingAuthenticator::builder(Discovering::default())
        .store(store.clone())
        .build();
    first.get_credentials().await.unwrap();
    assert_eq!(
        first
            .fetch_grpc_call_auth_metadata()
            .unwrap()
            .name()
            .as_str(),
        "flyte-authorization"
    );

    // A new process: the flow has not discovered anything, the stored token says where it goes.
    let second = CachingAuthenticator::builder(Discovering::default())
        .store(store.clone())
        .build();
    second.get_credentials().await.unwrap();
    assert_eq!(
        second
            .fetch_grpc_call_auth_metadata()
            .unwrap()
            .name()
            .as_str(),
        "flyte-authorization"
    );
}

// ---------------------------------------------------------------------------------------------
// Time, on a clock the test moves: no test sleeps until a token expires.

/// A clock the test moves by hand.
#[derive(Debug)]
struct ManualClock(Mutex<SystemTime>);

impl ManualClock {
    /// Starts at the current whole second (stored expiries are whole seconds).
    fn new() -> Arc<Self> {
        let secs = unix_secs(SystemTime::now());
        Arc::new(Self(Mutex::new(
            SystemTime::UNIX_EPOCH + Duration::from_secs(secs),
        )))
    }
    fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += by;
    }
}

impl flyte_auth_core::Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.0.lock().unwrap()
    }
}

fn on_clock(
    flow: &Arc<ScriptedFlow>,
    store: &Arc<MemoryStore>,
    clock: &Arc<ManualClock>,
) -> CachingAuthenticator<Arc<ScriptedFlow>> {
    CachingAuthenticator::builder(Arc::clone(flow))
        .store(store.clone())
        .clock(clock.clone())
        .build()
}

#[tokio::test]
async fn expiry_and_refresh_follow_the_injected_clock() {
    let (flow, store, clock) = (
        Arc::new(ScriptedFlow::default()),
        Arc::new(MemoryStore::new()),
        ManualClock::new(),
    );
    let auth = on_clock(&flow, &store, &clock);
    assert_eq!(
        auth.get_credentials()
            .await
            .unwrap()
            .access_token
            .expose_secret(),
        "login-1"
    );
    // The hour is counted on the injected clock.
    let stored = store.retrieve(&EP).unwrap().unwrap();
    assert_eq!(
        stored.expires_at(),
        Some(clock.now_for_test() + Duration::from_secs(3600))
    );

    clock.advance(Duration::from_secs(54 * 60));
    assert_eq!(
        header_of(&auth),
        "Bearer login-1",
        "6 minutes left: still served"
    );
    clock.advance(Duration::from_secs(4 * 60));
    assert!(
        auth.fetch_grpc_call_auth_metadata().is_none(),
        "2 minutes left: past the refresh window (5 to 2.5 minutes before expiry), not served \
         from the hot path"
    );
    let creds = auth.get_credentials().await.unwrap();
    assert_eq!(creds.access_token.expose_secret(), "refreshed-1");
    assert_eq!((flow.logins(), flow.refreshes()), (1, 1));
}

impl ManualClock {
    fn now_for_test(&self) -> SystemTime {
        flyte_auth_core::Clock::now(self)
    }
}

#[tokio::test]
async fn a_stored_token_of_unknown_expiry_is_refreshed_once_and_its_expiry_stored_for_the_next_process()
 {
    let (flow, store, clock) = (
        Arc::new(ScriptedFlow::default()),
        Arc::new(MemoryStore::new()),
        ManualClock::new(),
    );
    // What flytekit stores: an opaque token and a refresh token, no expiry; an id token
    // whose `exp` is hours away says nothing about the access token.
    let id_token = {
        use base64::Engine as _;
        let enc = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let exp = unix_secs(clock.now_for_test()) + 7200;
        format!(
            "{}.{}.sig",
            enc.encode(br#"{"alg":"none"}"#),
            enc.encode(format!(r#"{{"exp":{exp}}}"#))
        )
    };
    store
        .store(
            &EP,
            &Credentials::new("opaque-dead", ENDPOINT)
                .with_refresh_token("r0")
                .with_id_token(id_token),
        )
        .unwrap();

    let first = on_clock(&flow, &store, &clock);
    let creds = first.get_credentials().await.unwrap();
    assert_eq!(creds.access_token.expose_secret(), "refreshed-1");
    assert_eq!(flow.refreshes(), 1);
    let stored = store.retrieve(&EP).unwrap().unwrap();
    assert_eq!(stored.access_token.expose_secret(), "refreshed-1");
    assert!(stored.expiry_is_known(), "the server's expiry is stored");

    // The next process right after: no request.
    clock.advance(Duration::from_secs(1));
    let second = on_clock(&flow, &store, &clock);
    let creds = second.get_credentials().await.unwrap();
    assert_eq!(creds.access_token.expose_secret(), "refreshed-1");
    assert_eq!((flow.logins(), flow.refreshes()), (0, 1));
}

fn unix_secs(at: SystemTime) -> u64 {
    at.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs()
}

#[tokio::test]
async fn a_stored_token_of_unknown_expiry_without_refresh_token_is_used_as_long_as_it_lasts() {
    let (flow, store, clock) = (
        Arc::new(ScriptedFlow::default()),
        Arc::new(MemoryStore::new()),
        ManualClock::new(),
    );
    store
        .store(&EP, &Credentials::new("opaque-forever", ENDPOINT))
        .unwrap();
    let auth = on_clock(&flow, &store, &clock);
    let creds = auth.get_credentials().await.unwrap();
    assert!(!creds.expiry_is_known());
    clock.advance(Duration::from_secs(24 * 3600));
    assert_eq!(header_of(&auth), "Bearer opaque-forever");
    auth.get_credentials().await.unwrap();
    assert_eq!((flow.logins(), flow.refreshes()), (0, 0));
    // Only the server's rejection ends it.
    let creds = auth.refresh_credentials().await.unwrap();
    assert_eq!(creds.access_token.expose_secret(), "login-1");
}

/// A flow whose tokens come without any stated lifetime.
#[derive(Debug, Default)]
struct SilentFlow {
    logins: AtomicUsize,
}

impl TokenFlow for SilentFlow {
    fn endpoint(&self) -> &Endpoint {
        &EP
    }
    fn login(&self) -> BoxFuture<'_, Result<Credentials, Error>> {
        Box::pin(async move {
            let n = self.logins.fetch_add(1, Ordering::SeqCst) + 1;
            Ok(Credentials::new(format!("silent-{n}"), ENDPOINT))
        })
    }
}

#[tokio::test]
async fn the_trust_window_of_a_token_without_lifetime_starts_once_and_is_stored() {
    let store = Arc::new(MemoryStore::new());
    let clock = ManualClock::new();
    let flow = Arc::new(SilentFlow::default());
    let auth = |flow: &Arc<SilentFlow>| {
        CachingAuthenticator::builder(Arc::clone(flow))
            .store(store.clone())
            .clock(clock.clone())
            .build()
    };
    let arrived = clock.now_for_test();
    auth(&flow).get_credentials().await.unwrap();
    let stored = store.retrieve(&EP).unwrap().unwrap();
    assert_eq!(
        stored.expires_at(),
        Some(arrived + flyte_auth_core::UNKNOWN_EXPIRY_LIFETIME)
    );

    // Later processes inside the window use it; they do not start a window of their own.
    clock.advance(Duration::from_secs(3 * 60));
    let later = auth(&flow).get_credentials().await.unwrap();
    assert_eq!(later.access_token.expose_secret(), "silent-1");
    clock.advance(Duration::from_secs(3 * 60));
    let after = auth(&flow).get_credentials().await.unwrap();
    assert_eq!(after.access_token.expose_secret(), "silent-2");
    assert_eq!(flow.logins.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_token_without_lifetime_is_refreshed_in_its_window_by_a_later_process_too() {
    let store = Arc::new(MemoryStore::new());
    let clock = ManualClock::new();
    let flow = Arc::new(SilentFlow::default());
    let auth = |flow: &Arc<SilentFlow>| {
        CachingAuthenticator::builder(Arc::clone(flow))
            .store(store.clone())
            .clock(clock.clone())
            .build()
    };
    auth(&flow).get_credentials().await.unwrap();
    let stored = store.retrieve(&EP).unwrap().unwrap();
    assert_eq!(
        stored.lifetime(),
        Some(flyte_auth_core::UNKNOWN_EXPIRY_LIFETIME),
        "the assumed lifetime is stored with the token"
    );
    // 30 seconds before the expiry: past the window of a five-minute token (75 to 37.5
    // seconds before it), for a process that reads it now as for the one that logged in. A
    // lifetime counted from each reading would be 30 seconds, and the token served on.
    clock.advance(flyte_auth_core::UNKNOWN_EXPIRY_LIFETIME - Duration::from_secs(30));
    let later = auth(&flow);
    assert!(
        later.fresh_credentials().is_none(),
        "served past its window"
    );
    let creds = later.get_credentials().await.unwrap();
    assert_eq!(creds.access_token.expose_secret(), "silent-2");
}

/// A flow whose tokens are JWTs that expire in an hour, with no `expires_in`.
#[derive(Debug)]
struct JwtFlow {
    clock: Arc<ManualClock>,
    logins: AtomicUsize,
}

impl TokenFlow for JwtFlow {
    fn endpoint(&self) -> &Endpoint {
        &EP
    }
    fn login(&self) -> BoxFuture<'_, Result<Credentials, Error>> {
        use base64::Engine as _;
        let n = self.logins.fetch_add(1, Ordering::SeqCst) + 1;
        let enc = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let exp = unix_secs(self.clock.now_for_test()) + 3600;
        let jwt = format!(
            "{}.{}.sig{n}",
            enc.encode(br#"{"alg":"none"}"#),
            enc.encode(format!(r#"{{"exp":{exp}}}"#))
        );
        Box::pin(async move { Ok(Credentials::new(jwt, ENDPOINT)) })
    }
}

#[tokio::test]
async fn the_lifetime_of_a_jwt_is_counted_once_when_it_arrives() {
    let store = Arc::new(MemoryStore::new());
    let clock = ManualClock::new();
    let flow = Arc::new(JwtFlow {
        clock: clock.clone(),
        logins: AtomicUsize::new(0),
    });
    let auth = || {
        CachingAuthenticator::builder(Arc::clone(&flow))
            .store(store.clone())
            .clock(clock.clone())
            .build()
    };
    auth().get_credentials().await.unwrap();
    let stored = store.retrieve(&EP).unwrap().unwrap();
    assert_eq!(stored.lifetime(), Some(Duration::from_secs(3600)));
    // Two minutes before the expiry: past the hour-long token's window (five to two and a
    // half minutes before it), also for a process that reads it only now.
    clock.advance(Duration::from_secs(58 * 60));
    let later = auth();
    assert!(
        later.fresh_credentials().is_none(),
        "served past its window"
    );
    later.get_credentials().await.unwrap();
    assert_eq!(flow.logins.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_stored_token_with_an_expiry_and_no_lifetime_is_refreshed_the_full_margin_before() {
    let (flow, store, clock) = (
        Arc::new(ScriptedFlow::default()),
        Arc::new(MemoryStore::new()),
        ManualClock::new(),
    );
    // What flytectl stores: an expiry and no lifetime. Ten seconds left is inside the
    // five-minute margin, not a token to serve for its last quarter.
    store
        .store(
            &EP,
            &Credentials::new("flytectl-token", ENDPOINT)
                .with_refresh_token("r0")
                .with_expires_at(clock.now_for_test() + Duration::from_secs(10)),
        )
        .unwrap();
    let auth = on_clock(&flow, &store, &clock);
    assert!(
        auth.fresh_credentials().is_none(),
        "served for its last seconds"
    );
    let creds = auth.get_credentials().await.unwrap();
    assert_eq!(creds.access_token.expose_secret(), "refreshed-1");
    assert_eq!((flow.logins(), flow.refreshes()), (0, 1));
}

/// A store that says its copies of the login disagree, and counts writes.
#[derive(Debug, Default)]
struct DisagreeingStore {
    inner: MemoryStore,
    writes: AtomicUsize,
}

impl TokenStore for DisagreeingStore {
    fn store(&self, endpoint: &Endpoint, credentials: &Credentials) -> Result<(), StoreError> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.inner.store(endpoint, credentials)
    }
    fn retrieve(&self, endpoint: &Endpoint) -> Result<Option<Credentials>, StoreError> {
        let mut stored = self.inner.retrieve(endpoint)?;
        if let Some(c) = stored.as_mut() {
            c.set_stale_copies(self.writes.load(Ordering::SeqCst) == 1);
        }
        Ok(stored)
    }
    fn delete(&self, endpoint: &Endpoint) -> Result<(), StoreError> {
        self.inner.delete(endpoint)
    }
    fn lock(&self, _endpoint: &Endpoint) -> Result<Option<StoreLock>, StoreError> {
        Ok(Some(StoreLock::new(())))
    }
    fn name(&self) -> &'static str {
        "disagreeing"
    }
}

/// A flow, a store holding `stored` (for an hour) whose copies disagree until it is written
/// back once, and the authenticator over both.
fn with_disagreeing_copies(
    stored: Credentials,
) -> (
    Arc<ScriptedFlow>,
    Arc<DisagreeingStore>,
    CachingAuthenticator<Arc<ScriptedFlow>>,
) {
    let flow = Arc::new(ScriptedFlow::default());
    let store = Arc::new(DisagreeingStore::default());
    store.store(&EP, &stored.with_expires_in(3600)).unwrap();
    let auth = CachingAuthenticator::builder(Arc::clone(&flow))
        .store(store.clone())
        .build();
    (flow, store, auth)
}

#[tokio::test]
async fn copies_that_disagree_are_written_back_without_a_token_request() {
    let (flow, store, auth) =
        with_disagreeing_copies(Credentials::new("current", ENDPOINT).with_refresh_token("r"));
    let creds = auth.get_credentials().await.unwrap();
    assert_eq!(creds.access_token.expose_secret(), "current");
    assert!(!creds.has_stale_copies());
    assert_eq!(store.writes.load(Ordering::SeqCst), 2, "written back once");
    assert_eq!((flow.logins(), flow.refreshes()), (0, 0));
}

#[test]
fn a_fresh_stored_token_is_served_without_a_runtime_and_then_from_memory() {
    let flow = Arc::new(ScriptedFlow::default());
    let store = Arc::new(MemoryStore::new());
    store
        .store(
            &EP,
            &Credentials::new("stored", ENDPOINT).with_expires_in(3600),
        )
        .unwrap();
    // Through `Arc<dyn Authenticator>`, as the factory returns it (the `Arc` forwards).
    let auth: Arc<dyn Authenticator> = Arc::new(authenticator(&flow, &store));

    let credentials = Authenticator::fresh_credentials(&auth).expect("the stored token is fresh");
    assert_eq!(credentials.access_token.expose_secret(), "stored");
    assert_eq!(header_of(&*auth), "Bearer stored", "installed in memory");
    // From memory now: a failing store is not read again.
    store.fail_next(StoreError::Unavailable {
        store: "memory",
        message: "would fail".into(),
    });
    let again = auth.fresh_credentials().expect("still fresh");
    assert!(Arc::ptr_eq(&credentials, &again));
    assert_eq!((flow.logins(), flow.refreshes()), (0, 0));
}

#[test]
fn no_fresh_credentials_when_a_refresh_or_a_login_is_due() {
    let flow = Arc::new(ScriptedFlow {
        client_id: Some("flytectl".into()),
        ..ScriptedFlow::default()
    });
    // Nothing stored.
    let store = Arc::new(MemoryStore::new());
    assert!(authenticator(&flow, &store).fresh_credentials().is_none());
    // Expired, with a refresh token: left for `get_credentials` to refresh, and kept.
    store.store(&EP, &expired("old")).unwrap();
    let auth = authenticator(&flow, &store);
    assert!(auth.fresh_credentials().is_none());
    assert!(auth.fetch_grpc_call_auth_metadata().is_none());
    assert!(store.retrieve(&EP).unwrap().is_some(), "kept");
    // Another client's: not served.
    store.store(&EP, &another_clients()).unwrap();
    assert!(authenticator(&flow, &store).fresh_credentials().is_none());
    // An unreadable store: a miss, not a panic; once it reads, its fresh token is served.
    store
        .store(
            &EP,
            &Credentials::new("own", ENDPOINT).with_expires_in(3600),
        )
        .unwrap();
    store.fail_next(StoreError::Unavailable {
        store: "memory",
        message: "no D-Bus".into(),
    });
    let auth = authenticator(&flow, &store);
    assert!(auth.fresh_credentials().is_none());
    let own = auth.fresh_credentials().expect("read on the next call");
    assert_eq!(own.access_token.expose_secret(), "own");
    assert_eq!((flow.logins(), flow.refreshes()), (0, 0));
}

#[tokio::test]
async fn stored_copies_that_disagree_are_not_fresh_until_written_back() {
    let (flow, store, auth) = with_disagreeing_copies(Credentials::new("current", ENDPOINT));
    assert!(
        auth.fresh_credentials().is_none(),
        "the copies are mended first"
    );
    auth.get_credentials().await.unwrap();
    assert_eq!(store.writes.load(Ordering::SeqCst), 2, "written back once");
    let fresh = auth.fresh_credentials().expect("fresh once mended");
    assert_eq!(fresh.access_token.expose_secret(), "current");
    assert_eq!((flow.logins(), flow.refreshes()), (0, 0));
}

#[tokio::test]
async fn asking_whether_there_are_credentials_does_not_skip_mending_the_copies() {
    let (flow, store, auth) = with_disagreeing_copies(Credentials::new("current", ENDPOINT));
    assert!(auth.load_credentials_without_login());
    let header = auth.auth_header().await.unwrap();
    assert_eq!(header.value(), "Bearer current");
    assert_eq!(store.writes.load(Ordering::SeqCst), 2, "written back once");
    assert_eq!((flow.logins(), flow.refreshes()), (0, 0));
}

/// The first second, counted from the login, at which the hot path no longer serves an
/// hour-long token, for an authenticator whose draws are seeded with `seed`.
async fn refresh_second(seed: u64) -> u64 {
    let (flow, store, clock) = (
        Arc::new(ScriptedFlow::default()),
        Arc::new(MemoryStore::new()),
        ManualClock::new(),
    );
    let auth = CachingAuthenticator::builder(flow)
        .store(store)
        .clock(clock.clone())
        .jitter_seed(seed)
        .build();
    auth.get_credentials().await.unwrap();
    // Served until five minutes before expiry, the earliest refresh point, as ever.
    clock.advance(Duration::from_secs(55 * 60 - 1));
    for second in 55 * 60 - 1..=3600 {
        if auth.fetch_grpc_call_auth_metadata().is_none() {
            return second;
        }
        clock.advance(Duration::from_secs(1));
    }
    panic!("still served at expiry");
}

#[tokio::test]
async fn refresh_points_are_drawn_inside_the_window_and_spread_over_it() {
    let mut seconds = Vec::new();
    for seed in 0..200 {
        let second = refresh_second(seed).await;
        // From the 5-minute margin before expiry to half of it.
        assert!(
            (55 * 60..=3600 - 150).contains(&second),
            "seed {seed}: refresh at {second} s"
        );
        seconds.push(second);
    }
    // A fleet that logged in at the same second does not refresh at the same second.
    seconds.sort_unstable();
    let (first, last) = (seconds[0], seconds[seconds.len() - 1]);
    assert!(
        first < 55 * 60 + 15 && last > 3600 - 165,
        "over the whole window: {first}..{last}"
    );
    seconds.dedup();
    assert!(seconds.len() > 80, "{} distinct seconds", seconds.len());
    // The same seed draws the same point.
    assert_eq!(refresh_second(7).await, refresh_second(7).await);
}

#[tokio::test]
async fn a_lifetime_too_large_for_the_clock_neither_panics_nor_expires() {
    /// Answers with the largest lifetime a server can state.
    #[derive(Debug)]
    struct Forever;
    impl TokenFlow for Forever {
        fn endpoint(&self) -> &Endpoint {
            &EP
        }
        fn login(&self) -> BoxFuture<'_, Result<Credentials, Error>> {
            // Set as the field, past any bound `with_expires_in` may apply.
            let mut credentials = Credentials::new("forever", ENDPOINT);
            credentials.expires_in = Some(u64::MAX);
            Box::pin(async { Ok(credentials) })
        }
    }
    let store = Arc::new(MemoryStore::new());
    let auth = CachingAuthenticator::builder(Forever)
        .store(store.clone())
        .build();
    let creds = auth.get_credentials().await.unwrap();
    assert_eq!(creds.access_token.expose_secret(), "forever");
    assert_eq!(header_of(&auth), "Bearer forever");
    assert!(auth.fresh_credentials().is_some());
    assert!(auth.load_credentials_without_login());

    // A stored expiry as far as the format goes, read by a new process.
    let mut stored = Credentials::new("stored-forever", ENDPOINT).with_refresh_token("r");
    stored.expires_at_unix = Some(u64::MAX);
    stored.expires_in = Some(u64::MAX);
    store.store(&EP, &stored).unwrap();
    let flow = Arc::new(ScriptedFlow::default());
    let auth = authenticator(&flow, &store);
    assert!(auth.load_credentials_without_login());
    let creds = auth.fresh_credentials().expect("fresh");
    assert_eq!(creds.access_token.expose_secret(), "stored-forever");
    assert_eq!(header_of(&auth), "Bearer stored-forever");
    assert_eq!((flow.logins(), flow.refreshes()), (0, 0));
}

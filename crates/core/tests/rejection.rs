//! What the cache does with a refresh the server answers with a 4xx (the full login) or a 5xx,
//! 429 or network error (nothing deleted; the current token served until it expires, the
//! refresh tried again after a back-off), and the two methods lazy integrations use:
//! `load_credentials_without_login` (a token without a login?) and `invalidate` (drop a refused token).

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

use std::{
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

/// Logs in as `login-N`, or answers the scripted login error; every refresh answers the
/// scripted refresh error, or `refreshed-N`.
#[derive(Debug, Default)]
struct Flow {
    logins: AtomicUsize,
    refreshes: AtomicUsize,
    refresh_error: Mutex<Option<Error>>,
    login_error: Mutex<Option<Error>>,
}

impl TokenFlow for Flow {
    fn endpoint(&self) -> &Endpoint {
        &EP
    }
    fn login(&self) -> BoxFuture<'_, Result<Credentials, Error>> {
        Box::pin(async move {
            let n = self.logins.fetch_add(1, Ordering::SeqCst) + 1;
            if let Some(e) = self.login_error.lock().unwrap().clone() {
                return Err(e);
            }
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
            match self.refresh_error.lock().unwrap().clone() {
                Some(e) => Err(e),
                None => {
                    Ok(Credentials::new(format!("refreshed-{n}"), ENDPOINT).with_expires_in(3600))
                }
            }
        }))
    }
}

fn expired(access: &str, refresh: Option<&str>) -> Credentials {
    let c = Credentials::new(access, ENDPOINT)
        .with_expires_at(SystemTime::now() - Duration::from_secs(60));
    match refresh {
        Some(r) => c.with_refresh_token(r),
        None => c,
    }
}

fn setup(
    stored: Option<Credentials>,
    error: Option<Error>,
) -> (Arc<Flow>, Arc<MemoryStore>, CachingAuthenticator<Arc<Flow>>) {
    let flow = Arc::new(Flow::default());
    *flow.refresh_error.lock().unwrap() = error;
    let store = Arc::new(MemoryStore::new());
    if let Some(c) = stored {
        store.store(&EP, &c).unwrap();
    }
    let auth = CachingAuthenticator::builder(Arc::clone(&flow))
        .store(store.clone())
        .build();
    (flow, store, auth)
}

/// A [`MemoryStore`] that offers a cross-process lock, as the file and keyring stores do: the
/// cache then reads the store again under the lock before it refreshes.
#[derive(Debug, Default)]
struct LockingStore(MemoryStore);

impl TokenStore for LockingStore {
    fn store(&self, endpoint: &Endpoint, credentials: &Credentials) -> Result<(), StoreError> {
        self.0.store(endpoint, credentials)
    }
    fn retrieve(&self, endpoint: &Endpoint) -> Result<Option<Credentials>, StoreError> {
        self.0.retrieve(endpoint)
    }
    fn delete(&self, endpoint: &Endpoint) -> Result<(), StoreError> {
        self.0.delete(endpoint)
    }
    fn lock(&self, _endpoint: &Endpoint) -> Result<Option<StoreLock>, StoreError> {
        Ok(Some(StoreLock::new(())))
    }
    fn name(&self) -> &'static str {
        "locking memory"
    }
}

fn page(status: u16) -> Error {
    Error::InvalidResponse {
        status: Some(status),
        message: "an HTML page from a proxy".into(),
    }
}

#[tokio::test]
async fn a_refresh_answered_with_a_4xx_that_is_not_429_runs_the_full_login() {
    for error in [
        OAuthError::new("invalid_client").with_status(401).into(),
        OAuthError::new("unsupported_grant_type")
            .with_status(400)
            .into(),
        page(401),
        page(403),
    ] {
        let shown = format!("{error}");
        let (flow, store, auth) = setup(Some(expired("stale", Some("rt"))), Some(error));
        let creds = auth.get_credentials().await.unwrap();
        assert_eq!(creds.access_token.expose_secret(), "login-1", "{shown}");
        assert_eq!(flow.logins.load(Ordering::SeqCst), 1, "{shown}");
        let stored = store.retrieve(&EP).unwrap().unwrap();
        assert_eq!(stored.access_token.expose_secret(), "login-1", "{shown}");
    }
}

#[tokio::test]
async fn a_refresh_answered_with_5xx_429_or_no_answer_deletes_nothing() {
    for error in [
        page(502),
        page(429),
        OAuthError::new("temporarily_unavailable")
            .with_status(503)
            .into(),
        Error::Timeout {
            operation: "token request".into(),
            after: Duration::from_secs(30),
        },
    ] {
        let shown = format!("{error}");
        let (flow, store, auth) = setup(Some(expired("stale", Some("rt"))), Some(error));
        let err = auth.get_credentials().await.unwrap_err();
        assert!(err.is_transient(), "{shown}");
        assert_eq!(flow.logins.load(Ordering::SeqCst), 0, "{shown}");
        let stored = store.retrieve(&EP).unwrap().unwrap();
        assert_eq!(
            stored.refresh_token.unwrap().expose_secret(),
            "rt",
            "{shown}"
        );
    }
}

#[tokio::test]
async fn has_credentials_reads_memory_and_store_but_never_logs_in() {
    let (flow, _, auth) = setup(None, None);
    assert!(!auth.load_credentials_without_login(), "nothing anywhere");

    let (_, _, auth) = setup(Some(expired("old", Some("rt"))), None);
    assert!(
        auth.load_credentials_without_login(),
        "a refresh token renews it"
    );
    let (_, _, auth) = setup(Some(expired("old", None)), None);
    assert!(
        !auth.load_credentials_without_login(),
        "expired and not renewable: only a login helps"
    );

    let fresh = Credentials::new("stored", ENDPOINT).with_expires_in(3600);
    let (_, _, auth) = setup(Some(fresh), None);
    assert!(auth.load_credentials_without_login());
    assert_eq!(
        auth.fetch_grpc_call_auth_metadata().unwrap().value(),
        "Bearer stored",
        "the stored token is in memory now"
    );
    assert_eq!(flow.logins.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn an_invalidated_token_is_not_served_again_and_the_next_call_refreshes() {
    for locking in [false, true] {
        invalidated_token_is_replaced(locking).await;
    }
}

/// With a store that locks, the stored copy of the refused token, read again under the lock,
/// must not be taken for a fresh one.
async fn invalidated_token_is_replaced(locking: bool) {
    let flow = Arc::new(Flow::default());
    let mut builder = CachingAuthenticator::builder(Arc::clone(&flow));
    builder = if locking {
        builder.store(Arc::new(LockingStore::default()))
    } else {
        builder.store(Arc::new(MemoryStore::new()))
    };
    let auth = builder.build();
    auth.get_credentials().await.unwrap();
    let sent = auth.fetch_grpc_call_auth_metadata().unwrap();

    // Another header: kept.
    auth.invalidate(&http::HeaderValue::from_static("Bearer something-else"));
    assert!(auth.fetch_grpc_call_auth_metadata().is_some());

    auth.invalidate(sent.value());
    assert!(
        auth.fetch_grpc_call_auth_metadata().is_none(),
        "still served"
    );
    assert!(
        auth.load_credentials_without_login(),
        "its refresh token is kept"
    );
    let creds = auth.get_credentials().await.unwrap();
    assert_eq!(
        creds.access_token.expose_secret(),
        "refreshed-1",
        "locking store: {locking}"
    );
    assert_eq!(
        flow.logins.load(Ordering::SeqCst),
        1,
        "a refresh, not a login"
    );
}

// ---------------------------------------------------------------------------------------------
// An identity provider outage, on a clock the test moves.

/// A clock the test moves by hand, from a whole second (stored expiries are whole seconds).
#[derive(Debug)]
struct ManualClock(Mutex<SystemTime>);

impl ManualClock {
    fn new() -> Arc<Self> {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap();
        Arc::new(Self(Mutex::new(
            SystemTime::UNIX_EPOCH + Duration::from_secs(now.as_secs()),
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

fn unavailable() -> Error {
    OAuthError::new("temporarily_unavailable")
        .with_status(503)
        .into()
}

fn on_clock(
    flow: &Arc<Flow>,
    store: &Arc<MemoryStore>,
    clock: &Arc<ManualClock>,
) -> CachingAuthenticator<Arc<Flow>> {
    CachingAuthenticator::builder(Arc::clone(flow))
        .store(store.clone())
        .clock(clock.clone())
        .build()
}

/// A login (`login-1`, for an hour), then an identity provider answering every refresh with
/// 503, and the clock two minutes before the expiry: past the whole refresh window (its last
/// point is half the five-minute margin before expiry).
async fn due_during_an_outage() -> (
    Arc<Flow>,
    Arc<MemoryStore>,
    Arc<ManualClock>,
    CachingAuthenticator<Arc<Flow>>,
) {
    let (flow, store, clock) = (
        Arc::new(Flow::default()),
        Arc::new(MemoryStore::new()),
        ManualClock::new(),
    );
    let auth = on_clock(&flow, &store, &clock);
    auth.get_credentials().await.unwrap();
    *flow.refresh_error.lock().unwrap() = Some(unavailable());
    clock.advance(Duration::from_secs(58 * 60));
    (flow, store, clock, auth)
}

fn counts(flow: &Flow) -> (usize, usize) {
    (
        flow.logins.load(Ordering::SeqCst),
        flow.refreshes.load(Ordering::SeqCst),
    )
}

fn served(auth: &dyn Authenticator) -> Option<String> {
    auth.fetch_grpc_call_auth_metadata()
        .map(|h| h.value().to_str().unwrap().to_owned())
}

#[tokio::test]
async fn a_valid_token_is_served_through_an_identity_provider_outage() {
    let (flow, store, clock, auth) = due_during_an_outage().await;
    assert_eq!(served(&auth), None, "due for refresh");

    let creds = auth.get_credentials().await.unwrap();
    assert_eq!(creds.access_token.expose_secret(), "login-1");
    assert_eq!(counts(&flow), (1, 1), "one refresh attempt, no login");
    // Every way of asking agrees: the hot path, the header, the synchronous answer.
    assert_eq!(served(&auth).as_deref(), Some("Bearer login-1"));
    assert_eq!(auth.auth_header().await.unwrap().value(), "Bearer login-1");
    let fresh = auth
        .fresh_credentials()
        .expect("served until the next attempt");
    assert_eq!(fresh.access_token.expose_secret(), "login-1");
    assert!(auth.load_credentials_without_login());
    assert_eq!(counts(&flow), (1, 1));
    let stored = store.retrieve(&EP).unwrap().unwrap();
    assert_eq!(stored.refresh_token.unwrap().expose_secret(), "refresh-1");

    // A new process (`flyte-auth token`) finds the stored token due, tries once, serves it.
    let next_process = on_clock(&flow, &store, &clock);
    assert!(
        next_process.fresh_credentials().is_none(),
        "due for refresh"
    );
    let creds = next_process.get_credentials().await.unwrap();
    assert_eq!(creds.access_token.expose_secret(), "login-1");
    assert_eq!(counts(&flow), (1, 2));
}

#[tokio::test]
async fn one_refresh_attempt_per_back_off_interval_however_many_callers_then_the_error_at_expiry() {
    let (flow, _, clock, auth) = due_during_an_outage().await;
    let fifty_callers = || futures_util::future::join_all((0..50).map(|_| auth.get_credentials()));
    let all_served = |results: Vec<Result<Arc<Credentials>, Error>>| {
        results
            .into_iter()
            .all(|r| r.unwrap().access_token.expose_secret() == "login-1")
    };

    assert!(all_served(fifty_callers().await));
    let mut attempts = 1;
    assert_eq!(counts(&flow), (1, attempts));
    // Two minutes were left: tried again after 5, 10, 20 and 40 s (115, 105, 85 and 45 s left).
    for backoff in [5, 10, 20, 40] {
        clock.advance(Duration::from_secs(backoff - 1));
        assert!(all_served(fifty_callers().await), "{backoff} s");
        assert_eq!(served(&auth).as_deref(), Some("Bearer login-1"));
        assert_eq!(
            counts(&flow),
            (1, attempts),
            "no attempt before {backoff} s"
        );
        clock.advance(Duration::from_secs(1));
        assert_eq!(served(&auth), None, "the next caller tries again");
        assert!(all_served(fifty_callers().await), "{backoff} s");
        attempts += 1;
        assert_eq!(
            counts(&flow),
            (1, attempts),
            "one attempt after {backoff} s"
        );
        assert_eq!(served(&auth).as_deref(), Some("Bearer login-1"));
    }
    // The next back-off (60 s) would reach past the expiry, 45 s away: the last attempt is then.
    clock.advance(Duration::from_secs(44));
    assert!(all_served(fifty_callers().await));
    assert_eq!(counts(&flow), (1, attempts));
    clock.advance(Duration::from_secs(1));
    assert_eq!(served(&auth), None, "expired");
    for result in fifty_callers().await {
        let err = result.unwrap_err();
        assert!(err.is_transient(), "{err}");
    }
    assert_eq!(
        counts(&flow),
        (1, attempts + 1),
        "one attempt for all fifty"
    );
    assert!(auth.fresh_credentials().is_none());
}

#[tokio::test]
async fn a_refresh_rejected_after_an_outage_still_runs_the_full_login() {
    let (flow, store, clock, auth) = due_during_an_outage().await;
    auth.get_credentials().await.unwrap();
    *flow.refresh_error.lock().unwrap() =
        Some(OAuthError::new("invalid_grant").with_status(400).into());
    clock.advance(Duration::from_secs(5));

    let creds = auth.get_credentials().await.unwrap();
    assert_eq!(creds.access_token.expose_secret(), "login-2");
    assert_eq!(counts(&flow), (2, 2));
    let stored = store.retrieve(&EP).unwrap().unwrap();
    assert_eq!(stored.access_token.expose_secret(), "login-2");
    assert_eq!(served(&auth).as_deref(), Some("Bearer login-2"));
}

#[tokio::test]
async fn a_token_the_server_refused_is_not_served_through_an_outage() {
    let (flow, _, _, auth) = due_during_an_outage().await;
    auth.get_credentials().await.unwrap();
    let sent = auth.fetch_grpc_call_auth_metadata().unwrap();

    auth.invalidate(sent.value());
    let err = auth.refresh_credentials().await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    let err = auth.get_credentials().await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert_eq!(served(&auth), None);
    assert!(auth.fresh_credentials().is_none());
    assert_eq!(counts(&flow), (1, 3));
}

#[tokio::test]
async fn a_token_without_refresh_token_is_served_while_obtaining_a_new_one_fails() {
    // A client-credentials token: renewed by a new grant (the flow's login), not a refresh.
    let (flow, store, clock) = (
        Arc::new(Flow::default()),
        Arc::new(MemoryStore::new()),
        ManualClock::new(),
    );
    let two_minutes_left = flyte_auth_core::Clock::now(&*clock) + Duration::from_secs(120);
    store
        .store(
            &EP,
            &Credentials::new("granted", ENDPOINT)
                .with_expires_in(3600)
                .with_expires_at(two_minutes_left),
        )
        .unwrap();
    *flow.login_error.lock().unwrap() = Some(page(502));
    let auth = on_clock(&flow, &store, &clock);

    let creds = auth.get_credentials().await.unwrap();
    assert_eq!(creds.access_token.expose_secret(), "granted");
    assert_eq!(counts(&flow), (1, 0));
    assert_eq!(served(&auth).as_deref(), Some("Bearer granted"));
    assert!(auth.load_credentials_without_login(), "a token to send");

    // Once the provider is back, the next attempt after the back-off obtains a new token.
    *flow.login_error.lock().unwrap() = None;
    clock.advance(Duration::from_secs(5));
    let creds = auth.get_credentials().await.unwrap();
    assert_eq!(creds.access_token.expose_secret(), "login-2");
    assert_eq!(served(&auth).as_deref(), Some("Bearer login-2"));
}

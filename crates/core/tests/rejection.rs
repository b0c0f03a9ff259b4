//! What the cache does with a refresh the server answers with a 4xx (the full login) or a 5xx,
//! 429 or network error (nothing deleted), and the two methods lazy integrations use:
//! `has_credentials` (a token without a login?) and `invalidate` (drop a refused token).

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
    Authenticator, BoxFuture, CachingAuthenticator, Credentials, Error, MemoryStore, OAuthError,
    TokenFlow, TokenStore,
};

const ENDPOINT: &str = "flyte.example.org:443";

/// Logs in as `login-N`; every refresh answers the scripted error, or `refreshed-N`.
#[derive(Debug, Default)]
struct Flow {
    logins: AtomicUsize,
    refreshes: AtomicUsize,
    refresh_error: Mutex<Option<Error>>,
}

impl TokenFlow for Flow {
    fn endpoint(&self) -> &str {
        ENDPOINT
    }
    fn login(&self) -> BoxFuture<'_, Result<Credentials, Error>> {
        Box::pin(async move {
            let n = self.logins.fetch_add(1, Ordering::SeqCst) + 1;
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
        store.store(&c).unwrap();
    }
    let auth = CachingAuthenticator::builder(Arc::clone(&flow))
        .store(store.clone())
        .build();
    (flow, store, auth)
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
        let stored = store.retrieve(ENDPOINT).unwrap().unwrap();
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
        let stored = store.retrieve(ENDPOINT).unwrap().unwrap();
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
    assert!(!auth.has_credentials(), "nothing anywhere");

    let (_, _, auth) = setup(Some(expired("old", Some("rt"))), None);
    assert!(auth.has_credentials(), "a refresh token renews it");
    let (_, _, auth) = setup(Some(expired("old", None)), None);
    assert!(
        !auth.has_credentials(),
        "expired and not renewable: only a login helps"
    );

    let fresh = Credentials::new("stored", ENDPOINT).with_expires_in(3600);
    let (_, _, auth) = setup(Some(fresh), None);
    assert!(auth.has_credentials());
    assert_eq!(
        auth.fetch_grpc_call_auth_metadata().unwrap().value(),
        "Bearer stored",
        "the stored token is in memory now"
    );
    assert_eq!(flow.logins.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn an_invalidated_token_is_not_served_again_and_the_next_call_refreshes() {
    let (flow, _, auth) = setup(None, None);
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
    assert!(auth.has_credentials(), "its refresh token is kept");
    let creds = auth.get_credentials().await.unwrap();
    assert_eq!(creds.access_token.expose_secret(), "refreshed-1");
    assert_eq!(
        flow.logins.load(Ordering::SeqCst),
        1,
        "a refresh, not a login"
    );
}

//! The credential cache every flow shares: [`TokenFlow`] says how to obtain tokens,
//! [`CachingAuthenticator`] does everything else.

use std::{
    fmt,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

use arc_swap::ArcSwapOption;
use futures_util::future::{FutureExt as _, Shared};
use http::HeaderName;

use crate::{
    AuthHeader, Authenticator, BoxFuture, Credentials, DEFAULT_HEADER_KEY, Endpoint, Error,
    TokenStore, UNKNOWN_EXPIRY_LIFETIME,
};

/// How long before expiry credentials are refreshed at the earliest (flytectl's `refreshTime`
/// default); see [`CachingAuthenticatorBuilder::refresh_margin`].
pub const DEFAULT_REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

/// The first and the longest wait before another attempt to renew a token served on: [`backoff`].
const RETRY_BACKOFF_FIRST: Duration = Duration::from_secs(5);
const RETRY_BACKOFF_MAX: Duration = Duration::from_secs(60);

/// Where the cache reads the time: [`SystemClock`] by default; tests pass a clock they move.
///
/// ```
/// use std::{sync::Mutex, time::{Duration, SystemTime}};
/// use flyte_auth_core::Clock;
///
/// /// A clock the test moves by hand.
/// #[derive(Debug)]
/// struct Manual(Mutex<SystemTime>);
///
/// impl Clock for Manual {
///     fn now(&self) -> SystemTime {
///         *self.0.lock().unwrap()
///     }
/// }
///
/// let clock = Manual(Mutex::new(SystemTime::UNIX_EPOCH));
/// *clock.0.lock().unwrap() += Duration::from_secs(3600);
/// assert_eq!(clock.now(), SystemTime::UNIX_EPOCH + Duration::from_secs(3600));
/// ```
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current wall-clock time (expiries are absolute times, shared between processes).
    fn now(&self) -> SystemTime;
}

/// [`Clock`] on [`SystemTime::now`]: the default.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// How a flow obtains tokens; the rest is [`CachingAuthenticator`]'s job.
///
/// Implemented by each flow crate (browser login with PKCE, device code, client credentials,
/// external command) and by applications with flows of their own.
pub trait TokenFlow: Send + Sync + fmt::Debug + 'static {
    /// The server the credentials are for: what the [`TokenStore`] files them under (its
    /// [`key`](Endpoint::key)) and finds other tools' logins by (its
    /// [`as_written`](Endpoint::as_written) spelling).
    fn endpoint(&self) -> &Endpoint;

    /// Runs the full flow: a browser login, a device-code login, a client-credentials grant,
    /// an external command.
    fn login(&self) -> BoxFuture<'_, Result<Credentials, Error>>;

    /// Redeems `current.refresh_token` (always present when this is called). `None` means the
    /// flow has no refresh grant, and the cache runs [`login`](Self::login) instead.
    ///
    /// The cache carries forward the old refresh token when the answer has none.
    fn refresh<'a>(
        &'a self,
        current: &'a Credentials,
    ) -> Option<BoxFuture<'a, Result<Credentials, Error>>> {
        let _ = current;
        None
    }

    /// The OAuth client id, when known without network access. Stored credentials issued to a
    /// different client are not used.
    fn client_id(&self) -> Option<String> {
        None
    }

    /// The header the token goes in, when the flow knows it (from its configuration or the
    /// server's discovery document). When it returns `None`, the header recorded with the
    /// credentials is used (flows learn it at login, and it is stored with the token), else
    /// `authorization`.
    fn header_name(&self) -> Option<HeaderName> {
        None
    }

    /// The header the token goes in, learning it when the flow learns it by discovery (the
    /// server is asked then, once): what [`Authenticator::header_name`] answers. `None`: the
    /// header recorded with the credentials, else `authorization`. The default is
    /// [`header_name`](Self::header_name).
    fn resolve_header_name(&self) -> BoxFuture<'_, Result<Option<HeaderName>, Error>> {
        Box::pin(async move { Ok(self.header_name()) })
    }
}

impl<T: TokenFlow + ?Sized> TokenFlow for Arc<T> {
    fn endpoint(&self) -> &Endpoint {
        (**self).endpoint()
    }
    fn login(&self) -> BoxFuture<'_, Result<Credentials, Error>> {
        (**self).login()
    }
    fn refresh<'a>(
        &'a self,
        current: &'a Credentials,
    ) -> Option<BoxFuture<'a, Result<Credentials, Error>>> {
        (**self).refresh(current)
    }
    fn client_id(&self) -> Option<String> {
        (**self).client_id()
    }
    fn header_name(&self) -> Option<HeaderName> {
        (**self).header_name()
    }
    fn resolve_header_name(&self) -> BoxFuture<'_, Result<Option<HeaderName>, Error>> {
        (**self).resolve_header_name()
    }
}

/// The header, prebuilt, with the times that decide when it is no longer served.
#[derive(Debug)]
struct Current {
    credentials: Arc<Credentials>,
    header: AuthHeader,
    /// When the hot path stops serving the header and the next caller makes an attempt: the
    /// token's drawn refresh point, or after a failed attempt the end of its back-off. `None`:
    /// served until the server rejects it (no expiry known, no refresh token).
    refresh_after: Option<SystemTime>,
    /// Attempts to renew these credentials that failed (the back-off doubles with each).
    failures: u32,
    /// The server refused the header ([`Authenticator::invalidate`]): never served again.
    refused: bool,
}

type SharedAttempt = Shared<BoxFuture<'static, Result<Arc<Credentials>, Error>>>;

struct Inner<F> {
    flow: F,
    store: Option<Arc<dyn TokenStore>>,
    margin: Duration,
    clock: Arc<dyn Clock>,
    /// Where each token's refresh point falls inside its window (with the token's expiry).
    jitter_seed: u64,
    current: ArcSwapOption<Current>,
    in_flight: Mutex<Option<SharedAttempt>>,
}

/// An [`Authenticator`] made of a [`TokenFlow`] and the shared caching machinery.
///
/// For every flow: a lock-free hot path; a refresh before expiry at a point drawn per token;
/// one refresh or login at a time (under the store's cross-process lock, re-reading the store
/// first); persistence to the [`TokenStore`]; a rejected refresh token deletes the stored
/// entry and runs the login, any other failure serves a still valid token on after a back-off;
/// no network or store access until credentials are first asked for. The crate's README says
/// each in full. Cloning is cheap and clones share the cache.
///
/// ```
/// # use flyte_auth_core::*;
/// # #[derive(Debug)] struct MyFlow;
/// # impl TokenFlow for MyFlow {
/// #     fn endpoint(&self) -> &Endpoint { unimplemented!() }
/// #     fn login(&self) -> BoxFuture<'_, Result<Credentials, Error>> { unimplemented!() }
/// # }
/// use std::{sync::Arc, time::Duration};
/// let auth = CachingAuthenticator::builder(MyFlow)
///     .store(Arc::new(MemoryStore::new()))
///     .refresh_margin(Duration::from_secs(60))
///     .build();
/// ```
pub struct CachingAuthenticator<F> {
    inner: Arc<Inner<F>>,
}

impl<F> Clone for CachingAuthenticator<F> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<F: fmt::Debug> fmt::Debug for CachingAuthenticator<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let current = self.inner.current.load();
        f.debug_struct("CachingAuthenticator")
            .field("flow", &self.inner.flow)
            .field("store", &self.inner.store.as_ref().map(|s| s.name()))
            .field("refresh_margin", &self.inner.margin)
            .field("clock", &self.inner.clock)
            .field("credentials", &current.as_ref().map(|c| &c.credentials))
            .finish()
    }
}

/// Builds a [`CachingAuthenticator`].
#[derive(Debug)]
#[must_use]
pub struct CachingAuthenticatorBuilder<F> {
    flow: F,
    store: Option<Arc<dyn TokenStore>>,
    margin: Duration,
    clock: Arc<dyn Clock>,
    jitter_seed: Option<u64>,
}

impl<F: TokenFlow> CachingAuthenticatorBuilder<F> {
    /// Persists credentials to `store` (none by default: credentials live in memory only).
    pub fn store(mut self, store: Arc<dyn TokenStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// Persists credentials to `store` if one is given.
    pub fn maybe_store(mut self, store: Option<Arc<dyn TokenStore>>) -> Self {
        self.store = store;
        self
    }

    /// Refreshes this long before expiry at the earliest ([`DEFAULT_REFRESH_MARGIN`] by
    /// default), and at half of it at the latest (the Go client's `admin.tokenRefreshWindow`);
    /// a quarter of the lifetime for tokens living less than four margins.
    pub fn refresh_margin(mut self, margin: Duration) -> Self {
        self.margin = margin;
        self
    }

    /// Seeds the draw of each token's refresh point (by default random per authenticator, so a
    /// fleet whose tokens expire together does not refresh together); tests fix it.
    pub fn jitter_seed(mut self, seed: u64) -> Self {
        self.jitter_seed = Some(seed);
        self
    }

    /// Reads the time from `clock` ([`SystemClock`] by default).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The authenticator. Touches neither the network nor the store.
    pub fn build(self) -> CachingAuthenticator<F> {
        CachingAuthenticator {
            inner: Arc::new(Inner {
                flow: self.flow,
                store: self.store,
                margin: self.margin,
                clock: self.clock,
                jitter_seed: self.jitter_seed.unwrap_or_else(random_seed),
                current: ArcSwapOption::empty(),
                in_flight: Mutex::new(None),
            }),
        }
    }
}

impl<F: TokenFlow> CachingAuthenticator<F> {
    /// Starts building an authenticator around `flow`.
    pub fn builder(flow: F) -> CachingAuthenticatorBuilder<F> {
        CachingAuthenticatorBuilder {
            flow,
            store: None,
            margin: DEFAULT_REFRESH_MARGIN,
            clock: Arc::new(SystemClock),
            jitter_seed: None,
        }
    }

    /// The flow.
    pub fn flow(&self) -> &F {
        &self.inner.flow
    }

    /// The store, if any.
    pub fn store(&self) -> Option<&Arc<dyn TokenStore>> {
        self.inner.store.as_ref()
    }

    /// The credentials in memory, fresh or not, without touching the store or the network.
    pub fn cached_credentials(&self) -> Option<Arc<Credentials>> {
        self.inner
            .current
            .load()
            .as_ref()
            .map(|c| Arc::clone(&c.credentials))
    }

    /// Forgets the credentials in memory and deletes them from the store (a logout).
    pub fn clear(&self) -> Result<(), Error> {
        self.inner.current.store(None);
        if let Some(store) = &self.inner.store {
            store.delete(self.inner.flow.endpoint())?;
        }
        Ok(())
    }

    /// Runs one attempt, or joins the one already running.
    fn attempt(&self, force: bool) -> BoxFuture<'_, Result<Arc<Credentials>, Error>> {
        let shared = {
            let mut slot = self
                .inner
                .in_flight
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if let Some(running) = slot.as_ref() {
                running.clone()
            } else {
                if !force && let Some(c) = self.inner.fresh_in_memory() {
                    return Box::pin(async move { Ok(c) });
                }
                let inner = Arc::clone(&self.inner);
                let attempt: BoxFuture<'static, _> = Box::pin(async move {
                    let result = inner.obtain(force).await;
                    *inner.in_flight.lock().unwrap_or_else(|p| p.into_inner()) = None;
                    result
                });
                let shared = attempt.shared();
                *slot = Some(shared.clone());
                shared
            }
        };
        Box::pin(shared)
    }
}

impl<F: TokenFlow> Inner<F> {
    /// The cached credentials if they are not yet due for refresh.
    fn fresh_in_memory(&self) -> Option<Arc<Credentials>> {
        let current = self.current.load();
        current
            .as_ref()
            .filter(|c| self.not_due(c.refresh_after))
            .map(|c| Arc::clone(&c.credentials))
    }

    /// Whether `refresh_after` has not come yet (`None`: it never comes).
    fn not_due(&self, refresh_after: Option<SystemTime>) -> bool {
        refresh_after.is_none_or(|at| self.clock.now() < at)
    }

    /// When `credentials` are due for refresh: at a point drawn (from the seed and the expiry)
    /// between the margin and half of it before expiry; at once when the expiry is unknown and
    /// a refresh token can tell; never (`None`) when the expiry is unknown and there is none.
    ///
    /// The margin is a quarter of the lifetime recorded when the token arrived, when less
    /// (never one counted from now, which would shrink the window as the expiry nears).
    fn refresh_after(&self, credentials: &Credentials) -> Option<SystemTime> {
        let Some(expires_at) = credentials.expires_at() else {
            return credentials
                .refresh_token
                .as_ref()
                .map(|_| SystemTime::UNIX_EPOCH);
        };
        let margin = credentials
            .lifetime()
            .map_or(self.margin, |lifetime| self.margin.min(lifetime / 4));
        let draw = splitmix64(self.jitter_seed ^ splitmix64(credentials.expires_at_unix?));
        let before_expiry = margin - fraction_of(margin / 2, draw);
        Some(
            expires_at
                .checked_sub(before_expiry)
                .unwrap_or(SystemTime::UNIX_EPOCH),
        )
    }

    fn is_fresh(&self, credentials: &Credentials) -> bool {
        self.not_due(self.refresh_after(credentials))
    }

    /// Whether stored `credentials` can be served as they are: fresh, and with no copies in
    /// the store that disagree (those are written back first, under the store's lock).
    fn servable(&self, stored: &Credentials) -> bool {
        !stored.stale_copies && self.is_fresh(stored)
    }

    /// Makes `credentials` the current ones, due for refresh at their drawn point, and returns
    /// them.
    fn install(&self, credentials: Credentials) -> Result<Arc<Credentials>, Error> {
        let refresh_after = self.refresh_after(&credentials);
        self.install_until(credentials, refresh_after, 0)
    }

    /// Makes `credentials` the current ones, served until `refresh_after`, after `failures`
    /// failed attempts to renew them, and returns them.
    fn install_until(
        &self,
        mut credentials: Credentials,
        refresh_after: Option<SystemTime>,
        failures: u32,
    ) -> Result<Arc<Credentials>, Error> {
        credentials.stale_copies = false;
        let name = self
            .flow
            .header_name()
            .or_else(|| {
                let stored = credentials.header_key.as_deref()?;
                HeaderName::try_from(stored).ok()
            })
            .unwrap_or(HeaderName::from_static(DEFAULT_HEADER_KEY));
        let header = AuthHeader::bearer(name, &credentials)?;
        let credentials = Arc::new(credentials);
        self.current.store(Some(Arc::new(Current {
            credentials: Arc::clone(&credentials),
            header,
            refresh_after,
            failures,
            refused: false,
        })));
        Ok(credentials)
    }

    /// After an attempt to renew `current` failed with `error` (anything but a rejected grant):
    /// serves `current` on while it is valid and the server has not refused it, until the next
    /// attempt after a back-off; else returns `error`.
    fn keep_serving(
        &self,
        current: Option<Credentials>,
        error: Error,
    ) -> Result<Arc<Credentials>, Error> {
        let Some((current, expires_at)) =
            current.and_then(|c| c.expires_at().map(|expires_at| (c, expires_at)))
        else {
            return Err(error);
        };
        if self.clock.now() >= expires_at {
            return Err(error);
        }
        let in_memory = self.current.load();
        let same = in_memory
            .as_ref()
            .filter(|c| c.credentials.access_token == current.access_token);
        if same.is_some_and(|c| c.refused) {
            return Err(error);
        }
        let failures = same.map_or(0, |c| c.failures).saturating_add(1);
        let now = self.clock.now();
        let retry_at = later(now, backoff(failures)).min(expires_at);
        tracing::warn!(
            endpoint = %self.flow.endpoint(),
            error = %error,
            expires_in_secs = expires_at.duration_since(now).unwrap_or_default().as_secs(),
            retry_in_secs = retry_at.duration_since(now).unwrap_or_default().as_secs(),
            "could not renew the credentials; serving the current token until it expires"
        );
        self.install_until(current, Some(retry_at), failures)
    }

    /// Reads the store; a failure or a foreign entry is a warning and a miss.
    fn read_store(&self) -> Option<Credentials> {
        let store = self.store.as_ref()?;
        let endpoint = self.flow.endpoint();
        let stored = match store.retrieve(endpoint) {
            Ok(stored) => stored?,
            Err(e) => {
                tracing::warn!(store = store.name(), endpoint = %endpoint, error = %e, "could not read stored credentials; continuing without them");
                return None;
            }
        };
        match (self.flow.client_id(), stored.client_id.as_deref()) {
            (Some(ours), Some(theirs)) if ours != theirs => {
                tracing::debug!(
                    store = store.name(),
                    endpoint = %endpoint,
                    "stored credentials belong to another client id; not using them"
                );
                None
            }
            _ => Some(stored),
        }
    }

    fn persist(&self, credentials: &Credentials) {
        if let Some(store) = &self.store
            && let Err(e) = store.store(self.flow.endpoint(), credentials)
        {
            tracing::warn!(store = store.name(), endpoint = %self.flow.endpoint(), error = %e, "could not save credentials; the next process will have to log in again");
        }
    }

    fn forget_stored(&self) {
        self.current.store(None);
        if let Some(store) = &self.store
            && let Err(e) = store.delete(self.flow.endpoint())
        {
            tracing::warn!(store = store.name(), endpoint = %self.flow.endpoint(), error = %e, "could not delete rejected credentials");
        }
    }

    /// Writes stored credentials back when the store said its copies disagree, then installs
    /// them.
    fn install_stored(&self, credentials: Credentials) -> Result<Arc<Credentials>, Error> {
        if credentials.stale_copies {
            tracing::debug!(
                endpoint = %self.flow.endpoint(),
                "the store's copies of the login disagree; writing the current tokens to all of them"
            );
            self.persist(&credentials);
        }
        self.install(credentials)
    }

    /// Completes what the flow returned (its lifetime and expiry, counted once, now, on this
    /// cache's clock: the server's `expires_in`, else until the access token's own expiry,
    /// else [`UNKNOWN_EXPIRY_LIFETIME`]), then persists and installs it. Both are stored, so
    /// that no later process counts the lifetime again from its own start.
    fn accept(&self, mut credentials: Credentials) -> Result<Arc<Credentials>, Error> {
        let now = self.clock.now();
        let lifetime = match (credentials.lifetime(), credentials.expires_at()) {
            (Some(stated), _) => stated,
            (None, Some(expires_at)) => expires_at.duration_since(now).unwrap_or_default(),
            (None, None) => UNKNOWN_EXPIRY_LIFETIME,
        };
        credentials.expires_in = Some(lifetime.as_secs());
        credentials = credentials.with_expires_at(later(now, lifetime));
        credentials.for_endpoint = self.flow.endpoint().key().to_owned();
        if credentials.client_id.is_none() {
            credentials.client_id = self.flow.client_id();
        }
        if let Some(name) = self.flow.header_name() {
            credentials.header_key = Some(name.as_str().to_owned());
        }
        self.persist(&credentials);
        self.install(credentials)
    }

    async fn obtain(&self, force: bool) -> Result<Arc<Credentials>, Error> {
        // A token the server refused must be replaced, however fresh it looks: its stored
        // copy, read again under the lock, is the same token.
        let force = force || self.current.load().as_ref().is_some_and(|c| c.refused);
        let endpoint = self.flow.endpoint();
        let mut candidate = self
            .current
            .load()
            .as_ref()
            .map(|c| (*c.credentials).clone());
        if candidate.is_none() {
            candidate = self.read_store();
            if let Some(stored) = candidate.clone().filter(|c| !force && self.servable(c)) {
                tracing::debug!(endpoint = %endpoint, "using stored credentials");
                return self.install(stored);
            }
        }

        let _lock = match self.store.as_ref().map(|s| s.lock(endpoint)) {
            Some(Ok(lock)) => lock,
            Some(Err(e)) => {
                tracing::warn!(endpoint = %endpoint, error = %e, "could not lock the token store; refreshing without the lock");
                None
            }
            None => None,
        };
        if _lock.is_some() {
            // Another process may have refreshed while we waited for the lock.
            if let Some(stored) = self.read_store() {
                let same = candidate
                    .as_ref()
                    .is_some_and(|c| c.access_token == stored.access_token);
                if self.is_fresh(&stored) && !(force && same) {
                    if !same {
                        tracing::debug!(
                            endpoint = %endpoint,
                            "another process refreshed the credentials; using them"
                        );
                    }
                    return self.install_stored(stored);
                }
                candidate = Some(stored);
            }
        } else if let Some(current) = candidate
            .clone()
            .filter(|c| !force && c.stale_copies && self.is_fresh(c))
        {
            return self.install_stored(current);
        }

        // What is served on if renewing fails: the current token, unless the caller saw the
        // server refuse it (`refresh_credentials`).
        let mut serve_on = candidate.clone().filter(|_| !force);
        if let Some(current) = candidate.filter(|c| c.refresh_token.is_some())
            && let Some(refresh) = self.flow.refresh(&current)
        {
            tracing::debug!(endpoint = %endpoint, "refreshing credentials");
            match refresh.await {
                Ok(new) => return self.accept(new.carry_forward(&current)),
                Err(e) if e.is_rejected_grant() => {
                    tracing::info!(endpoint = %endpoint, error = %e, "the refresh token was rejected; starting a new login");
                    self.forget_stored();
                    serve_on = None;
                }
                Err(e) => return self.keep_serving(serve_on, e),
            }
        }

        tracing::debug!(endpoint = %endpoint, "running the full login");
        match self.flow.login().await {
            Ok(new) => self.accept(new),
            Err(e) if e.is_rejected_grant() => Err(e),
            Err(e) => self.keep_serving(serve_on, e),
        }
    }
}

impl<F: TokenFlow> Authenticator for CachingAuthenticator<F> {
    fn header_name(&self) -> BoxFuture<'_, Result<HeaderName, Error>> {
        Box::pin(async move {
            if let Some(name) = self.inner.flow.resolve_header_name().await? {
                return Ok(name);
            }
            let recorded = self
                .inner
                .current
                .load()
                .as_ref()
                .map(|c| c.header.name().clone());
            Ok(recorded.unwrap_or(HeaderName::from_static(DEFAULT_HEADER_KEY)))
        })
    }

    fn get_credentials(&self) -> BoxFuture<'_, Result<Arc<Credentials>, Error>> {
        match self.inner.fresh_in_memory() {
            Some(c) => Box::pin(async move { Ok(c) }),
            None => self.attempt(false),
        }
    }

    fn refresh_credentials(&self) -> BoxFuture<'_, Result<Arc<Credentials>, Error>> {
        self.attempt(true)
    }

    fn fetch_grpc_call_auth_metadata(&self) -> Option<AuthHeader> {
        let current = self.inner.current.load();
        current
            .as_ref()
            .filter(|c| self.inner.not_due(c.refresh_after))
            .map(|c| c.header.clone())
    }

    fn fresh_credentials(&self) -> Option<Arc<Credentials>> {
        if let Some(fresh) = self.inner.fresh_in_memory() {
            return Some(fresh);
        }
        // Credentials in memory that are due for refresh: the store is read again under its
        // lock, by the refresh.
        if self.inner.current.load().is_some() {
            return None;
        }
        let stored = self.inner.read_store().filter(|c| self.inner.servable(c))?;
        tracing::debug!(
            endpoint = %self.inner.flow.endpoint(),
            "using stored credentials"
        );
        // A header the credentials cannot make is an error `get_credentials` reports.
        self.inner.install(stored).ok()
    }

    fn load_credentials_without_login(&self) -> bool {
        if let Some(current) = self.inner.current.load().as_ref() {
            // As the hot path sees it (a token served on after a failed renewal included).
            return current.credentials.refresh_token.is_some()
                || self.inner.not_due(current.refresh_after);
        }
        let usable = |c: &Credentials| c.refresh_token.is_some() || self.inner.is_fresh(c);
        match self.inner.read_store().filter(|c| usable(c)) {
            // Copies that disagree are written back, then installed, by the first attempt.
            Some(stored) if stored.stale_copies => true,
            Some(stored) => self.inner.install(stored).is_ok(),
            None => false,
        }
    }

    fn invalidate(&self, rejected: &http::HeaderValue) {
        // Kept (with its refresh token) but no longer fresh: the next attempt refreshes.
        self.inner.current.rcu(|current| match current {
            Some(c) if c.header.value() == rejected => Some(Arc::new(Current {
                credentials: Arc::clone(&c.credentials),
                header: c.header.clone(),
                refresh_after: Some(SystemTime::UNIX_EPOCH),
                failures: c.failures,
                refused: true,
            })),
            other => other.clone(),
        });
    }
}

/// `at + by`, saturating: a duration too long to add on this platform reaches (within a factor
/// of two) the latest time it represents, never a panic.
fn later(at: SystemTime, by: Duration) -> SystemTime {
    let mut by = by;
    loop {
        if let Some(sum) = at.checked_add(by) {
            return sum;
        }
        by /= 2;
    }
}

/// The wait before the next attempt to renew a token that is served on, after `failures`
/// failed attempts (at least one): 5 s, doubling, at most a minute.
fn backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    RETRY_BACKOFF_FIRST
        .saturating_mul(1 << doublings)
        .min(RETRY_BACKOFF_MAX)
}

/// A seed that differs between processes (std's random hashing keys).
fn random_seed() -> u64 {
    use std::hash::{BuildHasher as _, RandomState};
    RandomState::new().hash_one(0_u8)
}

/// A well-mixed 64-bit value from `x` (SplitMix64's finaliser): one draw, no state.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `of` scaled by `draw / 2^64`: a duration in `[0, of)`, in integers (32 bits of the draw are
/// plenty, and keep the product inside `u128` for any `Duration`).
fn fraction_of(of: Duration, draw: u64) -> Duration {
    let nanos = (of.as_nanos() * u128::from(draw >> 32)) >> 32;
    let seconds = u64::try_from(nanos / 1_000_000_000).unwrap_or(u64::MAX);
    let subsec = u32::try_from(nanos % 1_000_000_000).unwrap_or_default();
    Duration::new(seconds, subsec)
}

//! Flyte's device code authenticator: log in on a machine where no browser can reach a
//! loopback port (an SSH session, a notebook, a container), by approving a code on any other
//! device (OAuth 2.0 device authorization grant, RFC 8628).
//!
//! [`DeviceCodeAuthenticator`] is flytekit's `DeviceCodeAuthenticator`: it starts from stored
//! credentials, redeems the refresh token when they are due, and runs the device login only
//! when there is no refresh token or the server rejects it. Caching, refreshing before
//! expiry, single-flight and persistence are [`flyte_auth_core::CachingAuthenticator`]'s; this
//! crate says how to obtain tokens ([`DeviceCodeFlow`]).
//!
//! # The device login
//!
//! 1. A form POST to the server's device authorization endpoint with `client_id`, `scope`
//!    and `audience` returns a user code, a verification URL and a device code.
//! 2. The user is told where to go ([`DevicePrompt`]): by default on stderr, so that a
//!    command printing a token keeps stdout clean; an application can show it its own way
//!    ([`DeviceCodeAuthenticatorBuilder::prompt`]). `verification_uri_complete` is shown
//!    when the server sends it (the user then only confirms the code). With the `qr`
//!    feature the URL is also drawn as a QR code.
//! 3. The token endpoint is polled with the device code (RFC 8628 §3.4–3.5):
//!    - first after the server's `interval`, else the configured poll interval
//!      (`deviceFlowConfig.pollInterval`), else 5 seconds; then at that interval;
//!    - `authorization_pending`: keep polling;
//!    - `slow_down`: the interval grows by 5 seconds for this and every later poll;
//!    - `access_denied` and `expired_token`: stop at once with [`Error::OAuth`] carrying
//!      that code ([`OAuthErrorCode::AccessDenied`](flyte_auth_core::OAuthErrorCode::AccessDenied),
//!      [`OAuthErrorCode::ExpiredToken`](flyte_auth_core::OAuthErrorCode::ExpiredToken)), as
//!      does any other OAuth error or a non-transient invalid answer;
//!    - no answer, a time-out, a 5xx or 429 (an HTML page from a proxy included),
//!      `server_error`, `temporarily_unavailable`: transient; the wait doubles (at most
//!      [`MAX_ERROR_BACKOFF`], or the interval if longer) and polling goes on, back to the
//!      interval after the next real answer;
//!    - polling ends when the device code expires (`expires_in`) or the login timeout
//!      (`deviceFlowConfig.timeout`, [`DEFAULT_LOGIN_TIMEOUT`]) passes, whichever comes first:
//!      [`Error::Timeout`], saying which, and the last failure if the last poll failed.
//! 4. [`CancelHandle::cancel`] ends a running login with [`Error::Cancelled`]; dropping the
//!    future that awaits credentials ends it too.
//!
//! Waiting goes through a [`Clock`] ([`TokioClock`], on `tokio::time`, by default).
//!
//! # Construction touches no network
//!
//! flytekit's constructor fetches the client config and fails when the server has no device
//! authorization endpoint. Here, as for every authenticator of `flyte-auth`, creating one
//! touches neither the network nor the token store: a missing device endpoint is an
//! [`Error::Config`] on the first login, and stored credentials (or a refresh token) keep
//! working without it. Call [`DeviceCodeAuthenticator::check_server`] to fail early instead.
//!
//! ```no_run
//! # async fn run() -> Result<(), flyte_auth_core::Error> {
//! use std::sync::Arc;
//! use flyte_auth_core::{Authenticator, MemoryStore};
//! use flyte_auth_device::DeviceCodeAuthenticator;
//!
//! let auth = DeviceCodeAuthenticator::builder("dns:///flyte.example.org")
//!     .store(Arc::new(MemoryStore::new())) // a keyring or file store in real programs
//!     .build()?;
//! auth.check_server().await?; // optional: fail now if the server has no device flow
//! let header = auth.auth_header().await?; // prints the URL and code on stderr, waits
//! # let _ = header; Ok(()) }
//! ```

mod cancel;
mod clock;
mod flow;
mod prompt;

use std::{
    fmt,
    sync::{Arc, OnceLock},
    time::Duration,
};

use flyte_auth_core::{
    AuthHeader, Authenticator, BoxFuture, CachingAuthenticator, ClientConfigStore, Credentials,
    Error, SecretString, TokenStore,
};
pub use flyte_auth_oauth::DEFAULT_DEVICE_POLL_INTERVAL;
use flyte_auth_oauth::{HttpSettings, OAuthClient, RemoteClientConfigStore};
use http::HeaderName;
use tokio::sync::OnceCell;

pub use cancel::CancelHandle;
pub use clock::{Clock, TokioClock};
pub use flow::{DEFAULT_LOGIN_TIMEOUT, DeviceCodeFlow, MAX_ERROR_BACKOFF, SLOW_DOWN_INCREMENT};
pub use prompt::{DevicePrompt, PromptCallback, prompt_on_stderr};

use flow::{Overrides, Polling};

/// Logs in with the device flow: flytekit's `DeviceCodeAuthenticator`.
///
/// A thin wrapper around [`CachingAuthenticator`] with a [`DeviceCodeFlow`]: stored
/// credentials are used while fresh, the refresh grant is tried before a new login, the
/// result is stored. Cloning is cheap and clones share the cache.
///
/// Creating it touches neither the network nor the store; see the crate documentation.
#[derive(Clone)]
pub struct DeviceCodeAuthenticator {
    inner: CachingAuthenticator<DeviceCodeFlow>,
}

impl fmt::Debug for DeviceCodeAuthenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DeviceCodeAuthenticator")
            .field(&self.inner)
            .finish()
    }
}

impl DeviceCodeAuthenticator {
    /// flytekit's constructor: the endpoint (the key of stored credentials) and where the
    /// client config comes from. Everything else takes its default; use
    /// [`builder`](Self::builder) for more (header key, audience, scopes, HTTP settings, a
    /// token store).
    ///
    /// Fails with [`Error::Config`] when the endpoint is empty or the default HTTP client
    /// cannot be built; touches no network.
    pub fn new(
        endpoint: impl Into<String>,
        cfg_store: Arc<dyn ClientConfigStore>,
    ) -> Result<Self, Error> {
        Self::builder(endpoint).cfg_store(cfg_store).build()
    }

    /// Starts a builder for the Flyte `endpoint` (`dns:///host:port`, `host:port` or a URL).
    pub fn builder(endpoint: impl Into<String>) -> DeviceCodeAuthenticatorBuilder {
        DeviceCodeAuthenticatorBuilder {
            endpoint: endpoint.into(),
            cfg_store: None,
            insecure: false,
            overrides: Overrides::default(),
            header_key_raw: None,
            http: None,
            http_settings: None,
            store: None,
            refresh_margin: None,
            poll_interval: None,
            timeout: None,
            prompt: None,
            clock: None,
        }
    }

    /// The caching authenticator inside (for [`CachingAuthenticator::clear`],
    /// [`CachingAuthenticator::cached_credentials`], ...).
    pub fn inner(&self) -> &CachingAuthenticator<DeviceCodeFlow> {
        &self.inner
    }

    /// The flow.
    pub fn flow(&self) -> &DeviceCodeFlow {
        self.inner.flow()
    }

    /// A handle that cancels the device logins running when it is used.
    pub fn cancel_handle(&self) -> CancelHandle {
        self.flow().cancel_handle()
    }

    /// Reads the client config and fails unless the device flow can be used with this
    /// server (flytekit checks this at construction). See [`DeviceCodeFlow::check_server`].
    pub async fn check_server(&self) -> Result<(), Error> {
        self.flow().check_server().await
    }
}

impl Authenticator for DeviceCodeAuthenticator {
    fn get_credentials(&self) -> BoxFuture<'_, Result<Arc<Credentials>, Error>> {
        self.inner.get_credentials()
    }

    fn refresh_credentials(&self) -> BoxFuture<'_, Result<Arc<Credentials>, Error>> {
        self.inner.refresh_credentials()
    }

    fn fetch_grpc_call_auth_metadata(&self) -> Option<AuthHeader> {
        self.inner.fetch_grpc_call_auth_metadata()
    }

    fn auth_header(&self) -> BoxFuture<'_, Result<AuthHeader, Error>> {
        self.inner.auth_header()
    }

    fn has_credentials(&self) -> bool {
        self.inner.has_credentials()
    }

    fn invalidate(&self, rejected: &http::HeaderValue) {
        self.inner.invalidate(rejected)
    }
}

/// Builds a [`DeviceCodeAuthenticator`] (or only its [`DeviceCodeFlow`]).
///
/// Where the client config comes from: the [`cfg_store`](Self::cfg_store), else discovery
/// from the endpoint itself ([`RemoteClientConfigStore`], over `http://` when
/// [`insecure`](Self::insecure)). What is set here wins over the client config; when the
/// client id, both endpoints, scopes, audience and header key are all set, the client config
/// is not read at all.
///
/// ```
/// use std::{sync::Arc, time::Duration};
/// use flyte_auth_core::{ClientConfig, MemoryStore, StaticClientConfigStore};
/// use flyte_auth_device::DeviceCodeAuthenticator;
///
/// let cfg = ClientConfig::new("https://idp.example.org/oauth2/token", "flytectl")
///     .with_device_authorization_endpoint("https://idp.example.org/oauth2/device/authorize");
/// let auth = DeviceCodeAuthenticator::builder("flyte.example.org")
///     .cfg_store(Arc::new(StaticClientConfigStore::new(cfg)))
///     .scopes(["openid", "offline_access", "all"])
///     .audience("https://flyte.example.org")
///     .poll_interval(Duration::from_secs(5))
///     .timeout(Duration::from_secs(300))
///     .prompt(|p| eprintln!("Open {} and confirm the code {}", p.url(), p.user_code))
///     .store(Arc::new(MemoryStore::new()))
///     .build()?;
/// # let _ = auth;
/// # Ok::<(), flyte_auth_core::Error>(())
/// ```
#[must_use]
pub struct DeviceCodeAuthenticatorBuilder {
    endpoint: String,
    cfg_store: Option<Arc<dyn ClientConfigStore>>,
    insecure: bool,
    overrides: Overrides,
    header_key_raw: Option<String>,
    http: Option<OAuthClient>,
    http_settings: Option<HttpSettings>,
    store: Option<Arc<dyn TokenStore>>,
    refresh_margin: Option<Duration>,
    poll_interval: Option<Duration>,
    timeout: Option<Duration>,
    prompt: Option<PromptCallback>,
    clock: Option<Arc<dyn Clock>>,
}

impl fmt::Debug for DeviceCodeAuthenticatorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceCodeAuthenticatorBuilder")
            .field("endpoint", &self.endpoint)
            .field("cfg_store", &self.cfg_store)
            .field("insecure", &self.insecure)
            .field("client_id", &self.overrides.client_id)
            .field("client_secret", &self.overrides.client_secret)
            .field("token_endpoint", &self.overrides.token_endpoint)
            .field(
                "device_authorization_endpoint",
                &self.overrides.device_authorization_endpoint,
            )
            .field("poll_interval", &self.poll_interval)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl DeviceCodeAuthenticatorBuilder {
    /// Where the client config (client id, endpoints, scopes, audience, header key) comes from.
    pub fn cfg_store(mut self, cfg_store: Arc<dyn ClientConfigStore>) -> Self {
        self.cfg_store = Some(cfg_store);
        self
    }

    /// Discovery from the endpoint uses `http://` (Flyte's `insecure: true`). Used only when
    /// no client config store is given.
    pub fn insecure(mut self, insecure: bool) -> Self {
        self.insecure = insecure;
        self
    }

    /// The OAuth client id (Flyte's `clientId`), instead of the client config's.
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.overrides.client_id = non_empty(client_id.into());
        self
    }

    /// A client secret, for identity providers that register the device client as
    /// confidential (sent with HTTP Basic). Public clients, the usual case, have none.
    pub fn client_secret(mut self, secret: impl Into<SecretString>) -> Self {
        let secret = secret.into();
        self.overrides.client_secret = (!secret.is_empty()).then_some(secret);
        self
    }

    /// The token endpoint (Flyte's `tokenUrl`), instead of the client config's.
    pub fn token_endpoint(mut self, url: impl Into<String>) -> Self {
        self.overrides.token_endpoint = non_empty(url.into());
        self
    }

    /// The device authorization endpoint, instead of the client config's.
    pub fn device_authorization_endpoint(mut self, url: impl Into<String>) -> Self {
        self.overrides.device_authorization_endpoint = non_empty(url.into());
        self
    }

    /// The header the token goes in (flytekit's `header_key`, Flyte's
    /// `authorizationHeader`), instead of the server's choice. The header in use is stored
    /// with the token, so a token read back from a store is sent under it before the server
    /// is asked.
    pub fn header_key(mut self, key: impl Into<String>) -> Self {
        self.header_key_raw = Some(key.into());
        self
    }

    /// The scopes to ask for, instead of the client config's. Identity providers issue a
    /// refresh token only for an offline scope (`offline_access`, `offline`); without one,
    /// every expiry means a new device login.
    pub fn scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.overrides.scopes = Some(scopes.into_iter().map(Into::into).collect());
        self
    }

    /// The `audience` to send (Auth0, Keycloak), instead of the client config's.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.overrides.audience = Some(audience.into()).filter(|a| !a.is_empty());
        self
    }

    /// Adds a form parameter to the device authorization and refresh requests (some identity
    /// providers want `resource` or similar).
    pub fn param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.overrides.extra.push((name.into(), value.into()));
        self
    }

    /// The HTTP client to use (share one between authenticators and the config store).
    pub fn http_client(mut self, client: OAuthClient) -> Self {
        self.http = Some(client);
        self
    }

    /// The HTTP settings to build a client from (ignored when
    /// [`http_client`](Self::http_client) is given).
    pub fn http_settings(mut self, settings: HttpSettings) -> Self {
        self.http_settings = Some(settings);
        self
    }

    /// Persists credentials (and the refresh token) to `store`, so that the next process does
    /// not log in again. None by default.
    pub fn store(mut self, store: Arc<dyn TokenStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// Refreshes this long before expiry (Flyte's `deviceFlowConfig.refreshTime`; core's
    /// [`DEFAULT_REFRESH_MARGIN`](flyte_auth_core::DEFAULT_REFRESH_MARGIN) by default).
    pub fn refresh_margin(mut self, margin: Duration) -> Self {
        self.refresh_margin = Some(margin);
        self
    }

    /// How often to poll when the server does not say (Flyte's
    /// `deviceFlowConfig.pollInterval`; [`DEFAULT_DEVICE_POLL_INTERVAL`] by default). The
    /// server's `interval`, when sent, wins.
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = Some(interval);
        self
    }

    /// How long a device login waits for the user at most (Flyte's
    /// `deviceFlowConfig.timeout`; [`DEFAULT_LOGIN_TIMEOUT`] by default). The code's own
    /// expiry ends the login earlier when it comes first.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Shows the prompt the user's way instead of writing it to stderr
    /// ([`prompt_on_stderr`]).
    pub fn prompt(mut self, callback: impl Fn(&DevicePrompt) + Send + Sync + 'static) -> Self {
        self.prompt = Some(Arc::new(callback));
        self
    }

    /// The time source of the poll loop ([`TokioClock`] by default); for tests.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The authenticator. Touches neither the network nor the store.
    ///
    /// Fails with [`Error::Config`] when the endpoint is empty, the header key is not a
    /// valid header name, or the HTTP client cannot be built (an unreadable CA file).
    pub fn build(self) -> Result<DeviceCodeAuthenticator, Error> {
        let store = self.store.clone();
        let margin = self.refresh_margin;
        let flow = self.build_flow()?;
        let mut builder = CachingAuthenticator::builder(flow).maybe_store(store);
        if let Some(margin) = margin {
            builder = builder.refresh_margin(margin);
        }
        Ok(DeviceCodeAuthenticator {
            inner: builder.build(),
        })
    }

    /// Only the flow, to wrap in a [`CachingAuthenticator`] of your own ([`store`](Self::store)
    /// and [`refresh_margin`](Self::refresh_margin) are then yours to set there).
    pub fn build_flow(self) -> Result<DeviceCodeFlow, Error> {
        let endpoint = self
            .endpoint
            .trim()
            .trim_start_matches("dns:///")
            .trim_end_matches('/')
            .to_owned();
        if endpoint.is_empty() {
            return Err(Error::config(
                "the device flow needs the Flyte endpoint (admin.endpoint)",
            ));
        }
        let mut overrides = self.overrides;
        overrides.header_key = self
            .header_key_raw
            .as_deref()
            .filter(|k| !k.trim().is_empty())
            .map(parse_header)
            .transpose()?;
        let http = match self.http {
            Some(client) => client,
            None => OAuthClient::new(self.http_settings.unwrap_or_default())?,
        };
        let cfg_store = match self.cfg_store {
            Some(store) => Some(store),
            None if overrides.complete() => None,
            None => Some(Arc::new(RemoteClientConfigStore::new(
                &self.endpoint,
                self.insecure,
                http.clone(),
            )?) as Arc<dyn ClientConfigStore>),
        };
        Ok(DeviceCodeFlow {
            endpoint,
            cfg_store,
            overrides,
            http,
            polling: Polling {
                default_interval: self.poll_interval.unwrap_or(DEFAULT_DEVICE_POLL_INTERVAL),
                timeout: self.timeout.unwrap_or(DEFAULT_LOGIN_TIMEOUT),
                clock: self.clock.unwrap_or_else(|| Arc::new(TokioClock)),
            },
            prompt: self.prompt.unwrap_or_else(|| Arc::new(prompt_on_stderr)),
            cancel: CancelHandle::new(),
            config: OnceCell::new(),
            discovered_header: OnceLock::new(),
        })
    }
}

fn non_empty(s: String) -> Option<String> {
    (!s.trim().is_empty()).then(|| s.trim().to_owned())
}

pub(crate) fn parse_header(key: &str) -> Result<HeaderName, Error> {
    HeaderName::from_bytes(key.trim().as_bytes()).map_err(|_| {
        Error::config(format!(
            "`{key}` is not a valid header name (authorizationHeader / authorization_metadata_key)"
        ))
    })
}

/// The README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

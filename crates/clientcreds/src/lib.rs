//! Flyte's client credentials authenticator: a service (CI job, workflow, daemon) obtains its
//! token with its own client id and secret (OAuth 2.0 `client_credentials` grant).
//!
//! [`ClientCredentialsAuthenticator`] is flytekit's `ClientCredentialsAuthenticator`: the token
//! endpoint, scopes, audience and header key come from the [`ClientConfigStore`] (normally the
//! Flyte server's discovery documents) unless given. Unlike flytekit it keeps the token's
//! expiry and fetches a new token a margin *before* it expires, one request however many tasks
//! ask at once (the caching lives in [`flyte_auth_core::CachingAuthenticator`]); a rejected
//! token costs one new request, not one per caller.
//!
//! ```no_run
//! # async fn run() -> Result<(), flyte_auth_core::Error> {
//! use flyte_auth_core::Authenticator;
//! use flyte_auth_clientcreds::ClientCredentialsAuthenticator;
//!
//! let secret = std::env::var("FLYTE_CREDENTIALS_CLIENT_SECRET").unwrap_or_default();
//! let auth = ClientCredentialsAuthenticator::builder("dns:///flyte.example.org", "my-service", secret)
//!     .build()?;
//! let header = auth.auth_header().await?; // `authorization: Bearer ...`
//! # let _ = header; Ok(()) }
//! ```

use std::{
    fmt,
    sync::{Arc, OnceLock},
    time::Duration,
};

use flyte_auth_core::{
    AuthHeader, Authenticator, BoxFuture, CachingAuthenticator, ClientConfigStore, Credentials,
    Error, SecretString, TokenFlow, TokenStore,
};
use flyte_auth_oauth::{
    ClientAuth, ClientAuthMethod, HttpSettings, OAuthClient, RemoteClientConfigStore, TokenRequest,
};
use http::HeaderName;

/// Obtains tokens with a client id and secret: flytekit's `ClientCredentialsAuthenticator`.
///
/// A thin wrapper around [`CachingAuthenticator`] with a [`ClientCredentialsFlow`]: the token's
/// expiry is kept, the token is renewed before it expires, concurrent callers share one token
/// request. Cloning is cheap and clones share the cache.
///
/// Creating it touches no network; the first [`get_credentials`](Authenticator::get_credentials)
/// reads the client config and requests a token.
#[derive(Clone)]
pub struct ClientCredentialsAuthenticator {
    inner: CachingAuthenticator<ClientCredentialsFlow>,
}

impl fmt::Debug for ClientCredentialsAuthenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ClientCredentialsAuthenticator")
            .field(&self.inner)
            .finish()
    }
}

impl ClientCredentialsAuthenticator {
    /// flytekit's constructor: the endpoint (the key of stored credentials), the client id and
    /// secret, and where the client config comes from. Everything else takes its default; use
    /// [`builder`](Self::builder) for more.
    ///
    /// Fails with [`Error::Config`] when the endpoint, the client id or the secret is empty.
    pub fn new(
        endpoint: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<SecretString>,
        cfg_store: Arc<dyn ClientConfigStore>,
    ) -> Result<Self, Error> {
        Self::builder(endpoint, client_id, client_secret)
            .cfg_store(cfg_store)
            .build()
    }

    /// Starts a builder.
    pub fn builder(
        endpoint: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<SecretString>,
    ) -> ClientCredentialsAuthenticatorBuilder {
        ClientCredentialsAuthenticatorBuilder {
            endpoint: endpoint.into(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            method: ClientAuthMethod::default(),
            cfg_store: None,
            insecure: false,
            token_endpoint: None,
            header_key: None,
            scopes: None,
            audience: None,
            extra: Vec::new(),
            http: None,
            http_settings: None,
            store: None,
            refresh_margin: None,
        }
    }

    /// The caching authenticator inside (for [`CachingAuthenticator::clear`],
    /// [`CachingAuthenticator::cached_credentials`], ...).
    pub fn inner(&self) -> &CachingAuthenticator<ClientCredentialsFlow> {
        &self.inner
    }

    /// The flow.
    pub fn flow(&self) -> &ClientCredentialsFlow {
        self.inner.flow()
    }
}

impl Authenticator for ClientCredentialsAuthenticator {
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

/// Builds a [`ClientCredentialsAuthenticator`].
///
/// Where the token endpoint comes from, in order: [`token_endpoint`](Self::token_endpoint)
/// (Flyte's `tokenUrl`), else the [`cfg_store`](Self::cfg_store), else discovery from the
/// endpoint itself ([`RemoteClientConfigStore`], over `http://` when
/// [`insecure`](Self::insecure)). Scopes, audience and header key given here win over the
/// client config's.
///
/// ```
/// use std::{sync::Arc, time::Duration};
/// use flyte_auth_core::{ClientConfig, StaticClientConfigStore};
/// use flyte_auth_clientcreds::ClientCredentialsAuthenticator;
/// use flyte_auth_oauth::{ClientAuthMethod, HttpSettings};
///
/// let cfg = ClientConfig::new("https://idp.example.org/oauth2/token", "flytectl");
/// let auth = ClientCredentialsAuthenticator::builder("flyte.example.org", "my-service", "s3cr3t")
///     .cfg_store(Arc::new(StaticClientConfigStore::new(cfg)))
///     .scopes(["all"])
///     .audience("https://flyte.example.org")
///     .auth_method(ClientAuthMethod::ClientSecretPost)
///     .http_settings(HttpSettings::new().request_timeout(Duration::from_secs(10)))
///     .build()?;
/// # Ok::<(), flyte_auth_core::Error>(())
/// ```
#[must_use]
pub struct ClientCredentialsAuthenticatorBuilder {
    endpoint: String,
    client_id: String,
    client_secret: SecretString,
    method: ClientAuthMethod,
    cfg_store: Option<Arc<dyn ClientConfigStore>>,
    insecure: bool,
    token_endpoint: Option<String>,
    header_key: Option<String>,
    scopes: Option<Vec<String>>,
    audience: Option<String>,
    extra: Vec<(String, String)>,
    http: Option<OAuthClient>,
    http_settings: Option<HttpSettings>,
    store: Option<Arc<dyn TokenStore>>,
    refresh_margin: Option<Duration>,
}

impl fmt::Debug for ClientCredentialsAuthenticatorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentialsAuthenticatorBuilder")
            .field("endpoint", &self.endpoint)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .field("method", &self.method)
            .field("token_endpoint", &self.token_endpoint)
            .finish_non_exhaustive()
    }
}

impl ClientCredentialsAuthenticatorBuilder {
    /// Where the client config (token endpoint, scopes, audience, header key) comes from.
    pub fn cfg_store(mut self, cfg_store: Arc<dyn ClientConfigStore>) -> Self {
        self.cfg_store = Some(cfg_store);
        self
    }

    /// Discovery from the endpoint uses `http://` (Flyte's `insecure: true`). Used only when
    /// neither a client config store nor a token endpoint is given.
    pub fn insecure(mut self, insecure: bool) -> Self {
        self.insecure = insecure;
        self
    }

    /// The token endpoint (Flyte's `tokenUrl`): skips discovery unless a
    /// [`cfg_store`](Self::cfg_store) is also given (then only its other fields are used).
    pub fn token_endpoint(mut self, url: impl Into<String>) -> Self {
        let url = url.into();
        self.token_endpoint = (!url.trim().is_empty()).then_some(url);
        self
    }

    /// The header the token goes in (`authorization` by default, or the server's choice).
    pub fn header_key(mut self, key: impl Into<String>) -> Self {
        let key = key.into();
        self.header_key = (!key.trim().is_empty()).then_some(key);
        self
    }

    /// The scopes to ask for, instead of the client config's.
    pub fn scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes = Some(scopes.into_iter().map(Into::into).collect());
        self
    }

    /// The `audience` to send, instead of the client config's.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// Adds a form parameter to every token request (some identity providers want
    /// `resource` or similar).
    pub fn param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.extra.push((name.into(), value.into()));
        self
    }

    /// How the secret is sent: HTTP Basic (default, RFC 6749 §2.3.1 encoding) or in the body
    /// (`client_secret_post`), for servers that reject one or the other.
    pub fn auth_method(mut self, method: ClientAuthMethod) -> Self {
        self.method = method;
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

    /// Persists tokens to `store` (none by default: like flytekit, a service's token lives in
    /// memory). With a store and a header key chosen by the server, also set
    /// [`header_key`](Self::header_key), since a token read back from the store is used before
    /// the server is asked.
    pub fn store(mut self, store: Arc<dyn TokenStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// Renews the token this long before it expires (core's
    /// [`DEFAULT_REFRESH_MARGIN`](flyte_auth_core::DEFAULT_REFRESH_MARGIN) by default; a
    /// quarter of the lifetime for short-lived tokens).
    pub fn refresh_margin(mut self, margin: Duration) -> Self {
        self.refresh_margin = Some(margin);
        self
    }

    /// The authenticator. Touches no network.
    ///
    /// Fails with [`Error::Config`] when the endpoint, the client id or the secret is empty,
    /// the header key is not a valid header name, or the HTTP client cannot be built.
    pub fn build(self) -> Result<ClientCredentialsAuthenticator, Error> {
        if self.client_id.trim().is_empty() {
            return Err(Error::config(
                "client credentials need a client id (clientId / FLYTE_CREDENTIALS_CLIENT_ID)",
            ));
        }
        if self.client_secret.expose_secret().trim().is_empty() {
            return Err(Error::config(
                "client credentials need a client secret (clientSecretLocation, \
                 clientSecretEnvVar or FLYTE_CREDENTIALS_CLIENT_SECRET)",
            ));
        }
        if self.endpoint.trim().is_empty() {
            return Err(Error::config(
                "client credentials need the Flyte endpoint (admin.endpoint)",
            ));
        }
        let header_key = self.header_key.as_deref().map(parse_header).transpose()?;
        let http = match self.http {
            Some(client) => client,
            None => OAuthClient::new(self.http_settings.unwrap_or_default())?,
        };
        let cfg_store = match (self.cfg_store, &self.token_endpoint) {
            (Some(store), _) => Some(store),
            (None, Some(_)) => None,
            (None, None) => Some(Arc::new(RemoteClientConfigStore::new(
                &self.endpoint,
                self.insecure,
                http.clone(),
            )?) as Arc<dyn ClientConfigStore>),
        };
        let endpoint = self
            .endpoint
            .trim()
            .trim_start_matches("dns:///")
            .to_owned();
        let flow = ClientCredentialsFlow {
            endpoint,
            client: ClientAuth::confidential(self.client_id, self.client_secret)
                .with_method(self.method),
            cfg_store,
            token_endpoint: self.token_endpoint,
            header_key,
            scopes: self.scopes,
            audience: self.audience,
            extra: self.extra,
            http,
            discovered_header: OnceLock::new(),
        };
        let mut builder = CachingAuthenticator::builder(flow).maybe_store(self.store);
        if let Some(margin) = self.refresh_margin {
            builder = builder.refresh_margin(margin);
        }
        Ok(ClientCredentialsAuthenticator {
            inner: builder.build(),
        })
    }
}

fn parse_header(key: &str) -> Result<HeaderName, Error> {
    HeaderName::from_bytes(key.trim().as_bytes()).map_err(|_| {
        Error::config(format!(
            "`{key}` is not a valid header name (authorizationHeader / authorization_metadata_key)"
        ))
    })
}

/// The `client_credentials` grant as a [`TokenFlow`]: what
/// [`ClientCredentialsAuthenticator`] wraps. Use it directly to put it in a
/// [`CachingAuthenticator`] of your own.
///
/// It has no refresh grant: a new token is obtained with the client's credentials each time
/// (any refresh token the server sends is dropped, so none is stored).
pub struct ClientCredentialsFlow {
    endpoint: String,
    client: ClientAuth,
    cfg_store: Option<Arc<dyn ClientConfigStore>>,
    token_endpoint: Option<String>,
    header_key: Option<HeaderName>,
    scopes: Option<Vec<String>>,
    audience: Option<String>,
    extra: Vec<(String, String)>,
    http: OAuthClient,
    discovered_header: OnceLock<HeaderName>,
}

impl fmt::Debug for ClientCredentialsFlow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentialsFlow")
            .field("endpoint", &self.endpoint)
            .field("client", &self.client)
            .field("cfg_store", &self.cfg_store)
            .field(
                "token_endpoint",
                &self
                    .token_endpoint
                    .as_deref()
                    .map(flyte_auth_core::redact_url),
            )
            .field("header_key", &self.header_key)
            .field("scopes", &self.scopes)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

/// What a token request needs, after the client config is consulted.
struct Resolved {
    token_endpoint: String,
    scopes: Vec<String>,
    audience: Option<String>,
}

impl ClientCredentialsFlow {
    /// The HTTP client.
    pub fn http_client(&self) -> &OAuthClient {
        &self.http
    }

    async fn resolve(&self) -> Result<Resolved, Error> {
        let complete = self.token_endpoint.is_some()
            && self.scopes.is_some()
            && self.audience.is_some()
            && self.header_key.is_some();
        let cfg = match (&self.cfg_store, complete) {
            (Some(store), false) => Some(store.get_client_config().await?),
            _ => None,
        };
        if self.header_key.is_none()
            && let Some(cfg) = &cfg
        {
            let header = parse_header(&cfg.header_key)?;
            let _ = self.discovered_header.set(header);
        }
        let token_endpoint = match (&self.token_endpoint, &cfg) {
            (Some(url), _) => url.clone(),
            (None, Some(cfg)) if !cfg.token_endpoint.trim().is_empty() => {
                cfg.token_endpoint.clone()
            }
            _ => {
                return Err(Error::config(
                    "no token endpoint: the client config names none; set tokenUrl",
                ));
            }
        };
        let scopes = match (&self.scopes, &cfg) {
            (Some(scopes), _) => scopes.clone(),
            (None, Some(cfg)) => cfg.scopes.clone(),
            (None, None) => Vec::new(),
        };
        let audience = match (&self.audience, &cfg) {
            (Some(audience), _) => Some(audience.clone()),
            (None, Some(cfg)) => cfg.audience.clone(),
            (None, None) => None,
        };
        Ok(Resolved {
            token_endpoint,
            scopes,
            audience,
        })
    }
}

impl TokenFlow for ClientCredentialsFlow {
    fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn login(&self) -> BoxFuture<'_, Result<Credentials, Error>> {
        Box::pin(async move {
            let resolved = self.resolve().await?;
            let request =
                TokenRequest::client_credentials(resolved.token_endpoint, self.client.clone())
                    .with_scopes(resolved.scopes)
                    .with_optional_audience(resolved.audience)
                    .with_params(self.extra.iter().cloned());
            tracing::debug!(
                endpoint = %self.endpoint,
                client_id = self.client.client_id(),
                "requesting a token with client credentials"
            );
            let mut credentials = self
                .http
                .token(&request)
                .await?
                .into_credentials(self.endpoint.clone())
                .with_client_id(self.client.client_id());
            credentials.refresh_token = None;
            Ok(credentials)
        })
    }

    fn client_id(&self) -> Option<String> {
        Some(self.client.client_id().to_owned())
    }

    fn header_name(&self) -> Option<HeaderName> {
        self.header_key
            .clone()
            .or_else(|| self.discovered_header.get().cloned())
    }
}

/// The README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

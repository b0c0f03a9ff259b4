//! [`PkceFlow`] (the browser login as a core `TokenFlow`) and [`PKCEAuthenticator`].

use std::{fmt, sync::Arc, time::Duration};

use flyte_auth_core::{
    AuthHeader, Authenticator, BoxFuture, CachingAuthenticator, ClientConfigStore, Credentials,
    Error, TokenFlow, TokenStore,
};
use flyte_auth_oauth::{HttpSettings, OAuthClient};
use http::HeaderName;
use tokio::sync::OnceCell;

use crate::{
    AuthorizationClient, DEFAULT_REDIRECT_URI,
    client::{LoginOptions, clean_scopes, login_option_methods},
};

/// The browser login as a [`TokenFlow`]: what [`PKCEAuthenticator`] wraps.
///
/// The client configuration (endpoints, client id, redirect URI, scopes, audience, header)
/// is fetched from the [`ClientConfigStore`] on the first login or refresh, not before, and
/// an [`AuthorizationClient`] is built from it once. Explicit scopes and header key win over
/// the server's. A failed fetch is not remembered: the next attempt fetches again.
pub struct PkceFlow {
    endpoint: String,
    cfg_store: Arc<dyn ClientConfigStore>,
    scopes: Option<Vec<String>>,
    header_key: Option<HeaderName>,
    http: OAuthClient,
    options: LoginOptions,
    configured: OnceCell<Configured>,
}

struct Configured {
    client: AuthorizationClient,
    header: HeaderName,
}

impl fmt::Debug for PkceFlow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PkceFlow")
            .field("endpoint", &self.endpoint)
            .field("cfg_store", &self.cfg_store)
            .field("scopes", &self.scopes)
            .field("header_key", &self.header_key)
            .field("client", &self.configured.get().map(|c| &c.client))
            .finish_non_exhaustive()
    }
}

impl PkceFlow {
    /// The authorization client, once the client configuration has been fetched.
    pub fn authorization_client(&self) -> Option<&AuthorizationClient> {
        self.configured.get().map(|c| &c.client)
    }

    async fn configured(&self) -> Result<&Configured, Error> {
        self.configured
            .get_or_try_init(|| async {
                let cfg = self.cfg_store.get_client_config().await?;
                let missing = |what: &str| {
                    Error::config(format!(
                        "the OAuth configuration for {} has no {what}, which the browser login \
                         (authType Pkce) needs; check the server's /.well-known/oauth-authorization-server \
                         and /config/v1/flyte_client, or use another authType",
                        self.endpoint
                    ))
                };
                if cfg.authorization_endpoint.trim().is_empty() {
                    return Err(missing("authorization endpoint"));
                }
                if cfg.token_endpoint.trim().is_empty() {
                    return Err(missing("token endpoint"));
                }
                if cfg.client_id.trim().is_empty() {
                    return Err(missing("client id"));
                }
                let redirect_uri = if cfg.redirect_uri.trim().is_empty() {
                    DEFAULT_REDIRECT_URI.to_owned()
                } else {
                    cfg.redirect_uri.clone()
                };
                let scopes = match &self.scopes {
                    Some(scopes) if !scopes.is_empty() => scopes.clone(),
                    _ => clean_scopes(cfg.scopes.iter().cloned()),
                };
                let header = match &self.header_key {
                    Some(header) => header.clone(),
                    None => parse_header_name(&cfg.header_key)?,
                };
                let mut builder = AuthorizationClient::builder(
                    self.endpoint.clone(),
                    cfg.authorization_endpoint.clone(),
                    cfg.token_endpoint.clone(),
                    cfg.client_id.clone(),
                    redirect_uri,
                )
                .scopes(scopes)
                .http_client(self.http.clone());
                if let Some(audience) = cfg.audience.clone() {
                    builder = builder.audience(audience);
                }
                let client =
                    AuthorizationClient::with_options(builder, self.options.clone()).build()?;
                tracing::debug!(endpoint = %self.endpoint, client = ?client, "browser login configured");
                Ok(Configured { client, header })
            })
            .await
    }
}

impl TokenFlow for PkceFlow {
    fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn login(&self) -> BoxFuture<'_, Result<Credentials, Error>> {
        Box::pin(async move {
            self.configured()
                .await?
                .client
                .get_creds_from_remote()
                .await
        })
    }

    fn refresh<'a>(
        &'a self,
        current: &'a Credentials,
    ) -> Option<BoxFuture<'a, Result<Credentials, Error>>> {
        Some(Box::pin(async move {
            self.configured()
                .await?
                .client
                .refresh_access_token(current)
                .await
        }))
    }

    fn client_id(&self) -> Option<String> {
        self.configured
            .get()
            .map(|c| c.client.client_id().to_owned())
    }

    fn header_name(&self) -> Option<HeaderName> {
        self.header_key
            .clone()
            .or_else(|| self.configured.get().map(|c| c.header.clone()))
    }
}

fn parse_header_name(name: &str) -> Result<HeaderName, Error> {
    let name = name.trim();
    if name.is_empty() {
        return Ok(HeaderName::from_static(flyte_auth_core::DEFAULT_HEADER_KEY));
    }
    HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()).map_err(|_| {
        Error::config(format!(
            "`{name}` is not a valid header name for the token (authorizationHeader / authorization_metadata_key)"
        ))
    })
}

/// Browser login with PKCE: flytekit's `PKCEAuthenticator`.
///
/// A [`CachingAuthenticator`] around [`PkceFlow`]: credentials come from memory, then the
/// token store, then the refresh grant, then a browser login; they are refreshed before they
/// expire; concurrent callers share one attempt (one browser window, however many tasks ask);
/// a refresh token the server rejects is deleted from the store and a new login starts.
///
/// Creating it touches neither the network nor the store: the client configuration is
/// fetched on the first login or refresh.
///
/// ```no_run
/// # async fn run() -> Result<(), flyte_auth_core::Error> {
/// use std::sync::Arc;
/// use flyte_auth_core::{Authenticator, MemoryStore};
/// use flyte_auth_oauth::{HttpSettings, OAuthClient, RemoteClientConfigStore};
/// use flyte_auth_pkce::PKCEAuthenticator;
///
/// let http = OAuthClient::new(HttpSettings::new())?;
/// let discovery = RemoteClientConfigStore::new("dns:///flyte.example.org", false, http.clone())?;
/// let auth = PKCEAuthenticator::builder("flyte.example.org", Arc::new(discovery))
///     .http_client(http)
///     .store(Arc::new(MemoryStore::new()))
///     .build()?;
/// let header = auth.auth_header().await?; // opens the browser the first time
/// # let _ = header; Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct PKCEAuthenticator {
    inner: CachingAuthenticator<PkceFlow>,
}

/// The Rust-style name of [`PKCEAuthenticator`].
pub type PkceAuthenticator = PKCEAuthenticator;

impl PKCEAuthenticator {
    /// flytekit's constructor: `endpoint` (also the store's key), where the client
    /// configuration comes from, scopes and header key overriding the server's when given,
    /// the HTTP client, and the token store (`None`: credentials live in this process only).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when `header_key` is not a valid header name.
    pub fn new(
        endpoint: impl Into<String>,
        cfg_store: Arc<dyn ClientConfigStore>,
        scopes: Option<Vec<String>>,
        header_key: Option<String>,
        http: OAuthClient,
        store: Option<Arc<dyn TokenStore>>,
    ) -> Result<Self, Error> {
        let mut builder = Self::builder(endpoint, cfg_store)
            .http_client(http)
            .maybe_store(store);
        if let Some(scopes) = scopes {
            builder = builder.scopes(scopes);
        }
        if let Some(header_key) = header_key {
            builder = builder.header_key(header_key);
        }
        builder.build()
    }

    /// Starts building an authenticator for `endpoint` with the client configuration from
    /// `cfg_store`.
    pub fn builder(
        endpoint: impl Into<String>,
        cfg_store: Arc<dyn ClientConfigStore>,
    ) -> PkceAuthenticatorBuilder {
        PkceAuthenticatorBuilder {
            endpoint: endpoint.into(),
            cfg_store,
            scopes: None,
            header_key: None,
            http: None,
            settings: None,
            store: None,
            refresh_margin: None,
            options: LoginOptions::new(true),
        }
    }

    /// The flow.
    pub fn flow(&self) -> &PkceFlow {
        self.inner.flow()
    }

    /// The caching authenticator this wraps.
    pub fn caching(&self) -> &CachingAuthenticator<PkceFlow> {
        &self.inner
    }

    /// The credentials in memory, fresh or not, without touching the store or the network.
    pub fn cached_credentials(&self) -> Option<Arc<Credentials>> {
        self.inner.cached_credentials()
    }

    /// Forgets the credentials in memory and deletes them from the store (a logout).
    pub fn clear(&self) -> Result<(), Error> {
        self.inner.clear()
    }
}

impl Authenticator for PKCEAuthenticator {
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

/// Builds a [`PKCEAuthenticator`]; see [`PKCEAuthenticator::builder`].
#[derive(Debug)]
#[must_use]
pub struct PkceAuthenticatorBuilder {
    endpoint: String,
    cfg_store: Arc<dyn ClientConfigStore>,
    scopes: Option<Vec<String>>,
    header_key: Option<String>,
    http: Option<OAuthClient>,
    settings: Option<HttpSettings>,
    store: Option<Arc<dyn TokenStore>>,
    refresh_margin: Option<Duration>,
    options: LoginOptions,
}

impl PkceAuthenticatorBuilder {
    /// Asks for these scopes instead of the server's (`admin.scopes`). An empty list means
    /// the server's.
    pub fn scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes = Some(clean_scopes(scopes));
        self
    }

    /// Sends the token in this header instead of the server's choice
    /// (`admin.authorizationHeader`). An empty name means the server's.
    pub fn header_key(mut self, header_key: impl Into<String>) -> Self {
        let key = header_key.into();
        self.header_key = (!key.trim().is_empty()).then_some(key);
        self
    }

    /// The HTTP client for the token requests; share the one the client configuration store
    /// uses. Wins over [`http_settings`](Self::http_settings).
    pub fn http_client(mut self, client: OAuthClient) -> Self {
        self.http = Some(client);
        self
    }

    /// Builds the HTTP client from these settings (when no client is given).
    pub fn http_settings(mut self, settings: HttpSettings) -> Self {
        self.settings = Some(settings);
        self
    }

    /// Persists credentials to `store` (none by default: memory only).
    pub fn store(mut self, store: Arc<dyn TokenStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// Persists credentials to `store` when one is given.
    pub fn maybe_store(mut self, store: Option<Arc<dyn TokenStore>>) -> Self {
        self.store = store;
        self
    }

    /// Refreshes this long before expiry (`pkceConfig.refreshTime`; core's default, five
    /// minutes, otherwise).
    pub fn refresh_margin(mut self, margin: Duration) -> Self {
        self.refresh_margin = Some(margin);
        self
    }

    login_option_methods!();

    /// The authenticator. Touches neither the network nor the store.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the header key is not a valid header name, the timeout is
    /// zero, or the HTTP client cannot be built from the settings (an unreadable CA file).
    pub fn build(self) -> Result<PKCEAuthenticator, Error> {
        self.options.check()?;
        let header_key = self
            .header_key
            .as_deref()
            .map(parse_header_name)
            .transpose()?;
        let http = match (self.http, self.settings) {
            (Some(http), _) => http,
            (None, Some(settings)) => OAuthClient::new(settings)?,
            (None, None) => OAuthClient::new(HttpSettings::default())?,
        };
        let flow = PkceFlow {
            endpoint: self.endpoint,
            cfg_store: self.cfg_store,
            scopes: self.scopes,
            header_key,
            http,
            options: self.options,
            configured: OnceCell::new(),
        };
        let mut builder = CachingAuthenticator::builder(flow).maybe_store(self.store);
        if let Some(margin) = self.refresh_margin {
            builder = builder.refresh_margin(margin);
        }
        Ok(PKCEAuthenticator {
            inner: builder.build(),
        })
    }
}

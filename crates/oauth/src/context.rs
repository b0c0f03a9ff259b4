//! [`ClientContext`]: the one resolved context every HTTP flow receives — the endpoint, the
//! one HTTP client, and the server's discovery with the configuration's [`Overrides`] applied
//! once.

use std::{
    fmt,
    future::Future,
    sync::{Arc, OnceLock},
};

use flyte_auth_core::{
    BoxFuture, ClientConfig, ClientConfigStore, Credentials, DiscoveryHints, Endpoint, Error,
    redact_url,
};
use http::HeaderName;
use tokio::sync::OnceCell;

use crate::{HttpSettings, OAuthClient, RemoteClientConfigStore, TokenResponse};

/// A field of the client configuration that a flow uses ([`ClientContext::resolve`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Field {
    /// The token endpoint (`tokenUrl`).
    TokenEndpoint,
    /// The authorization endpoint of the browser login.
    AuthorizationEndpoint,
    /// The RFC 8628 device authorization endpoint.
    DeviceAuthorizationEndpoint,
    /// The public OAuth client id of the Flyte tools (`clientId`).
    ClientId,
    /// Where the browser returns after the login.
    RedirectUri,
    /// The scopes to ask for (`scopes`).
    Scopes,
    /// The `audience` parameter (`audience`).
    Audience,
    /// The header the token goes in (`authorizationHeader`).
    HeaderKey,
    /// The RFC 7009 token revocation endpoint (only ever the server's), for a logout.
    RevocationEndpoint,
}

impl Field {
    /// The fields that are endpoints a secret or a login goes to.
    pub(crate) const ENDPOINTS: [Field; 4] = [
        Self::TokenEndpoint,
        Self::AuthorizationEndpoint,
        Self::DeviceAuthorizationEndpoint,
        Self::RevocationEndpoint,
    ];

    /// The metadata name and URL in `cfg` of an endpoint field `cfg` names.
    pub(crate) fn announced_url(self, cfg: &ClientConfig) -> Option<(&'static str, &str)> {
        let (name, url) = match self {
            Self::TokenEndpoint => ("token_endpoint", cfg.token_endpoint.as_str()),
            Self::AuthorizationEndpoint => (
                "authorization_endpoint",
                cfg.authorization_endpoint.as_str(),
            ),
            Self::DeviceAuthorizationEndpoint => (
                "device_authorization_endpoint",
                cfg.device_authorization_endpoint.as_deref()?,
            ),
            Self::RevocationEndpoint => {
                ("revocation_endpoint", cfg.revocation_endpoint.as_deref()?)
            }
            _ => return None,
        };
        (!url.trim().is_empty()).then_some((name, url))
    }

    /// Whether a field the overrides leave out is worth a request: the audience and the
    /// redirect URI alone are not (the Go client asks only for missing scopes or header).
    fn asks_server(self) -> bool {
        !matches!(self, Self::Audience | Self::RedirectUri)
    }

    /// Whether resolving fails when nobody names a value.
    fn required(self) -> bool {
        matches!(
            self,
            Self::TokenEndpoint
                | Self::AuthorizationEndpoint
                | Self::DeviceAuthorizationEndpoint
                | Self::ClientId
        )
    }

    fn describe(self) -> (&'static str, &'static str) {
        match self {
            Self::TokenEndpoint => ("token endpoint", "set tokenUrl"),
            Self::AuthorizationEndpoint => (
                "authorization endpoint",
                "which the browser login (authType Pkce) needs; use another authType",
            ),
            Self::DeviceAuthorizationEndpoint => (
                "device authorization endpoint (device_authorization_endpoint)",
                "so the device flow (authType: DeviceFlow) cannot be used with it: enable the \
                 device grant at the identity provider, or use authType Pkce or ClientSecret",
            ),
            Self::ClientId => ("OAuth client id", "set clientId"),
            Self::RedirectUri => ("redirect URI", "set the redirect URI"),
            Self::Scopes => ("scopes", "set scopes"),
            Self::Audience => ("audience", "set audience"),
            Self::HeaderKey => ("header name", "set authorizationHeader"),
            Self::RevocationEndpoint => ("revocation endpoint", "the server announces none"),
        }
    }
}

/// What the configuration says explicitly; each value wins over the server's, and an empty
/// one means "not set".
///
/// ```
/// use flyte_auth_oauth::Overrides;
/// let overrides = Overrides::new()
///     .token_endpoint("https://idp.example.org/oauth2/token")
///     .scopes(["all"])
///     .audience("");
/// assert_eq!(overrides.token_endpoint.as_deref(), Some("https://idp.example.org/oauth2/token"));
/// assert!(overrides.audience.is_none());
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
#[must_use]
pub struct Overrides {
    /// `tokenUrl`.
    pub token_endpoint: Option<String>,
    /// The authorization endpoint.
    pub authorization_endpoint: Option<String>,
    /// The device authorization endpoint.
    pub device_authorization_endpoint: Option<String>,
    /// `clientId` (for the browser and device logins; client credentials bring their own).
    pub client_id: Option<String>,
    /// The redirect URI of the browser login.
    pub redirect_uri: Option<String>,
    /// `scopes`.
    pub scopes: Option<Vec<String>>,
    /// `audience`.
    pub audience: Option<String>,
    /// `authorizationHeader`.
    pub header_key: Option<String>,
}

macro_rules! setters {
    ($($(#[$doc:meta])* $field:ident;)*) => {$(
        $(#[$doc])*
        pub fn $field(mut self, value: impl Into<String>) -> Self {
            self.$field = non_empty(value);
            self
        }
    )*};
}

fn non_empty(value: impl Into<String>) -> Option<String> {
    let value = value.into().trim().to_owned();
    (!value.is_empty()).then_some(value)
}

impl Overrides {
    /// Nothing overridden: everything comes from the server.
    pub fn new() -> Self {
        Self::default()
    }

    setters! {
        /// The token endpoint (`tokenUrl`).
        token_endpoint;
        /// The authorization endpoint of the browser login.
        authorization_endpoint;
        /// The device authorization endpoint.
        device_authorization_endpoint;
        /// The public client id of the browser and device logins.
        client_id;
        /// The redirect URI of the browser login.
        redirect_uri;
        /// The `audience` parameter.
        audience;
        /// The header the token goes in (`authorizationHeader`).
        header_key;
    }

    /// The scopes (`scopes`); an empty list means the server's.
    pub fn scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let scopes: Vec<String> = scopes.into_iter().filter_map(non_empty).collect();
        self.scopes = (!scopes.is_empty()).then_some(scopes);
        self
    }

    fn has(&self, field: Field) -> bool {
        match field {
            Field::TokenEndpoint => self.token_endpoint.is_some(),
            Field::AuthorizationEndpoint => self.authorization_endpoint.is_some(),
            Field::DeviceAuthorizationEndpoint => self.device_authorization_endpoint.is_some(),
            Field::ClientId => self.client_id.is_some(),
            Field::RedirectUri => self.redirect_uri.is_some(),
            Field::Scopes => self.scopes.is_some(),
            Field::Audience => self.audience.is_some(),
            Field::HeaderKey => self.header_key.is_some(),
            Field::RevocationEndpoint => false,
        }
    }

    /// `server` with every overridden value replaced.
    fn apply(&self, server: Option<&ClientConfig>) -> ClientConfig {
        let mut cfg = server.cloned().unwrap_or_else(|| ClientConfig::new("", ""));
        let set = |target: &mut String, value: &Option<String>| {
            if let Some(value) = value {
                target.clone_from(value);
            }
        };
        set(&mut cfg.token_endpoint, &self.token_endpoint);
        if self.token_endpoint.is_some() {
            // Another token endpoint: the discovered server's revocation endpoint may not be
            // its authorization server's, and a refresh token is not sent elsewhere.
            cfg.revocation_endpoint = None;
        }
        set(
            &mut cfg.authorization_endpoint,
            &self.authorization_endpoint,
        );
        if self.authorization_endpoint.is_some() {
            // Another authorization server: the discovered one's issuer says nothing of it.
            cfg.authorization_response_issuer = None;
        }
        set(&mut cfg.client_id, &self.client_id);
        set(&mut cfg.redirect_uri, &self.redirect_uri);
        set(&mut cfg.header_key, &self.header_key);
        if self.device_authorization_endpoint.is_some() {
            cfg.device_authorization_endpoint
                .clone_from(&self.device_authorization_endpoint);
        }
        if let Some(scopes) = &self.scopes {
            cfg.scopes.clone_from(scopes);
        }
        if self.audience.is_some() {
            cfg.audience.clone_from(&self.audience);
        }
        cfg
    }
}

impl fmt::Debug for Overrides {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = |u: &Option<String>| u.as_deref().map(redact_url);
        f.debug_struct("Overrides")
            .field("token_endpoint", &url(&self.token_endpoint))
            .field("authorization_endpoint", &url(&self.authorization_endpoint))
            .field(
                "device_authorization_endpoint",
                &url(&self.device_authorization_endpoint),
            )
            .field("client_id", &self.client_id)
            .field("redirect_uri", &url(&self.redirect_uri))
            .field("scopes", &self.scopes)
            .field("audience", &self.audience)
            .field("header_key", &self.header_key)
            .finish()
    }
}

/// Where the server's half of the client configuration comes from.
enum Source {
    /// The Flyte server's discovery: over HTTP at the endpoint, or the store given.
    Server(Option<RemoteClientConfigStore>),
    Store(Arc<dyn ClientConfigStore>),
    Nothing,
}

struct Inner {
    endpoint: Endpoint,
    http: OAuthClient,
    discovery: Option<Arc<dyn ClientConfigStore>>,
    /// The Flyte server's discovery, when it is the source (`discovery` is the same store):
    /// its endpoints are checked after the overrides are applied.
    server: Option<Arc<RemoteClientConfigStore>>,
    overrides: Overrides,
    header: Option<HeaderName>,
    discovered: OnceCell<ClientConfig>,
    discovered_header: OnceLock<HeaderName>,
    /// The discovery answer an earlier process kept, once used.
    kept: OnceLock<ClientConfig>,
}

/// The context every HTTP flow works in: the server ([`Endpoint`]), the one [`OAuthClient`],
/// and the client configuration (the server's discovery, asked lazily and once, with the
/// [`Overrides`] applied). Clones share the discovered configuration; creating one touches no
/// network.
///
/// ```
/// use flyte_auth_core::Endpoint;
/// use flyte_auth_oauth::{ClientContext, Field, Overrides};
///
/// let ctx = ClientContext::builder(Endpoint::parse("dns:///flyte.example.org")?)
///     .overrides(Overrides::new().token_endpoint("https://idp.example.org/token").scopes(["all"]))
///     .build()?;
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// // Every field asked for is overridden: the server is not asked.
/// let cfg = ctx.resolve(&[Field::TokenEndpoint, Field::Scopes]).await?;
/// assert_eq!(cfg.token_endpoint, "https://idp.example.org/token");
/// # Ok::<(), flyte_auth_core::Error>(())
/// # })?;
/// # Ok::<(), flyte_auth_core::Error>(())
/// ```
#[derive(Clone)]
pub struct ClientContext {
    inner: Arc<Inner>,
}

impl fmt::Debug for ClientContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientContext")
            .field("endpoint", &self.inner.endpoint.key())
            .field("discovery", &self.inner.discovery)
            .field("overrides", &self.inner.overrides)
            .field("discovered", &self.inner.discovered.initialized())
            .finish_non_exhaustive()
    }
}

impl ClientContext {
    /// Starts a context for the Flyte server at `endpoint`, discovered by default over a client
    /// with default [`HttpSettings`].
    pub fn builder(endpoint: Endpoint) -> ClientContextBuilder {
        ClientContextBuilder {
            endpoint,
            http: None,
            settings: None,
            source: Source::Server(None),
            hints: None,
            overrides: Overrides::default(),
        }
    }

    /// The server.
    pub fn endpoint(&self) -> &Endpoint {
        &self.inner.endpoint
    }

    /// The HTTP client of every request.
    pub fn http(&self) -> &OAuthClient {
        &self.inner.http
    }

    /// What the configuration overrides.
    pub fn overrides(&self) -> &Overrides {
        &self.inner.overrides
    }

    /// Where the server's half comes from (`None`: overrides only).
    pub fn discovery(&self) -> Option<&Arc<dyn ClientConfigStore>> {
        self.inner.discovery.as_ref()
    }

    /// The client configuration for a flow that uses `fields`: the server is asked (once; a
    /// failure is not kept) only when a field worth asking for is not overridden. When the
    /// overrides hold every required field, a failed discovery is logged and they are used.
    ///
    /// # Errors
    ///
    /// What discovery fails with, when a required field depends on it; [`Error::Config`]
    /// when a required field (an endpoint, the client id) is named by nobody, the server names
    /// an invalid header, or an endpoint taken from a Flyte server on `https://` is not
    /// `https://` (a configured endpoint is used as written).
    pub async fn resolve(&self, fields: &[Field]) -> Result<ClientConfig, Error> {
        let inner = &self.inner;
        let server = match &inner.discovery {
            Some(store) if self.asks_server(fields) => {
                match inner
                    .discovered
                    .get_or_try_init(|| self.discover(store.as_ref()))
                    .await
                {
                    Ok(cfg) => {
                        if inner.header.is_none() && inner.discovered_header.get().is_none() {
                            let _ = inner.discovered_header.set(cfg.header_name()?);
                        }
                        Some(cfg)
                    }
                    Err(e)
                        if fields
                            .iter()
                            .all(|f| !f.required() || inner.overrides.has(*f)) =>
                    {
                        tracing::warn!(
                            endpoint = %inner.endpoint,
                            error = %e,
                            "discovery failed; using the configured values only (set scopes \
                             and authorizationHeader to skip discovery)"
                        );
                        None
                    }
                    Err(e) => return Err(e),
                }
            }
            _ => None,
        };
        self.complete(fields, server)
    }

    fn asks_server(&self, fields: &[Field]) -> bool {
        fields
            .iter()
            .any(|f| f.asks_server() && !self.inner.overrides.has(*f))
    }

    /// The server's half (`None`: not asked, or failed) with the overrides applied, every
    /// required field of `fields` present and every announced endpoint among them checked.
    fn complete(
        &self,
        fields: &[Field],
        server: Option<&ClientConfig>,
    ) -> Result<ClientConfig, Error> {
        let inner = &self.inner;
        let cfg = inner.overrides.apply(server);
        for field in fields.iter().filter(|f| f.required()) {
            let missing = match field {
                Field::ClientId => cfg.client_id.trim().is_empty(),
                endpoint => endpoint.announced_url(&cfg).is_none(),
            };
            if missing {
                let (what, fix) = field.describe();
                let source = if server.is_some() {
                    "the server's discovery names none"
                } else {
                    "none is configured"
                };
                return Err(Error::config(format!(
                    "no {what} for {}: {source}; {fix}",
                    inner.endpoint
                )));
            }
        }
        if let (Some(remote), Some(_)) = (&inner.server, server) {
            // Only what is used as the server announced it: a configured value is the user's.
            for field in fields.iter().filter(|f| !inner.overrides.has(**f)) {
                if let Some((name, url)) = field.announced_url(&cfg) {
                    flyte_auth_core::refuse_cleartext(remote.base_url(), name, url)?;
                }
            }
        }
        Ok(cfg)
    }

    /// Runs `request` with [`resolve`](Self::resolve)'s configuration for `fields`, or first
    /// with a discovery answer an earlier process kept ([`RemoteClientConfigStore::remember_in`],
    /// within [`DISCOVERY_ANSWER_LIFETIME`](crate::DISCOVERY_ANSWER_LIFETIME)) without asking the
    /// server. A kept answer never causes a failure: one that cannot be used is ignored, and
    /// when the request made with it fails as a stale answer explains (HTTP 404 or 405,
    /// connection refused, a certificate not valid for the name), the server is asked and
    /// `request` runs again. So `request` must be safe to repeat (an authorization code is not).
    ///
    /// # Errors
    ///
    /// What [`resolve`](Self::resolve) fails with, or what `request` fails with on the
    /// server's current answer.
    pub async fn with_config<T, F, Fut>(&self, fields: &[Field], request: F) -> Result<T, Error>
    where
        F: Fn(ClientConfig) -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        if let Some(cfg) = self.kept_config(fields) {
            match request(cfg).await {
                Err(e) if self.stale_answer_explains(&e) => {}
                done => return done,
            }
        }
        request(self.resolve(fields).await?).await
    }

    /// Whether the configuration [`with_config`](Self::with_config) gives comes from a kept
    /// discovery answer: one was used and the server has not been asked in this process.
    pub fn uses_kept_answer(&self) -> bool {
        self.inner.kept.get().is_some() && !self.inner.discovered.initialized()
    }

    /// For a request made with a kept answer outside [`with_config`](Self::with_config) (the
    /// device login's polls): the server's configuration for `fields` when a stale answer
    /// explains `error`; `None` when no kept answer is in use, it does not, or discovery fails.
    pub async fn rediscover_after(&self, fields: &[Field], error: &Error) -> Option<ClientConfig> {
        if !self.uses_kept_answer() || !self.stale_answer_explains(error) {
            return None;
        }
        self.resolve(fields)
            .await
            .inspect_err(
                |e| tracing::warn!(endpoint = %self.inner.endpoint, error = %e, "discovery failed"),
            )
            .ok()
    }

    /// Whether a stale discovery answer explains `error` (logged: the server is asked again).
    fn stale_answer_explains(&self, error: &Error) -> bool {
        let stale = crate::transport::stale_endpoint_explains(error);
        if stale {
            tracing::info!(
                endpoint = %self.inner.endpoint,
                error = %error,
                "the request with the kept discovery answer failed as a stale answer would; \
                 asking the server again"
            );
        }
        stale
    }

    /// The configuration for `fields` from the kept discovery answer, when the server would
    /// be asked and has not been in this process, and the answer is usable.
    fn kept_config(&self, fields: &[Field]) -> Option<ClientConfig> {
        let inner = &self.inner;
        let server = inner.server.as_ref()?;
        if !self.asks_server(fields) || inner.discovered.initialized() {
            return None;
        }
        if inner.kept.get().is_none() {
            let _ = inner.kept.set(server.kept_answer()?);
        }
        let kept = inner.kept.get()?;
        match self.complete(fields, Some(kept)) {
            Ok(cfg) => Some(cfg),
            Err(e) => {
                tracing::debug!(
                    endpoint = %inner.endpoint,
                    error = %e,
                    "not using the kept discovery answer"
                );
                None
            }
        }
    }

    /// `store`'s client configuration, within [`HttpSettings::deadline`]: a discovery is one
    /// operation, however many requests it takes.
    async fn discover(&self, store: &dyn ClientConfigStore) -> Result<ClientConfig, Error> {
        let answer = async {
            match &self.inner.server {
                // Unchecked here: `resolve` checks the endpoints it takes from it.
                Some(server) => server.announced_config().await,
                None => store.get_client_config().await,
            }
        };
        match self.inner.http.settings().deadline {
            Some(deadline) => {
                let operation = format!("discovery at {}", self.inner.endpoint);
                crate::retry::until_deadline(
                    &operation,
                    tokio::time::Instant::now(),
                    deadline,
                    answer,
                )
                .await
            }
            None => answer.await,
        }
    }

    /// The header the token goes in: the configured one, else the server's once discovery
    /// has run (or a kept answer of its was used); `None` before that.
    pub fn header_name(&self) -> Option<HeaderName> {
        let inner = &self.inner;
        inner
            .header
            .clone()
            .or_else(|| inner.discovered_header.get().cloned())
            .or_else(|| inner.kept.get().and_then(|kept| kept.header_name().ok()))
    }

    /// The header the token goes in: the configured one, else the server's (discovering it if
    /// needed), else `authorization`. A flow resolves only the fields its grant uses, so
    /// obtaining a token never waits for this.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the server names an invalid header.
    pub async fn resolve_header_name(&self) -> Result<HeaderName, Error> {
        if let Some(name) = self.header_name() {
            return Ok(name);
        }
        self.resolve(&[Field::HeaderKey]).await?;
        Ok(self
            .header_name()
            .unwrap_or(HeaderName::from_static(flyte_auth_core::DEFAULT_HEADER_KEY)))
    }

    /// The configured client id, else the server's once discovery has run.
    pub fn client_id(&self) -> Option<String> {
        self.inner
            .overrides
            .client_id
            .clone()
            .or_else(|| {
                self.inner
                    .discovered
                    .get()
                    .map(|c| c.client_id.trim().to_owned())
            })
            .filter(|id| !id.is_empty())
    }

    /// The credentials a token answer means for this server.
    pub fn credentials(&self, token: TokenResponse) -> Credentials {
        token.into_credentials(self.inner.endpoint.key())
    }
}

/// The context's own client configuration, as a store: the server's discovery with the
/// overrides applied, every field asked for.
impl ClientConfigStore for ClientContext {
    fn get_client_config(&self) -> BoxFuture<'_, Result<ClientConfig, Error>> {
        Box::pin(async move {
            self.resolve(&[
                Field::TokenEndpoint,
                Field::AuthorizationEndpoint,
                Field::ClientId,
                Field::RedirectUri,
                Field::Scopes,
                Field::Audience,
                Field::HeaderKey,
            ])
            .await
        })
    }
}

/// Builds a [`ClientContext`]; see [`ClientContext::builder`].
#[must_use]
pub struct ClientContextBuilder {
    endpoint: Endpoint,
    http: Option<OAuthClient>,
    settings: Option<HttpSettings>,
    source: Source,
    hints: Option<Arc<dyn DiscoveryHints>>,
    overrides: Overrides,
}

impl fmt::Debug for ClientContextBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientContextBuilder")
            .field("endpoint", &self.endpoint)
            .field("hints", &self.hints)
            .field("overrides", &self.overrides)
            .finish_non_exhaustive()
    }
}

impl ClientContextBuilder {
    /// Sends every request through `client` (share one client between contexts).
    pub fn http_client(mut self, client: OAuthClient) -> Self {
        self.http = Some(client);
        self
    }

    /// Builds the client from `settings` (when no client is given).
    pub fn http_settings(mut self, settings: HttpSettings) -> Self {
        self.settings = Some(settings);
        self
    }

    /// The server's half of the configuration comes from `store`, not the server's discovery.
    pub fn discovery(mut self, store: Arc<dyn ClientConfigStore>) -> Self {
        self.source = Source::Store(store);
        self
    }

    /// The Flyte server's discovery is `store` (over another transport, such as
    /// `flyte_auth::GrpcDiscovery::into_store`), with kept answers and endpoint checks as the
    /// HTTP one's.
    pub fn server_discovery(mut self, store: RemoteClientConfigStore) -> Self {
        self.source = Source::Server(Some(store));
        self
    }

    /// The HTTP discovery keeps its answers in `hints` under the endpoint's
    /// [`key`](Endpoint::key) ([`RemoteClientConfigStore::remember_in`]); a given store keeps
    /// its own.
    pub fn discovery_hints(mut self, hints: Arc<dyn DiscoveryHints>) -> Self {
        self.hints = Some(hints);
        self
    }

    /// No discovery: only the overrides (every required field must be overridden).
    pub fn no_discovery(mut self) -> Self {
        self.source = Source::Nothing;
        self
    }

    /// What the configuration says explicitly.
    pub fn overrides(mut self, overrides: Overrides) -> Self {
        self.overrides = overrides;
        self
    }

    /// The context. Touches no network.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the header override is not a valid header name, or the HTTP
    /// client cannot be built from the settings.
    pub fn build(self) -> Result<ClientContext, Error> {
        let header = self
            .overrides
            .header_key
            .as_deref()
            .map(flyte_auth_core::parse_header_name)
            .transpose()?;
        let http = match (self.http, self.settings) {
            (Some(client), _) => client,
            (None, settings) => OAuthClient::new(settings.unwrap_or_default())?,
        };
        let (discovery, server) = match self.source {
            Source::Server(given) => {
                let store = Arc::new(given.unwrap_or_else(|| {
                    let store = RemoteClientConfigStore::from_base_url(
                        self.endpoint.base_url(),
                        http.clone(),
                    );
                    match self.hints {
                        Some(hints) => store.remember_in(hints, self.endpoint.key()),
                        None => store,
                    }
                }));
                (
                    Some(Arc::clone(&store) as Arc<dyn ClientConfigStore>),
                    Some(store),
                )
            }
            Source::Store(store) => (Some(store), None),
            Source::Nothing => (None, None),
        };
        Ok(ClientContext {
            inner: Arc::new(Inner {
                endpoint: self.endpoint,
                http,
                discovery,
                server,
                overrides: self.overrides,
                header,
                discovered: OnceCell::new(),
                discovered_header: OnceLock::new(),
                kept: OnceLock::new(),
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use flyte_auth_core::StaticClientConfigStore;

    use super::*;

    #[derive(Debug)]
    struct Counting(AtomicUsize, ClientConfig);

    impl ClientConfigStore for Counting {
        fn get_client_config(&self) -> BoxFuture<'_, Result<ClientConfig, Error>> {
            self.0.fetch_add(1, Ordering::SeqCst);
            let cfg = self.1.clone();
            Box::pin(async move { Ok(cfg) })
        }
    }

    fn server() -> ClientConfig {
        ClientConfig::new("https://idp/token", "flytectl")
            .with_authorization_endpoint("https://idp/authorize")
            .with_device_authorization_endpoint("https://idp/device")
            .with_scopes(["offline", "all"])
            .with_header_key("flyte-authorization")
            .with_audience("server-audience")
    }

    fn ctx(store: Arc<dyn ClientConfigStore>, overrides: Overrides) -> ClientContext {
        ClientContext::builder(Endpoint::parse("flyte.example.org").unwrap())
            .discovery(store)
            .overrides(overrides)
            .build()
            .unwrap()
    }

    fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn overrides_win_field_by_field_and_the_server_fills_the_rest() {
        let store = Arc::new(Counting(AtomicUsize::new(0), server()));
        let ctx = ctx(
            store.clone(),
            Overrides::new()
                .token_endpoint("https://other/token")
                .audience("mine"),
        );
        assert!(ctx.header_name().is_none());
        let cfg = block_on(ctx.resolve(&[
            Field::TokenEndpoint,
            Field::Scopes,
            Field::Audience,
            Field::HeaderKey,
        ]))
        .unwrap();
        assert_eq!(cfg.token_endpoint, "https://other/token");
        assert_eq!(cfg.audience.as_deref(), Some("mine"));
        assert_eq!(cfg.scopes, ["offline", "all"]);
        assert_eq!(ctx.header_name().unwrap().as_str(), "flyte-authorization");
        assert_eq!(ctx.client_id().as_deref(), Some("flytectl"));
        block_on(ctx.resolve(&[Field::TokenEndpoint, Field::Scopes])).unwrap();
        assert_eq!(store.0.load(Ordering::SeqCst), 1, "discovered once");
    }

    #[test]
    fn the_server_is_not_asked_when_every_used_field_is_overridden() {
        let store = Arc::new(Counting(AtomicUsize::new(0), server()));
        let ctx = ctx(
            store.clone(),
            Overrides::new()
                .token_endpoint("https://other/token")
                .scopes(["x"])
                .header_key("X-Token"),
        );
        let cfg = block_on(ctx.resolve(&[Field::TokenEndpoint, Field::Scopes])).unwrap();
        assert_eq!(cfg.scopes, ["x"]);
        assert_eq!(ctx.header_name().unwrap().as_str(), "x-token");
        // The audience alone is not worth a request.
        block_on(ctx.resolve(&[Field::TokenEndpoint, Field::Audience])).unwrap();
        assert_eq!(store.0.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_token_url_replaces_only_the_token_endpoint() {
        let store = Arc::new(Counting(AtomicUsize::new(0), server()));
        let ctx = ctx(
            store.clone(),
            Overrides::new().token_endpoint("https://other/token"),
        );
        let cfg =
            block_on(ctx.resolve(&[Field::TokenEndpoint, Field::Scopes, Field::Audience])).unwrap();
        assert_eq!(cfg.token_endpoint, "https://other/token");
        assert_eq!(cfg.scopes, ["offline", "all"]);
        assert_eq!(cfg.audience.as_deref(), Some("server-audience"));
        assert_eq!(store.0.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn the_header_name_is_resolved_when_asked_for_once() {
        let store = Arc::new(Counting(AtomicUsize::new(0), server()));
        let lazy = ctx(
            store.clone(),
            Overrides::new()
                .token_endpoint("https://other/token")
                .scopes(["x"]),
        );
        block_on(lazy.resolve(&[Field::TokenEndpoint, Field::Scopes])).unwrap();
        assert_eq!(store.0.load(Ordering::SeqCst), 0, "a token needs no header");
        let name = block_on(lazy.resolve_header_name()).unwrap();
        assert_eq!(name.as_str(), "flyte-authorization");
        block_on(lazy.resolve_header_name()).unwrap();
        assert_eq!(store.0.load(Ordering::SeqCst), 1, "discovered once");

        // Configured: the server is not asked; no server: the default.
        let configured = ctx(store.clone(), Overrides::new().header_key("X-Token"));
        let name = block_on(configured.resolve_header_name()).unwrap();
        assert_eq!(name.as_str(), "x-token");
        assert_eq!(store.0.load(Ordering::SeqCst), 1);
        let failing = ctx(Arc::new(Failing), Overrides::new());
        let name = block_on(failing.resolve_header_name()).unwrap();
        assert_eq!(name.as_str(), "authorization");
    }

    #[derive(Debug)]
    struct Failing;

    impl ClientConfigStore for Failing {
        fn get_client_config(&self) -> BoxFuture<'_, Result<ClientConfig, Error>> {
            Box::pin(async { Err(Error::config("no discovery here")) })
        }
    }

    #[test]
    fn a_failed_discovery_is_an_error_only_when_a_required_field_needs_it() {
        let with_url = ctx(
            Arc::new(Failing),
            Overrides::new().token_endpoint("https://other/token"),
        );
        let cfg = block_on(with_url.resolve(&[Field::TokenEndpoint, Field::Scopes])).unwrap();
        assert!(cfg.scopes.is_empty());
        assert!(with_url.header_name().is_none());
        let without = ctx(Arc::new(Failing), Overrides::new());
        let err = block_on(without.resolve(&[Field::TokenEndpoint])).unwrap_err();
        assert!(err.to_string().contains("no discovery here"), "{err}");
    }

    #[test]
    fn a_required_field_nobody_names_is_a_config_error_naming_the_setting() {
        let empty = Arc::new(StaticClientConfigStore::new(ClientConfig::new("", "")));
        let ctx = ctx(empty, Overrides::new());
        let err = block_on(ctx.resolve(&[Field::TokenEndpoint])).unwrap_err();
        assert!(matches!(err, Error::Config { .. }), "{err:?}");
        assert!(err.to_string().contains("set tokenUrl"), "{err}");
        let err = block_on(ctx.resolve(&[Field::ClientId])).unwrap_err();
        assert!(err.to_string().contains("set clientId"), "{err}");
        let err = block_on(ctx.resolve(&[Field::DeviceAuthorizationEndpoint])).unwrap_err();
        assert!(err.to_string().contains("device flow"), "{err}");

        let none = ClientContext::builder(Endpoint::parse("h").unwrap())
            .no_discovery()
            .build()
            .unwrap();
        let err = block_on(none.resolve(&[Field::TokenEndpoint])).unwrap_err();
        assert!(err.to_string().contains("none is configured"), "{err}");
    }

    #[test]
    fn an_invalid_header_name_is_refused_at_build_and_from_the_server() {
        let err = ClientContext::builder(Endpoint::parse("h").unwrap())
            .overrides(Overrides::new().header_key("bad header"))
            .build()
            .unwrap_err();
        assert!(matches!(err, Error::Config { .. }));
        let bad = Arc::new(StaticClientConfigStore::new(
            ClientConfig::new("https://t", "c").with_header_key("bad header"),
        ));
        let err = block_on(ctx(bad, Overrides::new()).resolve(&[Field::HeaderKey])).unwrap_err();
        assert!(matches!(err, Error::Config { .. }), "{err:?}");
    }
}

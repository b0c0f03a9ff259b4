//! Flyte server discovery: [`RemoteClientConfigStore`] asks the server's two anonymous answers
//! through a [`DiscoveryTransport`] (by default over HTTP: flyteadmin's GETs, or a Flyte 2
//! backend's ConnectRPC `AuthMetadataService`) and combines them into a [`ClientConfig`].

use std::{fmt, sync::Arc, time::Duration};

pub use flyte_auth_core::DiscoveryFlavour;
use flyte_auth_core::{
    BoxFuture, ClientConfig, ClientConfigStore, Clock, DiscoveryAnswer, DiscoveryHints, Error,
    SystemClock,
};
use serde_json::{Map, Value};
use tokio::sync::OnceCell;

use crate::{
    Field, OAuthClient,
    token::json_object_or_error,
    transport::{RawResponse, display_url},
};

/// How long a discovery answer kept between processes is used instead of asking the server:
/// a day ([`DiscoveryAnswer::usable_at`]).
pub const DISCOVERY_ANSWER_LIFETIME: Duration = DiscoveryAnswer::LIFETIME;

/// The path of the RFC 8414 authorization server metadata under the platform URL.
pub const OAUTH_METADATA_PATH: &str = "/.well-known/oauth-authorization-server";

/// The path of flyteadmin's public client configuration under the platform URL.
pub const FLYTE_CLIENT_CONFIG_PATH: &str = "/config/v1/flyte_client";

/// The ConnectRPC unary method of a Flyte 2 backend for the public client configuration.
pub const CONNECT_PUBLIC_CLIENT_CONFIG_PATH: &str =
    "/flyteidl2.auth.AuthMetadataService/GetPublicClientConfig";

/// The ConnectRPC unary method of a Flyte 2 backend for the OAuth 2 metadata.
pub const CONNECT_OAUTH2_METADATA_PATH: &str =
    "/flyteidl2.auth.AuthMetadataService/GetOAuth2Metadata";

/// The base URL of a Flyte platform endpoint as written in configs, `insecure` applied.
///
/// ```
/// use flyte_auth_oauth::platform_base_url;
/// assert_eq!(platform_base_url("dns:///flyte.example.org:443", false).unwrap(), "https://flyte.example.org");
/// assert_eq!(platform_base_url("localhost:30080", true).unwrap(), "http://localhost:30080");
/// assert_eq!(platform_base_url("https://flyte.example.org/", true).unwrap(), "https://flyte.example.org");
/// ```
///
/// # Errors
///
/// [`Error::Config`] when [`Endpoint::parse`](flyte_auth_core::Endpoint::parse) refuses it.
pub fn platform_base_url(endpoint: &str, insecure: bool) -> Result<String, Error> {
    Ok(flyte_auth_core::Endpoint::parse(endpoint)?
        .with_insecure(insecure)
        .base_url())
}

/// RFC 8414 authorization server metadata, as far as Flyte's flows use it (empty strings are
/// `None`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct AuthorizationServerMetadata {
    /// `issuer`.
    pub issuer: Option<String>,
    /// `authorization_endpoint`.
    pub authorization_endpoint: Option<String>,
    /// `token_endpoint`.
    pub token_endpoint: Option<String>,
    /// `device_authorization_endpoint`.
    pub device_authorization_endpoint: Option<String>,
    /// `jwks_uri`.
    pub jwks_uri: Option<String>,
    /// `scopes_supported`.
    pub scopes_supported: Vec<String>,
    /// `response_types_supported`.
    pub response_types_supported: Vec<String>,
    /// `grant_types_supported`.
    pub grant_types_supported: Vec<String>,
    /// `code_challenge_methods_supported`.
    pub code_challenge_methods_supported: Vec<String>,
    /// `token_endpoint_auth_methods_supported`.
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// `authorization_response_iss_parameter_supported` (RFC 9207): the browser login refuses
    /// a response whose `iss` is not [`issuer`](Self::issuer).
    pub authorization_response_iss_parameter_supported: bool,
    /// `revocation_endpoint` (RFC 7009): where a logout revokes the refresh token.
    pub revocation_endpoint: Option<String>,
}

/// flyteadmin's public client configuration (`/config/v1/flyte_client`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct PublicClientConfig {
    /// `client_id`: the public client of the Flyte CLI tools.
    pub client_id: Option<String>,
    /// `redirect_uri`.
    pub redirect_uri: Option<String>,
    /// `scopes`.
    pub scopes: Vec<String>,
    /// `authorization_metadata_key`: the header for the token; `None` means `authorization`.
    pub authorization_metadata_key: Option<String>,
    /// `service_http_endpoint`.
    pub service_http_endpoint: Option<String>,
    /// `audience`.
    pub audience: Option<String>,
}

/// Both discovery documents.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Discovery {
    /// The platform URL they were read from.
    pub base_url: String,
    /// `/.well-known/oauth-authorization-server`.
    pub metadata: AuthorizationServerMetadata,
    /// `/config/v1/flyte_client`, or `GetPublicClientConfig`.
    pub client: PublicClientConfig,
    /// Which generation of server answered.
    pub flavour: DiscoveryFlavour,
}

impl Discovery {
    /// `flavour`'s two answers from the platform at `base_url`, whatever the transport, with
    /// every relative endpoint URL resolved against `base_url`.
    pub fn new(
        base_url: &str,
        flavour: DiscoveryFlavour,
        mut metadata: AuthorizationServerMetadata,
        client: PublicClientConfig,
    ) -> Self {
        let base_url = base_url.trim_end_matches('/');
        let m = &mut metadata;
        for url in [
            &mut m.authorization_endpoint,
            &mut m.token_endpoint,
            &mut m.device_authorization_endpoint,
            &mut m.jwks_uri,
            &mut m.revocation_endpoint,
        ]
        .into_iter()
        .flatten()
        .filter(|url| url.starts_with('/'))
        {
            *url = format!("{base_url}{url}");
        }
        Self {
            base_url: base_url.to_owned(),
            metadata,
            client,
            flavour,
        }
    }

    /// Combines the documents into flytekit's [`ClientConfig`]; [`Error::InvalidResponse`] when
    /// the metadata names no token endpoint.
    pub fn client_config(&self) -> Result<ClientConfig, Error> {
        let (m, c) = (&self.metadata, &self.client);
        let text = |value: &Option<String>| value.clone().unwrap_or_default();
        let Some(token_endpoint) = m.token_endpoint.clone() else {
            return Err(Error::InvalidResponse {
                status: None,
                message: format!(
                    "the {} discovery of {} names no token_endpoint",
                    self.flavour,
                    display_url(&self.base_url)
                ),
            });
        };
        let mut config = ClientConfig::new(token_endpoint, text(&c.client_id))
            .with_authorization_endpoint(text(&m.authorization_endpoint))
            .with_redirect_uri(text(&c.redirect_uri))
            .with_scopes(c.scopes.clone())
            .with_header_key(text(&c.authorization_metadata_key))
            .with_audience(text(&c.audience))
            .with_code_challenge_methods(m.code_challenge_methods_supported.clone());
        if let Some(device) = &m.device_authorization_endpoint {
            config = config.with_device_authorization_endpoint(device.clone());
        }
        if let Some(revocation) = &m.revocation_endpoint {
            config = config.with_revocation_endpoint(revocation.clone());
        }
        if m.authorization_response_iss_parameter_supported {
            match &m.issuer {
                Some(issuer) => config = config.with_authorization_response_issuer(issuer),
                None => tracing::warn!(
                    base_url = %display_url(&self.base_url),
                    "the authorization server metadata announces the `iss` authorization \
                     response parameter but names no issuer; the browser login cannot check it"
                ),
            }
        }
        Ok(config)
    }
}

/// How discovery's two answers reach a [`RemoteClientConfigStore`]: over HTTP (the default) or
/// another transport, such as `flyte_auth::GrpcDiscovery`. A transport only fetches and
/// decodes; the fallback, the checks and keeping the answer are the store's.
pub trait DiscoveryTransport: Send + Sync + fmt::Debug {
    /// The platform URL: relative endpoint URLs are resolved against it, and when it is
    /// `https://`, every announced endpoint must be too.
    fn base_url(&self) -> &str;

    /// `flavour`'s two answers ([`Discovery::new`]).
    fn fetch(&self, flavour: DiscoveryFlavour) -> BoxFuture<'_, Result<Discovery, FetchError>>;

    /// The answers of whichever flavour is served, when none is known or preferred: by
    /// default Flyte 2's, then Flyte 1's when it is not served.
    fn fetch_any(&self) -> BoxFuture<'_, Result<Discovery, FetchError>> {
        Box::pin(fetch_or_other(self, DiscoveryFlavour::Flyte2))
    }
}

/// Why a [`DiscoveryTransport`] did not fetch a flavour's answers.
#[derive(Debug)]
pub enum FetchError {
    /// Not served here (HTTP 404, an HTML page, Connect `unimplemented`, gRPC
    /// `UNIMPLEMENTED`): the other flavour may be.
    NotServed {
        /// What to report when no flavour is served.
        error: Error,
        /// The answer was an HTML page.
        html: bool,
    },
    /// Anything else (the server is down, an error status, a proxy's 401): final.
    Failed(Error),
}

impl FetchError {
    /// Of two "not served", the first error is kept, and an HTML answer of either is kept.
    fn or_not_served(self, first: (Error, bool)) -> FetchError {
        match self {
            FetchError::NotServed { html, .. } => FetchError::NotServed {
                error: first.0,
                html: first.1 || html,
            },
            failed => failed,
        }
    }
}

impl From<Error> for FetchError {
    fn from(error: Error) -> Self {
        FetchError::Failed(error)
    }
}

/// `first`'s answers, else, when `first` is not served, the other flavour's: the one
/// fallback rule of every transport.
async fn fetch_or_other<T: DiscoveryTransport + ?Sized>(
    transport: &T,
    first: DiscoveryFlavour,
) -> Result<Discovery, FetchError> {
    match transport.fetch(first).await {
        Err(FetchError::NotServed { error, html }) => {
            tracing::debug!(
                base_url = %display_url(transport.base_url()),
                flavour = %first,
                "this discovery flavour is not served; asking the other"
            );
            let other = transport.fetch(first.other()).await;
            other.map_err(|e| e.or_not_served((error, html)))
        }
        done => done,
    }
}

/// A [`ClientConfigStore`] that asks the Flyte server (flytekit's `RemoteClientConfigStore`),
/// over HTTP ([`new`](Self::new)) or another [`DiscoveryTransport`]. The answer is fetched on
/// first use and reused, a failure is not; creating the store touches no network. The order
/// of requests and what each answer means: the crate README.
///
/// ```no_run
/// # async fn run() -> Result<(), flyte_auth_core::Error> {
/// use flyte_auth_core::ClientConfigStore;
/// use flyte_auth_oauth::{HttpSettings, OAuthClient, RemoteClientConfigStore};
///
/// let client = OAuthClient::new(HttpSettings::new())?;
/// let store = RemoteClientConfigStore::new("dns:///flyte.example.org", false, client)?;
/// let config = store.get_client_config().await?;
/// println!("token endpoint: {}", config.token_endpoint);
/// let grants = &store.discover().await?.metadata.grant_types_supported;
/// # let _ = grants; Ok(()) }
/// ```
pub struct RemoteClientConfigStore {
    transport: Arc<dyn DiscoveryTransport>,
    preferred: Option<DiscoveryFlavour>,
    /// Where the flavour is remembered, and the endpoint key it is kept under.
    hints: Option<(Arc<dyn DiscoveryHints>, String)>,
    timeout: Option<Duration>,
    clock: Arc<dyn Clock>,
    discovered: OnceCell<Arc<Discovery>>,
}

impl fmt::Debug for RemoteClientConfigStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteClientConfigStore")
            .field("base_url", &display_url(self.base_url()))
            .field("preferred", &self.preferred)
            .field("hints", &self.hints)
            .field("timeout", &self.timeout)
            .field("discovered", &self.discovered.initialized())
            .finish_non_exhaustive()
    }
}

impl RemoteClientConfigStore {
    /// A store for the Flyte platform at `endpoint` (`dns:///host:port`, `host:port` or a
    /// URL; see [`platform_base_url`]).
    pub fn new(endpoint: &str, insecure: bool, client: OAuthClient) -> Result<Self, Error> {
        Ok(Self::from_base_url(
            platform_base_url(endpoint, insecure)?,
            client,
        ))
    }

    /// A store for a platform base URL used as it is (`https://host:port`).
    pub fn from_base_url(base_url: impl Into<String>, client: OAuthClient) -> Self {
        let base_url = base_url.into().trim_end_matches('/').to_owned();
        Self::with_transport(Arc::new(HttpTransport { base_url, client }))
    }

    /// A store whose answers come through `transport`.
    pub fn with_transport(transport: Arc<dyn DiscoveryTransport>) -> Self {
        Self {
            transport,
            preferred: None,
            hints: None,
            timeout: None,
            clock: Arc::new(SystemClock),
            discovered: OnceCell::new(),
        }
    }

    /// Asks `flavour`'s documents first (the flavour that answered last time); wins over a
    /// recalled one.
    #[must_use]
    pub fn prefer(mut self, flavour: DiscoveryFlavour) -> Self {
        self.preferred = Some(flavour);
        self
    }

    /// Bounds each discovery as a whole (every request and the fallback; the hints are asked
    /// in place and answer at once, [`DiscoveryHints`]).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Reads the time when an answer is kept and used from `clock` ([`SystemClock`] by default).
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Keeps the flavour and configuration that answer in `hints` under `endpoint` (the
    /// server's [`Endpoint::key`](flyte_auth_core::Endpoint::key)), and on the first
    /// [`discover`](Self::discover) [`prefer`](Self::prefer)s the flavour recalled from there.
    /// A hint only orders the attempts; one that cannot be written is logged, never an error.
    #[must_use]
    pub fn remember_in(
        mut self,
        hints: Arc<dyn DiscoveryHints>,
        endpoint: impl Into<String>,
    ) -> Self {
        self.hints = Some((hints, endpoint.into()));
        self
    }

    /// Which flavour answered, once [`discover`](Self::discover) has succeeded.
    pub fn flavour(&self) -> Option<DiscoveryFlavour> {
        self.discovered.get().map(|d| d.flavour)
    }

    /// The platform URL the documents are read from.
    pub fn base_url(&self) -> &str {
        self.transport.base_url()
    }

    /// Both documents as announced (unchecked), fetched on first call and reused; concurrent
    /// first calls share one fetch.
    ///
    /// # Errors
    ///
    /// What the requests fail with; [`Error::InvalidResponse`] when no flavour is served or
    /// the [`timeout`](Self::timeout) passes.
    pub async fn discover(&self) -> Result<Arc<Discovery>, Error> {
        self.discovered
            .get_or_try_init(|| async {
                let Some(limit) = self.timeout else {
                    return self.ask().await;
                };
                tokio::time::timeout(limit, self.ask())
                    .await
                    .unwrap_or_else(|_| {
                        Err(Error::InvalidResponse {
                            status: None,
                            message: format!(
                                "discovery at {} took longer than {limit:?}",
                                display_url(self.base_url())
                            ),
                        })
                    })
            })
            .await
            .cloned()
    }

    /// Asks the server (the recalled or preferred flavour first) and keeps the answer.
    async fn ask(&self) -> Result<Arc<Discovery>, Error> {
        let recalled = self.with_hints(|hints, key| hints.recall(key)).flatten();
        let transport = &*self.transport;
        let discovery = match self.preferred.or(recalled) {
            None => transport.fetch_any().await,
            Some(first) => fetch_or_other(transport, first).await,
        }
        .map_err(|e| self.final_error(e))?;
        let flavour = discovery.flavour;
        tracing::debug!(
            base_url = %display_url(self.base_url()),
            %flavour,
            "discovered the Flyte server's OAuth configuration"
        );
        if self.hints.is_some() {
            // The answer with its flavour, or the flavour alone when it changed.
            let answer = discovery
                .client_config()
                .map(|config| DiscoveryAnswer::new(flavour, config, self.clock.now()));
            let kept = self.with_hints(move |hints, key| match answer {
                Ok(answer) => hints.remember_answer(key, &answer),
                Err(_) if recalled == Some(flavour) => Ok(()),
                Err(_) => hints.remember(key, flavour),
            });
            if let Some(Err(e)) = kept {
                tracing::debug!(
                    error = %e,
                    "could not remember the discovery; the next start asks again"
                );
            }
        }
        Ok(Arc::new(discovery))
    }

    /// What [`discover`](Self::discover) found, if it has succeeded already.
    pub fn cached(&self) -> Option<Arc<Discovery>> {
        self.discovered.get().cloned()
    }

    /// The client configuration the server announces, unchecked: a
    /// [`ClientContext`](crate::ClientContext) checks the endpoints a flow takes from it.
    pub(crate) async fn announced_config(&self) -> Result<ClientConfig, Error> {
        self.discover().await?.client_config()
    }

    /// The configuration a discovery within [`DISCOVERY_ANSWER_LIFETIME`] answered, as kept in
    /// the hints, when this store has not discovered yet; `None` when it
    /// is not usable, of another generation than a preferred one, or incomplete. Unchecked, as
    /// [`announced_config`](Self::announced_config)'s; only for a request that can recover
    /// from a stale answer ([`ClientContext::with_config`](crate::ClientContext::with_config)).
    pub(crate) fn kept_answer(&self) -> Option<ClientConfig> {
        if self.discovered.initialized() {
            return None;
        }
        let answer = self
            .with_hints(|hints, key| hints.recall_answer(key))
            .flatten()?;
        let key = &self.hints.as_ref()?.1;
        let usable = answer.usable_at(self.clock.now()).and_then(|()| {
            if self.preferred.is_some_and(|p| p != answer.flavour) {
                Err("another generation of server is preferred")
            } else if answer.config.token_endpoint.trim().is_empty()
                || answer.config.header_name().is_err()
            {
                Err("it is incomplete or invalid")
            } else {
                Ok(())
            }
        });
        if let Err(why) = usable {
            tracing::debug!(endpoint = %key, why, "not using the kept discovery answer");
            return None;
        }
        tracing::debug!(endpoint = %key, flavour = %answer.flavour, "using the kept discovery answer");
        Some(answer.config)
    }

    fn final_error(&self, fail: FetchError) -> Error {
        match fail {
            FetchError::Failed(error) | FetchError::NotServed { error, html: false } => error,
            FetchError::NotServed { html: true, .. } => Error::InvalidResponse {
                status: None,
                message: format!(
                    "{} answered the discovery requests with an HTML page: it is not the Flyte \
                     API endpoint (it may be the web console, a login page, or a proxy that does \
                     not forward Connect/gRPC traffic); set admin.endpoint to the API endpoint",
                    display_url(self.base_url())
                ),
            },
        }
    }
}

impl RemoteClientConfigStore {
    /// Runs `io` on the hints, `None` without hints. In place, as a token store is used: hints
    /// answer at once ([`DiscoveryHints`]; the file store opens without following a link or
    /// waiting on a FIFO and reads a bounded size), and a thread per access would cost a cold
    /// token more than the read (three threads, 0.2 MB of peak memory).
    fn with_hints<T>(&self, io: impl FnOnce(&dyn DiscoveryHints, &str) -> T) -> Option<T> {
        let (hints, key) = self.hints.as_ref()?;
        Some(io(hints.as_ref(), key))
    }
}

/// The server's client configuration: [`Error::Config`], naming the field and the URL, when a
/// Flyte server on `https://` announces an endpoint that is not `https://` (only one on plain
/// HTTP, such as the local sandbox, may).
impl ClientConfigStore for RemoteClientConfigStore {
    fn get_client_config(&self) -> BoxFuture<'_, Result<ClientConfig, Error>> {
        Box::pin(async move {
            let config = self.announced_config().await?;
            for field in Field::ENDPOINTS {
                if let Some((name, url)) = field.announced_url(&config) {
                    flyte_auth_core::refuse_cleartext(self.base_url(), name, url)?;
                }
            }
            Ok(config)
        })
    }
}

/// Discovery over HTTP: flyteadmin's two GETs, or a Flyte 2 backend's two Connect calls.
#[derive(Debug)]
struct HttpTransport {
    base_url: String,
    client: OAuthClient,
}

impl DiscoveryTransport for HttpTransport {
    fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Both documents of one flavour, at once.
    fn fetch(&self, flavour: DiscoveryFlavour) -> BoxFuture<'_, Result<Discovery, FetchError>> {
        Box::pin(async move {
            let (metadata, client) = match flavour {
                DiscoveryFlavour::FlyteAdmin => {
                    futures_util::future::try_join(self.get(&WELL_KNOWN), self.get(&V1_CLIENT))
                        .await?
                }
                DiscoveryFlavour::Flyte2 => {
                    futures_util::future::try_join(
                        self.connect(&V2_METADATA),
                        self.connect(&V2_CLIENT),
                    )
                    .await?
                }
                // A generation this crate does not know yet: ask what it knows, all at once.
                _ => return self.fetch_any().await,
            };
            Ok(self.discovery(flavour, &metadata, &client))
        })
    }

    /// No flavour known: the `.well-known` document and both client configs at once.
    fn fetch_any(&self) -> BoxFuture<'_, Result<Discovery, FetchError>> {
        Box::pin(async move {
            let (metadata, v1, v2) = futures_util::future::join3(
                self.get(&WELL_KNOWN),
                self.get(&V1_CLIENT),
                self.connect(&V2_CLIENT),
            )
            .await;
            let (flavour, metadata, client) = match (v1, v2) {
                (Ok(client), _) => (DiscoveryFlavour::FlyteAdmin, metadata?, client),
                (Err(FetchError::NotServed { .. }), Ok(client)) => {
                    let metadata = match metadata {
                        Err(FetchError::NotServed { .. }) => self.connect(&V2_METADATA).await?,
                        other => other?,
                    };
                    (DiscoveryFlavour::Flyte2, metadata, client)
                }
                (Err(FetchError::NotServed { error, html }), Err(v2)) => {
                    return Err(v2.or_not_served((error, html)));
                }
                (Err(failed), _) => return Err(failed),
            };
            Ok(self.discovery(flavour, &metadata, &client))
        })
    }
}

/// One discovery document: what the request is called in messages, and its path.
type Document = (&'static str, &'static str);
const WELL_KNOWN: Document = ("authorization server metadata request", OAUTH_METADATA_PATH);
const V1_CLIENT: Document = ("Flyte client config request", FLYTE_CLIENT_CONFIG_PATH);
const V2_CLIENT: Document = (
    "Flyte 2 GetPublicClientConfig call",
    CONNECT_PUBLIC_CLIENT_CONFIG_PATH,
);
const V2_METADATA: Document = (
    "Flyte 2 GetOAuth2Metadata call",
    CONNECT_OAUTH2_METADATA_PATH,
);

impl HttpTransport {
    async fn get(&self, &(operation, path): &Document) -> Result<Map<String, Value>, FetchError> {
        let url = format!("{}{path}", self.base_url);
        let raw = self.client.get(operation, &url).await?;
        self.document(&raw, operation)
    }

    async fn connect(
        &self,
        &(operation, path): &Document,
    ) -> Result<Map<String, Value>, FetchError> {
        let url = format!("{}{path}", self.base_url);
        let raw = self.client.post_connect(operation, &url).await?;
        if !raw.is_success()
            && let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(&raw.body)
            && let Some(code) = field_str(&object, "code")
        {
            let message = field_str(&object, "message").unwrap_or_default();
            let error = Error::InvalidResponse {
                status: Some(raw.status),
                message: format!(
                    "{operation} to {}: Connect error `{}`: {}",
                    display_url(&url),
                    flyte_auth_core::text::printable(&code),
                    flyte_auth_core::text::printable(&message),
                ),
            };
            // `unimplemented`/`not_found`: a Connect server without this service.
            return Err(match code.as_str() {
                "unimplemented" | "not_found" => FetchError::NotServed { error, html: false },
                _ => FetchError::Failed(error),
            });
        }
        self.document(&raw, operation)
    }

    /// The JSON object of a 2xx answer; a 404/405/415/501, HTML or not JSON is "not served".
    fn document(
        &self,
        raw: &RawResponse,
        operation: &str,
    ) -> Result<Map<String, Value>, FetchError> {
        let html = raw
            .content_type()
            .to_ascii_lowercase()
            .contains("text/html")
            || raw.body.trim_ascii_start().starts_with(b"<");
        let not_served = html
            || matches!(raw.status, 404 | 405 | 415 | 501)
            || (raw.is_success() && serde_json::from_slice::<Value>(&raw.body).is_err());
        json_object_or_error(raw, operation, &[]).map_err(|e| {
            let error = match e {
                Error::InvalidResponse { status, message } => Error::InvalidResponse {
                    status,
                    message: format!(
                        "{message}; is {} a Flyte server with authentication enabled?",
                        self.base_url
                    ),
                },
                other => other,
            };
            match not_served {
                true => FetchError::NotServed { error, html },
                false => FetchError::Failed(error),
            }
        })
    }

    fn discovery(
        &self,
        flavour: DiscoveryFlavour,
        metadata: &Map<String, Value>,
        client: &Map<String, Value>,
    ) -> Discovery {
        let metadata = AuthorizationServerMetadata {
            issuer: field_str(metadata, "issuer"),
            authorization_endpoint: field_str(metadata, "authorization_endpoint"),
            token_endpoint: field_str(metadata, "token_endpoint"),
            device_authorization_endpoint: field_str(metadata, "device_authorization_endpoint"),
            jwks_uri: field_str(metadata, "jwks_uri"),
            scopes_supported: field_list(metadata, "scopes_supported"),
            response_types_supported: field_list(metadata, "response_types_supported"),
            grant_types_supported: field_list(metadata, "grant_types_supported"),
            code_challenge_methods_supported: field_list(
                metadata,
                "code_challenge_methods_supported",
            ),
            token_endpoint_auth_methods_supported: field_list(
                metadata,
                "token_endpoint_auth_methods_supported",
            ),
            authorization_response_iss_parameter_supported: matches!(
                field(metadata, "authorization_response_iss_parameter_supported"),
                Some(Value::Bool(true))
            ),
            revocation_endpoint: field_str(metadata, "revocation_endpoint"),
        };
        let client = PublicClientConfig {
            client_id: field_str(client, "client_id"),
            redirect_uri: field_str(client, "redirect_uri"),
            scopes: field_list(client, "scopes"),
            authorization_metadata_key: field_str(client, "authorization_metadata_key"),
            service_http_endpoint: field_str(client, "service_http_endpoint"),
            audience: field_str(client, "audience"),
        };
        Discovery::new(&self.base_url, flavour, metadata, client)
    }
}

/// `snake_case` to `lowerCamelCase`.
fn camel(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// The member under its snake_case or lowerCamelCase name, whichever is set and not empty.
fn field<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    let not_empty = |v: &&Value| match v {
        Value::Null => false,
        Value::String(s) => !s.trim().is_empty(),
        Value::Array(a) => !a.is_empty(),
        _ => true,
    };
    object
        .get(name)
        .filter(not_empty)
        .or_else(|| object.get(&camel(name)).filter(not_empty))
}

fn field_list(object: &Map<String, Value>, name: &str) -> Vec<String> {
    crate::token::string_list(field(object, name))
}

fn field_str(object: &Map<String, Value>, name: &str) -> Option<String> {
    match field(object, name)? {
        Value::String(s) => Some(s.trim().to_owned()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camel_case_of_snake_names() {
        assert_eq!(
            camel("authorization_metadata_key"),
            "authorizationMetadataKey"
        );
        assert_eq!(camel("issuer"), "issuer");
    }

    #[test]
    fn endpoints_in_every_spelling() {
        assert_eq!(
            platform_base_url("dns:///flyte.example.org", false).unwrap(),
            "https://flyte.example.org"
        );
        assert_eq!(
            platform_base_url(" flyte.example.org:8089 ", true).unwrap(),
            "http://flyte.example.org:8089"
        );
        assert_eq!(
            platform_base_url("http://127.0.0.1:30080/", false).unwrap(),
            "http://127.0.0.1:30080"
        );
        assert!(matches!(
            platform_base_url("dns:///", false),
            Err(Error::Config { .. })
        ));
        assert!(matches!(
            platform_base_url("grpc://host", false),
            Err(Error::Config { .. })
        ));
    }
}

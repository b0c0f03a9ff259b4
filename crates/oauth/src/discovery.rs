//! Flyte server discovery: [`RemoteClientConfigStore`] reads the server's two anonymous
//! documents (flyteadmin's GETs, or a Flyte 2 backend's ConnectRPC `AuthMetadataService`) and
//! combines them into a [`ClientConfig`].

use std::{
    fmt,
    sync::Arc,
    time::{Duration, SystemTime},
};

pub use flyte_auth_core::DiscoveryFlavour;
use flyte_auth_core::{
    BoxFuture, ClientConfig, ClientConfigStore, DEFAULT_HEADER_KEY, DiscoveryAnswer,
    DiscoveryHints, Error,
};
use serde_json::{Map, Value};
use tokio::sync::OnceCell;

use crate::{
    Field, OAuthClient,
    token::json_object_or_error,
    transport::{RawResponse, display_url},
};

/// How long a discovery answer kept between processes ([`DiscoveryHints::remember_answer`])
/// is used instead of asking the server again: a day. A request that fails in a way a stale
/// answer explains discovers again at once
/// ([`ClientContext::with_config`](crate::ClientContext::with_config)).
pub const DISCOVERY_ANSWER_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// How far in the future a kept answer may be dated (clocks of the machine that wrote it).
const ANSWER_CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

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

/// The base URL of a Flyte platform endpoint as written in configs: core's
/// [`Endpoint`](flyte_auth_core::Endpoint) with `insecure` applied, the one parse of every
/// spelling.
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

/// RFC 8414 authorization server metadata, as far as Flyte's flows use it.
///
/// Empty strings are `None`; relative endpoint URLs are resolved against the platform URL.
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
    /// `authorization_response_iss_parameter_supported` (RFC 9207): every authorization
    /// response names the issuer in `iss`, and a browser login refuses one that does not
    /// name [`issuer`](Self::issuer).
    pub authorization_response_iss_parameter_supported: bool,
    /// `revocation_endpoint` (RFC 7009, announced per RFC 8414): where a logout revokes the
    /// refresh token.
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
    /// Combines the documents into flytekit's [`ClientConfig`].
    ///
    /// Fails with [`Error::InvalidResponse`] when the metadata names no token endpoint.
    pub fn client_config(&self) -> Result<ClientConfig, Error> {
        let token_endpoint = self.metadata.token_endpoint.clone().ok_or_else(|| {
            Error::InvalidResponse {
                status: None,
                message: format!(
                    "the authorization server metadata at {}{OAUTH_METADATA_PATH} has no token_endpoint",
                    self.base_url
                ),
            }
        })?;
        let mut config = ClientConfig::new(
            token_endpoint,
            self.client.client_id.clone().unwrap_or_default(),
        )
        .with_authorization_endpoint(
            self.metadata
                .authorization_endpoint
                .clone()
                .unwrap_or_default(),
        )
        .with_redirect_uri(self.client.redirect_uri.clone().unwrap_or_default())
        .with_scopes(self.client.scopes.clone())
        .with_header_key(
            self.client
                .authorization_metadata_key
                .clone()
                .unwrap_or_else(|| DEFAULT_HEADER_KEY.to_owned()),
        )
        .with_audience(self.client.audience.clone().unwrap_or_default());
        if let Some(device) = &self.metadata.device_authorization_endpoint {
            config = config.with_device_authorization_endpoint(device.clone());
        }
        if let Some(revocation) = &self.metadata.revocation_endpoint {
            config = config.with_revocation_endpoint(revocation.clone());
        }
        config = config
            .with_code_challenge_methods(self.metadata.code_challenge_methods_supported.clone());
        if self.metadata.authorization_response_iss_parameter_supported {
            match &self.metadata.issuer {
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

/// A [`ClientConfigStore`] that asks the Flyte server: flytekit's and the Flyte 2 SDK's
/// `RemoteClientConfigStore`.
///
/// Every request goes anonymously through the shared [`OAuthClient`], and so with its TLS,
/// proxy, `proxy-authorization`, timeout and size settings. Field names may be snake_case or
/// lowerCamelCase (protojson), unknown fields are ignored, empty strings are unset.
///
/// The order of attempts costs neither generation a failed round trip:
///
/// - with no [`prefer`](Self::prefer)red flavour, three requests go at once:
///   `GET {base}/.well-known/oauth-authorization-server`, `GET {base}/config/v1/flyte_client`
///   and the Connect call `GetPublicClientConfig`; flyteadmin's answer wins where both come,
///   and a Flyte 2 backend without the `.well-known` document is asked `GetOAuth2Metadata`;
/// - with [`DiscoveryFlavour::FlyteAdmin`] preferred, only the two GETs go (at once);
/// - with [`DiscoveryFlavour::Flyte2`] preferred, only the two Connect calls go (at once);
///   a preferred flavour that is not served falls back to the other.
///
/// [`Discovery::flavour`] says which answered. [`remember_in`](Self::remember_in) keeps it
/// across processes ([`DiscoveryHints`], e.g. `flyte-auth-store`'s `DiscoveryHintFiles`
/// next to the token files) and prefers what was kept: the second cold start against either
/// generation sends only the two requests that server answers, and a server that changed
/// generation costs one fallback, after which the hint is corrected. An HTML answer where no
/// flavour is served is one error saying the endpoint is not the Flyte API endpoint; a Connect
/// error keeps its code and message. The answer is fetched on first use and reused; a failure is not remembered, so
/// the next call tries again. Creating the store touches no network.
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
    base_url: String,
    client: OAuthClient,
    preferred: Option<DiscoveryFlavour>,
    /// Where the flavour is remembered, and the endpoint key it is kept under.
    hints: Option<(Arc<dyn DiscoveryHints>, String)>,
    discovered: OnceCell<Arc<Discovery>>,
}

impl fmt::Debug for RemoteClientConfigStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteClientConfigStore")
            .field("base_url", &display_url(&self.base_url))
            .field("preferred", &self.preferred)
            .field("hints", &self.hints)
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
        Self {
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            client,
            preferred: None,
            hints: None,
            discovered: OnceCell::new(),
        }
    }

    /// Asks `flavour`'s documents first (the flavour that answered last time), so that a
    /// cold start sends only the two requests that server answers. Wins over a flavour
    /// recalled from [`remember_in`](Self::remember_in)'s hints.
    #[must_use]
    pub fn prefer(mut self, flavour: DiscoveryFlavour) -> Self {
        self.preferred = Some(flavour);
        self
    }

    /// Keeps the flavour that answers in `hints` under `endpoint` (the server's
    /// [`Endpoint::key`](flyte_auth_core::Endpoint::key)), with the client configuration
    /// it announced ([`DiscoveryHints::remember_answer`]), and on the first
    /// [`discover`](Self::discover) [`prefer`](Self::prefer)s the flavour recalled from
    /// there.
    ///
    /// A hint only orders the attempts: nothing recalled means asking both flavours, a
    /// wrong one costs the fallback to the other, and the hint is rewritten by every
    /// discovery that asked the server. The kept answer is used for
    /// [`DISCOVERY_ANSWER_LIFETIME`] instead of asking, only by a request that recovers from a
    /// stale one ([`ClientContext::with_config`](crate::ClientContext::with_config)). A hint
    /// that cannot be written is logged (at `debug`) and never fails discovery.
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
        &self.base_url
    }

    /// The client used for the requests.
    pub fn client(&self) -> &OAuthClient {
        &self.client
    }

    /// Both documents, fetched on first call and reused; concurrent first calls share one
    /// fetch.
    ///
    /// # Errors
    ///
    /// What the requests fail with; [`Error::InvalidResponse`] when no flavour is served.
    /// The documents are returned as announced: the announced endpoints are checked where
    /// they are used (see [`get_client_config`](ClientConfigStore::get_client_config)).
    pub async fn discover(&self) -> Result<Arc<Discovery>, Error> {
        self.discovered
            .get_or_try_init(|| async {
                let recalled = self.hints.as_ref().and_then(|(h, key)| h.recall(key));
                let (flavour, metadata, client) = match self.preferred.or(recalled) {
                    None => self.discover_any().await,
                    Some(first) => match self.discover_flavour(first).await {
                        Err(Fail::NotServed(not_served)) => {
                            tracing::debug!(
                                base_url = %display_url(&self.base_url),
                                preferred = %first,
                                "the preferred discovery flavour is not served; asking the other"
                            );
                            self.discover_flavour(first.other())
                                .await
                                .map_err(|e| e.or_not_served(not_served))
                        }
                        done => done,
                    },
                }
                .map_err(|e| self.final_error(e))?;
                tracing::debug!(
                    base_url = %display_url(&self.base_url),
                    %flavour,
                    "discovered the Flyte server's OAuth configuration"
                );
                let metadata = self.parse_metadata(&metadata);
                let discovery = Arc::new(Discovery {
                    base_url: self.base_url.clone(),
                    metadata,
                    client: self.parse_client_config(&client),
                    flavour,
                });
                if let Some((hints, key)) = &self.hints {
                    // The answer with its flavour, or the flavour alone when it changed.
                    let kept = match discovery.client_config() {
                        Ok(config) => hints.remember_answer(
                            key,
                            &DiscoveryAnswer::new(flavour, config, SystemTime::now()),
                        ),
                        Err(_) if recalled == Some(flavour) => Ok(()),
                        Err(_) => hints.remember(key, flavour),
                    };
                    if let Err(e) = kept {
                        tracing::debug!(
                            endpoint = %key,
                            error = %e,
                            "could not remember the discovery; the next start asks again"
                        );
                    }
                }
                Ok(discovery)
            })
            .await
            .cloned()
    }

    /// What [`discover`](Self::discover) found, if it has succeeded already.
    pub fn cached(&self) -> Option<Arc<Discovery>> {
        self.discovered.get().cloned()
    }

    /// The client configuration the server announces ([`Discovery::client_config`]), its
    /// endpoints not checked: [`ClientContext`](crate::ClientContext) checks those a flow
    /// takes from it ([`refuse_cleartext`](flyte_auth_core::refuse_cleartext)).
    pub(crate) async fn announced_config(&self) -> Result<ClientConfig, Error> {
        self.discover().await?.client_config()
    }

    /// The client configuration a discovery within [`DISCOVERY_ANSWER_LIFETIME`] answered, as
    /// kept in the [`remember_in`](Self::remember_in) hints, when this store has not
    /// discovered yet; `None` (logged at `debug`) when there is none, it is older, dated in
    /// the future, of another generation than a [`prefer`](Self::prefer)red one, or unusable
    /// (no token endpoint, an invalid header name). Its endpoints are not checked, as
    /// [`announced_config`](Self::announced_config)'s are not.
    ///
    /// Only for a request that can recover from a stale answer
    /// ([`ClientContext::with_config`](crate::ClientContext::with_config)).
    pub(crate) fn kept_answer(&self) -> Option<ClientConfig> {
        if self.discovered.initialized() {
            return None;
        }
        let (hints, key) = self.hints.as_ref()?;
        let answer = hints.recall_answer(key)?;
        let now = SystemTime::now();
        let unusable = if answer.discovered_at > now + ANSWER_CLOCK_SKEW {
            Some("it is dated in the future")
        } else if now
            .duration_since(answer.discovered_at)
            .is_ok_and(|age| age > DISCOVERY_ANSWER_LIFETIME)
        {
            Some("it has expired")
        } else if self.preferred.is_some_and(|p| p != answer.flavour) {
            Some("another generation of server is preferred")
        } else if answer.config.token_endpoint.trim().is_empty()
            || answer.config.header_name().is_err()
        {
            Some("it is incomplete or invalid")
        } else {
            None
        };
        if let Some(why) = unusable {
            tracing::debug!(endpoint = %key, why, "not using the kept discovery answer");
            return None;
        }
        tracing::debug!(endpoint = %key, flavour = %answer.flavour, "using the kept discovery answer");
        Some(answer.config)
    }

    /// Both documents of one flavour, at once.
    async fn discover_flavour(&self, flavour: DiscoveryFlavour) -> Result<Documents, Fail> {
        let (metadata, client) = match flavour {
            DiscoveryFlavour::FlyteAdmin => {
                futures_util::future::try_join(self.well_known(), self.flyte_client()).await?
            }
            DiscoveryFlavour::Flyte2 => {
                futures_util::future::try_join(
                    self.connect(METADATA_CALL, CONNECT_OAUTH2_METADATA_PATH),
                    self.connect(CLIENT_CALL, CONNECT_PUBLIC_CLIENT_CONFIG_PATH),
                )
                .await?
            }
            // A generation this crate does not know yet: ask what it knows, all at once.
            _ => return self.discover_any().await,
        };
        Ok((flavour, metadata, client))
    }

    /// No flavour known: the `.well-known` document and both client configs at once.
    async fn discover_any(&self) -> Result<Documents, Fail> {
        let (metadata, v1, v2) = futures_util::future::join3(
            self.well_known(),
            self.flyte_client(),
            self.connect(CLIENT_CALL, CONNECT_PUBLIC_CLIENT_CONFIG_PATH),
        )
        .await;
        match (v1, v2) {
            (Ok(client), _) => Ok((DiscoveryFlavour::FlyteAdmin, metadata?, client)),
            (Err(Fail::NotServed(_)), Ok(client)) => {
                let metadata = match metadata {
                    Ok(metadata) => metadata,
                    Err(Fail::NotServed(_)) => {
                        self.connect(METADATA_CALL, CONNECT_OAUTH2_METADATA_PATH)
                            .await?
                    }
                    Err(failed) => return Err(failed),
                };
                Ok((DiscoveryFlavour::Flyte2, metadata, client))
            }
            (Err(Fail::NotServed(v1)), Err(v2)) => Err(v2.or_not_served(v1)),
            (Err(failed), _) => Err(failed),
        }
    }

    async fn well_known(&self) -> Result<Map<String, Value>, Fail> {
        let url = format!("{}{OAUTH_METADATA_PATH}", self.base_url);
        let raw = self
            .client
            .get("authorization server metadata request", &url)
            .await?;
        self.document(&raw, "authorization server metadata request")
    }

    async fn flyte_client(&self) -> Result<Map<String, Value>, Fail> {
        let url = format!("{}{FLYTE_CLIENT_CONFIG_PATH}", self.base_url);
        let raw = self.client.get("Flyte client config request", &url).await?;
        self.document(&raw, "Flyte client config request")
    }

    async fn connect(
        &self,
        operation: &'static str,
        path: &str,
    ) -> Result<Map<String, Value>, Fail> {
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
            return Err(if matches!(code.as_str(), "unimplemented" | "not_found") {
                Fail::NotServed(NotServed { error, html: false })
            } else {
                Fail::Failed(error)
            });
        }
        self.document(&raw, operation)
    }

    /// The JSON object of a 2xx answer; a 404/405/415/501 or an answer that is not JSON is
    /// "not served here" (the other flavour may be).
    fn document(&self, raw: &RawResponse, operation: &str) -> Result<Map<String, Value>, Fail> {
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
            if not_served {
                Fail::NotServed(NotServed { error, html })
            } else {
                Fail::Failed(error)
            }
        })
    }

    fn final_error(&self, fail: Fail) -> Error {
        match fail {
            Fail::Failed(error) => error,
            Fail::NotServed(NotServed { html: true, .. }) => Error::InvalidResponse {
                status: None,
                message: format!(
                    "{} answered the discovery requests with an HTML page: it is not the Flyte \
                     API endpoint (it may be the web console, a login page, or a proxy that does \
                     not forward Connect/gRPC traffic); set admin.endpoint to the API endpoint",
                    display_url(&self.base_url)
                ),
            },
            Fail::NotServed(NotServed { error, .. }) => error,
        }
    }

    fn url_field(&self, object: &Map<String, Value>, name: &str) -> Option<String> {
        let value = field_str(object, name)?;
        if value.starts_with('/') {
            Some(format!("{}{value}", self.base_url))
        } else {
            Some(value)
        }
    }

    fn parse_metadata(&self, object: &Map<String, Value>) -> AuthorizationServerMetadata {
        AuthorizationServerMetadata {
            issuer: field_str(object, "issuer"),
            authorization_endpoint: self.url_field(object, "authorization_endpoint"),
            token_endpoint: self.url_field(object, "token_endpoint"),
            device_authorization_endpoint: self.url_field(object, "device_authorization_endpoint"),
            jwks_uri: self.url_field(object, "jwks_uri"),
            scopes_supported: field_list(object, "scopes_supported"),
            response_types_supported: field_list(object, "response_types_supported"),
            grant_types_supported: field_list(object, "grant_types_supported"),
            code_challenge_methods_supported: field_list(
                object,
                "code_challenge_methods_supported",
            ),
            token_endpoint_auth_methods_supported: field_list(
                object,
                "token_endpoint_auth_methods_supported",
            ),
            authorization_response_iss_parameter_supported: matches!(
                field(object, "authorization_response_iss_parameter_supported"),
                Some(Value::Bool(true))
            ),
            revocation_endpoint: self.url_field(object, "revocation_endpoint"),
        }
    }

    fn parse_client_config(&self, object: &Map<String, Value>) -> PublicClientConfig {
        PublicClientConfig {
            client_id: field_str(object, "client_id"),
            redirect_uri: field_str(object, "redirect_uri"),
            scopes: field_list(object, "scopes"),
            authorization_metadata_key: field_str(object, "authorization_metadata_key"),
            service_http_endpoint: field_str(object, "service_http_endpoint"),
            audience: field_str(object, "audience"),
        }
    }
}

const CLIENT_CALL: &str = "Flyte 2 GetPublicClientConfig call";
const METADATA_CALL: &str = "Flyte 2 GetOAuth2Metadata call";

/// The flavour that answered, the metadata and the client config.
type Documents = (DiscoveryFlavour, Map<String, Value>, Map<String, Value>);

/// A document not served at this URL: the other flavour may serve it.
#[derive(Debug)]
struct NotServed {
    error: Error,
    /// The answer was an HTML page.
    html: bool,
}

/// Why a discovery request did not give its document.
#[derive(Debug)]
enum Fail {
    /// Not served here (404, HTML, not JSON, Connect `unimplemented`).
    NotServed(NotServed),
    /// Anything else (the server is down, a Connect error, an OAuth error): final.
    Failed(Error),
}

impl Fail {
    /// Of two "not served", the first error is kept, and an HTML answer of either is kept.
    fn or_not_served(self, first: NotServed) -> Fail {
        match self {
            Fail::NotServed(second) => Fail::NotServed(NotServed {
                html: first.html || second.html,
                error: first.error,
            }),
            failed => failed,
        }
    }
}

impl From<Error> for Fail {
    fn from(error: Error) -> Self {
        Fail::Failed(error)
    }
}

/// The server's client configuration. Every endpoint in it is the server's, so each must be
/// `https://` when the Flyte server is: [`Error::Config`], naming the field and the URL, when
/// a Flyte server on `https://` announces a token, authorization, device authorization or
/// revocation endpoint that is not (only a Flyte endpoint on plain HTTP, such as the local
/// sandbox, may). [`ClientContext`](crate::ClientContext) checks only the announced endpoints
/// a flow uses and the configuration does not replace.
impl ClientConfigStore for RemoteClientConfigStore {
    fn get_client_config(&self) -> BoxFuture<'_, Result<ClientConfig, Error>> {
        Box::pin(async move {
            let config = self.announced_config().await?;
            for field in Field::ENDPOINTS {
                if let Some((name, url)) = field.announced_url(&config) {
                    flyte_auth_core::refuse_cleartext(&self.base_url, name, url)?;
                }
            }
            Ok(config)
        })
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

fn field_str(object: &Map<String, Value>, name: &str) -> Option<String> {
    match field(object, name)? {
        Value::String(s) => Some(s.trim().to_owned()),
        _ => None,
    }
}

fn field_list(object: &Map<String, Value>, name: &str) -> Vec<String> {
    crate::token::string_list(field(object, name))
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

//! [`ClientConfig`] and where it comes from ([`ClientConfigStore`]).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::{BoxFuture, Error};

/// The header that carries the token when the server names none.
pub const DEFAULT_HEADER_KEY: &str = "authorization";

/// What an authenticator needs to know about the authorization server and the client.
///
/// flytekit's `ClientConfig`; usually discovered from the Flyte server
/// (`RemoteClientConfigStore` in `flyte-auth-oauth`), or given by hand with
/// [`StaticClientConfigStore`].
///
/// ```
/// use flyte_auth_core::ClientConfig;
/// let cfg = ClientConfig::new("https://idp.example.org/token", "flytectl")
///     .with_authorization_endpoint("https://idp.example.org/authorize")
///     .with_scopes(["all", "offline"]);
/// assert_eq!(cfg.header_key, "authorization");
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ClientConfig {
    /// The OAuth token endpoint.
    pub token_endpoint: String,
    /// The OAuth authorization endpoint (browser login).
    pub authorization_endpoint: String,
    /// Where the browser is sent back to after login (a loopback URL).
    pub redirect_uri: String,
    /// The public OAuth client id of the Flyte CLI tools.
    pub client_id: String,
    /// The RFC 8628 device authorization endpoint, if the server has one.
    pub device_authorization_endpoint: Option<String>,
    /// The scopes to ask for.
    pub scopes: Vec<String>,
    /// The header the token goes in; [`DEFAULT_HEADER_KEY`] unless the server says otherwise.
    pub header_key: String,
    /// The `audience` parameter some identity providers need (Auth0, Keycloak).
    pub audience: Option<String>,
    /// The issuer every browser login's callback must name in `iss` (RFC 9207): set when
    /// the authorization server announces `authorization_response_iss_parameter_supported`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_response_issuer: Option<String>,
    /// The PKCE methods the authorization server announces (`code_challenge_methods_supported`,
    /// RFC 8414); the device login sends a challenge when `S256` is among them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub code_challenge_methods_supported: Vec<String>,
    /// The RFC 7009 token revocation endpoint, when the server announces one: a logout
    /// revokes the refresh token there before deleting it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
}

impl ClientConfig {
    /// A config with a token endpoint and a client id; everything else empty or default.
    pub fn new(token_endpoint: impl Into<String>, client_id: impl Into<String>) -> Self {
        Self {
            token_endpoint: token_endpoint.into(),
            authorization_endpoint: String::new(),
            redirect_uri: String::new(),
            client_id: client_id.into(),
            device_authorization_endpoint: None,
            scopes: Vec::new(),
            header_key: DEFAULT_HEADER_KEY.to_owned(),
            audience: None,
            authorization_response_issuer: None,
            code_challenge_methods_supported: Vec::new(),
            revocation_endpoint: None,
        }
    }

    /// Sets the authorization endpoint.
    #[must_use]
    pub fn with_authorization_endpoint(mut self, url: impl Into<String>) -> Self {
        self.authorization_endpoint = url.into();
        self
    }

    /// Sets the redirect URI.
    #[must_use]
    pub fn with_redirect_uri(mut self, uri: impl Into<String>) -> Self {
        self.redirect_uri = uri.into();
        self
    }

    /// Sets the device authorization endpoint.
    #[must_use]
    pub fn with_device_authorization_endpoint(mut self, url: impl Into<String>) -> Self {
        self.device_authorization_endpoint = Some(url.into());
        self
    }

    /// Sets the scopes.
    #[must_use]
    pub fn with_scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the header key; an empty key means [`DEFAULT_HEADER_KEY`].
    #[must_use]
    pub fn with_header_key(mut self, key: impl Into<String>) -> Self {
        let key = key.into();
        self.header_key = if key.is_empty() {
            DEFAULT_HEADER_KEY.to_owned()
        } else {
            key
        };
        self
    }

    /// Sets the audience; an empty audience means none.
    #[must_use]
    pub fn with_audience(mut self, audience: impl Into<String>) -> Self {
        let audience = audience.into();
        self.audience = (!audience.is_empty()).then_some(audience);
        self
    }

    /// Sets the issuer the browser login's callback must name (RFC 9207 mix-up defence).
    #[must_use]
    pub fn with_authorization_response_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.authorization_response_issuer = Some(issuer.into());
        self
    }

    /// Sets the PKCE methods the authorization server announces.
    #[must_use]
    pub fn with_code_challenge_methods<I, S>(mut self, methods: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.code_challenge_methods_supported = methods.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the token revocation endpoint (RFC 7009); an empty URL means none.
    #[must_use]
    pub fn with_revocation_endpoint(mut self, url: impl Into<String>) -> Self {
        let url = url.into();
        self.revocation_endpoint = (!url.trim().is_empty()).then_some(url);
        self
    }

    /// [`header_key`](Self::header_key) as a header name (see [`parse_header_name`]).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when it is not a valid header name.
    pub fn header_name(&self) -> Result<http::HeaderName, Error> {
        parse_header_name(&self.header_key)
    }
}

/// The header a token goes in, from configuration (`authorizationHeader`) or from the
/// server (`authorization_metadata_key`): trimmed, lower-cased; empty means
/// [`DEFAULT_HEADER_KEY`]. The one place header names are parsed.
///
/// ```
/// use flyte_auth_core::parse_header_name;
/// assert_eq!(parse_header_name(" Flyte-Authorization ")?.as_str(), "flyte-authorization");
/// assert_eq!(parse_header_name("")?.as_str(), "authorization");
/// assert!(parse_header_name("not a header").is_err());
/// # Ok::<(), flyte_auth_core::Error>(())
/// ```
///
/// # Errors
///
/// [`Error::Config`] when `name` is not a valid header name.
pub fn parse_header_name(name: &str) -> Result<http::HeaderName, Error> {
    let name = name.trim();
    if name.is_empty() {
        return Ok(http::HeaderName::from_static(DEFAULT_HEADER_KEY));
    }
    http::HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()).map_err(|_| {
        Error::config(format!(
            "`{name}` is not a valid header name for the token (authorizationHeader / \
             authorization_metadata_key)"
        ))
    })
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = |u: &str| crate::redact_url(u);
        f.debug_struct("ClientConfig")
            .field("token_endpoint", &url(&self.token_endpoint))
            .field("authorization_endpoint", &url(&self.authorization_endpoint))
            .field("redirect_uri", &url(&self.redirect_uri))
            .field("client_id", &self.client_id)
            .field(
                "device_authorization_endpoint",
                &self.device_authorization_endpoint.as_deref().map(url),
            )
            .field("scopes", &self.scopes)
            .field("header_key", &self.header_key)
            .field("audience", &self.audience)
            .field(
                "authorization_response_issuer",
                &self.authorization_response_issuer,
            )
            .field(
                "code_challenge_methods_supported",
                &self.code_challenge_methods_supported,
            )
            .field(
                "revocation_endpoint",
                &self.revocation_endpoint.as_deref().map(url),
            )
            .finish()
    }
}

/// Where the [`ClientConfig`] comes from: flytekit's `ClientConfigStore`.
///
/// Asynchronous because the usual source is the Flyte server's discovery documents.
/// Implementations should fetch once and reuse the answer.
pub trait ClientConfigStore: Send + Sync + std::fmt::Debug {
    /// The client configuration.
    fn get_client_config(&self) -> BoxFuture<'_, Result<ClientConfig, Error>>;
}

impl<T: ClientConfigStore + ?Sized> ClientConfigStore for Arc<T> {
    fn get_client_config(&self) -> BoxFuture<'_, Result<ClientConfig, Error>> {
        (**self).get_client_config()
    }
}

/// A [`ClientConfigStore`] that returns the config it was given.
///
/// ```
/// use flyte_auth_core::{ClientConfig, ClientConfigStore, StaticClientConfigStore};
/// let store = StaticClientConfigStore::new(ClientConfig::new("https://idp/token", "flytectl"));
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// assert_eq!(store.get_client_config().await.unwrap().client_id, "flytectl");
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct StaticClientConfigStore {
    cfg: ClientConfig,
}

impl StaticClientConfigStore {
    /// Wraps a config.
    pub fn new(cfg: ClientConfig) -> Self {
        Self { cfg }
    }
}

impl ClientConfigStore for StaticClientConfigStore {
    fn get_client_config(&self) -> BoxFuture<'_, Result<ClientConfig, Error>> {
        let cfg = self.cfg.clone();
        Box::pin(async move { Ok(cfg) })
    }
}

/// Refuses an endpoint announced over TLS that would take secrets off TLS: from a Flyte
/// endpoint on `https://` (`base_url`), every endpoint a secret is sent to (the token endpoint
/// gets the client secret, refresh tokens, codes with their verifier and device codes; the
/// device and authorization endpoints start those logins) must be `https://` too. Only a
/// Flyte endpoint the configuration puts on plain HTTP (`insecure: true`, or written
/// `http://`, as the local sandbox is) may announce plain-HTTP endpoints: its discovery
/// already travels in clear text. `field` is the endpoint's name in the server's metadata.
/// The one rule every discovery applies (HTTP and gRPC); a configured `tokenUrl` is the
/// user's choice, used as written.
///
/// ```
/// use flyte_auth_core::refuse_cleartext;
/// assert!(refuse_cleartext("https://flyte.example.org", "token_endpoint", "http://idp/token").is_err());
/// assert!(refuse_cleartext("http://localhost:30080", "token_endpoint", "http://idp/token").is_ok());
/// assert!(refuse_cleartext("https://flyte.example.org", "token_endpoint", "https://idp/token").is_ok());
/// ```
pub fn refuse_cleartext(base_url: &str, field: &str, url: &str) -> Result<(), Error> {
    if !is_https(base_url) || url.trim().is_empty() || is_https(url) {
        return Ok(());
    }
    Err(Error::config(format!(
        "the Flyte server at {} announces {field} {}, which is not an https:// \
         URL: secrets and tokens sent there would leave TLS. The server's OAuth \
         configuration must name https:// endpoints{}",
        crate::redact_url(base_url),
        crate::redact_url(url),
        if field == "token_endpoint" {
            " (a client-credentials login can do without discovery: set tokenUrl \
             to the https:// token endpoint, and scopes)"
        } else {
            ""
        }
    )))
}

/// Whether `url` starts with `https://` (any case).
fn is_https(url: &str) -> bool {
    url.trim_start()
        .get(..8)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
}

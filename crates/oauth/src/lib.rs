//! The OAuth 2.0 protocol client shared by every HTTP flow of `flyte-auth`.
//!
//! - [`HttpSettings`] → [`OAuthClient`]: one pooled HTTP client per transport configuration
//!   (TLS verification, CA file, insecure-skip-verify, proxy, connect and request time-outs,
//!   response size cap, user agent). Discovery, token and device requests all go through it,
//!   so Flyte's `caCertFilePath`, `insecureSkipVerify` and `httpProxyURL` apply everywhere.
//! - [`TokenRequest`] + [`OAuthClient::token`]: the token-endpoint grants (client
//!   credentials, refresh token, authorization code with PKCE, device code) with Flyte's extras
//!   (`audience`, scopes, extra parameters) and client authentication ([`ClientAuth`]: public,
//!   HTTP Basic per RFC 6749 §2.3.1, or `client_secret_post`).
//! - [`DeviceAuthorizationRequest`] + [`OAuthClient::device_authorization`]: RFC 8628 §3.1.
//! - [`RevocationRequest`] + [`OAuthClient::revoke`]: token revocation, RFC 7009.
//! - [`RemoteClientConfigStore`]: Flyte server discovery, a
//!   [`ClientConfigStore`](flyte_auth_core::ClientConfigStore), over HTTP or another
//!   [`DiscoveryTransport`].
//! - [`pkce`]: PKCE challenge and state helpers for the browser flow.
//!
//! Every server answer becomes a typed [`flyte_auth_core::Error`] (the crate README's *What
//! every answer becomes*); why the exchange is a plain form POST and not the `oauth2` crate
//! is the README's last section.
//!
//! ```no_run
//! # async fn run() -> Result<(), flyte_auth_core::Error> {
//! use flyte_auth_core::ClientConfigStore;
//! use flyte_auth_oauth::{ClientAuth, HttpSettings, OAuthClient, RemoteClientConfigStore, TokenRequest};
//!
//! let client = OAuthClient::new(HttpSettings::new().ca_cert_file("/etc/flyte/ca.pem"))?;
//! let discovery = RemoteClientConfigStore::new("dns:///flyte.example.org", false, client.clone())?;
//! let config = discovery.get_client_config().await?;
//! let token = client
//!     .token(
//!         &TokenRequest::client_credentials(
//!             &config.token_endpoint,
//!             ClientAuth::confidential("my-app", "s3cr3t"),
//!         )
//!         .with_scopes(config.scopes.clone())
//!         .with_optional_audience(config.audience.clone()),
//!     )
//!     .await?;
//! let credentials = token.into_credentials("flyte.example.org");
//! # let _ = credentials; Ok(()) }
//! ```

/// The methods a token request and a device authorization request share: the client, the
/// scopes, the `audience` and extra form parameters.
macro_rules! form_params {
    () => {
        /// Asks for these scopes (sent space-joined; nothing is sent when empty).
        pub fn with_scopes<I, S>(mut self, scopes: I) -> Self
        where
            I: IntoIterator<Item = S>,
            S: Into<String>,
        {
            self.scopes = scopes.into_iter().map(Into::into).collect();
            self
        }

        /// Sends `audience` (an empty string means none).
        pub fn with_audience(mut self, audience: impl Into<String>) -> Self {
            let audience = audience.into();
            self.audience = (!audience.is_empty()).then_some(audience);
            self
        }

        /// Sends `audience` when `Some` and not empty.
        pub fn with_optional_audience(mut self, audience: Option<String>) -> Self {
            self.audience = audience.filter(|a| !a.is_empty());
            self
        }

        /// Adds one extra form parameter (a name the request already sends is not sent
        /// twice).
        pub fn with_param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
            self.extra.push((name.into(), value.into()));
            self
        }

        /// Adds extra form parameters (a map or a list of pairs).
        pub fn with_params<I, K, V>(mut self, params: I) -> Self
        where
            I: IntoIterator<Item = (K, V)>,
            K: Into<String>,
            V: Into<String>,
        {
            self.extra
                .extend(params.into_iter().map(|(k, v)| (k.into(), v.into())));
            self
        }

        /// The client.
        pub fn client(&self) -> &$crate::ClientAuth {
            &self.client
        }

        /// The scopes.
        pub fn scopes(&self) -> &[String] {
            &self.scopes
        }

        /// The audience.
        pub fn audience(&self) -> Option<&str> {
            self.audience.as_deref()
        }
    };
}

mod context;
mod device;
mod discovery;
mod http_settings;
pub mod pkce;
mod retry;
mod revoke;
mod tls;
mod token;
mod transport;

pub use context::{ClientContext, ClientContextBuilder, Field, Overrides};
pub use device::{
    DEFAULT_DEVICE_POLL_INTERVAL, DeviceAuthorization, DeviceAuthorizationRequest,
    MAX_DEVICE_CODE_LIFETIME, MAX_DEVICE_POLL_INTERVAL,
};
pub use discovery::{
    AuthorizationServerMetadata, CONNECT_OAUTH2_METADATA_PATH, CONNECT_PUBLIC_CLIENT_CONFIG_PATH,
    DISCOVERY_ANSWER_LIFETIME, Discovery, DiscoveryFlavour, DiscoveryTransport,
    FLYTE_CLIENT_CONFIG_PATH, FetchError, OAUTH_METADATA_PATH, PublicClientConfig,
    RemoteClientConfigStore, platform_base_url,
};
pub use http_settings::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_BODY_SIZE, DEFAULT_REQUEST_TIMEOUT, DEFAULT_USER_AGENT,
    HttpSettings,
};
pub use retry::{DEFAULT_MAX_RETRIES, DEFAULT_PER_RETRY_TIMEOUT, RetryPolicy};
pub use revoke::{RevocationRequest, TokenTypeHint};
pub use token::{
    ClientAuth, ClientAuthMethod, DEVICE_CODE_GRANT_TYPE, Grant, TokenRequest, TokenResponse,
};
pub use transport::OAuthClient;

/// The README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

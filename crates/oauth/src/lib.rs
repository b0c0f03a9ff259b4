#![doc = include_str!("../README.md")]

/// The methods a token request and a device authorization request share.
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

use std::fmt;

use flyte_auth::ApiKey;

use super::errors::AuthConfigError;

/// Configuration for authentication: the Flyte endpoint (a URL) and the client credentials.
///
/// `Debug` shows the endpoint and the client id, not the secret.
#[derive(Clone)]
pub struct AuthConfig {
    pub endpoint: String,
    pub client_id: String,
    pub client_secret: String,
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfig")
            .field("endpoint", &self.endpoint)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl AuthConfig {
    /// Decodes an API key (as `flyte create api-key` or `union create api-key` print it:
    /// base64 of `endpoint:client_id:client_secret:org`, standard or URL-safe, padded or not).
    /// The endpoint becomes an `https://` URL.
    pub fn new_from_api_key(api_key: &str) -> Result<Self, AuthConfigError> {
        // Every flyte_core caller reads the key from this variable; errors name it.
        let key = ApiKey::decode(api_key, "_UNION_EAGER_API_KEY")?;
        Ok(Self {
            endpoint: key.endpoint().base_url(),
            client_id: key.client_id().to_owned(),
            client_secret: key.client_secret().expose_secret().to_owned(),
        })
    }
}

/// Why an [`AuthConfig`](super::AuthConfig) could not be made.
#[derive(thiserror::Error, Debug)]
#[non_exhaustive]
pub enum AuthConfigError {
    /// The API key is not one (the message names the problem, never the key).
    #[error(transparent)]
    InvalidApiKey(#[from] flyte_auth::ApiKeyError),
}

/// Why no token could be had.
#[derive(thiserror::Error, Debug, Clone)]
#[non_exhaustive]
pub enum TokenError {
    /// The configuration, the discovery or the identity provider's answer (its reason
    /// included), as flyte-auth reports it; never a secret.
    #[error(transparent)]
    AuthError(#[from] flyte_auth::Error),
}

use std::{
    fmt,
    sync::{Arc, OnceLock},
    time::SystemTime,
};

use flyte_auth::{
    Authenticator as _, CachingAuthenticator, Endpoint, GrpcDiscovery,
    clientcreds::{self, ClientCredentialsFlow},
    oauth::ClientContext,
};
use tonic012::transport::Channel;

use super::{config::AuthConfig, errors::TokenError};

/// An access token and when it expires.
///
/// `Debug` shows the expiry only.
#[derive(Clone)]
pub struct Credentials {
    pub access_token: String,
    pub refresh_token: Option<String>,
    /// When the token expires; now when the identity provider did not say (the token is
    /// then refreshed on the server's first rejection).
    pub expires_at: SystemTime,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl From<&flyte_auth::Credentials> for Credentials {
    fn from(credentials: &flyte_auth::Credentials) -> Self {
        Self {
            access_token: credentials.access_token.expose_secret().to_owned(),
            refresh_token: credentials
                .refresh_token
                .as_ref()
                .map(|t| t.expose_secret().to_owned()),
            expires_at: credentials.expires_at().unwrap_or_else(SystemTime::now),
        }
    }
}

/// Client credentials authenticator: flyte-auth's, made on the first channel it is given
/// (its discovery asks the server's `AuthMetadataService` over that channel). It caches the
/// token, refreshes it inside its lifetime, and makes one token request for any number of
/// concurrent callers.
#[derive(Debug)]
pub struct ClientCredentialsAuthenticator {
    config: AuthConfig,
    inner: OnceLock<Result<Arc<clientcreds::ClientCredentialsAuthenticator>, flyte_auth::Error>>,
}

impl ClientCredentialsAuthenticator {
    pub fn new(config: AuthConfig) -> Self {
        Self {
            config,
            inner: OnceLock::new(),
        }
    }

    /// flyte-auth's authenticator, made with `channel` for discovery the first time.
    pub(super) fn authenticator(
        &self,
        channel: &Channel,
    ) -> Result<Arc<clientcreds::ClientCredentialsAuthenticator>, TokenError> {
        let built = self.inner.get_or_init(|| build(&self.config, channel));
        Ok(Arc::clone(built.as_ref().map_err(Clone::clone)?))
    }

    /// Get current credentials, refreshing if necessary.
    pub async fn get_credentials(&self, channel: Channel) -> Result<Credentials, TokenError> {
        let credentials = self.authenticator(&channel)?.get_credentials().await?;
        Ok(Credentials::from(&*credentials))
    }

    /// Force a refresh of credentials.
    pub async fn refresh_credentials(&self, channel: Channel) -> Result<(), TokenError> {
        self.authenticator(&channel)?.refresh_credentials().await?;
        Ok(())
    }

    /// The header the token goes in: the server's `authorization_metadata_key` once
    /// discovered, else `authorization`.
    pub async fn get_header_key(&self) -> String {
        self.inner
            .get()
            .and_then(|built| built.as_ref().ok())
            .and_then(|auth| auth.flow().context().header_name())
            .map_or_else(
                || "authorization".to_owned(),
                |name| name.as_str().to_owned(),
            )
    }
}

fn build(
    config: &AuthConfig,
    channel: &Channel,
) -> Result<Arc<clientcreds::ClientCredentialsAuthenticator>, flyte_auth::Error> {
    let endpoint = Endpoint::parse(&config.endpoint)?;
    // Discovery asks the server's AuthMetadataService over the channel, as flyte_core did.
    let discovery = GrpcDiscovery::new(channel.clone(), &endpoint, tonic012::body::boxed);
    let ctx = ClientContext::builder(endpoint)
        .server_discovery(discovery.into_store())
        .build()?;
    let flow =
        ClientCredentialsFlow::builder(ctx, config.client_id.clone(), config.client_secret.clone())
            .build()?;
    Ok(Arc::new(CachingAuthenticator::builder(flow).build()))
}

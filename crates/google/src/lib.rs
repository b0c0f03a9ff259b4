#![doc = include_str!("../README.md")]

mod jwt;
mod sources;

use std::{fmt, path::PathBuf, sync::OnceLock, time::Duration};

use flyte_auth_core::{
    BoxFuture, CachingAuthenticator, Credentials, DEFAULT_ENDPOINT, Endpoint, Error, SecretString,
    TokenFlow,
    owned::{Owners, Trust, Unreadable},
    parse_header_name,
};
use flyte_auth_oauth::{ClientAuth, ClientAuthMethod, HttpSettings, OAuthClient, TokenRequest};
use http::HeaderName;

pub use sources::{ADC_FILE_NAME, DEFAULT_METADATA_HOST, DEFAULT_TOKEN_URI, Sources};

use crate::sources::Grant;

/// The grant a signed assertion is redeemed with (RFC 7523 §2.1).
pub const JWT_BEARER_GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// How long the metadata server is waited for by default: Google's Python library allows it
/// three seconds; off Google Cloud its name does not resolve and the wait is far shorter.
pub const DEFAULT_METADATA_TIMEOUT: Duration = Duration::from_secs(3);

/// The metadata server's identity document for the default service account.
const METADATA_IDENTITY_PATH: &str =
    "/computeMetadata/v1/instance/service-accounts/default/identity";

/// Google ID tokens for an audience, cached and refreshed before they expire: core's
/// [`CachingAuthenticator`] around a [`GoogleIdTokenFlow`]. Cloning is cheap and clones share
/// the cache.
pub type GoogleIdTokenAuthenticator = CachingAuthenticator<GoogleIdTokenFlow>;

/// Which source gave the ID token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Source {
    /// The credentials file (`GOOGLE_APPLICATION_CREDENTIALS`).
    KeyFile,
    /// The metadata server.
    MetadataServer,
    /// gcloud's stored user credentials.
    GcloudUser,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::KeyFile => "the credentials file (GOOGLE_APPLICATION_CREDENTIALS)",
            Self::MetadataServer => "the metadata server",
            Self::GcloudUser => "gcloud's user credentials",
        })
    }
}

/// Obtains Google ID tokens for one audience: the [`TokenFlow`] [`GoogleIdTokenAuthenticator`]
/// wraps. A token's expiry is its JWT `exp`; each new token is obtained from the source again.
/// The audience is the flow's [`client_id`](TokenFlow::client_id), so a stored token for
/// another audience is never used.
pub struct GoogleIdTokenFlow {
    audience: String,
    endpoint: Endpoint,
    http: OAuthClient,
    metadata: OAuthClient,
    sources: Sources,
    header: Option<HeaderName>,
    chosen: OnceLock<Source>,
}

impl fmt::Debug for GoogleIdTokenFlow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GoogleIdTokenFlow")
            .field("audience", &self.audience)
            .field("endpoint", &self.endpoint)
            .field("sources", &self.sources)
            .field("header", &self.header)
            .field("chosen", &self.chosen.get())
            .finish_non_exhaustive()
    }
}

impl GoogleIdTokenFlow {
    /// Starts a flow for ID tokens whose audience is `audience` (for IAP, the OAuth client id
    /// of the proxy).
    pub fn builder(audience: impl Into<String>) -> GoogleIdTokenFlowBuilder {
        GoogleIdTokenFlowBuilder {
            audience: audience.into(),
            endpoint: None,
            http: None,
            sources: None,
            metadata_timeout: DEFAULT_METADATA_TIMEOUT,
            header_key: None,
        }
    }

    /// The audience of the ID tokens.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// Where credentials are looked for.
    pub fn sources(&self) -> &Sources {
        &self.sources
    }

    /// The source that gave the first token, once one did.
    pub fn source(&self) -> Option<Source> {
        self.chosen.get().copied()
    }

    /// An ID token from the source already chosen, else from the first source that has
    /// credentials.
    async fn id_token(&self) -> Result<(Source, SecretString), Error> {
        if let Some(&source) = self.chosen.get() {
            return match self.ask_source(source).await {
                Ok(token) => Ok((source, token)),
                Err(Missing::NoAnswer(e) | Missing::Failed(e)) => Err(e),
                Err(Missing::Untrusted { path, why }) => Err(Error::config(format!(
                    "{source} gave the last Google ID token, and {path} is not used now: {why}"
                ))),
                Err(Missing::NotConfigured) => Err(Error::config(format!(
                    "{source} gave the last Google ID token, and is gone"
                ))),
            };
        }
        for source in [Source::KeyFile, Source::MetadataServer, Source::GcloudUser] {
            match self.ask_source(source).await {
                Ok(token) => {
                    tracing::debug!(audience = %self.audience, %source, "Google ID token source");
                    let _ = self.chosen.set(source);
                    return Ok((source, token));
                }
                Err(Missing::NotConfigured) => {}
                Err(Missing::Untrusted { path, why }) => tracing::warn!(
                    %path,
                    reason = %why,
                    "skipping gcloud's credentials file: a file found there is used only when \
                     it is the user's own (or root's) and nobody else may write to it"
                ),
                Err(Missing::NoAnswer(e)) => {
                    tracing::debug!(error = %e, "no metadata server answered; not on Google Cloud");
                }
                Err(Missing::Failed(e)) => return Err(e),
            }
        }
        Err(Error::config(
            "no Google credentials for an ID token: set GOOGLE_APPLICATION_CREDENTIALS to a \
             service-account key file, run on Google Cloud (the metadata server), or log in \
             with `gcloud auth application-default login`",
        ))
    }

    async fn ask_source(&self, source: Source) -> Result<SecretString, Missing> {
        match source {
            // Named by the user: used as named. Found: only the user's own (or root's).
            Source::KeyFile => match &self.sources.key_file {
                Some(path) => self.ask_file(path.clone(), Trust::Named).await,
                None => Err(Missing::NotConfigured),
            },
            Source::MetadataServer => match &self.sources.metadata_host {
                Some(host) => self.ask_metadata_server(host).await.map_err(|e| match e {
                    Error::Transport { .. } | Error::Timeout { .. } => Missing::NoAnswer(e),
                    e => Missing::Failed(e),
                }),
                None => Err(Missing::NotConfigured),
            },
            Source::GcloudUser => match self.sources.gcloud_file() {
                Some(path) => {
                    let trust = Trust::Private(Owners::UserOrRoot);
                    self.ask_file(path, trust).await
                }
                None => Err(Missing::NotConfigured),
            },
        }
    }

    /// An ID token from the credentials file at `path`: a service-account key or user
    /// credentials. The file is read and the assertion signed on a blocking thread.
    async fn ask_file(&self, path: PathBuf, trust: Trust) -> Result<SecretString, Missing> {
        let audience = self.audience.clone();
        let grant = tokio::task::spawn_blocking(move || Grant::from_file(&path, trust, &audience))
            .await
            .map_err(Error::other)??;
        Ok(match grant {
            Grant::Assertion {
                assertion,
                client_email,
                token_uri,
            } => {
                tracing::debug!(
                    service_account = %client_email,
                    audience = %self.audience,
                    "requesting a Google ID token with a signed assertion"
                );
                let form = [
                    ("grant_type", JWT_BEARER_GRANT_TYPE),
                    ("assertion", assertion.expose_secret()),
                ];
                self.http
                    .post_form_for("Google ID token request", &token_uri, &form, "id_token")
                    .await?
            }
            Grant::Refresh {
                client_id,
                client_secret,
                refresh_token,
                token_uri,
            } => {
                let token_uri = token_uri.unwrap_or_else(|| self.sources.user_token_uri.clone());
                let client = ClientAuth::confidential(client_id, client_secret)
                    .with_method(ClientAuthMethod::ClientSecretPost);
                tracing::debug!("refreshing gcloud's user credentials for a Google ID token");
                let request = TokenRequest::refresh_token(token_uri, client, refresh_token);
                let answer = self.http.token(&request).await.map_err(|e| {
                    if e.is_rejected_grant() {
                        Error::authentication(format!(
                            "Google refused gcloud's stored user credentials ({e}): log in \
                             again with `gcloud auth application-default login`"
                        ))
                    } else {
                        e
                    }
                })?;
                answer.id_token.ok_or_else(|| Error::InvalidResponse {
                    status: None,
                    message: "Google's answer to the refresh of gcloud's user credentials has \
                              no id_token: log in again with `gcloud auth application-default \
                              login` (the login must include the openid scope)"
                        .to_owned(),
                })?
            }
        })
    }

    /// An ID token from the metadata server at `host`.
    async fn ask_metadata_server(&self, host: &str) -> Result<SecretString, Error> {
        let host = Sources::checked_metadata_host(host)?;
        let audience: String =
            url::form_urlencoded::byte_serialize(self.audience.as_bytes()).collect();
        let url = format!("http://{host}{METADATA_IDENTITY_PATH}?audience={audience}&format=full");
        tracing::debug!(%host, audience = %self.audience, "asking the metadata server for an ID token");
        self.metadata
            .get_secret_text(
                "metadata server ID token request",
                &url,
                &[("metadata-flavor", "Google")],
            )
            .await
    }
}

/// Why a source gave no token.
enum Missing {
    /// It is not set up: the next source is tried.
    NotConfigured,
    /// A file found there (`path`, printable) is not the user's own: skipped, with a warning.
    Untrusted { path: String, why: Unreadable },
    /// Nothing answered (the metadata server off Google Cloud): the next source is tried.
    NoAnswer(Error),
    /// It is set up and failed: the error is the flow's.
    Failed(Error),
}

impl From<Error> for Missing {
    fn from(e: Error) -> Self {
        Self::Failed(e)
    }
}

/// Builds a [`GoogleIdTokenFlow`]; see [`GoogleIdTokenFlow::builder`].
#[must_use]
#[derive(Debug)]
pub struct GoogleIdTokenFlowBuilder {
    audience: String,
    endpoint: Option<Endpoint>,
    http: Option<OAuthClient>,
    sources: Option<Sources>,
    metadata_timeout: Duration,
    header_key: Option<String>,
}

impl GoogleIdTokenFlowBuilder {
    /// The server the token is for: what a token store files it under ([`DEFAULT_ENDPOINT`]
    /// by default). A proxy authenticator must not share a store with the server's own
    /// authenticator: both would file their tokens under this endpoint.
    pub fn endpoint(mut self, endpoint: Endpoint) -> Self {
        self.endpoint = Some(endpoint);
        self
    }

    /// The HTTP client for Google's token endpoint (the configured CA file, proxy and
    /// time-outs). By default one with [`HttpSettings::new`].
    pub fn http_client(mut self, client: OAuthClient) -> Self {
        self.http = Some(client);
        self
    }

    /// Where credentials are looked for ([`Sources::from_env`] by default, read when the
    /// flow is built).
    pub fn sources(mut self, sources: Sources) -> Self {
        self.sources = Some(sources);
        self
    }

    /// How long the metadata server is waited for ([`DEFAULT_METADATA_TIMEOUT`] by
    /// default). It is asked directly, never through a proxy, and once.
    pub fn metadata_timeout(mut self, timeout: Duration) -> Self {
        self.metadata_timeout = timeout;
        self
    }

    /// The header the token goes in: `authorization` by default, `proxy-authorization` for
    /// IAP in front of Flyte.
    pub fn header_key(mut self, header_key: impl Into<String>) -> Self {
        self.header_key = Some(header_key.into());
        self
    }

    /// The flow. Touches no network and reads no file.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the audience is empty, the header key is not a header name, or
    /// the metadata time-out is zero.
    pub fn build(self) -> Result<GoogleIdTokenFlow, Error> {
        let audience = self.audience.trim().to_owned();
        if audience.is_empty() {
            return Err(Error::config(
                "a Google ID token needs an audience: the OAuth client id of the \
                 identity-aware proxy",
            ));
        }
        if self.metadata_timeout.is_zero() {
            return Err(Error::config(
                "the metadata server's time-out must not be zero",
            ));
        }
        let header = self
            .header_key
            .as_deref()
            .map(parse_header_name)
            .transpose()?;
        let http = match self.http {
            Some(http) => http,
            None => OAuthClient::new(HttpSettings::new())?,
        };
        // The metadata server is link-local: never through a proxy, and briefly (it is asked
        // once: `get_secret_text` does not retry).
        let mut settings = http.settings().clone();
        settings.proxy = None;
        settings.system_proxy = false;
        settings.connect_timeout = self.metadata_timeout;
        settings.request_timeout = self.metadata_timeout;
        let metadata = OAuthClient::new(settings)?;
        let endpoint = match self.endpoint {
            Some(endpoint) => endpoint,
            None => Endpoint::parse(DEFAULT_ENDPOINT)?,
        };
        Ok(GoogleIdTokenFlow {
            audience,
            endpoint,
            http,
            metadata,
            sources: self.sources.unwrap_or_else(Sources::from_env),
            header,
            chosen: OnceLock::new(),
        })
    }
}

impl TokenFlow for GoogleIdTokenFlow {
    fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    fn login(&self) -> BoxFuture<'_, Result<Credentials, Error>> {
        Box::pin(async move {
            let (source, id_token) = self.id_token().await?;
            let credentials = Credentials::new(id_token, self.endpoint.key())
                .with_client_id(self.audience.clone());
            if !credentials.expiry_is_known() {
                tracing::debug!(%source, "the Google ID token has no exp claim");
            }
            Ok(credentials)
        })
    }

    fn client_id(&self) -> Option<String> {
        Some(self.audience.clone())
    }

    fn header_name(&self) -> Option<HeaderName> {
        self.header.clone()
    }
}

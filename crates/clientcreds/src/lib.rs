//! Flyte's client credentials authenticator: a service (CI job, workflow, daemon) obtains its
//! token with its own client id and secret (OAuth 2.0 `client_credentials` grant).
//!
//! [`ClientCredentialsAuthenticator`] is flytekit's `ClientCredentialsAuthenticator`: the token
//! endpoint, scopes, audience and header key come from the [`ClientContext`] (the
//! configuration's overrides over the Flyte server's discovery documents). Unlike flytekit it keeps the token's
//! expiry and fetches a new token a margin *before* it expires, one request however many tasks
//! ask at once (the caching lives in [`flyte_auth_core::CachingAuthenticator`]); a rejected
//! token costs one new request, not one per caller.
//!
//! ```no_run
//! # async fn run() -> Result<(), flyte_auth_core::Error> {
//! use flyte_auth_core::{Authenticator, CachingAuthenticator, Endpoint};
//! use flyte_auth_clientcreds::ClientCredentialsFlow;
//! use flyte_auth_oauth::ClientContext;
//!
//! let secret = std::env::var("FLYTE_CREDENTIALS_CLIENT_SECRET").unwrap_or_default();
//! let ctx = ClientContext::builder(Endpoint::parse("dns:///flyte.example.org")?).build()?;
//! let flow = ClientCredentialsFlow::builder(ctx, "my-service", secret).build()?;
//! let auth = CachingAuthenticator::builder(flow).build();
//! let header = auth.auth_header().await?; // `authorization: Bearer ...`
//! # let _ = header; Ok(()) }
//! ```

use std::fmt;

use flyte_auth_core::{
    BoxFuture, CachingAuthenticator, Credentials, Endpoint, Error, SecretString, TokenFlow,
};
use flyte_auth_oauth::{ClientAuth, ClientAuthMethod, ClientContext, Field, TokenRequest};
use http::HeaderName;

/// Obtains tokens with a client id and secret: flytekit's `ClientCredentialsAuthenticator`,
/// the shared [`CachingAuthenticator`] around a [`ClientCredentialsFlow`].
pub type ClientCredentialsAuthenticator = CachingAuthenticator<ClientCredentialsFlow>;

/// The client configuration fields the grant uses. Not the header name: obtaining a token
/// does not need it, so configured `tokenUrl` and `scopes` cost no discovery; it is resolved
/// when a caller asks for it ([`ClientContext::resolve_header_name`]), or known from a
/// discovery the grant needed anyway.
const FIELDS: &[Field] = &[Field::TokenEndpoint, Field::Scopes, Field::Audience];

/// The `client_credentials` grant as a [`TokenFlow`]: what [`ClientCredentialsAuthenticator`]
/// wraps.
///
/// The token endpoint, scopes, audience and header come from its [`ClientContext`], on the
/// first token request. It has no refresh grant: a new token is obtained with the client's
/// credentials each time (any refresh token the server sends is dropped, so none is stored).
///
/// ```
/// use flyte_auth_core::{CachingAuthenticator, Endpoint};
/// use flyte_auth_clientcreds::{ClientCredentialsAuthenticator, ClientCredentialsFlow};
/// use flyte_auth_oauth::{ClientAuthMethod, ClientContext, Overrides};
///
/// let ctx = ClientContext::builder(Endpoint::parse("dns:///flyte.example.org")?)
///     .overrides(Overrides::new().token_endpoint("https://idp.example.org/oauth2/token"))
///     .build()?;
/// let flow = ClientCredentialsFlow::builder(ctx, "my-service", "s3cr3t")
///     .auth_method(ClientAuthMethod::ClientSecretPost)
///     .build()?;
/// let auth: ClientCredentialsAuthenticator = CachingAuthenticator::builder(flow).build();
/// # let _ = auth;
/// # Ok::<(), flyte_auth_core::Error>(())
/// ```
pub struct ClientCredentialsFlow {
    ctx: ClientContext,
    client: ClientAuth,
    extra: Vec<(String, String)>,
}

impl fmt::Debug for ClientCredentialsFlow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentialsFlow")
            .field("ctx", &self.ctx)
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

impl ClientCredentialsFlow {
    /// Starts a flow for the client `client_id` with `client_secret`, in `ctx`.
    pub fn builder(
        ctx: ClientContext,
        client_id: impl Into<String>,
        client_secret: impl Into<SecretString>,
    ) -> ClientCredentialsFlowBuilder {
        ClientCredentialsFlowBuilder {
            ctx,
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            method: ClientAuthMethod::default(),
            extra: Vec::new(),
        }
    }

    /// The context: the server, the HTTP client, the client configuration.
    pub fn context(&self) -> &ClientContext {
        &self.ctx
    }
}

/// Builds a [`ClientCredentialsFlow`]; see [`ClientCredentialsFlow::builder`].
#[must_use]
pub struct ClientCredentialsFlowBuilder {
    ctx: ClientContext,
    client_id: String,
    client_secret: SecretString,
    method: ClientAuthMethod,
    extra: Vec<(String, String)>,
}

impl fmt::Debug for ClientCredentialsFlowBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentialsFlowBuilder")
            .field("ctx", &self.ctx)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .field("method", &self.method)
            .finish_non_exhaustive()
    }
}

impl ClientCredentialsFlowBuilder {
    /// How the secret is sent: HTTP Basic (default, RFC 6749 §2.3.1 encoding) or in the body
    /// (`client_secret_post`), for servers that reject one or the other.
    pub fn auth_method(mut self, method: ClientAuthMethod) -> Self {
        self.method = method;
        self
    }

    /// Adds a form parameter to every token request (some identity providers want
    /// `resource` or similar).
    pub fn param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.extra.push((name.into(), value.into()));
        self
    }

    /// The flow. Touches no network.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the client id or the secret is empty.
    pub fn build(self) -> Result<ClientCredentialsFlow, Error> {
        if self.client_id.trim().is_empty() {
            return Err(Error::config(
                "auth type ClientSecret needs a client id: set admin.clientId or \
                 FLYTE_CREDENTIALS_CLIENT_ID",
            ));
        }
        if self.client_secret.expose_secret().trim().is_empty() {
            return Err(Error::config(
                "auth type ClientSecret needs a client secret: set admin.clientSecretLocation \
                 (a file holding it), admin.clientSecretEnvVar (the name of a variable holding \
                 it) or FLYTE_CREDENTIALS_CLIENT_SECRET",
            ));
        }
        Ok(ClientCredentialsFlow {
            ctx: self.ctx,
            client: ClientAuth::confidential(self.client_id, self.client_secret)
                .with_method(self.method),
            extra: self.extra,
        })
    }
}

impl TokenFlow for ClientCredentialsFlow {
    fn endpoint(&self) -> &Endpoint {
        self.ctx.endpoint()
    }

    fn login(&self) -> BoxFuture<'_, Result<Credentials, Error>> {
        Box::pin(async move {
            // The grant is safe to repeat: a kept discovery answer may be used.
            let token = self
                .ctx
                .with_config(FIELDS, |cfg| async move {
                    let request =
                        TokenRequest::client_credentials(cfg.token_endpoint, self.client.clone())
                            .with_scopes(cfg.scopes)
                            .with_optional_audience(cfg.audience)
                            .with_params(self.extra.iter().cloned());
                    tracing::debug!(
                        endpoint = %self.ctx.endpoint(),
                        client_id = self.client.client_id(),
                        "requesting a token with client credentials"
                    );
                    self.ctx.http().token(&request).await
                })
                .await?;
            let mut credentials = self.ctx.credentials(token);
            credentials.refresh_token = None;
            Ok(credentials)
        })
    }

    fn client_id(&self) -> Option<String> {
        Some(self.client.client_id().to_owned())
    }

    fn header_name(&self) -> Option<HeaderName> {
        self.ctx.header_name()
    }

    fn resolve_header_name(&self) -> BoxFuture<'_, Result<Option<HeaderName>, Error>> {
        Box::pin(async move { self.ctx.resolve_header_name().await.map(Some) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(client_id: &str, secret: &str) -> Result<ClientCredentialsFlow, Error> {
        let ctx = ClientContext::builder(Endpoint::parse("flyte.example.org")?).build()?;
        ClientCredentialsFlow::builder(ctx, client_id, secret).build()
    }

    #[test]
    fn a_missing_client_id_or_secret_is_refused_naming_where_to_set_it() {
        let err = build(" ", "s3cr3t").unwrap_err().to_string();
        assert!(
            err.contains("needs a client id: set admin.clientId"),
            "{err}"
        );
        let err = build("svc", "").unwrap_err().to_string();
        assert!(err.contains("needs a client secret: set"), "{err}");
        assert!(err.contains("admin.clientSecretEnvVar"), "{err}");
        build("svc", "s3cr3t").unwrap();
    }
}

/// The README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

//! [`PkceFlow`] (the browser login as a core `TokenFlow`) and [`PkceAuthenticator`].

use std::fmt;

use flyte_auth_core::{
    BoxFuture, CachingAuthenticator, ClientConfig, Credentials, Endpoint, Error, TokenFlow,
};
use flyte_auth_oauth::{ClientContext, Field};
use http::HeaderName;
use tokio::sync::OnceCell;

use crate::{
    AuthorizationClient, DEFAULT_REDIRECT_URI,
    client::{LoginOptions, clean_scopes, login_option_methods},
};

/// The client configuration fields the browser login uses.
const FIELDS: &[Field] = &[
    Field::AuthorizationEndpoint,
    Field::TokenEndpoint,
    Field::ClientId,
    Field::RedirectUri,
    Field::Scopes,
    Field::Audience,
    Field::HeaderKey,
];

/// Browser login with PKCE: flytekit's `PKCEAuthenticator`, the shared
/// [`CachingAuthenticator`] around a [`PkceFlow`]: one browser window, however many tasks
/// ask.
pub type PkceAuthenticator = CachingAuthenticator<PkceFlow>;

/// flytekit's name of [`PkceAuthenticator`].
#[deprecated(note = "renamed to `PkceAuthenticator`")]
pub type PKCEAuthenticator = PkceAuthenticator;

/// The browser login as a [`TokenFlow`]: what [`PkceAuthenticator`] wraps.
///
/// The client configuration (endpoints, client id, redirect URI, scopes, audience, header)
/// comes from its [`ClientContext`] on the first login or refresh, not before, and an
/// [`AuthorizationClient`] is built from it once. A failed fetch is not remembered: the next
/// attempt fetches again.
///
/// ```no_run
/// # async fn run() -> Result<(), flyte_auth_core::Error> {
/// use std::sync::Arc;
/// use flyte_auth_core::{Authenticator, CachingAuthenticator, Endpoint, MemoryStore};
/// use flyte_auth_oauth::ClientContext;
/// use flyte_auth_pkce::PkceFlow;
///
/// let ctx = ClientContext::builder(Endpoint::parse("dns:///flyte.example.org")?).build()?;
/// let auth = CachingAuthenticator::builder(PkceFlow::builder(ctx).build()?)
///     .store(Arc::new(MemoryStore::new()))
///     .build();
/// let header = auth.auth_header().await?; // opens the browser the first time
/// # let _ = header; Ok(()) }
/// ```
pub struct PkceFlow {
    ctx: ClientContext,
    options: LoginOptions,
    client: OnceCell<AuthorizationClient>,
}

impl fmt::Debug for PkceFlow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PkceFlow")
            .field("ctx", &self.ctx)
            .field("client", &self.client.get())
            .finish_non_exhaustive()
    }
}

impl PkceFlow {
    /// Starts a browser login flow in `ctx`.
    pub fn builder(ctx: ClientContext) -> PkceFlowBuilder {
        PkceFlowBuilder {
            ctx,
            options: LoginOptions::new(true),
        }
    }

    /// The context: the server, the HTTP client, the client configuration.
    pub fn context(&self) -> &ClientContext {
        &self.ctx
    }

    /// The authorization client, once the client configuration has been fetched.
    pub fn authorization_client(&self) -> Option<&AuthorizationClient> {
        self.client.get()
    }

    async fn client(&self) -> Result<&AuthorizationClient, Error> {
        self.client
            .get_or_try_init(|| async { self.configure(self.ctx.resolve(FIELDS).await?) })
            .await
    }

    /// The authorization client for the client configuration `cfg`.
    fn configure(&self, cfg: ClientConfig) -> Result<AuthorizationClient, Error> {
        let redirect_uri = if cfg.redirect_uri.trim().is_empty() {
            DEFAULT_REDIRECT_URI.to_owned()
        } else {
            cfg.redirect_uri
        };
        let mut builder = AuthorizationClient::builder(
            self.ctx.endpoint().key(),
            cfg.authorization_endpoint,
            cfg.token_endpoint,
            cfg.client_id,
            redirect_uri,
        )
        .scopes(clean_scopes(cfg.scopes))
        .http_client(self.ctx.http().clone());
        if let Some(audience) = cfg.audience {
            builder = builder.audience(audience);
        }
        if let Some(issuer) = cfg.authorization_response_issuer {
            builder = builder.authorization_response_issuer(issuer);
        }
        let client = AuthorizationClient::with_options(builder, self.options.clone()).build()?;
        tracing::debug!(endpoint = %self.ctx.endpoint(), client = ?client, "browser login configured");
        Ok(client)
    }

    /// The refresh grant. It is safe to repeat, so a discovery answer an earlier process kept
    /// may be used ([`ClientContext::with_config`]); a client built from one is not kept for
    /// a login.
    async fn refresh_with(&self, current: &Credentials) -> Result<Credentials, Error> {
        if let Some(client) = self.client.get() {
            return client.refresh_access_token(current).await;
        }
        self.ctx
            .with_config(FIELDS, |cfg| async move {
                let client = self.configure(cfg)?;
                if self.ctx.uses_kept_answer() {
                    return client.refresh_access_token(current).await;
                }
                let client = self.client.get_or_init(|| async { client }).await;
                client.refresh_access_token(current).await
            })
            .await
    }
}

impl TokenFlow for PkceFlow {
    fn endpoint(&self) -> &Endpoint {
        self.ctx.endpoint()
    }

    fn login(&self) -> BoxFuture<'_, Result<Credentials, Error>> {
        Box::pin(async move { self.client().await?.get_creds_from_remote().await })
    }

    fn refresh<'a>(
        &'a self,
        current: &'a Credentials,
    ) -> Option<BoxFuture<'a, Result<Credentials, Error>>> {
        Some(Box::pin(self.refresh_with(current)))
    }

    fn client_id(&self) -> Option<String> {
        self.ctx.client_id()
    }

    fn header_name(&self) -> Option<HeaderName> {
        self.ctx.header_name()
    }

    fn resolve_header_name(&self) -> BoxFuture<'_, Result<Option<HeaderName>, Error>> {
        Box::pin(async move { self.ctx.resolve_header_name().await.map(Some) })
    }
}

/// Builds a [`PkceFlow`]; see [`PkceFlow::builder`].
#[derive(Debug)]
#[must_use]
pub struct PkceFlowBuilder {
    ctx: ClientContext,
    options: LoginOptions,
}

impl PkceFlowBuilder {
    login_option_methods!();

    /// The flow. Touches neither the network nor a store.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the timeout is zero.
    pub fn build(self) -> Result<PkceFlow, Error> {
        self.options.check()?;
        Ok(PkceFlow {
            ctx: self.ctx,
            options: self.options,
            client: OnceCell::new(),
        })
    }
}

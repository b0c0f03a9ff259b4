//! [`DeviceCodeFlow`]: the device authorization grant (RFC 8628) and the refresh grant as a
//! [`TokenFlow`].

use std::{fmt, sync::Arc, time::Duration};

use flyte_auth_core::{
    BoxFuture, ClientConfig, Credentials, Endpoint, Error, OAuthErrorCode, SecretString, TokenFlow,
};
use flyte_auth_oauth::{
    ClientAuth, ClientContext, DeviceAuthorization, DeviceAuthorizationRequest, Field,
    TokenRequest, TokenResponse,
    pkce::{Pkce, S256},
};
use futures_util::future::{Either, select};
use http::HeaderName;

use crate::{CancelHandle, DevicePrompt, PollTimer, PromptCallback};

/// How long a device login waits for the user at most, unless configured otherwise
/// (flytectl's `deviceFlowConfig.timeout`).
pub const DEFAULT_LOGIN_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// How much every `slow_down` answer adds to the poll interval (RFC 8628 §3.5).
pub const SLOW_DOWN_INCREMENT: Duration = Duration::from_secs(5);

/// The longest wait between two polls while the token endpoint cannot be reached or answers
/// 5xx (unless the server's own interval is longer).
pub const MAX_ERROR_BACKOFF: Duration = Duration::from_secs(60);

/// The client configuration fields a refresh uses.
const REFRESH_FIELDS: &[Field] = &[
    Field::TokenEndpoint,
    Field::ClientId,
    Field::Scopes,
    Field::Audience,
    Field::HeaderKey,
];

/// The client configuration fields a device login uses.
const LOGIN_FIELDS: &[Field] = &[
    Field::TokenEndpoint,
    Field::DeviceAuthorizationEndpoint,
    Field::ClientId,
    Field::Scopes,
    Field::Audience,
    Field::HeaderKey,
];

/// How the poll loop waits.
#[derive(Clone)]
pub(crate) struct Polling {
    pub(crate) default_interval: Duration,
    pub(crate) timeout: Duration,
    pub(crate) timer: Arc<dyn PollTimer>,
}

/// The device code login and the refresh grant (with `client_id`, `scope` and `audience`,
/// like flytekit) as a [`TokenFlow`]: what
/// [`DeviceCodeAuthenticator`](crate::DeviceCodeAuthenticator) wraps. The login shows the
/// [`DevicePrompt`] and polls until the user approves, refuses, the code expires or the login
/// times out. The client configuration comes from its [`ClientContext`], read on first use.
pub struct DeviceCodeFlow {
    pub(crate) ctx: ClientContext,
    pub(crate) client_secret: Option<SecretString>,
    pub(crate) extra: Vec<(String, String)>,
    /// `Some(true)`: always send a PKCE challenge; `Some(false)`: never; `None`: when the
    /// server announces S256.
    pub(crate) pkce: Option<bool>,
    pub(crate) polling: Polling,
    pub(crate) prompt: PromptCallback,
    pub(crate) cancel: CancelHandle,
}

impl fmt::Debug for DeviceCodeFlow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceCodeFlow")
            .field("ctx", &self.ctx)
            .field("confidential", &self.client_secret.is_some())
            .field("pkce", &self.pkce)
            .field("poll_interval", &self.polling.default_interval)
            .field("timeout", &self.polling.timeout)
            .finish_non_exhaustive()
    }
}

/// What the requests need, once the client config is consulted.
struct Resolved {
    token_endpoint: String,
    device_authorization_endpoint: Option<String>,
    client: ClientAuth,
    scopes: Vec<String>,
    audience: Option<String>,
    /// Whether the login proves itself with a PKCE verifier.
    pkce: bool,
}

impl DeviceCodeFlow {
    /// The context: the server, the HTTP client, the client configuration.
    pub fn context(&self) -> &ClientContext {
        &self.ctx
    }

    /// A handle that cancels the device logins running when it is used.
    pub fn cancel_handle(&self) -> CancelHandle {
        self.cancel.clone()
    }

    /// Reads the client config (once) and checks that a client id, a token endpoint and a
    /// device authorization endpoint are known, to fail early (flytekit's constructor does).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming what is missing; whatever reading the client config fails
    /// with.
    pub async fn check_server(&self) -> Result<(), Error> {
        self.ctx.resolve(LOGIN_FIELDS).await.map(|_| ())
    }

    /// What the requests need from the client configuration `cfg`.
    fn resolved(&self, cfg: ClientConfig) -> Resolved {
        let client = match &self.client_secret {
            Some(secret) => ClientAuth::confidential(cfg.client_id, secret.clone()),
            None => ClientAuth::public(cfg.client_id),
        };
        let announced = cfg
            .code_challenge_methods_supported
            .iter()
            .any(|m| m.trim() == S256);
        Resolved {
            pkce: self.pkce.unwrap_or(announced),
            token_endpoint: cfg.token_endpoint,
            device_authorization_endpoint: cfg.device_authorization_endpoint,
            client,
            scopes: cfg.scopes,
            audience: cfg.audience,
        }
    }

    /// Asks for a device code with `cfg`: what the requests need, the PKCE verifier and the
    /// server's answer. Nothing is shown yet, so this is safe to repeat.
    async fn authorize(
        &self,
        cfg: ClientConfig,
    ) -> Result<(Resolved, Option<Pkce>, DeviceAuthorization), Error> {
        let resolved = self.resolved(cfg);
        let device_endpoint = resolved
            .device_authorization_endpoint
            .clone()
            .unwrap_or_default();
        // A new verifier for every login; its challenge goes with the device request.
        let pkce = resolved.pkce.then(Pkce::new_s256).transpose()?;
        let mut request = DeviceAuthorizationRequest::new(device_endpoint, resolved.client.clone())
            .with_scopes(resolved.scopes.clone())
            .with_optional_audience(resolved.audience.clone())
            .with_params(self.extra.iter().cloned());
        if let Some(pkce) = &pkce {
            request = request.with_pkce(pkce);
        }
        tracing::debug!(
            endpoint = %self.ctx.endpoint(),
            client_id = resolved.client.client_id(),
            pkce = pkce.is_some(),
            "requesting a device code"
        );
        let authorization = self.ctx.http().device_authorization(&request).await?;
        Ok((resolved, pkce, authorization))
    }

    async fn run_login(&self) -> Result<Credentials, Error> {
        // The device authorization request may use a kept discovery answer.
        let (resolved, pkce, authorization) = self
            .ctx
            .with_config(LOGIN_FIELDS, |cfg| self.authorize(cfg))
            .await?;
        let prompt = DevicePrompt::new(
            self.endpoint().key().to_owned(),
            authorization.verification_uri.clone(),
            authorization.verification_uri_complete.clone(),
            authorization.user_code.clone(),
            authorization.lifetime(),
        );
        tracing::debug!(
            endpoint = %self.ctx.endpoint(),
            url = prompt.url(),
            "waiting for the user to approve the device login"
        );
        (self.prompt)(&prompt);
        let token = self.poll(&resolved, &authorization, pkce.as_ref()).await?;
        tracing::info!(endpoint = %self.ctx.endpoint(), "device login approved");
        Ok(self.ctx.credentials(token))
    }

    /// Polls the token endpoint until an answer ends the login or the deadline passes.
    async fn poll(
        &self,
        resolved: &Resolved,
        authorization: &DeviceAuthorization,
        pkce: Option<&Pkce>,
    ) -> Result<TokenResponse, Error> {
        let timer = &self.polling.timer;
        let started = timer.now();
        let mut interval = authorization
            .server_interval()
            .unwrap_or(self.polling.default_interval);
        // Why polling stops without an answer: whichever deadline comes first.
        let (limit, why) = match authorization.lifetime() {
            Some(lifetime) if lifetime <= self.polling.timeout => (
                lifetime,
                "the code expired before the login was approved (start the login again)",
            ),
            _ => (
                self.polling.timeout,
                "the login was not approved within the configured time (deviceFlowConfig.timeout)",
            ),
        };
        // `None`: a timeout so long that no clock reaches it.
        let deadline = started.checked_add(limit);
        let token_request = |token_endpoint: String| {
            let request = TokenRequest::device_code(
                token_endpoint,
                resolved.client.clone(),
                authorization.device_code.clone(),
            );
            match pkce {
                Some(pkce) => request.with_code_verifier(pkce.verifier().clone()),
                None => request,
            }
        };
        let mut request = token_request(resolved.token_endpoint.clone());
        // The wait after a failed poll; `None` while the server answers.
        let mut backoff: Option<Duration> = None;
        let mut last_failure: Option<Error> = None;
        let mut polls: u32 = 0;
        let mut rediscovered = false;
        loop {
            let wait = backoff.unwrap_or(interval);
            let now = timer.now();
            if let Some(deadline) = deadline
                && now.checked_add(wait).is_none_or(|next| next >= deadline)
            {
                timer.sleep(deadline.saturating_duration_since(now)).await;
                return Err(self.deadline_error(why, limit, last_failure.as_ref()));
            }
            timer.sleep(wait).await;
            polls += 1;
            match self.ctx.http().token(&request).await {
                Ok(token) => return Ok(token),
                Err(e) => {
                    let code = e.oauth().map(|o| &o.code);
                    match code {
                        // A kept discovery answer's token endpoint is gone: poll the
                        // server's current one with the same device code.
                        None if !rediscovered
                            && let Some(cfg) =
                                self.ctx.rediscover_after(LOGIN_FIELDS, &e).await =>
                        {
                            rediscovered = true;
                            request = token_request(cfg.token_endpoint);
                        }
                        Some(OAuthErrorCode::AuthorizationPending) => {
                            tracing::debug!(polls, "device login: authorization pending");
                            backoff = None;
                            last_failure = None;
                        }
                        Some(OAuthErrorCode::SlowDown) => {
                            interval = interval.saturating_add(SLOW_DOWN_INCREMENT);
                            tracing::debug!(
                                polls,
                                interval_secs = interval.as_secs(),
                                "device login: the server asked to slow down"
                            );
                            backoff = None;
                            last_failure = None;
                        }
                        _ if e.is_transient() => {
                            let next = backoff
                                .unwrap_or(interval)
                                .saturating_mul(2)
                                .min(MAX_ERROR_BACKOFF.max(interval));
                            tracing::warn!(
                                polls,
                                error = %e,
                                retry_in_secs = next.as_secs(),
                                "device login: polling the token endpoint failed; trying again"
                            );
                            backoff = Some(next);
                            last_failure = Some(e);
                        }
                        _ => {
                            tracing::debug!(polls, error = %e, "device login ended");
                            return Err(e);
                        }
                    }
                }
            }
        }
    }

    fn deadline_error(&self, why: &str, after: Duration, last: Option<&Error>) -> Error {
        let mut operation = format!("the device login to {}: {why}; waiting", self.endpoint());
        if let Some(e) = last {
            operation = format!("{operation} (the last poll failed: {e})");
        }
        Error::LoginTimeout { operation, after }
    }

    async fn run_refresh(&self, current: &Credentials) -> Result<Credentials, Error> {
        let Some(refresh_token) = current.refresh_token.clone() else {
            return Err(Error::AccessTokenNotFound {
                reason: "no refresh token is stored".into(),
            });
        };
        // The refresh grant is safe to repeat: a kept discovery answer may be used.
        let token = self
            .ctx
            .with_config(REFRESH_FIELDS, |cfg| {
                let resolved = self.resolved(cfg);
                let request = TokenRequest::refresh_token(
                    resolved.token_endpoint,
                    resolved.client,
                    refresh_token.clone(),
                )
                .with_scopes(resolved.scopes)
                .with_optional_audience(resolved.audience)
                .with_params(self.extra.iter().cloned());
                async move { self.ctx.http().token(&request).await }
            })
            .await?;
        Ok(self.ctx.credentials(token))
    }
}

impl TokenFlow for DeviceCodeFlow {
    fn endpoint(&self) -> &Endpoint {
        self.ctx.endpoint()
    }

    fn login(&self) -> BoxFuture<'_, Result<Credentials, Error>> {
        let cancelled = self.cancel.cancelled();
        Box::pin(async move {
            match select(std::pin::pin!(cancelled), std::pin::pin!(self.run_login())).await {
                Either::Left(((), _)) => {
                    tracing::info!(endpoint = %self.ctx.endpoint(), "device login cancelled");
                    Err(Error::Cancelled)
                }
                Either::Right((result, _)) => result,
            }
        })
    }

    fn refresh<'a>(
        &'a self,
        current: &'a Credentials,
    ) -> Option<BoxFuture<'a, Result<Credentials, Error>>> {
        Some(Box::pin(self.run_refresh(current)))
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

//! [`DeviceCodeFlow`]: the device authorization grant (RFC 8628) and the refresh grant as a
//! [`TokenFlow`].

use std::{
    fmt,
    sync::{Arc, OnceLock},
    time::Duration,
};

use flyte_auth_core::{
    BoxFuture, ClientConfig, ClientConfigStore, Credentials, Error, OAuthErrorCode, SecretString,
    TokenFlow, redact_url,
};
use flyte_auth_oauth::{
    ClientAuth, DeviceAuthorization, DeviceAuthorizationRequest, OAuthClient, TokenRequest,
    TokenResponse,
};
use futures_util::future::{Either, select};
use http::HeaderName;
use tokio::sync::OnceCell;

use crate::{CancelHandle, Clock, DevicePrompt, PromptCallback};

/// How long a device login waits for the user at most, unless configured otherwise
/// (flytectl's `deviceFlowConfig.timeout`).
pub const DEFAULT_LOGIN_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// How much every `slow_down` answer adds to the poll interval (RFC 8628 §3.5).
pub const SLOW_DOWN_INCREMENT: Duration = Duration::from_secs(5);

/// The longest wait between two polls while the token endpoint cannot be reached or answers
/// 5xx (unless the server's own interval is longer).
pub const MAX_ERROR_BACKOFF: Duration = Duration::from_secs(60);

/// Settings given explicitly, which win over the client config.
#[derive(Clone, Default)]
pub(crate) struct Overrides {
    pub(crate) client_id: Option<String>,
    pub(crate) client_secret: Option<SecretString>,
    pub(crate) token_endpoint: Option<String>,
    pub(crate) device_authorization_endpoint: Option<String>,
    pub(crate) header_key: Option<HeaderName>,
    pub(crate) scopes: Option<Vec<String>>,
    pub(crate) audience: Option<String>,
    pub(crate) extra: Vec<(String, String)>,
}

impl Overrides {
    /// Whether the client config has nothing left to add.
    pub(crate) fn complete(&self) -> bool {
        self.client_id.is_some()
            && self.token_endpoint.is_some()
            && self.device_authorization_endpoint.is_some()
            && self.header_key.is_some()
            && self.scopes.is_some()
            && self.audience.is_some()
    }
}

/// How the poll loop waits.
#[derive(Clone)]
pub(crate) struct Polling {
    pub(crate) default_interval: Duration,
    pub(crate) timeout: Duration,
    pub(crate) clock: Arc<dyn Clock>,
}

/// The device code login and the refresh grant as a [`TokenFlow`]: what
/// [`DeviceCodeAuthenticator`](crate::DeviceCodeAuthenticator) wraps. Build one with
/// [`DeviceCodeAuthenticatorBuilder::build_flow`](crate::DeviceCodeAuthenticatorBuilder::build_flow)
/// to put it in a [`CachingAuthenticator`](flyte_auth_core::CachingAuthenticator) of your own.
///
/// - [`login`](TokenFlow::login): asks the device authorization endpoint for a code, shows
///   the [`DevicePrompt`], and polls the token endpoint until the user approves, refuses, the
///   code expires or the login times out (see the crate documentation for the schedule).
/// - [`refresh`](TokenFlow::refresh): the refresh grant with `client_id`, `scope` and
///   `audience`, like flytekit.
///
/// The client config is read from the [`ClientConfigStore`] on first use and kept.
pub struct DeviceCodeFlow {
    pub(crate) endpoint: String,
    pub(crate) cfg_store: Option<Arc<dyn ClientConfigStore>>,
    pub(crate) overrides: Overrides,
    pub(crate) http: OAuthClient,
    pub(crate) polling: Polling,
    pub(crate) prompt: PromptCallback,
    pub(crate) cancel: CancelHandle,
    pub(crate) config: OnceCell<ClientConfig>,
    pub(crate) discovered_header: OnceLock<HeaderName>,
}

impl fmt::Debug for DeviceCodeFlow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceCodeFlow")
            .field("endpoint", &self.endpoint)
            .field("cfg_store", &self.cfg_store)
            .field("client_id", &self.client_id())
            .field("confidential", &self.overrides.client_secret.is_some())
            .field(
                "token_endpoint",
                &self.overrides.token_endpoint.as_deref().map(redact_url),
            )
            .field(
                "device_authorization_endpoint",
                &self
                    .overrides
                    .device_authorization_endpoint
                    .as_deref()
                    .map(redact_url),
            )
            .field("header_key", &self.overrides.header_key)
            .field("scopes", &self.overrides.scopes)
            .field("audience", &self.overrides.audience)
            .field("poll_interval", &self.polling.default_interval)
            .field("timeout", &self.polling.timeout)
            .field("client_config_read", &self.config.initialized())
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
}

/// Why polling stopped without an answer.
enum Deadline {
    /// The device code's `expires_in` passed.
    CodeExpired,
    /// The configured login timeout passed.
    LoginTimeout,
}

impl DeviceCodeFlow {
    /// The HTTP client.
    pub fn http_client(&self) -> &OAuthClient {
        &self.http
    }

    /// A handle that cancels the device logins running when it is used.
    pub fn cancel_handle(&self) -> CancelHandle {
        self.cancel.clone()
    }

    /// Reads the client config (once; kept afterwards) and checks that the device flow can be
    /// used: a client id, a token endpoint and a device authorization endpoint are known.
    ///
    /// flytekit's constructor does this; here creating the flow touches no network, so call
    /// this to fail early (for example at program start rather than at the first request).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming what is missing; whatever reading the client config fails
    /// with.
    pub async fn check_server(&self) -> Result<(), Error> {
        let resolved = self.resolve().await?;
        self.device_endpoint(&resolved).map(|_| ())
    }

    async fn client_config(&self) -> Result<Option<&ClientConfig>, Error> {
        let Some(store) = &self.cfg_store else {
            return Ok(None);
        };
        if self.overrides.complete() {
            return Ok(None);
        }
        let config = self
            .config
            .get_or_try_init(|| store.get_client_config())
            .await?;
        if self.overrides.header_key.is_none() && self.discovered_header.get().is_none() {
            let header = crate::parse_header(&config.header_key)?;
            let _ = self.discovered_header.set(header);
        }
        Ok(Some(config))
    }

    async fn resolve(&self) -> Result<Resolved, Error> {
        let cfg = self.client_config().await?;
        let o = &self.overrides;
        let pick = |given: &Option<String>, from_cfg: Option<&str>| {
            given
                .clone()
                .or_else(|| from_cfg.map(str::to_owned))
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
        };
        let client_id = pick(&o.client_id, cfg.map(|c| c.client_id.as_str())).ok_or_else(|| {
            Error::config(format!(
                "no OAuth client id for the device login to {}: the server's client config names \
                 none; set clientId",
                self.endpoint
            ))
        })?;
        let token_endpoint = pick(&o.token_endpoint, cfg.map(|c| c.token_endpoint.as_str()))
            .ok_or_else(|| {
                Error::config(format!(
                    "no token endpoint for {}: the server's client config names none; set tokenUrl",
                    self.endpoint
                ))
            })?;
        let device_authorization_endpoint = pick(
            &o.device_authorization_endpoint,
            cfg.and_then(|c| c.device_authorization_endpoint.as_deref()),
        );
        let client = match &o.client_secret {
            Some(secret) => ClientAuth::confidential(client_id, secret.clone()),
            None => ClientAuth::public(client_id),
        };
        let scopes = o
            .scopes
            .clone()
            .or_else(|| cfg.map(|c| c.scopes.clone()))
            .unwrap_or_default();
        let audience = o
            .audience
            .clone()
            .or_else(|| cfg.and_then(|c| c.audience.clone()));
        Ok(Resolved {
            token_endpoint,
            device_authorization_endpoint,
            client,
            scopes,
            audience,
        })
    }

    fn device_endpoint<'a>(&self, resolved: &'a Resolved) -> Result<&'a str, Error> {
        resolved
            .device_authorization_endpoint
            .as_deref()
            .ok_or_else(|| {
                Error::config(format!(
                    "the authorization server of {} offers no device authorization endpoint \
                     (device_authorization_endpoint), so the device flow (authType: DeviceFlow) \
                     cannot be used with it: enable the device grant at the identity provider, \
                     or use authType Pkce or ClientSecret",
                    self.endpoint
                ))
            })
    }

    async fn run_login(&self) -> Result<Credentials, Error> {
        let resolved = self.resolve().await?;
        let device_endpoint = self.device_endpoint(&resolved)?;
        let request = DeviceAuthorizationRequest::new(device_endpoint, resolved.client.clone())
            .with_scopes(resolved.scopes.clone())
            .with_optional_audience(resolved.audience.clone())
            .with_params(self.overrides.extra.iter().cloned());
        tracing::debug!(
            endpoint = %self.endpoint,
            client_id = resolved.client.client_id(),
            "requesting a device code"
        );
        let authorization = self.http.device_authorization(&request).await?;
        let prompt = DevicePrompt::new(
            self.endpoint.clone(),
            authorization.verification_uri.clone(),
            authorization.verification_uri_complete.clone(),
            authorization.user_code.clone(),
            authorization.lifetime(),
        );
        tracing::debug!(
            endpoint = %self.endpoint,
            url = prompt.url(),
            "waiting for the user to approve the device login"
        );
        (self.prompt)(&prompt);
        let token = self.poll(&resolved, &authorization).await?;
        tracing::info!(endpoint = %self.endpoint, "device login approved");
        Ok(token
            .into_credentials(self.endpoint.clone())
            .with_client_id(resolved.client.client_id()))
    }

    /// Polls the token endpoint until an answer ends the login or the deadline passes.
    async fn poll(
        &self,
        resolved: &Resolved,
        authorization: &DeviceAuthorization,
    ) -> Result<TokenResponse, Error> {
        let clock = &self.polling.clock;
        let started = clock.now();
        let mut interval = authorization
            .interval
            .filter(|&secs| secs > 0)
            .map(Duration::from_secs)
            .unwrap_or(self.polling.default_interval);
        let (limit, why) = match authorization.lifetime() {
            Some(lifetime) if lifetime <= self.polling.timeout => (lifetime, Deadline::CodeExpired),
            _ => (self.polling.timeout, Deadline::LoginTimeout),
        };
        let deadline = started + limit;
        let request = TokenRequest::device_code(
            resolved.token_endpoint.clone(),
            resolved.client.clone(),
            authorization.device_code.clone(),
        );
        // The wait after a failed poll; `None` while the server answers.
        let mut backoff: Option<Duration> = None;
        let mut last_failure: Option<Error> = None;
        let mut polls: u32 = 0;
        loop {
            let wait = backoff.unwrap_or(interval);
            let now = clock.now();
            if now + wait >= deadline {
                clock.sleep(deadline.saturating_duration_since(now)).await;
                return Err(self.deadline_error(why, limit, last_failure.as_ref()));
            }
            clock.sleep(wait).await;
            polls += 1;
            match self.http.token(&request).await {
                Ok(token) => return Ok(token),
                Err(e) => {
                    let code = e.oauth().map(|o| &o.code);
                    match code {
                        Some(OAuthErrorCode::AuthorizationPending) => {
                            tracing::debug!(polls, "device login: authorization pending");
                            backoff = None;
                            last_failure = None;
                        }
                        Some(OAuthErrorCode::SlowDown) => {
                            interval += SLOW_DOWN_INCREMENT;
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

    fn deadline_error(&self, why: Deadline, after: Duration, last: Option<&Error>) -> Error {
        let mut operation = match why {
            Deadline::CodeExpired => format!(
                "the device login to {}: the code expired before the login was approved (start \
                 the login again); waiting",
                self.endpoint
            ),
            Deadline::LoginTimeout => format!(
                "the device login to {}: the login was not approved within the configured time \
                 (deviceFlowConfig.timeout); waiting",
                self.endpoint
            ),
        };
        if let Some(e) = last {
            operation = format!("{operation} (the last poll failed: {e})");
        }
        Error::LoginTimeout { operation, after }
    }

    async fn run_refresh(&self, current: &Credentials) -> Result<Credentials, Error> {
        let refresh_token =
            current
                .refresh_token
                .clone()
                .ok_or_else(|| Error::AccessTokenNotFound {
                    reason: "no refresh token is stored".into(),
                })?;
        let resolved = self.resolve().await?;
        let request = TokenRequest::refresh_token(
            resolved.token_endpoint,
            resolved.client.clone(),
            refresh_token,
        )
        .with_scopes(resolved.scopes)
        .with_optional_audience(resolved.audience)
        .with_params(self.overrides.extra.iter().cloned());
        let token = self.http.token(&request).await?;
        Ok(token
            .into_credentials(self.endpoint.clone())
            .with_client_id(resolved.client.client_id()))
    }
}

impl TokenFlow for DeviceCodeFlow {
    fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn login(&self) -> BoxFuture<'_, Result<Credentials, Error>> {
        let cancelled = self.cancel.cancelled();
        Box::pin(async move {
            match select(std::pin::pin!(cancelled), std::pin::pin!(self.run_login())).await {
                Either::Left(((), _)) => {
                    tracing::info!(endpoint = %self.endpoint, "device login cancelled");
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
        self.overrides
            .client_id
            .clone()
            .or_else(|| self.config.get().map(|c| c.client_id.clone()))
            .filter(|id| !id.is_empty())
    }

    fn header_name(&self) -> Option<HeaderName> {
        self.overrides
            .header_key
            .clone()
            .or_else(|| self.discovered_header.get().cloned())
    }
}

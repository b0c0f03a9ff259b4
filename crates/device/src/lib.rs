//! Flyte's device code authenticator: log in on a machine where no browser can reach a
//! loopback port (an SSH session, a notebook, a container), by approving a code on any other
//! device (OAuth 2.0 device authorization grant, RFC 8628).
//!
//! [`DeviceCodeAuthenticator`] is flytekit's `DeviceCodeAuthenticator`: it starts from stored
//! credentials, redeems the refresh token when they are due, and runs the device login only
//! when there is no refresh token or the server rejects it. Caching, refreshing before
//! expiry, single-flight and persistence are [`flyte_auth_core::CachingAuthenticator`]'s; this
//! crate says how to obtain tokens ([`DeviceCodeFlow`]).
//!
//! The login's steps, the poll schedule (`interval`, `slow_down`, the back-off on transient
//! failures) and what ends a login are the crate README's *Polling* table. Creating a flow
//! touches no network; [`DeviceCodeFlow::check_server`] fails early when the server has no
//! device flow.
//!
//! ```no_run
//! # async fn run() -> Result<(), flyte_auth_core::Error> {
//! use std::sync::Arc;
//! use flyte_auth_core::{Authenticator, CachingAuthenticator, Endpoint, MemoryStore};
//! use flyte_auth_device::DeviceCodeFlow;
//! use flyte_auth_oauth::ClientContext;
//!
//! let ctx = ClientContext::builder(Endpoint::parse("dns:///flyte.example.org")?).build()?;
//! let auth = CachingAuthenticator::builder(DeviceCodeFlow::builder(ctx).build()?)
//!     .store(Arc::new(MemoryStore::new())) // a keyring or file store in real programs
//!     .build();
//! auth.flow().check_server().await?; // optional: fail now if the server has no device flow
//! let header = auth.auth_header().await?; // prints the URL and code on stderr, waits
//! # let _ = header; Ok(()) }
//! ```

mod cancel;
mod flow;
mod prompt;
mod timer;

use std::{fmt, sync::Arc, time::Duration};

use flyte_auth_core::{CachingAuthenticator, SecretString};
use flyte_auth_oauth::ClientContext;
pub use flyte_auth_oauth::DEFAULT_DEVICE_POLL_INTERVAL;

pub use cancel::CancelHandle;
pub use flow::{DEFAULT_LOGIN_TIMEOUT, DeviceCodeFlow, MAX_ERROR_BACKOFF, SLOW_DOWN_INCREMENT};
pub use prompt::{DevicePrompt, PromptCallback, prompt_on_stderr};
pub use timer::{PollTimer, TokioTimer};

use flow::Polling;

/// Logs in with the device flow: flytekit's `DeviceCodeAuthenticator`, the shared
/// [`CachingAuthenticator`] around a [`DeviceCodeFlow`].
pub type DeviceCodeAuthenticator = CachingAuthenticator<DeviceCodeFlow>;

impl DeviceCodeFlow {
    /// Starts a device flow in `ctx`: its client id, endpoints, scopes, audience and header
    /// come from there (the configuration's overrides over the server's discovery).
    ///
    /// ```
    /// use std::time::Duration;
    /// use flyte_auth_core::{CachingAuthenticator, Endpoint, MemoryStore};
    /// use flyte_auth_device::{DeviceCodeAuthenticator, DeviceCodeFlow};
    /// use flyte_auth_oauth::{ClientContext, Overrides};
    ///
    /// let ctx = ClientContext::builder(Endpoint::parse("flyte.example.org")?)
    ///     .overrides(Overrides::new().scopes(["openid", "offline_access", "all"]))
    ///     .build()?;
    /// let flow = DeviceCodeFlow::builder(ctx)
    ///     .poll_interval(Duration::from_secs(5))
    ///     .timeout(Duration::from_secs(300))
    ///     .prompt(|p| eprintln!("Open {} and confirm the code {}", p.url(), p.user_code))
    ///     .build()?;
    /// let auth: DeviceCodeAuthenticator = CachingAuthenticator::builder(flow)
    ///     .store(std::sync::Arc::new(MemoryStore::new()))
    ///     .build();
    /// # let _ = auth;
    /// # Ok::<(), flyte_auth_core::Error>(())
    /// ```
    pub fn builder(ctx: ClientContext) -> DeviceCodeFlowBuilder {
        DeviceCodeFlowBuilder {
            ctx,
            client_secret: None,
            extra: Vec::new(),
            pkce: None,
            poll_interval: None,
            timeout: None,
            prompt: None,
            timer: None,
        }
    }
}

/// Builds a [`DeviceCodeFlow`]; see [`DeviceCodeFlow::builder`].
#[must_use]
pub struct DeviceCodeFlowBuilder {
    ctx: ClientContext,
    client_secret: Option<SecretString>,
    extra: Vec<(String, String)>,
    pkce: Option<bool>,
    poll_interval: Option<Duration>,
    timeout: Option<Duration>,
    prompt: Option<PromptCallback>,
    timer: Option<Arc<dyn PollTimer>>,
}

impl fmt::Debug for DeviceCodeFlowBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceCodeFlowBuilder")
            .field("ctx", &self.ctx)
            .field("client_secret", &self.client_secret)
            .field("pkce", &self.pkce)
            .field("poll_interval", &self.poll_interval)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl DeviceCodeFlowBuilder {
    /// A client secret, for identity providers that register the device client as
    /// confidential (sent with HTTP Basic). Public clients, the usual case, have none.
    pub fn client_secret(mut self, secret: impl Into<SecretString>) -> Self {
        let secret = secret.into();
        self.client_secret = (!secret.is_empty()).then_some(secret);
        self
    }

    /// Adds a form parameter to the device authorization and refresh requests (some identity
    /// providers want `resource` or similar).
    pub fn param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.extra.push((name.into(), value.into()));
        self
    }

    /// Whether the device login proves itself with PKCE (RFC 7636 S256): a `code_challenge`
    /// on the device authorization request and its `code_verifier` on every poll.
    ///
    /// By default a challenge is sent when the server's metadata lists `S256` in
    /// `code_challenge_methods_supported`, so a provider that requires PKCE of public clients
    /// (Keycloak's "PKCE required") accepts the device login. `true` sends one to a server
    /// that requires it without announcing it; `false` never sends one.
    pub fn pkce(mut self, pkce: bool) -> Self {
        self.pkce = Some(pkce);
        self
    }

    /// How often to poll when the server does not say (Flyte's
    /// `deviceFlowConfig.pollInterval`; [`DEFAULT_DEVICE_POLL_INTERVAL`] by default). The
    /// server's `interval`, when sent, wins.
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = Some(interval);
        self
    }

    /// How long a device login waits for the user at most (Flyte's
    /// `deviceFlowConfig.timeout`; [`DEFAULT_LOGIN_TIMEOUT`] by default). The code's own
    /// expiry ends the login earlier when it comes first.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Shows the prompt the user's way instead of writing it to stderr
    /// ([`prompt_on_stderr`]).
    pub fn prompt(mut self, callback: impl Fn(&DevicePrompt) + Send + Sync + 'static) -> Self {
        self.prompt = Some(Arc::new(callback));
        self
    }

    /// The time source of the poll loop ([`TokioTimer`] by default); for tests.
    pub fn poll_timer(mut self, timer: Arc<dyn PollTimer>) -> Self {
        self.timer = Some(timer);
        self
    }

    /// The flow. Touches neither the network nor a store.
    ///
    /// # Errors
    ///
    /// [`Error::Config`](flyte_auth_core::Error::Config) when the timeout or the poll interval
    /// is zero.
    pub fn build(self) -> Result<DeviceCodeFlow, flyte_auth_core::Error> {
        let timeout = self.timeout.unwrap_or(DEFAULT_LOGIN_TIMEOUT);
        if timeout.is_zero() {
            return Err(flyte_auth_core::Error::config(
                "deviceFlowConfig.timeout is zero: the device login could never be approved",
            ));
        }
        let default_interval = self.poll_interval.unwrap_or(DEFAULT_DEVICE_POLL_INTERVAL);
        if default_interval.is_zero() {
            return Err(flyte_auth_core::Error::config(
                "deviceFlowConfig.pollInterval is zero: the device flow would poll without pause",
            ));
        }
        Ok(DeviceCodeFlow {
            ctx: self.ctx,
            client_secret: self.client_secret,
            extra: self.extra,
            pkce: self.pkce,
            polling: Polling {
                default_interval,
                timeout,
                timer: self.timer.unwrap_or_else(|| Arc::new(TokioTimer)),
            },
            prompt: self.prompt.unwrap_or_else(|| Arc::new(prompt_on_stderr)),
            cancel: CancelHandle::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use flyte_auth_core::{Endpoint, Error};

    use super::*;

    fn builder() -> DeviceCodeFlowBuilder {
        let ctx = ClientContext::builder(Endpoint::parse("flyte.example.org").unwrap())
            .build()
            .unwrap();
        DeviceCodeFlow::builder(ctx)
    }

    #[test]
    fn a_zero_timeout_or_poll_interval_is_refused_naming_the_setting() {
        let err = builder().timeout(Duration::ZERO).build().unwrap_err();
        assert!(matches!(err, Error::Config { .. }), "{err:?}");
        assert!(
            err.to_string().contains("deviceFlowConfig.timeout"),
            "{err}"
        );
        let err = builder().poll_interval(Duration::ZERO).build().unwrap_err();
        assert!(
            err.to_string().contains("deviceFlowConfig.pollInterval"),
            "{err}"
        );
        builder()
            .poll_interval(Duration::from_millis(20))
            .build()
            .unwrap();
    }
}

/// The README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

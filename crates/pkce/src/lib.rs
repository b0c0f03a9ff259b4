//! Browser login for `flyte-auth`: the OAuth 2.0 authorization code flow with PKCE
//! (RFC 7636) and a loopback redirect (RFC 8252 §7.3), as `pyflyte` and `flytectl` do it.
//!
//! - [`PkceAuthenticator`]: flytekit's `PKCEAuthenticator`, core's `CachingAuthenticator`
//!   around [`PkceFlow`]: an [`Authenticator`](flyte_auth_core::Authenticator) with caching, refresh before expiry,
//!   single-flight (one browser window however many tasks ask at once) and persistence, from
//!   `flyte-auth-core`.
//! - [`AuthorizationClient`]: flytekit's `AuthorizationClient`, one login
//!   ([`get_creds_from_remote`](AuthorizationClient::get_creds_from_remote)) and the refresh
//!   grant ([`refresh_access_token`](AuthorizationClient::refresh_access_token)), usable alone.
//! - [`PkceFlow`]: the login as a core [`TokenFlow`](flyte_auth_core::TokenFlow).
//! - [`BrowserOpener`], [`LoginPrompt`]: how the browser is opened and the user told where to
//!   log in (the URL is always written to standard error unless you show it yourself).
//! - [`EndpointMetadata`]: the pages the browser shows at the end.
//!
//! # The login
//!
//! 1. The callback server listens on the redirect URI's host and port *before* the browser
//!    opens. Only loopback redirect URIs are accepted (`localhost`, 127.0.0.0/8, `[::1]`), with
//!    an explicit port; for `localhost` it listens on both 127.0.0.1 and ::1. A busy port is an
//!    error naming the port and the redirect URI.
//! 2. The authorization URL (`client_id`, `response_type=code`, `scope`, `redirect_uri`,
//!    `state`, a random OpenID Connect `nonce` when the scopes include `openid`, `audience`
//!    when set, `code_challenge`, `code_challenge_method=S256`) is shown and opened.
//! 3. The server answers every request until the callback carrying this login's `state`
//!    arrives, or the timeout (two minutes by default) passes: `/favicon.ico` and other paths
//!    get a 404; a callback with a missing or wrong `state` gets an error page and is
//!    otherwise ignored, so a stale tab or a forged request cannot end (or hijack) the login;
//!    `error=access_denied` ends it with [`Error::OAuth`](flyte_auth_core::Error::OAuth) and a
//!    page saying what happened.
//! 4. The code is exchanged with the PKCE verifier; an id token in the answer must carry the
//!    login's `nonce` when it carries one ([`NonceMismatch`] otherwise, and nothing is
//!    stored); only then does the browser page say whether the login succeeded. The server is closed whichever way the login ends.
//!
//! ```no_run
//! # async fn run() -> Result<(), flyte_auth_core::Error> {
//! use std::sync::Arc;
//! use flyte_auth_core::{
//!     Authenticator, CachingAuthenticator, ClientConfig, Endpoint, StaticClientConfigStore,
//! };
//! use flyte_auth_oauth::ClientContext;
//! use flyte_auth_pkce::PkceFlow;
//!
//! let config = ClientConfig::new("https://idp.example.org/oauth2/token", "flytectl")
//!     .with_authorization_endpoint("https://idp.example.org/oauth2/authorize")
//!     .with_redirect_uri("http://localhost:53593/callback")
//!     .with_scopes(["openid", "offline_access"]);
//! let ctx = ClientContext::builder(Endpoint::parse("flyte.example.org")?)
//!     .discovery(Arc::new(StaticClientConfigStore::new(config)))
//!     .build()?;
//! let auth = CachingAuthenticator::builder(PkceFlow::builder(ctx).build()?).build();
//! let credentials = auth.get_credentials().await?; // opens the browser once
//! # let _ = credentials; Ok(()) }
//! ```

mod browser;
mod challenge;
mod client;
mod flow;
mod pages;
mod redirect;
mod server;

use std::time::Duration;

pub use browser::{BrowserOpener, LoginEvent, LoginPrompt};
pub use client::{AuthorizationClient, AuthorizationClientBuilder, IssuerMismatch, NonceMismatch};
#[expect(deprecated, reason = "flytekit's name, kept as a deprecated alias")]
pub use flow::PKCEAuthenticator;
pub use flow::{PkceAuthenticator, PkceFlow, PkceFlowBuilder};
pub use pages::EndpointMetadata;

/// The core types this crate's API uses (`Authenticator`, `Credentials`, `Error`,
/// `ClientConfig`, `TokenStore`, `MemoryStore`, ...), re-exported so that a program using
/// this crate alone needs no matching version of `flyte-auth-core`.
pub use flyte_auth_core;
/// The protocol client this crate's API uses (`OAuthClient`, `HttpSettings`,
/// `RemoteClientConfigStore`, ...), re-exported for the same reason.
pub use flyte_auth_oauth;

/// The redirect URI used when the server's configuration names none: Flyte's default.
pub const DEFAULT_REDIRECT_URI: &str = "http://localhost:53593/callback";

/// How long the browser login waits for the browser to come back, unless told otherwise
/// (flytectl's `pkceConfig.timeout` default).
pub const DEFAULT_LOGIN_TIMEOUT: Duration = Duration::from_secs(120);

/// The README's examples, compiled as doc tests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

//! Browser login for `flyte-auth`: the OAuth 2.0 authorization code flow with PKCE
//! (RFC 7636) and a loopback redirect (RFC 8252 §7.3), as `pyflyte` and `flytectl` do it.
//!
//! - [`PkceAuthenticator`]: flytekit's `PKCEAuthenticator`, core's `CachingAuthenticator`
//!   around [`PkceFlow`] (one browser window however many tasks ask at once).
//! - [`AuthorizationClient`]: flytekit's `AuthorizationClient`, one login and the refresh
//!   grant, usable alone.
//! - [`BrowserOpener`], [`LoginPrompt`], [`EndpointMetadata`]: how the browser is opened, the
//!   user told where to log in, and what the browser shows at the end.
//!
//! What the authorization request carries, how the callback server answers (only the
//! callback with this login's `state` ends the login) and the `nonce` check are the crate
//! README's *What is sent* and *The callback server*.
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

//! Core of `flyte-auth`: the types every authentication flow shares and the one piece of
//! machinery they all use.
//!
//! - [`Credentials`], [`ClientConfig`], [`ClientConfigStore`]: the data of flytekit's
//!   `flytekit.clients.auth`, secrets in [`SecretString`]; [`Authenticator`], what callers use.
//! - [`TokenStore`]: where credentials persist; [`DiscoveryHints`]: the discovery flavour a
//!   server answered in, remembered.
//! - [`TokenFlow`] + [`CachingAuthenticator`]: a flow says *how to obtain* tokens; caching,
//!   refresh, single-flight, persistence and locking live here, once.
//!
//! No network code and no async runtime.
//!
//! ```
//! use std::sync::Arc;
//! use flyte_auth_core::{
//!     Authenticator, BoxFuture, CachingAuthenticator, Credentials, Endpoint, Error, TokenFlow,
//! };
//!
//! /// A flow that hands out a fixed token (a real flow calls a token endpoint).
//! #[derive(Debug)]
//! struct Fixed(Endpoint);
//!
//! impl TokenFlow for Fixed {
//!     fn endpoint(&self) -> &Endpoint {
//!         &self.0
//!     }
//!     fn login(&self) -> BoxFuture<'_, Result<Credentials, Error>> {
//!         Box::pin(async {
//!             Ok(Credentials::new("token", "flyte.example.org").with_expires_in(3600))
//!         })
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let flow = Fixed(Endpoint::parse("dns:///flyte.example.org")?);
//! let auth: Arc<dyn Authenticator> = Arc::new(CachingAuthenticator::builder(flow).build());
//! // Nothing is fetched yet: the hot path has no header to offer.
//! assert!(auth.fetch_grpc_call_auth_metadata().is_none());
//! auth.get_credentials().await?;
//! let header = auth.fetch_grpc_call_auth_metadata().expect("fresh credentials");
//! assert_eq!(header.name().as_str(), "authorization");
//! assert_eq!(header.value().to_str().unwrap(), "Bearer token");
//! # Ok::<(), Error>(())
//! # }).unwrap();
//! ```

mod authenticator;
mod cache;
mod config;
mod credentials;
mod discovery;
mod endpoint;
mod error;
pub mod owned;
mod redact;
mod secret;
mod store;
pub mod text;

pub use authenticator::{AuthHeader, Authenticator, BoxFuture};
pub use cache::{
    CachingAuthenticator, CachingAuthenticatorBuilder, Clock, DEFAULT_REFRESH_MARGIN, SystemClock,
    TokenFlow,
};
pub use config::{
    ClientConfig, ClientConfigStore, DEFAULT_HEADER_KEY, StaticClientConfigStore,
    parse_header_name, refuse_cleartext,
};
pub use credentials::{
    Credentials, DEFAULT_ENDPOINT, MAX_TOKEN_LIFETIME, UNKNOWN_EXPIRY_LIFETIME, jwt_claim, unix_now,
};
pub use discovery::{DiscoveryAnswer, DiscoveryFlavour, DiscoveryHints};
pub use endpoint::{Endpoint, is_loopback_host};
pub use error::{Error, OAuthError, OAuthErrorCode, StoreError};
pub use redact::redact_url;
pub use secret::SecretString;
pub use store::{MemoryStore, StoreLock, TokenStore};

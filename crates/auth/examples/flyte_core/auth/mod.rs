//! flyte_core's authentication (`rs_controller/src/auth/` in flyteorg/flyte-sdk) with the same
//! public names and shapes, written on flyte-auth (features `clientcreds` and `tower`) for
//! tonic 0.12.
//!
//! | flyte_core | here |
//! | --- | --- |
//! | `AuthConfig::new_from_api_key` (its own base64 decoder) | [`flyte_auth::ApiKey`] |
//! | `ClientCredentialsAuthenticator` (token client, expiry, locks) | flyte-auth's client-credentials authenticator, made on the first channel |
//! | discovery: `AuthMetadataService` over the channel | [`flyte_auth::GrpcDiscovery`] on the same channel |
//! | `AuthLayer::new(auth, channel)`, `AuthService<S>` | [`flyte_auth::AuthLayer`], eager, replaying unary calls |
//!
//! What changes for callers: a call is sent with the token in the header the server names
//! (not always `authorization`); a call the server rejects with `UNAUTHENTICATED` is sent
//! again with a new token (not failed, with a refresh for the next one); when no token can be
//! had the call is answered `UNAUTHENTICATED` with the identity provider's reason instead of
//! being sent without a token; many concurrent calls share one token request; `Debug` shows
//! no secret and no token; no log line carries a header value.
#![allow(
    unreachable_pub,
    dead_code,
    unused_imports,
    reason = "flyte_core's public auth API, in an example binary and its tests"
)]

mod client_credentials;
mod config;
mod errors;
mod middleware;

pub use client_credentials::{ClientCredentialsAuthenticator, Credentials};
pub use config::AuthConfig;
pub use errors::{AuthConfigError, TokenError};
pub use middleware::{AuthLayer, AuthService};

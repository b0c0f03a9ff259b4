//! `flyte-auth`: obtain, cache and refresh the token a Rust program sends to a Flyte server,
//! configured the way pyflyte and flytectl are.
//!
//! The umbrella crate: every item of [`flyte_auth_core`] at the top level; [`config`]
//! ([`PlatformConfig`]: `~/.flyte/config.yaml` overridden by `FLYTE_*`); each flow, the OAuth
//! client and the stores as modules behind their features; [`get_authenticator`] (the
//! authenticator the config asks for, as flytekit builds it), [`AuthenticatorRegistry`] for
//! auth types of the program's own, [`proxy_authenticator`]; [`logout`]; and the
//! integrations `AuthLayer` (`tower`) and `AuthenticatedClient` (`reqwest`).
//!
//! ```
//! use flyte_auth::{AuthMode, PlatformConfig};
//!
//! // FLYTE_* variables override the file; here the environment is given explicitly.
//! let cfg = PlatformConfig::builder()
//!     .no_config_file()
//!     .env(|name| match name {
//!         "FLYTE_PLATFORM_URL" => Some("dns:///flyte.example.org:443".into()),
//!         "FLYTE_CREDENTIALS_AUTH_MODE" => Some("external_process".into()),
//!         "FLYTE_CREDENTIALS_COMMAND" => Some("gcloud,auth,print-identity-token".into()),
//!         _ => None,
//!     })
//!     .build()?;
//! cfg.validate()?;
//! assert_eq!(cfg.auth_mode(), AuthMode::ExternalCommand);
//! assert_eq!(cfg.command(), ["gcloud", "auth", "print-identity-token"]);
//! assert_eq!(cfg.endpoint().key(), "flyte.example.org"); // the store key: no `dns:///`, no default port
//! # Ok::<(), flyte_auth::Error>(())
//! ```
//!
//! ## Features
//!
//! The flows and stores are on by default, the integrations off; pick what a program needs with
//! `default-features = false`.
//!
//! | feature | what it adds |
//! | --- | --- |
//! | `config` | reading the platform config from outside the program: the YAML and INI config files, the `FLYTE_*` environment, API keys in the environment, a task pod's `_U_*` variables (`PlatformConfig::load`) |
//! | `pkce` | browser login, authorization code with PKCE: `flyte_auth::pkce` |
//! | `device` | device authorization grant (RFC 8628): `flyte_auth::device` |
//! | `clientcreds` | client credentials grant for services: `flyte_auth::clientcreds` |
//! | `command` | a command prints the token (also for `proxy-authorization`): `flyte_auth::command` |
//! | `google` | Google ID tokens for the identity-aware proxy (a service-account key, the metadata server, gcloud's login), not on by default: `flyte_auth::google` |
//! | `keyring` | token store in the OS keyring, pyflyte's layout: `flyte_auth::store` |
//! | `file` | token store in a 0600 file per endpoint: `flyte_auth::store` |
//! | `tower` | `AuthLayer`: the token on the requests of a tower service (a `tonic` 0.12 or 0.14 channel), lazily; a new one and a replay of unary calls after `UNAUTHENTICATED` / 401: `flyte_auth::tower`. The `Passthrough` auth type and the server layer capturing the caller's credentials: `flyte_auth::passthrough` |
//! | `reqwest` | `AuthenticatedClient`: the token on every `reqwest` request, a new one and one replay after a 401: `flyte_auth::reqwest` |
//!
//! [`get_authenticator`] is always there: an auth type whose flow's feature is off is an
//! [`Error::Config`] naming the feature.
//!
//! `pkce`, `device`, `clientcreds` and `google` also re-export the OAuth client they share
//! (`flyte-auth-oauth`) as `flyte_auth::oauth`.
//!
//! Without `config`, a [`PlatformConfig`] is built from explicit values only
//! ([`PlatformConfig::builder`], [`PlatformConfig::for_endpoint`]; an API key with
//! [`ApiKey`] or [`config::PlatformConfigBuilder::api_key`]), and no YAML parser (`serde-saphyr`)
//! and no `dirs` is built: `--no-default-features --features clientcreds,tower` is a
//! controller's client-credentials authenticator and nothing more. `config` itself is no HTTP
//! or TLS stack: `--no-default-features --features config,command` reads the config file and
//! pulls in no HTTP stack, no TLS stack and no async executor.

pub mod config;
mod factory;
#[cfg(feature = "tower")]
pub mod grpc_discovery;
mod logout;
#[cfg(feature = "tower")]
pub mod passthrough;
mod registry;
#[cfg(any(feature = "tower", feature = "reqwest"))]
mod rejected;
#[cfg(feature = "reqwest")]
pub mod reqwest;
#[cfg(feature = "tower")]
mod response_body;
#[cfg(feature = "tower")]
pub mod tower;

#[cfg(feature = "tower")]
pub use crate::grpc_discovery::GrpcDiscovery;
#[cfg(feature = "tower")]
pub use crate::passthrough::Passthrough;
#[cfg(feature = "reqwest")]
pub use crate::reqwest::AuthenticatedClient;
#[cfg(feature = "tower")]
pub use crate::tower::{AuthLayer, AuthService};
pub use config::{
    ApiKey, ApiKeyError, ApiKeyInUse, AuthMode, ConfigSources, PlatformConfig, SkipReason,
    SkippedFile,
};
pub use factory::{
    FactoryOptions, get_authenticator, get_authenticator_with, google_proxy_entry,
    proxy_authenticator, proxy_authenticator_with, proxy_authenticator_with_store,
};
pub use flyte_auth_core::*;
pub use logout::{GoogleProxyToken, Logout, Revocation, logout, logout_with, revoke_stored_login};
pub use registry::{AuthenticatorFactory, AuthenticatorRegistry, register_authenticator};

#[cfg(feature = "clientcreds")]
pub use flyte_auth_clientcreds as clientcreds;
#[cfg(feature = "command")]
pub use flyte_auth_command as command;
#[cfg(feature = "device")]
pub use flyte_auth_device as device;
#[cfg(feature = "google")]
pub use flyte_auth_google as google;
#[cfg(any(
    feature = "pkce",
    feature = "device",
    feature = "clientcreds",
    feature = "google"
))]
pub use flyte_auth_oauth as oauth;
#[cfg(feature = "pkce")]
pub use flyte_auth_pkce as pkce;
#[cfg(any(feature = "keyring", feature = "file"))]
pub use flyte_auth_store as store;

/// The examples of README.md, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

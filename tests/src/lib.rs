//! End-to-end test harness for flyte-auth: a real OAuth 2.0 / OpenID Connect server and a
//! scripted user.
//!
//! [`Idp`] starts the local OpenID provider of `tests/idp` (the certified `oidc-provider`
//! Node.js package, configured like a Flyte deployment) on an ephemeral loopback port, waits
//! until it answers, and kills it when dropped. It serves, on one origin:
//!
//! - the OAuth endpoints (`/auth`, `/token`, `/device/auth`, `/device`, ...),
//! - Flyte's discovery documents (`/.well-known/oauth-authorization-server`,
//!   `/config/v1/flyte_client`), as flyteadmin does; or, with [`IdpBuilder::flyte2`], as a
//!   Flyte 2 backend: the ConnectRPC `flyteidl2.auth.AuthMetadataService` (JSON and binary
//!   protobuf codecs) and no `/config/v1/flyte_client`,
//! - test endpoints: request counters by grant type, a record of every request with its
//!   `proxy-authorization` header ([`Stats::requests`]) and fault injection on the token
//!   endpoint.
//!
//! [`Browser`] stands in for the person at the keyboard: it logs in, gives or refuses
//! consent, and enters device codes, then follows the last redirect to the loopback callback
//! of the client under test exactly as a browser would.
//!
//! The registered clients are described by [`FLYTECTL`], [`BASIC_CLIENT`], [`POST_CLIENT`]
//! and [`COLON_ID_CLIENT`].
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//! use flyte_auth_tests::{Idp, BASIC_CLIENT};
//!
//! # async fn demo() {
//! let idp = Idp::builder()
//!     .access_token_ttl(Duration::from_secs(5))
//!     .start()
//!     .await;
//! let response = reqwest::Client::new()
//!     .post(idp.token_endpoint())
//!     .basic_auth(BASIC_CLIENT.form_encoded_id(), Some(BASIC_CLIENT.form_encoded_secret()))
//!     .form(&[("grant_type", "client_credentials"), ("scope", "all")])
//!     .send()
//!     .await
//!     .expect("token request");
//! assert!(response.status().is_success());
//! assert_eq!(idp.token_requests("client_credentials").await, 1);
//! # }
//! ```
//!
//! Before the first run: `npm ci --prefix tests/idp` (Node.js 20.19 or later on `PATH`).
//! Without it, starting an [`Idp`] fails with a message saying so; no test is skipped.

mod browser;
mod clients;
mod context;
mod cookies;
mod html;
mod idp;

pub use browser::{Browser, BrowserError, CallbackResponse};
pub use clients::{
    API_KEY_CLIENT, BASIC_CLIENT, COLON_ID_CLIENT, ClientAuthMethod, ConfidentialClient, FLYTECTL,
    FLYTECTL_REDIRECT_URI, POST_CLIENT, form_urlencode,
};
pub use context::{client_credentials_flow, context, device_flow, idp_context, pkce_flow};

/// The names of the files in `dir` ending with `suffix` (`.json` for token files,
/// `.discovery` for discovery hints); none when `dir` cannot be read.
pub fn file_names_ending_with(dir: &std::path::Path, suffix: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| name.ends_with(suffix))
                .collect()
        })
        .unwrap_or_default()
}
pub use idp::{
    Fault, FaultEndpoint, FlyteClientStyle, FlyteClientUpdate, GRANT_AUTHORIZATION_CODE,
    GRANT_CLIENT_CREDENTIALS, GRANT_DEVICE_CODE, GRANT_REFRESH_TOKEN, Idp, IdpBuilder, IdpError,
    RecordedRequest, Stats,
};

/// Logs in and approves with a fresh [`Browser`]; see [`Browser::complete_login`].
///
/// # Errors
///
/// See [`Browser::complete_login`].
pub async fn complete_browser_login(
    authorization_url: &url::Url,
) -> Result<CallbackResponse, BrowserError> {
    Browser::new().complete_login(authorization_url).await
}

/// Logs in and refuses consent with a fresh [`Browser`]; see [`Browser::deny_consent`].
///
/// # Errors
///
/// See [`Browser::deny_consent`].
pub async fn deny_browser_login(
    authorization_url: &url::Url,
) -> Result<CallbackResponse, BrowserError> {
    Browser::new().deny_consent(authorization_url).await
}

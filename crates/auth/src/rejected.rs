//! What the integrations do when a server rejects the token they sent.

use flyte_auth_core::{Authenticator, Error};
use http::HeaderValue;

/// Refreshes `auth` after the server rejected `sent`, unless another request has already
/// replaced it (then the new token is fresh and the next request will carry it).
pub(crate) async fn refresh_if_current(
    auth: &dyn Authenticator,
    sent: &HeaderValue,
    what: &'static str,
) -> Result<(), Error> {
    if auth
        .fetch_grpc_call_auth_metadata()
        .is_some_and(|current| current.value() != sent)
    {
        tracing::debug!("the server rejected a {what} that has been replaced already");
        return Ok(());
    }
    tracing::debug!("the server rejected the {what}; getting a new one");
    match auth.refresh_credentials().await {
        Ok(_) => Ok(()),
        Err(e) => {
            tracing::warn!(error = %e, "could not get a new {what} after the server rejected the old one");
            Err(e)
        }
    }
}

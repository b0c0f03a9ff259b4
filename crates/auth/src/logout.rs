//! [`logout`]: a logout that ends the login at the server too, not only on this machine.

use std::{fmt, sync::Arc};

use flyte_auth_core::{Credentials, Error, TokenStore};

use crate::{FactoryOptions, PlatformConfig};

/// What happened to the stored refresh token at the server during a [`logout`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Revocation {
    /// The server revoked it (RFC 7009): a copy of it is no longer a login.
    Revoked,
    /// There was nothing to revoke: no login was stored, or one without a refresh token.
    NothingToRevoke,
    /// The server announces no `revocation_endpoint`, or the auth type has no OAuth server
    /// (an external command, a plugin): the refresh token stays valid there until it expires.
    NotOffered,
    /// Not attempted: the login was issued to `client_id`, a confidential client other than
    /// the configured one, whose secret is unknown. The refresh token stays valid there until
    /// it expires.
    Skipped {
        /// The client the stored login names.
        client_id: String,
    },
    /// The revocation failed (the server refused, failed or did not answer in time): the
    /// refresh token may stay valid there until it expires. The stored login was deleted all
    /// the same.
    Failed(Error),
}

impl fmt::Display for Revocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Revoked => f.write_str("the refresh token was revoked at the server"),
            Self::NothingToRevoke => f.write_str("no refresh token was stored"),
            Self::NotOffered => f.write_str(
                "the server offers no token revocation, so the refresh token stays valid there \
                 until it expires",
            ),
            Self::Skipped { client_id } => write!(
                f,
                "the login was issued to client {}, not the configured one, whose secret is \
                 unknown here, so the refresh token was not revoked; it stays valid there until \
                 it expires",
                flyte_auth_core::text::printable(client_id)
            ),
            Self::Failed(e) => write!(
                f,
                "the refresh token could not be revoked at the server ({e}); it may stay valid \
                 there until it expires"
            ),
        }
    }
}

/// The outcome of a [`logout`]: the stored login is gone either way.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Logout {
    /// Whether `store` held a login for the endpoint.
    pub stored: bool,
    /// The name of the store asked (`keyring`, `file`, `memory`; see [`TokenStore::name`]).
    pub store: &'static str,
    /// What happened to its refresh token at the server.
    pub revocation: Revocation,
    /// The Google proxy's ID token, when `proxyGoogleAudience` is configured: deleted from
    /// `store` too, never revoked (an ID token cannot be revoked; it expires within the
    /// hour). `None` without the setting.
    pub google_proxy: Option<GoogleProxyToken>,
}

/// The Google proxy's stored ID token (`proxyGoogleAudience`) in a [`Logout`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GoogleProxyToken {
    /// The configured audience the token was for.
    pub audience: String,
    /// Whether `store` held a token for it (it is deleted either way).
    pub stored: bool,
}

impl fmt::Display for GoogleProxyToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let audience = flyte_auth_core::text::printable(&self.audience);
        if self.stored {
            write!(
                f,
                "the Google proxy's ID token for {audience} was removed (an ID token cannot be \
                 revoked; it expires within the hour)"
            )
        } else {
            write!(f, "no Google proxy ID token was stored for {audience}")
        }
    }
}

/// Logs out of `cfg`'s endpoint with default [`FactoryOptions`]; see [`logout_with`].
///
/// # Errors
///
/// As [`logout_with`].
pub async fn logout(cfg: &PlatformConfig, store: Arc<dyn TokenStore>) -> Result<Logout, Error> {
    logout_with(cfg, store, &FactoryOptions::default()).await
}

/// Logs out of `cfg`'s endpoint: revokes the stored refresh token at the server when it
/// announces a `revocation_endpoint` (RFC 8414 metadata, RFC 7009 request with
/// `token_type_hint=refresh_token`, as the client the login was issued to: its client id for
/// the browser and device logins, HTTP Basic with the configured secret for client
/// credentials, [`Revocation::Skipped`] for another confidential client), *then* deletes the
/// login from `store`.
///
/// The Google proxy's ID token ([`Logout::google_proxy`]) is deleted too. A revocation that
/// fails or is not offered does not stop the deletion ([`Logout::revocation`]). Requests go
/// through the HTTP client `options` builds, bounded in time like every other.
///
/// ```no_run
/// # use std::sync::Arc;
/// # async fn run(
/// #     cfg: flyte_auth::PlatformConfig,
/// #     store: Arc<dyn flyte_auth::TokenStore>,
/// # ) -> Result<(), flyte_auth::Error> {
/// // `store`: where the login was kept (`flyte_auth::store::default_store()`, say).
/// let outcome = flyte_auth::logout(&cfg, store).await?;
/// if let flyte_auth::Revocation::Failed(e) = &outcome.revocation {
///     eprintln!("logged out here, but the server did not revoke the login: {e}");
/// }
/// # Ok(()) }
/// ```
///
/// # Errors
///
/// [`Error::Store`] when the login or the Google proxy's token cannot be deleted from
/// `store`.
pub async fn logout_with(
    cfg: &PlatformConfig,
    store: Arc<dyn TokenStore>,
    options: &FactoryOptions,
) -> Result<Logout, Error> {
    let endpoint = cfg.endpoint();
    let (stored, revocation) = revoke_stored(cfg, &store, options).await;
    // The caller hears of a failure through the outcome (the CLI prints it).
    tracing::debug!(endpoint = %endpoint, %revocation, "logging out");
    store.delete(endpoint)?;
    let google_proxy = match cfg.proxy_google_audience() {
        Some(audience) => Some(delete_google_proxy_token(&*store, audience)?),
        None => None,
    };
    Ok(Logout {
        stored,
        store: store.name(),
        revocation,
        google_proxy,
    })
}

/// The revocation half of [`logout_with`]: revokes the refresh token of the login `store`
/// holds for `cfg`'s endpoint, where the server offers it, and deletes nothing. A login about
/// to be replaced (`flyte-auth login`) is revoked so, before the new one overwrites it.
///
/// Never fails: a login that cannot be read is [`Revocation::NothingToRevoke`] (and logged),
/// a revocation that fails is [`Revocation::Failed`]. Bounded in time as [`logout_with`].
pub async fn revoke_stored_login(
    cfg: &PlatformConfig,
    store: &Arc<dyn TokenStore>,
    options: &FactoryOptions,
) -> Revocation {
    revoke_stored(cfg, store, options).await.1
}

/// Whether `store` held a login for `cfg`'s endpoint, and what became of its refresh token.
async fn revoke_stored(
    cfg: &PlatformConfig,
    store: &Arc<dyn TokenStore>,
    options: &FactoryOptions,
) -> (bool, Revocation) {
    let endpoint = cfg.endpoint();
    let stored = match store.retrieve(endpoint) {
        Ok(stored) => stored,
        Err(e) => {
            tracing::warn!(endpoint = %endpoint, error = %e, "the stored login cannot be read; it is not revoked");
            None
        }
    };
    let revocation = match stored.as_ref() {
        Some(credentials) => revoke(cfg, store, options, credentials).await,
        None => Revocation::NothingToRevoke,
    };
    (stored.is_some(), revocation)
}

/// Deletes the Google proxy's ID token for `audience` from `store`.
fn delete_google_proxy_token(
    store: &dyn TokenStore,
    audience: &str,
) -> Result<GoogleProxyToken, Error> {
    let entry = crate::google_proxy_entry(audience)?;
    let stored = match store.retrieve(&entry) {
        Ok(stored) => stored.is_some(),
        Err(e) => {
            tracing::warn!(entry = %entry, error = %e, "the Google proxy's token cannot be read; deleting it");
            false
        }
    };
    store.delete(&entry)?;
    tracing::debug!(%audience, stored, "deleted the Google proxy's ID token");
    Ok(GoogleProxyToken {
        audience: audience.to_owned(),
        stored,
    })
}

/// Revokes `credentials`' refresh token at the revocation endpoint the server announces, as
/// the client the login was issued to.
#[cfg(any(feature = "pkce", feature = "device", feature = "clientcreds"))]
async fn revoke(
    cfg: &PlatformConfig,
    store: &Arc<dyn TokenStore>,
    options: &FactoryOptions,
    credentials: &Credentials,
) -> Revocation {
    use flyte_auth_oauth::{ClientAuth, Field, RevocationRequest};

    use crate::AuthMode;

    let Some(refresh_token) = credentials.refresh_token.clone() else {
        return Revocation::NothingToRevoke;
    };
    let issued_to = credentials
        .client_id
        .as_deref()
        .map(str::trim)
        .filter(|id| !id.is_empty());
    let configured = cfg.client_id().map(str::trim);
    let client = match cfg.auth_mode_ref() {
        AuthMode::Pkce | AuthMode::DeviceFlow => Ok(None),
        // Only the configured client's secret is known.
        AuthMode::ClientSecret => match (issued_to, configured, cfg.client_secret()) {
            (Some(issued), ..) if Some(issued) != configured => {
                return Revocation::Skipped {
                    client_id: issued.to_owned(),
                };
            }
            (_, Some(id), Some(secret)) => Ok(Some(ClientAuth::confidential(id, secret.clone()))),
            _ => Err(Error::config(
                "the client id or secret is not configured, so the client cannot authenticate \
                 to revoke its refresh token",
            )),
        },
        _ => return Revocation::NotOffered,
    };
    let ctx = match crate::factory::oauth::context(cfg, options, Some(store)) {
        Ok(ctx) => ctx,
        Err(e) => return Revocation::Failed(e),
    };
    // The token endpoint is asked for too: a discovery that fails is then a failed
    // revocation, not a server that offers none. Revoking is safe to repeat, so a discovery
    // answer an earlier process kept is used (`login` then discovers once, not twice).
    let fields = [Field::TokenEndpoint, Field::RevocationEndpoint];
    ctx.with_config(&fields, |server| {
        let (client, refresh_token, ctx) = (client.clone(), refresh_token.clone(), &ctx);
        async move {
            let Some(endpoint) = server.revocation_endpoint else {
                return Ok(Revocation::NotOffered);
            };
            // A public login's client, else the server's public client.
            let client = client?.unwrap_or_else(|| {
                ClientAuth::public(issued_to.map_or(server.client_id, str::to_owned))
            });
            let request = RevocationRequest::refresh_token(endpoint, client, refresh_token);
            ctx.http()
                .revoke(&request)
                .await
                .map(|()| Revocation::Revoked)
        }
    })
    .await
    .unwrap_or_else(Revocation::Failed)
}

/// Without an HTTP flow in the build, no OAuth server is known to revoke at.
#[cfg(not(any(feature = "pkce", feature = "device", feature = "clientcreds")))]
async fn revoke(
    _: &PlatformConfig,
    _: &Arc<dyn TokenStore>,
    _: &FactoryOptions,
    credentials: &Credentials,
) -> Revocation {
    match credentials.refresh_token {
        Some(_) => Revocation::NotOffered,
        None => Revocation::NothingToRevoke,
    }
}

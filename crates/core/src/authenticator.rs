//! The [`Authenticator`] trait and the header it produces.

use std::{fmt, future::Future, pin::Pin, sync::Arc};

use http::{HeaderName, HeaderValue};

use crate::{Credentials, DEFAULT_HEADER_KEY, Error};

/// A boxed, `Send` future: what the object-safe traits of this crate return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The header to add to a gRPC or HTTP call: `authorization: Bearer <token>` by default.
///
/// Cloning is cheap (reference-counted). The value is marked sensitive, so `{:?}` does not
/// show the token.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthHeader {
    name: HeaderName,
    value: HeaderValue,
}

impl AuthHeader {
    /// `name: Bearer <access token>`.
    ///
    /// Fails when the token holds characters that cannot go in a header.
    pub fn bearer(name: HeaderName, credentials: &Credentials) -> Result<Self, Error> {
        let mut value = HeaderValue::try_from(format!(
            "Bearer {}",
            credentials.access_token.expose_secret()
        ))
        .map_err(|_| Error::InvalidResponse {
            status: None,
            message: "the access token contains characters that are not allowed in a header".into(),
        })?;
        value.set_sensitive(true);
        Ok(Self { name, value })
    }

    /// The header name (`authorization`, `proxy-authorization`, or the server's choice).
    pub fn name(&self) -> &HeaderName {
        &self.name
    }

    /// The header value, `Bearer <token>`.
    ///
    /// # Security
    ///
    /// The value contains the token: do not log it.
    pub fn value(&self) -> &HeaderValue {
        &self.value
    }

    /// Name and value, for APIs that take them apart.
    pub fn into_parts(self) -> (HeaderName, HeaderValue) {
        (self.name, self.value)
    }
}

impl fmt::Debug for AuthHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthHeader")
            .field("name", &self.name)
            .field("value", &"[redacted]")
            .finish()
    }
}

/// What every authentication flow offers its callers: flytekit's `Authenticator`, with its
/// method names. Object-safe, shared as `Arc<dyn Authenticator>`. Creating one touches neither
/// the network nor the token store; the first call that needs credentials does.
pub trait Authenticator: Send + Sync + fmt::Debug {
    /// Valid credentials: cached ones while they are fresh, else from the store, a refresh
    /// grant, or the flow's full login. Concurrent callers share one attempt and its result.
    fn get_credentials(&self) -> BoxFuture<'_, Result<Arc<Credentials>, Error>>;

    /// New credentials even when the cached ones look valid (after the server answered
    /// `UNAUTHENTICATED` or 401). Joins a refresh already running.
    fn refresh_credentials(&self) -> BoxFuture<'_, Result<Arc<Credentials>, Error>>;

    /// The header for the current credentials if they are fresh, without blocking, locking,
    /// allocating a new string or touching the network; `None` when there are none yet or they
    /// are due for refresh (or, served on through a failed renewal, for the next attempt):
    /// then await [`auth_header`](Self::auth_header).
    fn fetch_grpc_call_auth_metadata(&self) -> Option<AuthHeader>;

    /// Fresh credentials that need no network call: the ones in memory, else the token
    /// store's (read, and kept in memory), as long as they are not due for refresh; `None`
    /// when a refresh or a login is due, or the flow cannot tell: then await
    /// [`get_credentials`](Self::get_credentials).
    ///
    /// Synchronous, without an async runtime; with nothing in memory it blocks while the store
    /// is read (within the store's time limit). The default is `None`.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use flyte_auth_core::{Authenticator, BoxFuture, CachingAuthenticator, Credentials, Endpoint, Error, MemoryStore, TokenFlow, TokenStore};
    /// # #[derive(Debug)] struct Flow(Endpoint);
    /// # impl TokenFlow for Flow {
    /// #     fn endpoint(&self) -> &Endpoint { &self.0 }
    /// #     fn login(&self) -> BoxFuture<'_, Result<Credentials, Error>> { unimplemented!() }
    /// # }
    /// let endpoint = Endpoint::parse("dns:///flyte.example.org:443")?;
    /// let store = Arc::new(MemoryStore::new());
    /// let stored = Credentials::new("stored-token", endpoint.key()).with_expires_in(3600);
    /// store.store(&endpoint, &stored)?;
    /// let auth = CachingAuthenticator::builder(Flow(endpoint)).store(store).build();
    ///
    /// // No async runtime needed while the stored token is fresh; when this says `None`,
    /// // `auth.get_credentials().await?` refreshes or logs in.
    /// let credentials = auth.fresh_credentials().expect("the stored token is fresh");
    /// assert_eq!(credentials.access_token.expose_secret(), "stored-token");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn fresh_credentials(&self) -> Option<Arc<Credentials>> {
        None
    }

    /// Whether there are credentials to use without a login: fresh ones, or ones a refresh
    /// grant can renew, in memory or in the token store (read, never the network). A fresh
    /// stored token is loaded into memory, so the next call serves it.
    ///
    /// Lazy integrations ask it before the server asks for a token. The default, `true`, makes
    /// them eager.
    fn load_credentials_without_login(&self) -> bool {
        true
    }

    /// Drops the current credentials if their header is `rejected` (the server refused it):
    /// they are no longer served, so that a refresh or login runs on the next call even though
    /// the token has not expired. Other credentials are kept. The default does nothing.
    fn invalidate(&self, rejected: &HeaderValue) {
        let _ = rejected;
    }

    /// The name of the header the token goes in, before any token exists: the configured one,
    /// else the server's (a flow that learns it by discovery asks the server once), else
    /// `authorization`. The default: the current header's name, else `authorization`.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use flyte_auth_core::{Authenticator, BoxFuture, CachingAuthenticator, Credentials, Endpoint, Error, TokenFlow};
    /// # use http::HeaderName;
    /// #[derive(Debug)]
    /// struct Flow(Endpoint);
    /// impl TokenFlow for Flow {
    ///     fn endpoint(&self) -> &Endpoint { &self.0 }
    ///     fn login(&self) -> BoxFuture<'_, Result<Credentials, Error>> { unimplemented!() }
    ///     fn header_name(&self) -> Option<HeaderName> {
    ///         Some(HeaderName::from_static("flyte-authorization"))
    ///     }
    /// }
    /// let auth: Arc<dyn Authenticator> =
    ///     Arc::new(CachingAuthenticator::builder(Flow(Endpoint::parse("flyte.example.org")?)).build());
    /// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
    /// // No token yet, no login: only the name.
    /// assert_eq!(auth.header_name().await?.as_str(), "flyte-authorization");
    /// # Ok::<(), Error>(()) })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the server names an invalid header; what discovery fails with,
    /// for a flow that cannot go on without it.
    fn header_name(&self) -> BoxFuture<'_, Result<HeaderName, Error>> {
        Box::pin(async move {
            Ok(self
                .fetch_grpc_call_auth_metadata()
                .map(|header| header.name().clone())
                .unwrap_or(HeaderName::from_static(DEFAULT_HEADER_KEY)))
        })
    }

    /// Whether this authenticator forwards the credentials of the request being served instead
    /// of a token of its own (`Passthrough`): integrations then never ask for a token or a
    /// refresh. The default is `false`.
    fn forwards_caller_credentials(&self) -> bool {
        false
    }

    /// The header to send: the cached one when fresh, else after
    /// [`get_credentials`](Self::get_credentials).
    fn auth_header(&self) -> BoxFuture<'_, Result<AuthHeader, Error>> {
        Box::pin(async move {
            if let Some(header) = self.fetch_grpc_call_auth_metadata() {
                return Ok(header);
            }
            self.get_credentials().await?;
            self.fetch_grpc_call_auth_metadata()
                .ok_or_else(|| Error::AccessTokenNotFound {
                    reason:
                        "credentials were obtained but expired at once; check the machine's clock"
                            .into(),
                })
        })
    }
}

impl<T: Authenticator + ?Sized> Authenticator for Arc<T> {
    fn get_credentials(&self) -> BoxFuture<'_, Result<Arc<Credentials>, Error>> {
        (**self).get_credentials()
    }
    fn refresh_credentials(&self) -> BoxFuture<'_, Result<Arc<Credentials>, Error>> {
        (**self).refresh_credentials()
    }
    fn fetch_grpc_call_auth_metadata(&self) -> Option<AuthHeader> {
        (**self).fetch_grpc_call_auth_metadata()
    }
    fn auth_header(&self) -> BoxFuture<'_, Result<AuthHeader, Error>> {
        (**self).auth_header()
    }
    fn header_name(&self) -> BoxFuture<'_, Result<HeaderName, Error>> {
        (**self).header_name()
    }
    fn fresh_credentials(&self) -> Option<Arc<Credentials>> {
        (**self).fresh_credentials()
    }
    fn load_credentials_without_login(&self) -> bool {
        (**self).load_credentials_without_login()
    }
    fn invalidate(&self, rejected: &HeaderValue) {
        (**self).invalidate(rejected)
    }
    fn forwards_caller_credentials(&self) -> bool {
        (**self).forwards_caller_credentials()
    }
}

//! [`AuthLayer`]: a `tower` layer that sends the token with every request of a service — a
//! `tonic` channel, a hyper client, anything that takes `http::Request`s — and gets a new
//! token when the server rejects the one sent (feature `tower`).
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use flyte_auth::{AuthLayer, PlatformConfig, get_authenticator, proxy_authenticator};
//!
//! let cfg = PlatformConfig::load()?;
//! let auth = get_authenticator(&cfg, None)?;
//! let layer = AuthLayer::new(auth).maybe_proxy(proxy_authenticator(&cfg)?);
//!
//! // With tonic (0.14):
//! // let channel = tonic::transport::Channel::from_shared(cfg.base_url())?.connect().await?;
//! // let channel = tower::ServiceBuilder::new().layer(layer).service(channel);
//! // let mut admin = AdminServiceClient::new(channel);
//! # let _ = layer; Ok(()) }
//! ```
//!
//! # What it does per request
//!
//! 1. Adds the header: the cached one when it is fresh
//!    ([`Authenticator::fetch_grpc_call_auth_metadata`], a lock-free read), else after
//!    [`Authenticator::auth_header`] (a refresh or a login; concurrent requests share it). The
//!    token is refreshed before it expires, so a rejected token is the exception.
//! 2. With a proxy authenticator ([`AuthLayer::with_proxy`]), adds its header
//!    (`proxy-authorization`) the same way.
//! 3. When the answer says the token was rejected — gRPC status `UNAUTHENTICATED` (16) in the
//!    response headers, as a server sends for a call it refuses before any message, or HTTP
//!    401 — calls [`Authenticator::refresh_credentials`] before handing the answer on, unless
//!    another request already replaced the token that was sent. HTTP 407 does the same for
//!    the proxy authenticator.
//!
//! The rejected call itself is **not** retried: a gRPC request body is a stream that is gone
//! once sent. The caller sees the `UNAUTHENTICATED` status (or the 401) once; the *next* call
//! carries the new token. Retry at the call site if the call is idempotent.
//!
//! When no token can be obtained (the login failed, the command failed), the request is not
//! sent and the service answers with the [`flyte_auth_core::Error`] (boxed; tonic shows it as
//! an `Unknown` status carrying the message). A failed refresh after a rejection is logged
//! with `tracing::warn!` and the rejection is handed on.

use std::{
    fmt,
    sync::Arc,
    task::{Context, Poll},
};

use ::tower::{Layer, Service};
use flyte_auth_core::{AuthHeader, Authenticator, BoxFuture};

use crate::rejected::refresh_if_current;
use http::{HeaderValue, Request, Response, StatusCode};

/// The error type of [`AuthService`]: the inner service's error, or the
/// [`flyte_auth_core::Error`] that kept the request from being sent, boxed.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// gRPC's `UNAUTHENTICATED` status code.
const GRPC_UNAUTHENTICATED: &[u8] = b"16";

/// Adds the token header to every request; see the [module documentation](self).
///
/// Cheap to clone; every service it makes shares the authenticators, and so their cache.
#[derive(Clone)]
pub struct AuthLayer {
    auth: Arc<dyn Authenticator>,
    proxy: Option<Arc<dyn Authenticator>>,
}

impl fmt::Debug for AuthLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthLayer")
            .field("auth", &self.auth)
            .field("proxy", &self.proxy)
            .finish()
    }
}

impl AuthLayer {
    /// A layer sending `auth`'s header (`authorization: Bearer ...`, or the server's header).
    pub fn new(auth: Arc<dyn Authenticator>) -> Self {
        Self { auth, proxy: None }
    }

    /// Also sends `proxy`'s header (from [`proxy_authenticator`](crate::proxy_authenticator):
    /// `proxy-authorization`), for an authenticating proxy in front of Flyte.
    #[must_use]
    pub fn with_proxy(mut self, proxy: Arc<dyn Authenticator>) -> Self {
        self.proxy = Some(proxy);
        self
    }

    /// [`with_proxy`](Self::with_proxy) when there is one: takes what
    /// [`proxy_authenticator`](crate::proxy_authenticator) returns.
    #[must_use]
    pub fn maybe_proxy(mut self, proxy: Option<Arc<dyn Authenticator>>) -> Self {
        self.proxy = proxy;
        self
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> AuthService<S> {
        AuthService {
            inner,
            auth: Arc::clone(&self.auth),
            proxy: self.proxy.clone(),
        }
    }
}

/// The service [`AuthLayer`] makes: `inner` with the token header added to every request.
///
/// `inner` must be `Clone` (a tonic `Channel` is): a request that has to wait for a token
/// is sent through a clone, as tower's buffer pattern does.
#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    auth: Arc<dyn Authenticator>,
    proxy: Option<Arc<dyn Authenticator>>,
}

impl<S: fmt::Debug> fmt::Debug for AuthService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthService")
            .field("inner", &self.inner)
            .field("auth", &self.auth)
            .field("proxy", &self.proxy)
            .finish()
    }
}

impl<S> AuthService<S> {
    /// `inner` sending `auth`'s header; same as `AuthLayer::new(auth).layer(inner)`.
    pub fn new(inner: S, auth: Arc<dyn Authenticator>) -> Self {
        AuthLayer::new(auth).layer(inner)
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The wrapped service, unwrapped.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

/// The headers a request was sent with, to tell afterwards whether they are still current.
struct Sent {
    auth: Arc<dyn Authenticator>,
    main: HeaderValue,
    proxy: Option<(Arc<dyn Authenticator>, HeaderValue)>,
}

impl Sent {
    fn add_to<B>(&self, request: &mut Request<B>, main: AuthHeader, proxy: Option<AuthHeader>) {
        let headers = request.headers_mut();
        let (name, value) = main.into_parts();
        headers.insert(name, value);
        if let Some(proxy) = proxy {
            let (name, value) = proxy.into_parts();
            headers.insert(name, value);
        }
    }

    /// Refreshes what the answer says was rejected. Takes only the verdict, so that the
    /// response (whose body need not be `Sync`) is not held across the wait.
    async fn refresh_rejected(&self, (main, proxy): (bool, bool)) {
        if main {
            let _ = refresh_if_current(&*self.auth, &self.main, "token").await;
        }
        if proxy && let Some((proxy, sent)) = &self.proxy {
            let _ = refresh_if_current(&**proxy, sent, "proxy token").await;
        }
    }
}

/// Whether the answer rejects the token, and whether it rejects the proxy token.
fn rejections<B>(response: &Response<B>) -> (bool, bool) {
    (
        is_unauthenticated(response),
        response.status() == StatusCode::PROXY_AUTHENTICATION_REQUIRED,
    )
}

/// Whether the answer rejects the token: HTTP 401, or gRPC `UNAUTHENTICATED` in the headers.
fn is_unauthenticated<B>(response: &Response<B>) -> bool {
    response.status() == StatusCode::UNAUTHORIZED
        || response
            .headers()
            .get("grpc-status")
            .is_some_and(|v| v.as_bytes() == GRPC_UNAUTHENTICATED)
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for AuthService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    ReqBody: Send + 'static,
    ResBody: Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Response<ResBody>, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        // Fast path: fresh headers in memory, no waiting, the readied service used at once.
        let main = self.auth.fetch_grpc_call_auth_metadata();
        let proxy = match &self.proxy {
            Some(p) => p.fetch_grpc_call_auth_metadata().map(Some),
            None => Some(None),
        };
        if let (Some(main), Some(proxy)) = (main, proxy) {
            let sent = Sent {
                auth: Arc::clone(&self.auth),
                main: main.value().clone(),
                proxy: self
                    .proxy
                    .clone()
                    .zip(proxy.as_ref().map(|h| h.value().clone())),
            };
            sent.add_to(&mut request, main, proxy);
            let call = self.inner.call(request);
            return Box::pin(async move {
                let response = call.await.map_err(Into::into)?;
                sent.refresh_rejected(rejections(&response)).await;
                Ok(response)
            });
        }

        // Slow path: wait for the headers, then send through the service that was readied
        // (leaving a fresh clone in its place).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let auth = Arc::clone(&self.auth);
        let proxy_auth = self.proxy.clone();
        Box::pin(async move {
            let main = auth.auth_header().await?;
            let proxy = match &proxy_auth {
                Some(p) => Some(p.auth_header().await?),
                None => None,
            };
            let sent = Sent {
                auth,
                main: main.value().clone(),
                proxy: proxy_auth.zip(proxy.as_ref().map(|h| h.value().clone())),
            };
            sent.add_to(&mut request, main, proxy);
            let response = inner.call(request).await.map_err(Into::into)?;
            sent.refresh_rejected(rejections(&response)).await;
            Ok(response)
        })
    }
}
